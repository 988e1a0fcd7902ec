"""What the faces do with campaigns, one unit of work each: list them, show one, pause, cancel,
retry, report who did not get it. Each opens one transaction over the transitions in
`campaigns` and returns typed values; sending (and resuming) is `launch`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ..store import bounces as bounce_store
from ..store import ledger as outbox
from ..store.bounces import PersonBounce
from ..store.ledger import Counts, FailureLine
from ..texts import N_, Text
from . import campaigns
from .campaigns import CampaignSummary
from .writing import campaign_segment

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["CampaignDetail", "CampaignReport", "Cancelled", "overview", "detail", "pause", "cancel", "retry", "report"]

#: The reason a campaign paused from a face gives.
PAUSED_BY_ADMINISTRATOR = Text(N_("paused by an administrator"))


class CampaignDetail(NamedTuple):
    """One campaign, and the workers holding its rows now (worker id -> rows)."""

    summary: CampaignSummary
    holders: dict[str, int]


class CampaignReport(NamedTuple):
    """Who did not get a campaign (failed, deferred, skipped rows, by address, each with the
    relay of its last attempt and that relay's reply), its counts, the rows by relay, and the
    bounces and complaints that came back about it, by person."""

    slug: str
    counts: Counts
    failures: list[FailureLine]
    bounces: list[PersonBounce]
    #: relay -> row status -> rows: which relay took (or refused) how many of its messages.
    by_relay: dict[str, dict[str, int]]


def overview(newsletter: Newsletter) -> list[CampaignSummary]:
    """Every campaign, newest first, with its row counts."""
    with newsletter.store.reading() as session:
        return campaigns.summarise_campaigns(session)


def detail(newsletter: Newsletter, slug: str) -> CampaignDetail:
    """The campaign's state, reason, counts and holders. Raises UnknownCampaign."""
    with newsletter.store.reading() as session:
        campaign = campaigns.get_campaign(session, slug)
        return CampaignDetail(campaigns.summarise_campaign(session, campaign),
                              outbox.active_claims(session, campaign.id))


def pause(newsletter: Newsletter, slug: str, reason: str | Text = PAUSED_BY_ADMINISTRATOR) -> CampaignSummary:
    """Pause: senders stop claiming, finish what is in flight and stop. Returns the campaign
    after. Raises UnknownCampaign; CampaignStateError when it is finished or cancelled."""
    with newsletter.store.session() as session:
        campaign = campaigns.pause_campaign(session, slug, reason)
        return campaigns.summarise_campaign(session, campaign)


class Cancelled(NamedTuple):
    """What a cancel did: `skipped_now` queued or deferred rows became skipped; `counts` is the
    ledger just after (its `sending` rows are held by a running sender: each finishes the
    message it is on, and gives the rest back as skipped)."""

    slug: str
    skipped_now: int
    counts: Counts


def cancel(newsletter: Newsletter, slug: str) -> Cancelled:
    """Cancel: nobody else is mailed. Returns what became skipped, with the ledger's counts
    after. Raises UnknownCampaign; CampaignStateError when it is finished."""
    with newsletter.store.session() as session:
        campaign = campaigns.get_campaign(session, slug)
        segment = campaign_segment(session, newsletter.config, campaign) if campaign.ledger_until is not None else None
        skipped = campaigns.cancel_campaign(session, slug, now=newsletter.clock(), segment=segment)
        return Cancelled(slug, skipped, outbox.count_rows(session, campaigns.get_campaign(session, slug).id))


def retry(newsletter: Newsletter, slug: str) -> int:
    """Queue failed and deferred rows again (the campaign waits, paused, for a sender to
    resume it). Returns how many. Raises UnknownCampaign; CampaignStateError when cancelled."""
    with newsletter.store.session() as session:
        return campaigns.retry_campaign(session, slug, now=newsletter.clock())


def report(newsletter: Newsletter, slug: str) -> CampaignReport:
    """Who did not get the campaign and why, with its counts and the bounces and complaints
    that came back about it. Raises UnknownCampaign."""
    with newsletter.store.reading() as session:
        campaign = campaigns.get_campaign(session, slug)
        return CampaignReport(slug, campaigns.ledger_counts(session, campaign),
                              outbox.list_failures(session, campaign.id),
                              bounce_store.bounces_by_person(session, slug),
                              outbox.counts_by_relay(session, campaign.id))
