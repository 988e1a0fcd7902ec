"""The dashboard: lists with their counts, recent campaigns with their outcomes and their bounce
and complaint rates flagged against the mailbox providers' thresholds, and the pre-flight check.

Thresholds (rates are of the messages a campaign sent):

- complaints: Gmail's and Yahoo's bulk-sender rules (February 2024) ask senders to stay below
  0.3% spam complaints and Google advises keeping under 0.1%: WARN above 0.1%, LIMIT at 0.3%;
- hard bounces: neither publishes a figure; 2% is the rate deliverability guides warn at and
  5% the rate at which providers are widely reported to start throttling: WARN above 2%,
  LIMIT at 5%.

A rate is judged only once a campaign has sent `MIN_SENT` messages (a few bounces of a test
list say nothing).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from ..installation import Newsletter
from ..people import lists as people_lists
from ..sending import campaigns
from ..sending.preflight import CheckResult, TxtLookup, run_checks
from ..statuses import CampaignStatus
from ..store import bounces as bounces_store
from ..store import campaigns as campaigns_store

__all__ = ["Flag", "Rate", "CampaignLine", "ListCounts", "Dashboard", "dashboard", "preflight", "rate",
           "COMPLAINT_WARN", "COMPLAINT_LIMIT", "BOUNCE_WARN", "BOUNCE_LIMIT", "MIN_SENT", "RECENT"]

COMPLAINT_WARN = 0.001
COMPLAINT_LIMIT = 0.003
BOUNCE_WARN = 0.02
BOUNCE_LIMIT = 0.05
MIN_SENT = 100
#: Campaigns shown.
RECENT = 10


class Flag(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    #: At or over the providers' limit: mail is likely to be throttled or put in spam.
    LIMIT = "limit"
    #: Too few messages sent to judge.
    TOO_FEW = "too-few"


@dataclass(frozen=True)
class Rate:
    count: int
    sent: int
    flag: Flag

    @property
    def percent(self) -> float:
        return 100.0 * self.count / self.sent if self.sent else 0.0


def rate(count: int, sent: int, warn: float, limit: float) -> Rate:
    """`count` out of `sent`, flagged against `warn` and `limit` (fractions)."""
    if sent < MIN_SENT:
        return Rate(count, sent, Flag.TOO_FEW)
    share = count / sent
    flag = Flag.LIMIT if share >= limit else Flag.WARN if share > warn else Flag.OK
    return Rate(count, sent, flag)


@dataclass(frozen=True)
class CampaignLine:
    slug: str
    list_slug: str
    subject: str
    status: CampaignStatus
    status_reason: str | None
    created_at: datetime
    finished_at: datetime | None
    sent: int
    failed: int
    skipped: int
    open: int
    bounces: Rate
    complaints: Rate


@dataclass(frozen=True)
class ListCounts:
    slug: str
    name: str
    active: int
    pending: int
    unsubscribed: int


@dataclass(frozen=True)
class Dashboard:
    lists: tuple[ListCounts, ...]
    campaigns: tuple[CampaignLine, ...]
    #: The worst flag among the campaigns shown, for the page's summary.
    worst: Flag


def dashboard(newsletter: Newsletter) -> Dashboard:
    """Lists with their counts and the RECENT newest campaigns with their outcomes and rates."""
    with newsletter.store.reading() as session:
        found = tuple(ListCounts(s.slug, s.name, s.counts.get("active", 0), s.counts.get("pending", 0),
                                 s.counts.get("unsubscribed", 0)) for s in people_lists.summarise_lists(session))
        recent = [campaigns.summarise_campaign(session, c) for c in campaigns_store.all_campaigns(session)[:RECENT]]
        by_slug = {b.slug: b for b in bounces_store.count_bounces(session) if b.slug}
    lines = []
    for c in recent:
        b = by_slug.get(c.slug)
        sent = c.counts.sent
        lines.append(CampaignLine(
            c.slug, c.list_slug, c.subject, c.status, c.status_reason, c.created_at, c.finished_at, sent,
            c.counts.failed, c.counts.skipped, c.counts.open,
            rate(b.hard if b else 0, sent, BOUNCE_WARN, BOUNCE_LIMIT),
            rate(b.complaint if b else 0, sent, COMPLAINT_WARN, COMPLAINT_LIMIT)))
    order = [Flag.OK, Flag.TOO_FEW, Flag.WARN, Flag.LIMIT]
    flags = [r.flag for line in lines for r in (line.bounces, line.complaints)]
    worst = max(flags, key=order.index) if flags else Flag.OK
    return Dashboard(found, tuple(lines), worst)


def preflight(newsletter: Newsletter, *, lookup: TxtLookup | None = None) -> list[CheckResult]:
    """The pre-flight check (SPF, DKIM, DMARC, the one-click endpoint, the relay), as
    `newsletter check` runs it without content files. Blocking and slow (DNS, HTTP, SMTP):
    call it from a worker thread."""
    return [r for r in run_checks(newsletter.config, lookup=lookup) if r.name != "lint"]
