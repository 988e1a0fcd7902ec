"""Campaigns in the store: the named statements `sending.campaigns` and the archive run.

Each function takes the caller's session and runs in its transaction; none decides anything
(which transition is allowed is `sending.campaigns`'s business).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..statuses import CampaignStatus
from . import Campaign, MailingList

__all__ = [
    "find_campaign",
    "campaign_by_id",
    "campaign_exists",
    "reload_campaign",
    "add_campaign",
    "all_campaigns",
    "campaigns_in",
    "finished_public_campaigns",
]


def find_campaign(session: Session, slug: str) -> Campaign | None:
    """The campaign with this slug (its list loaded with it), or None."""
    return session.scalar(select(Campaign).where(Campaign.slug == slug))


def campaign_by_id(session: Session, campaign_id: int, *, fresh: bool = False) -> Campaign | None:
    """The campaign with this id, or None. `fresh`: read again from the database, not the
    session's copy (a sender polls the status other processes change)."""
    return session.get(Campaign, campaign_id, populate_existing=fresh)


def campaign_status(session: Session, campaign_id: int) -> CampaignStatus | None:
    """The campaign's status as committed now (None: no campaign has this id), in one
    driver-level statement: a sender reads it before every claim, where loading the whole
    campaign through the ORM cost ~0.5 ms."""
    conn = session.connection()
    p = "%s" if conn.dialect.name == "postgresql" else "?"
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(f"SELECT status FROM campaigns WHERE id = {p}", (campaign_id,))
        found = cursor.fetchone()
    finally:
        cursor.close()
    return None if found is None else CampaignStatus(found[0])


def campaign_exists(session: Session, campaign_id: int) -> bool:
    """Whether a campaign has this id (a bounce may name one since deleted)."""
    return session.get(Campaign, campaign_id) is not None


def reload_campaign(session: Session, campaign: Campaign, *, write_first: bool = False) -> None:
    """Read `campaign`'s columns again (what other transactions committed is seen);
    `write_first`: write this session's pending changes before, so they are not lost."""
    if write_first:
        session.flush()
    session.refresh(campaign)


def add_campaign(session: Session, *, slug: str, list_id: int, kind: str, subject: str, status: CampaignStatus,
                 source: dict[str, Any], now: datetime) -> Campaign:
    """Insert a campaign created and started at `now`; returns it with its id."""
    campaign = Campaign(slug=slug, list_id=list_id, kind=kind, subject=subject, status=status, source=source,
                        created_at=now, started_at=now)
    session.add(campaign)
    session.flush()
    return campaign


def all_campaigns(session: Session) -> list[Campaign]:
    """Every campaign, newest first."""
    return list(session.scalars(select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())))


def campaigns_in(session: Session, status: CampaignStatus) -> list[Campaign]:
    """Every campaign in `status`, oldest first."""
    return list(session.scalars(select(Campaign).where(Campaign.status == status)
                                .order_by(Campaign.created_at, Campaign.id)))


def finished_public_campaigns(session: Session, *, list_slug: str | None = None) -> list[tuple[Campaign, MailingList]]:
    """Finished campaigns of public lists (of `list_slug` only, when given), last finished first."""
    query = (
        select(Campaign, MailingList)
        .join(MailingList, MailingList.id == Campaign.list_id)
        .where(Campaign.status == CampaignStatus.FINISHED, MailingList.public.is_(True))
        .order_by(Campaign.finished_at.desc(), Campaign.id.desc())
    )
    if list_slug is not None:
        query = query.where(MailingList.slug == list_slug)
    return [(campaign, mailing_list) for campaign, mailing_list in session.execute(query)]
