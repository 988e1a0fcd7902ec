"""The statements the running service reads to find its work among campaigns (what to carry
on); the schedules' own are in `store.schedules`. Nothing here decides anything or commits."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select, type_coerce
from sqlalchemy.orm import Session

from ..statuses import CampaignStatus, OutboxStatus
from .models import Campaign, OutboxRow, Timestamp

__all__ = ["OpenCampaign", "open_campaigns"]


class OpenCampaign(NamedTuple):
    """A campaign sending or paused, with what its ledger holds open."""

    slug: str
    status: CampaignStatus
    reason: str | None
    #: The reason as a message id and its values (`Campaign.status_said`), or None.
    said: dict | None
    queued: int
    sending: int
    deferred: int
    #: When its earliest deferred row may be tried again (None: none deferred).
    next_due: datetime | None


def open_campaigns(session: Session, statuses: Collection[CampaignStatus]) -> list[OpenCampaign]:
    """Campaigns in `statuses`, oldest first, with their open rows counted."""
    o = OutboxRow
    counts = (
        select(o.campaign_id,
               func.count().filter(o.status == OutboxStatus.QUEUED).label("queued"),
               func.count().filter(o.status == OutboxStatus.SENDING).label("sending"),
               func.count().filter(o.status == OutboxStatus.DEFERRED).label("deferred"),
               type_coerce(func.min(o.next_attempt_at).filter(o.status == OutboxStatus.DEFERRED),
                           Timestamp).label("next_due"))
        .where(o.status.in_([OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.DEFERRED]))
        .group_by(o.campaign_id)
        .subquery()
    )
    query = (
        select(Campaign.slug, Campaign.status, Campaign.status_reason, Campaign.status_said,
               counts.c.queued, counts.c.sending, counts.c.deferred, counts.c.next_due)
        .join(counts, counts.c.campaign_id == Campaign.id, isouter=True)
        .where(Campaign.status.in_(list(statuses)))
        .order_by(Campaign.created_at, Campaign.id)
    )
    return [OpenCampaign(slug, CampaignStatus(status), reason, said, queued or 0, sending or 0, deferred or 0,
                         next_due)
            for slug, status, reason, said, queued, sending, deferred, next_due in session.execute(query)]

