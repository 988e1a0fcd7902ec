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

The counts are not read afresh on every view: counting a campaign's ledger reads all its rows,
and the lists' subscriptions all of theirs. A campaign that has ended (finished or cancelled,
with no row still open) keeps its counts for good, until its status changes (a retry); the
counts of a campaign still moving, and the lists' counts, are reused for `FRESH_FOR` (by the
installation's clock) and then read again, and the dashboard says when the oldest of those it
shows was read (`Dashboard.counted_at`). The bounce reports are read on every view, of the
campaigns shown only.
"""

from __future__ import annotations

import enum
import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..installation import Newsletter
from ..people import lists as people_lists
from ..sending import campaigns
from ..sending.preflight import CheckResult, TxtLookup, run_checks
from ..statuses import CampaignStatus, SubscriptionStatus
from ..store import Campaign
from ..store import people as people_store
from ..store import tallies as tallies_store
from ..store.ledger import Counts
from ..texts import Text

__all__ = [
    "BOUNCE_LIMIT",
    "BOUNCE_WARN",
    "COMPLAINT_LIMIT",
    "COMPLAINT_WARN",
    "FRESH_FOR",
    "MIN_SENT",
    "RECENT",
    "CampaignLine",
    "Dashboard",
    "Flag",
    "ListCounts",
    "Rate",
    "dashboard",
    "list_counts",
    "preflight",
    "rate",
]

COMPLAINT_WARN = 0.001
COMPLAINT_LIMIT = 0.003
BOUNCE_WARN = 0.02
BOUNCE_LIMIT = 0.05
MIN_SENT = 100
#: Campaigns shown.
RECENT = 10
#: How long the lists' counts and a moving campaign's counts are reused before they are read again.
FRESH_FOR = timedelta(seconds=3)
#: A campaign in one of these, with no row open, has counts that no longer change.
_ENDED = (CampaignStatus.FINISHED, CampaignStatus.CANCELLED)
#: The subscription statuses a list's line shows, in `ListCounts`' order.
_LIST_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING, SubscriptionStatus.UNSUBSCRIBED)


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
    #: `status_reason` as a Text, for the page to say in its reader's language.
    status_said: Text | None
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
    #: When the oldest counts shown that can still change (the lists', a moving campaign's) were
    #: read: the figures are those of that moment or later (an ended campaign's are final).
    counted_at: datetime


class _Tallies:
    """One installation's reusable counts. The workspace runs several units of work at once, so
    every read and write of the cache holds `lock` (a count itself is made outside it: two views
    may both count, and the later one's answer stays)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: Campaign id -> (its state when counted, reused until (None: for good), the counts,
        #: when they were read).
        self.campaigns: dict[int, tuple[tuple, datetime | None, Counts, datetime]] = {}
        #: (reused until, {list id: {status: n}}, when they were read).
        self.lists: tuple[datetime, dict, datetime] | None = None

    def list_counts(self, session, now: datetime) -> tuple[dict, datetime]:
        """({list id: {status: n}}, when they were read)."""
        with self.lock:
            if self.lists is not None and now < self.lists[0]:
                return self.lists[1], self.lists[2]
        counts = people_store.subscription_counts(session)
        with self.lock:
            self.lists = (now + FRESH_FOR, counts, now)
        return counts, now

    def campaign_counts(self, session, campaign: Campaign, now: datetime) -> tuple[Counts, datetime | None]:
        """(The campaign's counts, when they were read; None: they are final.)"""
        state = (campaign.status, campaign.status_reason, campaign.finished_at, campaign.ledger_until)
        with self.lock:
            held = self.campaigns.get(campaign.id)
        if held is not None and held[0] == state and (held[1] is None or now < held[1]):
            return held[2], (None if held[1] is None else held[3])
        counts = campaigns.ledger_counts(session, campaign)
        until = None if campaign.status in _ENDED and counts.open == 0 else now + FRESH_FOR
        with self.lock:
            self.campaigns[campaign.id] = (state, until, counts, now)
        return counts, (None if until is None else now)


_TALLIES: weakref.WeakKeyDictionary[Newsletter, _Tallies] = weakref.WeakKeyDictionary()
_TALLIES_LOCK = threading.Lock()


def _tallies(newsletter: Newsletter) -> _Tallies:
    with _TALLIES_LOCK:
        found = _TALLIES.get(newsletter)
        if found is None:
            found = _TALLIES[newsletter] = _Tallies()
        return found


def list_counts(newsletter: Newsletter, session) -> tuple[dict[int, dict[SubscriptionStatus, int]], datetime]:
    """Every list's subscriptions per status, {list id: {status: n}}, read in `session` at most
    once every `FRESH_FOR` (the dashboard's and the lists page's counts), and when they were read."""
    return _tallies(newsletter).list_counts(session, newsletter.clock())


def dashboard(newsletter: Newsletter) -> Dashboard:
    """Lists with their counts and the RECENT newest campaigns with their outcomes and rates
    (counts reused as the module's docstring says)."""
    now = newsletter.clock()
    tallies = _tallies(newsletter)
    with newsletter.store.reading() as session:
        counts, counted_at = tallies.list_counts(session, now)
        found = tuple(ListCounts(m.slug, m.name, *(counts.get(m.id, {}).get(s, 0) for s in _LIST_STATUSES))
                      for m in people_lists.all_lists(session))
        recent = [(c, *tallies.campaign_counts(session, c, now))
                  for c in tallies_store.recent_campaigns(session, RECENT)]
        reports = tallies_store.reports_of(session, [c.id for c, _, _ in recent])
    counted_at = min([counted_at, *(at for _, _, at in recent if at is not None)])
    lines = []
    for c, n, _ in recent:
        b = reports.get(c.id, tallies_store.CampaignReports())
        lines.append(CampaignLine(
            c.slug, c.mailing_list.slug, c.subject, c.status, c.status_reason, campaigns.status_said(c), c.created_at,
            c.finished_at, n.sent,
            n.failed, n.skipped, n.open,
            rate(b.hard, n.sent, BOUNCE_WARN, BOUNCE_LIMIT),
            rate(b.complaint, n.sent, COMPLAINT_WARN, COMPLAINT_LIMIT)))
    order = [Flag.OK, Flag.TOO_FEW, Flag.WARN, Flag.LIMIT]
    flags = [r.flag for line in lines for r in (line.bounces, line.complaints)]
    worst = max(flags, key=order.index) if flags else Flag.OK
    return Dashboard(found, tuple(lines), worst, counted_at)


def preflight(newsletter: Newsletter, *, lookup: TxtLookup | None = None) -> list[CheckResult]:
    """The pre-flight check (SPF, DKIM, DMARC, the one-click endpoint, the relay), as
    `newsletter check` runs it without content files. Blocking and slow (DNS, HTTP, SMTP):
    call it from a worker thread."""
    return [r for r in run_checks(newsletter.config, lookup=lookup) if r.name != "lint"]
