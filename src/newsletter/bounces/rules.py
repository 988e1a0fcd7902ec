"""Bounces and complaints: who a report is about, what it means for them, and the record kept.

Rules (applied by `record_finding`, the one place they live):

- a hard bounce suppresses the address at once (SuppressionReason.HARD_BOUNCE);
- a soft bounce adds to the person's score, at most +1 per (UTC) day; a score whose last
  soft bounce is more than `quiet_days` old is forgotten; reaching `soft_threshold`
  suppresses the address (SuppressionReason.SOFT_BOUNCES);
- `Action: delayed` is not a bounce: it is recorded and nothing else;
- a complaint unsubscribes from every list and suppresses (SuppressionReason.COMPLAINT).

Every event is kept in `bounce_events` with its raw reason, whatever was done about it.

Who a report is about (`attribute_report`): a VERP return path, verified with the secret, is
the strongest evidence, and a VERP address that fails verification changes nothing. Without
one, the original Message-ID is looked up in the outbox. Without either, the address the
report names is believed only when the installation does not use VERP (`trust_unsigned`):
with VERP on, an unsigned report is what a forger would send.

`process_mailbox` reads a mailbox (see `bounces.mailboxes`), records each message in its own
transaction and only then moves it to `processed` — or to `unparsed`, reported, when it can
be neither understood nor attributed. Reading the same message twice records it once. A
reader's unsubscribe request to the `mailto:` of List-Unsubscribe (`bounces.requests`) is
acted on in the same pass: moved to `processed` once done, to `unparsed` (the reason logged)
when its token does not verify.
`read_bounces` and `report_bounces` are the faces' units of work. The statements are in
`store.bounces`; this module decides what they mean.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy.orm import Session

from ..addresses import address_hash
from ..config import Config
from ..errors import InvalidVerp
from ..mail.verp import is_verp_address, read_verp
from ..people import consent
from ..people.consent import ConsentContext
from ..statuses import BounceKind, Channel, SuppressionReason
from ..store import BounceEvent, Store, Subscriber
from ..store import bounces as stored
from ..store.bounces import BounceLine, CampaignBounces, PersonBounce, bounces_by_person, count_bounces
from ..store.campaigns import campaign_exists
from .mailboxes import PASSWORD_ENV, PROCESSED, UNPARSED, BounceSource, open_source
from .reports import Finding, Report, ReportKind, classify_failure, parse_report
from .requests import apply_request, find_request

if TYPE_CHECKING:
    from ..installation import Newsletter

log = logging.getLogger(__name__)

__all__ = [
    "BounceRules",
    "rules_from_config",
    "Attribution",
    "MessageResult",
    "MailboxSummary",
    "CampaignBounces",
    "BounceRecord",
    "attribute_report",
    "record_finding",
    "record_report",
    "record_smtp_rejection",
    "process_mailbox",
    "soft_score",
    "bounce_history",
    "count_bounces",
    "read_bounces",
    "report_bounces",
    "PersonBounce",
    "bounces_of_people",
]


@dataclass(frozen=True)
class BounceRules:
    """How bounces are judged; defaults follow GNU Mailman's (threshold 5, stale after 7 days)."""

    #: Soft-bounce score that suppresses an address.
    soft_threshold: int = 5
    #: A score with no soft bounce for this many days is forgotten.
    quiet_days: int = 7
    #: Act on reports that carry no VERP reference and no known Message-ID (only safe when VERP is off).
    trust_unsigned: bool = False


def rules_from_config(config: Config) -> BounceRules:
    """The rules an installation runs with: its threshold; unsigned reports trusted only without VERP."""
    return BounceRules(soft_threshold=config.soft_bounce_threshold, trust_unsigned=not config.bounce_address)


class Attribution(NamedTuple):
    """Who a report is about, and how we know. `subscriber` None: nobody we can act on."""

    subscriber: Subscriber | None
    campaign_id: int | None
    #: "verp", "message-id", "address", "tampered" or "none"
    evidence: str
    note: str = ""


class MessageResult(NamedTuple):
    """What became of one message from a mailbox."""

    key: str
    folder: str
    report_kind: ReportKind
    kinds: tuple[BounceKind, ...]
    note: str


@dataclass
class MailboxSummary:
    """What one pass over a mailbox did."""

    source: str
    processed: int = 0
    unparsed: int = 0
    duplicates: int = 0
    #: Unsubscribe requests acted on (already-unsubscribed people included).
    unsubscribed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    results: list[MessageResult] = field(default_factory=list)

    @property
    def unparsed_results(self) -> list[MessageResult]:
        return [r for r in self.results if r.folder == UNPARSED]


#: One event as `newsletter show` prints it.
BounceRecord = BounceLine


def _existing_campaign(session: Session, campaign_id: int | None) -> int | None:
    if campaign_id is None:
        return None
    return campaign_id if campaign_exists(session, campaign_id) else None


def attribute_report(session: Session, report: Report, *, secret: bytes, bounce_address: str,
                     rules: BounceRules) -> Attribution:
    """Decide whom `report` is about; see the module docstring for the order of evidence."""
    if bounce_address:
        verp_like = [a for a in report.envelope_addresses if is_verp_address(a, bounce_address)]
        for address in verp_like:
            try:
                campaign_id, key, kind = read_verp(secret, address)
            except InvalidVerp:
                continue
            # A confirmation's reference names no campaign; a test send's names nobody (staff).
            subscriber = stored.subscriber_with_key(session, key) if key else None
            note = "" if subscriber else ("a test send: nobody to act on" if not key
                                          else "the person is no longer in the store")
            return Attribution(subscriber, _existing_campaign(session, campaign_id), "verp",
                               note or ("" if campaign_id is not None else f"a {kind.value} mail"))
        if verp_like:
            return Attribution(None, None, "tampered",
                               f"the VERP reference in {verp_like[0]} does not verify; nothing changed")
    named = {f.address for f in report.findings if f.address}
    for message_id in report.original_message_ids:
        found = stored.recipient_of_message(session, message_id)
        if found is None:
            continue
        subscriber_id, campaign_id = found
        subscriber = stored.subscriber_by_id(session, subscriber_id)
        if subscriber is not None and (not named or subscriber.email in named):
            return Attribution(subscriber, campaign_id, "message-id")
    if rules.trust_unsigned and len(named) == 1:
        subscriber = consent.find_subscriber(session, next(iter(named)))
        if subscriber is not None:
            return Attribution(subscriber, None, "address")
    return Attribution(None, None, "none", "no VERP reference or known Message-ID identifies the recipient")


def soft_score(session: Session, subscriber: Subscriber, *, now: datetime, rules: BounceRules = BounceRules()) -> int:
    """The person's current soft-bounce score (0 once forgotten)."""
    state = stored.score_of(session, subscriber.id)
    if state is None or now - state.last_bounce_at > timedelta(days=rules.quiet_days):
        return 0
    return state.score


def _add_soft_bounce(session: Session, subscriber: Subscriber, *, now: datetime, rules: BounceRules) -> tuple[int, bool]:
    """Apply one soft bounce to the score; returns (score, counted today for the first time)."""
    # Locked: the bounce reader and sender workers may score the same person at once.
    state = stored.locked_score(session, subscriber.id, now=now)
    today = now.astimezone(timezone.utc).date()
    score, counted_on = state.score, state.last_counted_on
    if now - state.last_bounce_at > timedelta(days=rules.quiet_days):
        score, counted_on = 0, None
    counted = counted_on != today
    if counted:
        score += 1
        counted_on = today
    stored.write_score(session, state, score=score, last_counted_on=counted_on,
                       last_bounce_at=max(state.last_bounce_at, now))
    return score, counted


def record_finding(session: Session, finding: Finding, attribution: Attribution, *, source: str, now: datetime,
                   rules: BounceRules, report: Report | None = None, provider: str | None = None) -> BounceEvent:
    """Apply the rules to one finding and keep the event, with the mail `provider` whose
    webhook reported it (None: a mailbox, or the relay at SMTP time). Returns the event written."""
    subscriber = attribution.subscriber
    origin = provider or source  # what the consent log says it came from: bounce:ses, bounce:dsn
    kind = finding.kind
    if subscriber is None:
        outcome = attribution.note or "not attributed; nothing changed"
    elif kind is BounceKind.HARD:
        ctx = ConsentContext(channel=Channel.BOUNCE, source=f"bounce:{origin}",
                             note=_clip(_redact(finding.reason, [subscriber.email]), 500))
        fresh = consent.suppress(session, subscriber.email, SuppressionReason.HARD_BOUNCE, now=now, ctx=ctx,
                                 note=f"hard bounce {finding.status or ''}".strip())
        outcome = "suppressed (hard bounce)" if fresh else "already suppressed"
    elif kind is BounceKind.SOFT:
        score, counted = _add_soft_bounce(session, subscriber, now=now, rules=rules)
        outcome = f"soft-bounce score {score}/{rules.soft_threshold}" + ("" if counted else " (already counted today)")
        if score >= rules.soft_threshold:
            ctx = ConsentContext(channel=Channel.BOUNCE, source=f"bounce:{origin}", note=_clip(finding.reason, 500))
            fresh = consent.suppress(session, subscriber.email, SuppressionReason.SOFT_BOUNCES, now=now, ctx=ctx,
                                     note=f"{score} soft bounces on separate days")
            outcome += "; suppressed" if fresh else "; already suppressed"
    elif kind is BounceKind.COMPLAINT:
        ctx = ConsentContext(channel=Channel.COMPLAINT, source=f"complaint:{origin}", note=_clip(finding.reason, 500))
        fresh = consent.suppress(session, subscriber.email, SuppressionReason.COMPLAINT, now=now, ctx=ctx,
                                 note="abuse complaint")
        outcome = "unsubscribed and suppressed (complaint)" if fresh else "already suppressed"
    elif kind is BounceKind.DELAYED:
        outcome = "not a bounce: delivery delayed, the MTA is still trying"
    else:
        outcome = "recorded; nothing changed"
    address = subscriber.email if subscriber is not None else finding.address
    # The address is kept as a hash only (like suppressions), so erasing a person leaves no
    # plain copy of it in the reason texts; the rest of the raw reason is kept as given.
    known = [a for a in {address, finding.address} if a]
    return stored.add_event(
        session,
        subscriber_id=subscriber.id if subscriber is not None else None,
        campaign_id=attribution.campaign_id,
        address_hash=address_hash(address) if address else None,
        kind=kind,
        source=source,
        provider=provider,
        status=finding.status,
        reason=_redact(finding.reason, known),
        diagnostic_code=_redact(finding.diagnostic, known) if finding.diagnostic else None,
        outcome=_clip(outcome, 200),
        at=now,
        report_message_id=report.message_id if report is not None else None,
        report_digest=report.digest if report is not None else None,
    )


def _redact(text: str, addresses: list[str]) -> str:
    for address in addresses:
        text = re.sub(re.escape(address), "<recipient>", text, flags=re.IGNORECASE)
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def record_report(session: Session, report: Report, *, secret: bytes, bounce_address: str, now: datetime,
                  rules: BounceRules, provider: str | None = None) -> tuple[str, tuple[BounceKind, ...], str]:
    """Record what one report says and apply the rules. Returns (folder, kinds recorded, note).
    `provider` names the mail provider whose webhook brought it (kept with each event).

    The folder is PROCESSED when the report was understood and attributed (or is an
    auto-reply, or was recorded before), UNPARSED when a person should read it: not
    understood, not attributable, or carrying a VERP reference that fails verification.
    Unparsed reports are recorded too, as UNKNOWN events, so they are counted and shown.
    """
    if stored.digest_recorded(session, report.digest):
        return PROCESSED, (), "recorded before"
    if report.kind is ReportKind.AUTO_REPLY:
        return PROCESSED, (), report.note
    if report.kind is ReportKind.UNPARSED or not report.findings:
        reason = f"{report.note or 'nothing to record'}; subject: {report.subject or '(none)'}"
        finding = Finding(BounceKind.UNKNOWN, None, None, None, _clip(reason, 2000))
        record_finding(session, finding, Attribution(None, None, "none", "kept for a person to read"),
                       source=report.kind.value, now=now, rules=rules, report=report, provider=provider)
        folder = UNPARSED if report.kind is ReportKind.UNPARSED else PROCESSED
        return folder, (BounceKind.UNKNOWN,), reason
    attribution = attribute_report(session, report, secret=secret, bounce_address=bounce_address, rules=rules)
    kinds = []
    for finding in report.findings:
        event = record_finding(session, finding, attribution, source=report.kind.value, now=now, rules=rules,
                               report=report, provider=provider)
        kinds.append(event.kind)
    if attribution.subscriber is None and attribution.evidence in ("tampered", "none"):
        return UNPARSED, tuple(kinds), attribution.note
    return PROCESSED, tuple(kinds), "; ".join(sorted({k.value for k in kinds}))


_SMTP_STATUS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")


def record_smtp_rejection(session: Session, email: str, campaign_id: int | None, code: int, reply: str,
                          now: datetime, *, rules: BounceRules = BounceRules()) -> BounceEvent:
    """Feed a refusal the relay gave at RCPT time into the same rules as a bounce.

    `code` is the SMTP reply code, `reply` its text. A 5xx is judged like a DSN's failure
    (hard, or soft for mailbox-full and policy codes); a 4xx is recorded as delayed (the
    sender retries it). Returns the event; raises nothing for an unknown address (the event
    is kept with its hash).
    """
    match = _SMTP_STATUS.search(reply or "")
    status = match.group(0) if match else None
    diagnostic = f"smtp; {code} {reply}".strip()
    kind = classify_failure(status, diagnostic) if 500 <= code < 600 else BounceKind.DELAYED
    address = email.strip().lower()
    subscriber = consent.find_subscriber(session, address)
    finding = Finding(kind, address, status, diagnostic, _clip(f"{code} {reply}".strip(), 2000))
    attribution = Attribution(subscriber, _existing_campaign(session, campaign_id), "smtp",
                              "" if subscriber else "the address is not in the store")
    return record_finding(session, finding, attribution, source="smtp", now=now, rules=rules)


def process_mailbox(store: Store, source: BounceSource, *, secret: bytes, bounce_address: str,
                    rules: BounceRules, clock: Callable[[], datetime],
                    on_result: Callable[[MessageResult], None] | None = None) -> MailboxSummary:
    """Read every message in `source` once: record it, then move it to processed or unparsed.

    Each message is its own transaction; a message is moved only after its record is
    committed, so a crash leaves it in the mailbox to be read again (and recorded once).
    A store error stops the pass with the message left where it was.
    """
    summary = MailboxSummary(source.name)
    for key in source.keys():
        raw = source.read(key)
        request = find_request(raw)
        if request is not None:
            with store.session() as session:
                outcome = apply_request(session, request, secret=secret, now=clock())
            folder = PROCESSED if outcome.acted else UNPARSED
            if not outcome.acted:
                log.warning("mailbox: %s: %s", key, outcome.note)
            source.move(key, folder)
            result = MessageResult(key, folder, ReportKind.UNSUBSCRIBE_REQUEST, (), outcome.note)
            summary.results.append(result)
            summary.unsubscribed += outcome.acted
            summary.processed += outcome.acted
            summary.unparsed += not outcome.acted
            if on_result is not None:
                on_result(result)
            continue
        try:
            report = parse_report(raw)
        except Exception as exc:  # noqa: BLE001  hostile or broken MIME must not stop the pass
            digest = hashlib.sha256(raw).hexdigest()
            report = Report(ReportKind.UNPARSED, (), "sha256:" + digest, "", (), (), digest,
                            f"the message could not be read: {type(exc).__name__}: {exc}")
        with store.session() as session:
            folder, kinds, note = record_report(session, report, secret=secret, bounce_address=bounce_address,
                                                now=clock(), rules=rules)
        source.move(key, folder)
        result = MessageResult(key, folder, report.kind, kinds, note)
        summary.results.append(result)
        if note == "recorded before":
            summary.duplicates += 1
        if folder == UNPARSED:
            summary.unparsed += 1
        else:
            summary.processed += 1
        for kind in kinds:
            summary.by_kind[kind.value] = summary.by_kind.get(kind.value, 0) + 1
        if on_result is not None:
            on_result(result)
    return summary


def bounce_history(session: Session, email: str) -> list[BounceRecord]:
    """Every bounce event about this address (by person or by address hash), oldest first."""
    address = email.strip().lower()
    subscriber = consent.find_subscriber(session, address)
    return stored.bounce_lines(session, address_hash(address), subscriber.id if subscriber is not None else None)


def bounces_of_people(newsletter: Newsletter, campaign_slug: str | None = None) -> list[PersonBounce]:
    """Every bounce and complaint by person (`campaign_slug`: that campaign's only), delay
    notices aside: whom it was about, what came back and what was done."""
    with newsletter.store.session() as session:
        return bounces_by_person(session, campaign_slug)


def report_bounces(newsletter: Newsletter, campaign_slug: str | None = None) -> list[CampaignBounces]:
    """Bounce events counted per campaign (`campaign_slug`: that one only), with how many of
    its messages were sent; reports tied to no campaign are counted under campaign None."""
    with newsletter.store.session() as session:
        return count_bounces(session, campaign_slug)


def read_bounces(newsletter: Newsletter, source: str, *, password_env: str = PASSWORD_ENV,
                 on_result: Callable[[MessageResult], None] | None = None) -> MailboxSummary:
    """One pass over the bounce mailbox `source` (see `mailboxes.open_source`) with this
    installation's rules, secret and bounce address; see `process_mailbox`.
    Raises MailboxError when the mailbox cannot be opened or read."""
    config = newsletter.config
    mailbox = open_source(source, password_env=password_env)
    try:
        return process_mailbox(newsletter.store, mailbox, secret=newsletter.secret(),
                               bounce_address=config.bounce_address, rules=rules_from_config(config),
                               clock=newsletter.clock, on_result=on_result)
    finally:
        mailbox.close()
