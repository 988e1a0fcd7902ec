"""Following a send from the workspace: its progress (what the ledger says now, the rate over
the last minute and the time left), and its report: who did not get it and why, and the
bounces and complaints it brought back, by person and language. Read from the store, so any
process (the one sending or another) answers the same."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from ..sending.campaigns import get_campaign, status_said
from ..statuses import CampaignStatus
from ..store import editorial as stored
from ..store.editorial import BounceLine, ReaderLine
from ..store.ledger import Counts, count_rows, counts_by_relay
from ..texts import Text

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["SendProgress", "IssueReport", "progress", "report", "RATE_WINDOW"]

#: The rate is measured over this much of the recent past.
RATE_WINDOW = timedelta(seconds=60)


class SendProgress(NamedTuple):
    """Where a campaign stands now; `rate` in messages a second over RATE_WINDOW, `seconds_left`
    None when nothing is moving."""

    slug: str
    status: CampaignStatus
    reason: str | None
    counts: Counts
    rate: float
    seconds_left: float | None
    at: datetime
    #: `reason` as a Text, for a face to say in its reader's language.
    said: Text | None = None

    @property
    def done(self) -> bool:
        return self.status in (CampaignStatus.FINISHED, CampaignStatus.CANCELLED)

    def as_json(self) -> dict[str, Any]:
        """The progress as plain values (what the progress page polls)."""
        return {"slug": self.slug, "status": self.status.value, "reason": self.reason, "done": self.done,
                **self.counts._asdict(), "total": self.counts.total, "rate": round(self.rate, 2),
                "seconds_left": None if self.seconds_left is None else round(self.seconds_left)}


class IssueReport(NamedTuple):
    slug: str
    status: CampaignStatus
    counts: Counts
    #: language sent -> row status -> rows
    by_language: dict[str, dict[str, int]]
    not_reached: list[ReaderLine]
    bounces: list[BounceLine]
    #: relay -> row status -> rows
    by_relay: dict[str, dict[str, int]]


def progress(newsletter: Newsletter, slug: str) -> SendProgress:
    """The campaign's counts, rate and time left now. Raises UnknownCampaign."""
    now = newsletter.clock()
    with newsletter.store.reading() as session:
        campaign = get_campaign(session, slug)
        counts = count_rows(session, campaign.id)
        recent = stored.sent_since(session, campaign.id, now - RATE_WINDOW)
        started = campaign.started_at or now
        window = max(1.0, min(RATE_WINDOW.total_seconds(), (now - started).total_seconds()))
        rate = recent / window
        left = counts.open / rate if rate > 0 and counts.open else (0.0 if not counts.open else None)
        return SendProgress(slug, campaign.status, campaign.status_reason, counts, rate, left, now,
                            status_said(campaign))


def report(newsletter: Newsletter, slug: str) -> IssueReport:
    """Who did not get the campaign and why, its bounces and complaints, by person and language.
    Raises UnknownCampaign."""
    with newsletter.store.reading() as session:
        campaign = get_campaign(session, slug)
        return IssueReport(slug, campaign.status, count_rows(session, campaign.id),
                           stored.counts_by_language(session, campaign.id),
                           stored.readers_not_reached(session, campaign.id),
                           stored.campaign_bounces(session, campaign.id),
                           counts_by_relay(session, campaign.id))
