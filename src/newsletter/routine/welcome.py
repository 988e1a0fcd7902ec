"""Welcome, catch-up and digest mail: after someone confirms, a welcome per list (if its
text is written) and, while a session runs, what they missed of it; after a session's last
day, its digest to those who chose one over the daily mail — each once, counted, retried.

    confirmed ──plan──► personal_mail (one row per person and key) ──send──► sent
                                                        └── deferred (4xx: retried with back-off)
                                                        └── failed (5xx) · skipped (left since)

`plan_personal_mail` looks at the subscriptions confirmed lately (whatever confirmed them:
the link, the preferences page, an import with consent) and queues, each once:

- the list's **welcome**, when `welcome_dir` holds `<list>.<lang>.md` files, in the person's
  language along the list's fallback chain;
- a **catch-up**, when the list's latest daily summaries belong to a session whose last day
  has not gone out yet: the days of it they were not sent (`catch_up = "digest"`, one mail),
  or only the latest (`"latest"`), in their language along the chain (`"off"`: none);
- a **digest** of a session whose last day went out lately, to each of the list's readers who
  take its daily summaries as one (`routine.series`): every day of it, in their language.

`send_personal_mail` sends what is due through the one message builder (`mail.message`, kinds
WELCOME, CATCH_UP and DIGEST, signed and bounce-addressed by `mail.postmark`), checking again that
the person may be mailed, over a connection from `transport.relays.personal_connector` (the
pool of `[relays.*]` when there are any, else `smtp_url`); each row keeps the relay that
answered. The statements are in `store.personal`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..errors import ContentError, DeliveryError, NewsletterError
from ..mail.compose import DEFAULT_FALLBACK, RenderedMail, variant_for
from ..mail.message import ListInfo, MailKind, MailSkeleton, Recipient, message_id_domain, message_id_for
from ..mail.personal import (
    catch_up_intro,
    digest_subject,
    load_welcome,
    render_digest,
    render_welcome,
    session_digest_subject,
)
from ..mail.postmark import Postmark
from ..sending.messages import Links
from ..statuses import CampaignStatus, OutboxStatus
from ..store import personal as stored
from ..store import series as stored_series
from ..texts import N_, Text
from ..transport.connection import SmtpConnection, Verdict, classify_reply
from ..transport.relays import personal_connector
from .series import DailyIssue, daily_issues, issue_of


if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["CATCH_UP_MODES", "PLAN_WINDOW", "PersonalCounts", "plan_personal_mail", "send_personal_mail",
           "count_personal_mail"]

log = logging.getLogger(__name__)

CATCH_UP_MODES = ("digest", "latest", "off")
#: Confirmations younger than this are planned (older ones were, or predate the feature).
PLAN_WINDOW = timedelta(days=2)
#: A claim older than this is taken over (its sender is presumed dead).
LEASE = timedelta(minutes=10)
RETRY_BASE = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=2)
#: Deferred this long after it was queued, a mail counts as failed.
EXPIRY = timedelta(days=2)


class PersonalCounts(NamedTuple):
    """What a sending pass did."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0


# ------------------------------------------------------------------------------------- planning

def _session_days(session, confirmed: stored.Confirmed) -> list[DailyIssue]:
    """The daily issues of the list's latest session started before this confirmation, while
    that session runs (its last day not yet started); [] otherwise."""
    days = daily_issues(session, confirmed.list_id)
    if not days:
        return []
    current = days[-1].fields.session
    days = [d for d in days if d.fields.session == current]
    if any(d.fields.day >= d.fields.total_days for d in days):
        return []  # its last day has gone out: the session is over
    return [d for d in days if d.campaign.started_at is not None and d.campaign.started_at <= confirmed.confirmed_at]


def _row(subscriber_id: int, list_id: int, kind: MailKind, key: str, days: list[DailyIssue]) -> dict:
    content = {"session": days[0].fields.session, "slugs": [d.campaign.slug for d in days],
               "files": [list(d.campaign.source.get("files", ())) for d in days]} if days else {}
    return dict(subscriber_id=subscriber_id, list_id=list_id, kind=kind.value, key=key[:200], content=content)


def _digests(session, now: datetime) -> list[dict]:
    """A digest for each digest reader of each session whose last day went out lately."""
    rows = []
    for list_id, list_slug in stored_series.lists_with_digest_readers(session):
        by_session: dict[str, list[DailyIssue]] = {}
        for day in daily_issues(session, list_id):
            by_session.setdefault(day.fields.session, []).append(day)
        for name, days in by_session.items():
            last = [d for d in days if d.fields.day >= d.fields.total_days
                    and d.campaign.status is CampaignStatus.FINISHED and d.campaign.finished_at is not None
                    and now - d.campaign.finished_at <= PLAN_WINDOW]
            if not last:
                continue
            sent = sorted((d for d in days if d.campaign.status is CampaignStatus.FINISHED), key=lambda d: d.fields.day)
            for subscriber_id in stored_series.digest_readers(session, list_id):
                rows.append(_row(subscriber_id, list_id, MailKind.DIGEST, f"digest:{list_slug}:{name}", sent))
    return rows


def plan_personal_mail(newsletter: Newsletter) -> int:
    """Queue the welcome and catch-up mails of recent confirmations (see the module's
    docstring); each person gets each at most once. Returns how many were queued."""
    config = newsletter.config
    now = newsletter.clock()
    welcome_dir = Path(config.welcome_dir) if config.welcome_dir else None
    queued = 0
    with newsletter.store.session() as session:
        rows = []
        for confirmed in stored.recent_confirmations(session, since=now - PLAN_WINDOW, until=now):
            if welcome_dir is not None and load_welcome(welcome_dir, confirmed.list_slug):
                rows.append(_row(confirmed.subscriber_id, confirmed.list_id, MailKind.WELCOME,
                                 f"welcome:{confirmed.list_slug}", []))
            if config.catch_up == "off" or stored.delivery_digest(session, confirmed.subscriber_id, confirmed.list_id):
                continue  # a digest reader gets the whole session at its end
            days = _session_days(session, confirmed)
            received = stored.campaigns_received(session, confirmed.subscriber_id, [d.campaign.id for d in days])
            missed = [d for d in days if d.campaign.id not in received]
            if config.catch_up == "latest":
                missed = [d for d in days[-1:] if d in missed]
            if missed:
                rows.append(_row(confirmed.subscriber_id, confirmed.list_id, MailKind.CATCH_UP,
                                 f"catch-up:{confirmed.list_slug}:{missed[0].fields.session}", missed))
        rows += _digests(session, now)
        queued = stored.queue_mail(session, rows, now=now)
    return queued


def count_personal_mail(newsletter: Newsletter) -> dict[str, dict[str, int]]:
    """Welcome and catch-up mail by kind, then status: {"welcome": {"sent": 3, …}, …}."""
    with newsletter.store.session() as session:
        counts = stored.count_by_kind(session)
    out: dict[str, dict[str, int]] = {}
    for (kind, status), n in counts.items():
        out.setdefault(kind, {})[status] = n
    return out


# -------------------------------------------------------------------------------------- sending

@dataclass
class _Renderings:
    """Each (key, language) rendered once per pass."""

    newsletter: Newsletter
    cache: dict[tuple[str, str], tuple[RenderedMail, MailSkeleton]] = field(default_factory=dict)

    def get(self, row: stored.Claimed) -> MailSkeleton:
        """The skeleton of `row`'s mail in its reader's language along the list's chain.
        Raises NewsletterError (ContentError, MissingVariant) when it cannot be made."""
        config = self.newsletter.config
        chain = row.list_languages or DEFAULT_FALLBACK
        kind = MailKind(row.kind)
        if kind is MailKind.WELCOME:
            texts = load_welcome(Path(config.welcome_dir), row.list_slug)
            language = variant_for(row.language, list(texts), chain)
            key = (row.key, language)
            if key not in self.cache:
                rendered = render_welcome(config, texts[language], row.list_name)
                self.cache[key] = (rendered, self._skeleton(rendered, row, kind))
            return self.cache[key][1]
        issues = [issue_of(tuple(files)) for files in row.content.get("files", [])]
        if not issues or any(i is None for i in issues):
            raise ContentError(row.key, Text(N_("the content files of the days it catches up on are gone")))
        common = set.intersection(*(set(i.variants) for i in issues))
        language = variant_for(row.language, sorted(common), chain)
        key = (row.key + "\0" + ",".join(row.content.get("slugs", [])), language)
        if key not in self.cache:
            days = [i.variants[language] for i in issues]
            session = row.content.get("session", days[0].fields.session)
            numbers = [d.fields.day for d in days]
            if kind is MailKind.DIGEST:
                subject = session_digest_subject(config, language, session, numbers)
                intro = ""
            else:
                subject = digest_subject(config, language, session, numbers)
                intro = catch_up_intro(config, language, session)
            rendered = render_digest(config, days, row.list_name, subject=subject, intro=intro)
            self.cache[key] = (rendered, self._skeleton(rendered, row, kind))
        return self.cache[key][1]

    def _skeleton(self, rendered: RenderedMail, row: stored.Claimed, kind: MailKind) -> MailSkeleton:
        return MailSkeleton(self.newsletter.config, rendered, ListInfo(row.list_slug, row.list_name, row.key),
                            kind=kind)


async def _send(newsletter: Newsletter, worker: str, batch: int,
                connect: Callable[[], SmtpConnection] | None) -> PersonalCounts:
    config = newsletter.config
    secret = newsletter.secret()
    postmark = Postmark.from_config(config, secret)
    renderings = _Renderings(newsletter)
    counts = {"sent": 0, "deferred": 0, "failed": 0, "skipped": 0}
    conn: SmtpConnection | None = None
    relay_down = False

    def record(row: stored.Claimed, status: OutboxStatus, reply: str | None, *, message_id: str | None = None,
               retry: bool = False, relay: str | None = None) -> None:
        now = newsletter.clock()
        attempts = row.attempts + (0 if status is OutboxStatus.SKIPPED else 1)
        due = None
        if retry:
            if now - row.created_at > EXPIRY:
                status, reply = OutboxStatus.FAILED, f"{reply} (given up after {EXPIRY.days} days)"
            else:
                status, due = OutboxStatus.DEFERRED, now + min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)
        counts[status.value] = counts.get(status.value, 0) + 1
        with newsletter.store.session() as session:
            stored.record_outcome(session, row.id, status, now=now, attempts=attempts, reply=reply,
                                  message_id=message_id, next_attempt_at=due, relay=relay)

    try:
        while not relay_down:
            now = newsletter.clock()
            with newsletter.store.session() as session:
                rows = stored.claim_due(session, worker, now=now, stale=now - LEASE, limit=batch)
            if not rows:
                break
            for row in rows:
                if relay_down:
                    record(row, OutboxStatus.DEFERRED, "the relay could not be used", retry=True)
                    continue
                if not row.mailable:
                    record(row, OutboxStatus.SKIPPED, "skipped: no longer subscribed")
                    continue
                try:
                    skeleton = renderings.get(row)
                except NewsletterError as exc:
                    record(row, OutboxStatus.FAILED, str(exc))
                    continue
                links = Links(config, row.list_slug, now=newsletter.clock(), secret=secret)
                unsub, prefs, mailto = links.for_row(_LinkRow(row.subscriber_key, row.language))
                message_id = message_id_for(secret, row.key, row.id, message_id_domain(config))
                recipient = Recipient(row.email, row.name, message_id, unsub, prefs, mailto)
                data = postmark.sign(skeleton.render(recipient, date=format_datetime(newsletter.clock())))
                sender = postmark.return_path(MailKind(row.kind), row.subscriber_key)
                try:
                    if conn is None or not conn.usable:
                        conn = await (connect or personal_connector(config, clock=newsletter.clock))()
                except DeliveryError as exc:
                    relay_down = True
                    record(row, OutboxStatus.DEFERRED, str(exc), retry=True)
                    continue
                reply = await conn.deliver(sender, row.email, data, crlf=True)
                verdict = classify_reply(reply)
                if verdict is Verdict.SENT:
                    record(row, OutboxStatus.SENT, reply.describe(), message_id=message_id, relay=conn.relay)
                elif verdict in (Verdict.DEFER, Verdict.DEFER_RECONNECT, Verdict.RELAY):
                    relay_down = verdict is Verdict.RELAY
                    record(row, OutboxStatus.DEFERRED, reply.describe(), message_id=message_id, retry=True,
                           relay=conn.relay)
                    if verdict is Verdict.DEFER_RECONNECT:
                        await conn.close()
                        conn = None
                else:
                    record(row, OutboxStatus.FAILED, reply.describe(), message_id=message_id, relay=conn.relay)
    finally:
        if conn is not None:
            await conn.close()
    return PersonalCounts(**counts)


class _LinkRow(NamedTuple):
    """What `Links.for_row` reads of a row."""

    key: str
    language: str


def send_personal_mail(newsletter: Newsletter, *, worker: str = "personal-mail", batch: int = 100,
                       connect: Callable[[], SmtpConnection] | None = None) -> PersonalCounts:
    """Send the welcome and catch-up mails that are due, on an event loop of its own; returns
    what it did. A relay that cannot be used leaves the rest deferred, to be tried later."""
    return asyncio.run(_send(newsletter, worker, batch, connect))
