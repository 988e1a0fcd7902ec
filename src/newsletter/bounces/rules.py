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

`process_mailbox` reads a mailbox (see `bounce_mailboxes`), records each message in its own
transaction and only then moves it to `processed` — or to `unparsed`, reported, when it can
be neither understood nor attributed. Reading the same message twice records it once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..addresses import address_hash
from ..config import Config
from ..errors import InvalidVerp
from ..mail.verp import is_verp_address, read_verp
from ..people import consent
from ..people.consent import ConsentContext
from ..statuses import BounceKind, Channel, OutboxStatus, SuppressionReason
from ..store import BounceEvent, BounceScore, Campaign, OutboxRow, Store, Subscriber
from .mailboxes import PROCESSED, UNPARSED, BounceSource
from .reports import Finding, Report, ReportKind, classify_failure, parse_report

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
    by_kind: dict[str, int] = field(default_factory=dict)
    results: list[MessageResult] = field(default_factory=list)

    @property
    def unparsed_results(self) -> list[MessageResult]:
        return [r for r in self.results if r.folder == UNPARSED]


class CampaignBounces(NamedTuple):
    """Events of one campaign by kind, with how many of its messages were sent."""

    campaign_id: int | None
    slug: str | None
    sent: int
    hard: int
    soft: int
    delayed: int
    complaint: int
    unknown: int


class BounceRecord(NamedTuple):
    """One event as `newsletter show` prints it."""

    at: datetime
    kind: BounceKind
    source: str
    status: str | None
    reason: str
    outcome: str
    campaign_slug: str | None


def _subscriber_for_key(session: Session, key: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.key == key))


def _existing_campaign(session: Session, campaign_id: int | None) -> int | None:
    if campaign_id is None:
        return None
    return campaign_id if session.get(Campaign, campaign_id) is not None else None


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
            subscriber = _subscriber_for_key(session, key) if key else None
            note = "" if subscriber else ("a test send: nobody to act on" if not key
                                          else "the person is no longer in the store")
            return Attribution(subscriber, _existing_campaign(session, campaign_id), "verp",
                               note or ("" if campaign_id is not None else f"a {kind.value} mail"))
        if verp_like:
            return Attribution(None, None, "tampered",
                               f"the VERP reference in {verp_like[0]} does not verify; nothing changed")
    named = {f.address for f in report.findings if f.address}
    for message_id in report.original_message_ids:
        bare = message_id.strip("<>")
        row = session.scalar(select(OutboxRow).where(
            OutboxRow.message_id.in_([bare, f"<{bare}>"])).limit(1))
        if row is None or row.subscriber_id is None:
            continue
        subscriber = session.get(Subscriber, row.subscriber_id)
        if subscriber is not None and (not named or subscriber.email in named):
            return Attribution(subscriber, row.campaign_id, "message-id")
    if rules.trust_unsigned and len(named) == 1:
        subscriber = consent.find_subscriber(session, next(iter(named)))
        if subscriber is not None:
            return Attribution(subscriber, None, "address")
    return Attribution(None, None, "none", "no VERP reference or known Message-ID identifies the recipient")


def soft_score(session: Session, subscriber: Subscriber, *, now: datetime, rules: BounceRules = BounceRules()) -> int:
    """The person's current soft-bounce score (0 once forgotten)."""
    state = session.get(BounceScore, subscriber.id)
    if state is None or now - state.last_bounce_at > timedelta(days=rules.quiet_days):
        return 0
    return state.score


def _add_soft_bounce(session: Session, subscriber: Subscriber, *, now: datetime, rules: BounceRules) -> tuple[int, bool]:
    """Apply one soft bounce to the score; returns (score, counted today for the first time)."""
    # The bounce reader and sender workers may score the same person at once: lock the row,
    # and let a racing first insert win (a savepoint keeps the caller's transaction usable).
    state = session.get(BounceScore, subscriber.id, with_for_update=True)
    today = now.astimezone(timezone.utc).date()
    if state is None:
        try:
            with session.begin_nested():
                state = BounceScore(subscriber_id=subscriber.id, score=0, last_counted_on=None, last_bounce_at=now)
                session.add(state)
        except IntegrityError:
            state = session.get(BounceScore, subscriber.id, with_for_update=True, populate_existing=True)
    if now - state.last_bounce_at > timedelta(days=rules.quiet_days):
        state.score, state.last_counted_on = 0, None
    counted = state.last_counted_on != today
    if counted:
        state.score += 1
        state.last_counted_on = today
    state.last_bounce_at = max(state.last_bounce_at, now)
    session.flush()
    return state.score, counted


def record_finding(session: Session, finding: Finding, attribution: Attribution, *, source: str, now: datetime,
                   rules: BounceRules, report: Report | None = None) -> BounceEvent:
    """Apply the rules to one finding and keep the event. Returns the event written."""
    subscriber = attribution.subscriber
    kind = finding.kind
    if subscriber is None:
        outcome = attribution.note or "not attributed; nothing changed"
    elif kind is BounceKind.HARD:
        ctx = ConsentContext(channel=Channel.BOUNCE, source=f"bounce:{source}",
                             note=_clip(_redact(finding.reason, [subscriber.email]), 500))
        fresh = consent.suppress(session, subscriber.email, SuppressionReason.HARD_BOUNCE, now=now, ctx=ctx,
                                 note=f"hard bounce {finding.status or ''}".strip())
        outcome = "suppressed (hard bounce)" if fresh else "already suppressed"
    elif kind is BounceKind.SOFT:
        score, counted = _add_soft_bounce(session, subscriber, now=now, rules=rules)
        outcome = f"soft-bounce score {score}/{rules.soft_threshold}" + ("" if counted else " (already counted today)")
        if score >= rules.soft_threshold:
            ctx = ConsentContext(channel=Channel.BOUNCE, source=f"bounce:{source}", note=_clip(finding.reason, 500))
            fresh = consent.suppress(session, subscriber.email, SuppressionReason.SOFT_BOUNCES, now=now, ctx=ctx,
                                     note=f"{score} soft bounces on separate days")
            outcome += "; suppressed" if fresh else "; already suppressed"
    elif kind is BounceKind.COMPLAINT:
        ctx = ConsentContext(channel=Channel.COMPLAINT, source=f"complaint:{source}", note=_clip(finding.reason, 500))
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
    event = BounceEvent(
        subscriber_id=subscriber.id if subscriber is not None else None,
        campaign_id=attribution.campaign_id,
        address_hash=address_hash(address) if address else None,
        kind=kind,
        source=source,
        status=finding.status,
        reason=_redact(finding.reason, known),
        diagnostic_code=_redact(finding.diagnostic, known) if finding.diagnostic else None,
        outcome=_clip(outcome, 200),
        at=now,
        report_message_id=report.message_id if report is not None else None,
        report_digest=report.digest if report is not None else None,
    )
    session.add(event)
    session.flush()
    return event


def _redact(text: str, addresses: list[str]) -> str:
    for address in addresses:
        text = re.sub(re.escape(address), "<recipient>", text, flags=re.IGNORECASE)
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _already_recorded(session: Session, digest: str) -> bool:
    return session.scalar(select(BounceEvent.id).where(BounceEvent.report_digest == digest).limit(1)) is not None


def record_report(session: Session, report: Report, *, secret: bytes, bounce_address: str, now: datetime,
                  rules: BounceRules) -> tuple[str, tuple[BounceKind, ...], str]:
    """Record what one report says and apply the rules. Returns (folder, kinds recorded, note).

    The folder is PROCESSED when the report was understood and attributed (or is an
    auto-reply, or was recorded before), UNPARSED when a person should read it: not
    understood, not attributable, or carrying a VERP reference that fails verification.
    Unparsed reports are recorded too, as UNKNOWN events, so they are counted and shown.
    """
    if _already_recorded(session, report.digest):
        return PROCESSED, (), "recorded before"
    if report.kind is ReportKind.AUTO_REPLY:
        return PROCESSED, (), report.note
    if report.kind is ReportKind.UNPARSED or not report.findings:
        reason = f"{report.note or 'nothing to record'}; subject: {report.subject or '(none)'}"
        finding = Finding(BounceKind.UNKNOWN, None, None, None, _clip(reason, 2000))
        record_finding(session, finding, Attribution(None, None, "none", "kept for a person to read"),
                       source=report.kind.value, now=now, rules=rules, report=report)
        folder = UNPARSED if report.kind is ReportKind.UNPARSED else PROCESSED
        return folder, (BounceKind.UNKNOWN,), reason
    attribution = attribute_report(session, report, secret=secret, bounce_address=bounce_address, rules=rules)
    kinds = []
    for finding in report.findings:
        event = record_finding(session, finding, attribution, source=report.kind.value, now=now, rules=rules,
                               report=report)
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
    condition = BounceEvent.address_hash == address_hash(address)
    if subscriber is not None:
        condition = or_(condition, BounceEvent.subscriber_id == subscriber.id)
    rows = session.execute(
        select(BounceEvent, Campaign.slug).outerjoin(Campaign, Campaign.id == BounceEvent.campaign_id)
        .where(condition).order_by(BounceEvent.at, BounceEvent.id)
    ).all()
    return [BounceRecord(ev.at, ev.kind, ev.source, ev.status, ev.reason, ev.outcome, slug)
            for ev, slug in rows]


def count_bounces(session: Session, campaign_slug: str | None = None) -> list[CampaignBounces]:
    """Events counted per campaign (campaign None: reports not tied to a campaign), by campaign id."""
    def count(kind: BounceKind):
        return func.sum(case((BounceEvent.kind == kind, 1), else_=0))

    query = (
        select(BounceEvent.campaign_id, Campaign.slug, count(BounceKind.HARD), count(BounceKind.SOFT),
               count(BounceKind.DELAYED), count(BounceKind.COMPLAINT), count(BounceKind.UNKNOWN))
        .outerjoin(Campaign, Campaign.id == BounceEvent.campaign_id)
        .group_by(BounceEvent.campaign_id, Campaign.slug)
        .order_by(BounceEvent.campaign_id)
    )
    if campaign_slug is not None:
        query = query.where(Campaign.slug == campaign_slug)
    rows = session.execute(query).all()
    ids = [cid for cid, *_ in rows if cid is not None]
    sent = dict(session.execute(
        select(OutboxRow.campaign_id, func.count()).where(OutboxRow.campaign_id.in_(ids),
                                                           OutboxRow.status == OutboxStatus.SENT)
        .group_by(OutboxRow.campaign_id)).all()) if ids else {}
    return [CampaignBounces(cid, slug, int(sent.get(cid, 0)), *(int(n or 0) for n in counts))
            for cid, slug, *counts in rows]
