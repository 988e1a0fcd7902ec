"""Campaigns: one issue sent to one list, identified by the content's slug.

    draft ──start──► sending ──(no open rows)──► finished ──retry──► sending
                      │  ▲
               pause  │  │ resume / start again
                      ▼  │
                     paused            any but finished ──cancel──► cancelled

Each transition is one function over the caller's session. Starting a campaign creates its
ledger (`outbox.create_rows`) in the same transaction, so there is never a campaign half
queued; starting it again resumes it — it never makes a second copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import CampaignStateError, UnknownCampaign
from ..people.lists import get_list
from ..statuses import CampaignStatus, OutboxStatus
from ..store import Campaign
from ..store import ledger as outbox
from ..store.ledger import Counts

__all__ = [
    "CampaignSummary",
    "DEFAULT_EXPIRY",
    "find_campaign",
    "get_campaign",
    "start_campaign",
    "join_campaign",
    "pause_campaign",
    "resume_campaign",
    "cancel_campaign",
    "retry_campaign",
    "finish_if_done",
    "expires_at",
    "summarise_campaign",
    "summarise_campaigns",
]

#: How long a deferred message is retried before it counts as failed (a daily summary is stale after a day).
DEFAULT_EXPIRY = timedelta(hours=24)


class CampaignSummary(NamedTuple):
    slug: str
    list_slug: str
    subject: str
    status: CampaignStatus
    status_reason: str | None
    counts: Counts
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def find_campaign(session: Session, slug: str) -> Campaign | None:
    """The campaign with this slug, or None."""
    return session.scalar(select(Campaign).where(Campaign.slug == slug))


def get_campaign(session: Session, slug: str) -> Campaign:
    """The campaign with this slug; raises UnknownCampaign."""
    found = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if found is None:
        raise UnknownCampaign(slug)
    return found


def expires_at(campaign: Campaign) -> datetime:
    """When deferred rows of this campaign stop being retried and count as failed."""
    raw = (campaign.source or {}).get("expires_at")
    if raw:
        return datetime.fromisoformat(raw)
    return (campaign.started_at or campaign.created_at) + DEFAULT_EXPIRY


def start_campaign(session: Session, slug: str, list_slug: str, *, now: datetime, subject: str = "",
                   kind: str = "", source: dict[str, Any] | None = None,
                   languages: Sequence[str] | Mapping[str, str] = ("en",),
                   default_language: str = "en", expiry: timedelta = DEFAULT_EXPIRY) -> tuple[Campaign, bool]:
    """Start the campaign `slug` to `list_slug`, or resume it if it exists.

    A new campaign gets its ledger at once: one queued row per active subscriber. Returns
    (campaign, created). Raises UnknownList; CampaignStateError when the campaign exists for
    another list, is finished (use retry) or was cancelled.
    """
    mailing_list = get_list(session, list_slug)
    existing = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if existing is not None:
        if existing.list_id != mailing_list.id:
            raise CampaignStateError(slug, existing.status.value,
                                     f"it was sent to the list {existing.mailing_list.slug!r}, not {list_slug!r}; "
                                     "give this issue another slug to send it to another list")
        if existing.status is CampaignStatus.FINISHED:
            raise CampaignStateError(slug, "finished", "everyone has been mailed; "
                                     f"`newsletter campaign retry {slug}` re-sends to those it failed for")
        if existing.status is CampaignStatus.CANCELLED:
            raise CampaignStateError(slug, "cancelled", "a cancelled campaign cannot be sent again")
        if existing.status is not CampaignStatus.SENDING:
            existing.status, existing.status_reason = CampaignStatus.SENDING, None
            existing.started_at = existing.started_at or now
        return existing, False
    data = dict(source or {})
    data["expires_at"] = (now + expiry).isoformat()
    data["languages"] = dict(languages) if isinstance(languages, Mapping) else list(languages)
    campaign = Campaign(slug=slug, list_id=mailing_list.id, kind=kind, subject=subject[:300],
                        status=CampaignStatus.SENDING, source=data, created_at=now, started_at=now)
    session.add(campaign)
    session.flush()
    outbox.create_rows(session, campaign, languages=languages, default_language=default_language, now=now)
    return campaign, True


def join_campaign(session: Session, slug: str) -> Campaign:
    """A campaign another process started, for an extra worker; raises UnknownCampaign or
    CampaignStateError unless it is sending."""
    campaign = get_campaign(session, slug)
    if campaign.status is not CampaignStatus.SENDING:
        raise CampaignStateError(slug, campaign.status.value, "workers only join a campaign that is sending")
    return campaign


def pause_campaign(session: Session, slug: str, reason: str, *, only_if_sending: bool = False) -> Campaign:
    """Stop claiming new rows (workers finish what they hold). Raises CampaignStateError for a
    finished or cancelled campaign, unless `only_if_sending` (then it is left as it is)."""
    campaign = get_campaign(session, slug)
    if campaign.status in (CampaignStatus.SENDING, CampaignStatus.DRAFT):
        campaign.status, campaign.status_reason = CampaignStatus.PAUSED, reason
    elif campaign.status is not CampaignStatus.PAUSED and not only_if_sending:
        raise CampaignStateError(slug, campaign.status.value, "only a sending campaign can be paused")
    return campaign


def resume_campaign(session: Session, slug: str) -> Campaign:
    """Mark a paused campaign sending again (a sender must run: `newsletter send` or `campaign resume`)."""
    campaign = get_campaign(session, slug)
    if campaign.status in (CampaignStatus.FINISHED, CampaignStatus.CANCELLED):
        raise CampaignStateError(slug, campaign.status.value, "only a paused campaign can be resumed")
    campaign.status, campaign.status_reason = CampaignStatus.SENDING, None
    return campaign


def cancel_campaign(session: Session, slug: str, *, now: datetime) -> int:
    """Cancel: queued and deferred rows become skipped ("cancelled"); returns how many."""
    campaign = get_campaign(session, slug)
    if campaign.status is CampaignStatus.FINISHED:
        raise CampaignStateError(slug, "finished", "there is nothing left to cancel")
    campaign.status, campaign.status_reason = CampaignStatus.CANCELLED, "cancelled by an administrator"
    campaign.finished_at = now
    return outbox.skip_remaining(session, campaign.id, "skipped: the campaign was cancelled", now=now)


def retry_campaign(session: Session, slug: str, *, now: datetime, expiry: timedelta = DEFAULT_EXPIRY) -> int:
    """Queue failed and deferred rows again and give them a new expiry; returns how many.

    The campaign becomes `paused` with the reason "retry queued" until a sender resumes it.
    """
    campaign = get_campaign(session, slug)
    if campaign.status is CampaignStatus.CANCELLED:
        raise CampaignStateError(slug, "cancelled", "a cancelled campaign cannot be retried")
    count = outbox.requeue_rows(session, campaign.id, [OutboxStatus.FAILED, OutboxStatus.DEFERRED], now=now)
    if count:
        campaign.source = {**(campaign.source or {}), "expires_at": (now + expiry).isoformat()}
        if campaign.status is not CampaignStatus.SENDING:
            campaign.status = CampaignStatus.PAUSED
            campaign.status_reason = f"{count} row(s) queued again; run `newsletter campaign resume {slug}`"
        campaign.finished_at = None
    return count


def finish_if_done(session: Session, campaign: Campaign, *, now: datetime) -> bool:
    """Mark the campaign finished when no row is queued, sending or deferred; returns whether it is."""
    session.refresh(campaign)
    if campaign.status is CampaignStatus.FINISHED:
        return True
    if outbox.count_rows(session, campaign.id).open:
        return False
    if campaign.status is CampaignStatus.SENDING:
        campaign.status, campaign.status_reason, campaign.finished_at = CampaignStatus.FINISHED, None, now
        return True
    return False


def summarise_campaign(session: Session, campaign: Campaign) -> CampaignSummary:
    return CampaignSummary(campaign.slug, campaign.mailing_list.slug, campaign.subject, campaign.status,
                           campaign.status_reason, outbox.count_rows(session, campaign.id),
                           campaign.created_at, campaign.started_at, campaign.finished_at)


def summarise_campaigns(session: Session) -> list[CampaignSummary]:
    """Every campaign, newest first, with its row counts."""
    found = session.scalars(select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc()))
    return [summarise_campaign(session, c) for c in found]
