"""The dashboard's statements: the newest campaigns, and the bounce reports of a few campaigns.

Each is bounded by what the page shows (a limit, the ids asked for) and served by an index:
none reads the whole ledger or every bounce event. Nothing here decides what is cached.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..statuses import BounceKind
from .models import BounceEvent, Campaign

__all__ = ["CampaignReports", "recent_campaigns", "reports_of"]


class CampaignReports(NamedTuple):
    """A campaign's hard bounces and complaints."""

    hard: int = 0
    complaint: int = 0


def recent_campaigns(session: Session, limit: int) -> list[Campaign]:
    """The `limit` newest campaigns (with their list), newest first."""
    return list(session.scalars(select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())
                                .limit(limit)))


def reports_of(session: Session, campaign_ids: Collection[int]) -> dict[int, CampaignReports]:
    """Hard bounces and complaints per campaign, of the campaigns `campaign_ids` only (the
    index on bounce_events.campaign_id): {campaign id: reports}; a campaign with none is absent."""
    if not campaign_ids:
        return {}

    def count(kind: BounceKind):
        return func.sum(case((BounceEvent.kind == kind, 1), else_=0))

    rows = session.execute(select(BounceEvent.campaign_id, count(BounceKind.HARD), count(BounceKind.COMPLAINT))
                           .where(BounceEvent.campaign_id.in_(list(campaign_ids)))
                           .group_by(BounceEvent.campaign_id))
    return {cid: CampaignReports(int(hard or 0), int(complaint or 0)) for cid, hard, complaint in rows}
