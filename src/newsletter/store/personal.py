"""The statements of welcome and catch-up mail (`personal_mail` table), and the reads that
plan them: recent confirmations, a list's daily campaigns, who got which.

Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite has one writer at a time); a row
is queued once per (person, key). Nothing here decides anything or commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from ..statuses import CampaignStatus, DeliveryMode, OutboxStatus, SubscriberStatus, SubscriptionStatus
from .models import Campaign, DeliveryChoice, MailingList, OutboxRow, PersonalMail, Subscriber, Subscription

__all__ = ["Confirmed", "DailyCampaign", "Claimed", "delivery_digest", "recent_confirmations", "daily_campaigns", "campaigns_received",
           "queue_mail", "claim_due", "record_outcome", "count_by_kind"]

_P = PersonalMail


class Confirmed(NamedTuple):
    """A subscription confirmed lately, with its person and list."""

    subscriber_id: int
    language: str
    list_id: int
    list_slug: str
    list_languages: tuple[str, ...]
    confirmed_at: datetime


class DailyCampaign(NamedTuple):
    id: int
    slug: str
    status: CampaignStatus
    source: dict
    started_at: datetime | None
    finished_at: datetime | None


class Claimed(NamedTuple):
    """A claimed row, with the person and the list as they are now."""

    id: int
    kind: str
    key: str
    content: dict
    attempts: int
    created_at: datetime
    subscriber_key: str
    email: str
    name: str
    language: str
    list_slug: str
    list_name: str
    list_languages: tuple[str, ...]
    #: Whether they may still be mailed (active person, active subscription).
    mailable: bool


def delivery_digest(session: Session, subscriber_id: int, list_id: int) -> bool:
    """Whether this person takes this list's daily summaries as a digest."""
    return session.scalar(select(DeliveryChoice.delivery).where(
        DeliveryChoice.subscriber_id == subscriber_id, DeliveryChoice.list_id == list_id)) is DeliveryMode.DIGEST


def recent_confirmations(session: Session, *, since: datetime, until: datetime) -> list[Confirmed]:
    """Active subscriptions of active people confirmed in (since, until], oldest first."""
    rows = session.execute(
        select(Subscriber.id, Subscriber.language, MailingList.id, MailingList.slug, MailingList.languages,
               Subscription.confirmed_at)
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.status == SubscriptionStatus.ACTIVE, Subscriber.status == SubscriberStatus.ACTIVE,
               Subscription.confirmed_at > since, Subscription.confirmed_at <= until)
        .order_by(Subscription.confirmed_at, Subscriber.id))
    return [Confirmed(sid, lang, lid, slug, tuple(langs or ()), at) for sid, lang, lid, slug, langs, at in rows]


def daily_campaigns(session: Session, list_id: int, *, kind: str) -> list[DailyCampaign]:
    """The list's campaigns of `kind` (the content's kind, e.g. daily-summary) not cancelled, oldest first."""
    rows = session.execute(
        select(Campaign.id, Campaign.slug, Campaign.status, Campaign.source, Campaign.started_at, Campaign.finished_at)
        .where(Campaign.list_id == list_id, Campaign.kind == kind, Campaign.status != CampaignStatus.CANCELLED)
        .order_by(Campaign.created_at, Campaign.id))
    return [DailyCampaign(*row) for row in rows]


def campaigns_received(session: Session, subscriber_id: int, campaign_ids: Sequence[int]) -> set[int]:
    """Which of these campaigns have a row (of any status) for this person."""
    if not campaign_ids:
        return set()
    return set(session.scalars(select(OutboxRow.campaign_id).where(
        OutboxRow.subscriber_id == subscriber_id, OutboxRow.campaign_id.in_(list(campaign_ids)))))


def queue_mail(session: Session, rows: Iterable[dict[str, Any]], *, now: datetime) -> int:
    """Queue rows (subscriber_id, list_id, kind, key, content) not queued before for that
    person and key; returns how many were added."""
    added = 0
    for row in rows:
        exists = session.scalar(select(_P.id).where(_P.subscriber_id == row["subscriber_id"], _P.key == row["key"]))
        if exists is None:
            session.add(_P(**row, status=OutboxStatus.QUEUED, attempts=0, created_at=now))
            added += 1
    session.flush()
    return added


def claim_due(session: Session, worker: str, *, now: datetime, stale: datetime, limit: int) -> list[Claimed]:
    """Claim up to `limit` rows that are due: queued, deferred and due again, or claimed
    before `stale` by a worker presumed dead; oldest first."""
    due = or_(_P.status == OutboxStatus.QUEUED,
              (_P.status == OutboxStatus.DEFERRED) & (_P.next_attempt_at <= now),
              (_P.status == OutboxStatus.SENDING) & (_P.claimed_at < stale))
    query = (
        select(_P.id, _P.kind, _P.key, _P.content, _P.attempts, _P.created_at, Subscriber.key, Subscriber.email,
               Subscriber.name, Subscriber.language, MailingList.slug, MailingList.name, MailingList.languages,
               Subscriber.status, Subscription.status)
        .join(Subscriber, Subscriber.id == _P.subscriber_id)
        .join(MailingList, MailingList.id == _P.list_id)
        .join(Subscription, (Subscription.subscriber_id == _P.subscriber_id) & (Subscription.list_id == _P.list_id),
              isouter=True)
        .where(due).order_by(_P.id).limit(limit)
        .with_for_update(skip_locked=True, of=_P)
    )
    rows = session.execute(query).all()
    if rows:
        session.execute(update(_P).where(_P.id.in_([r[0] for r in rows]))
                        .values(status=OutboxStatus.SENDING, claimed_by=worker, claimed_at=now)
                        .execution_options(synchronize_session=False))
    return [Claimed(r[0], r[1], r[2], r[3] or {}, r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], tuple(r[12] or ()),
                    r[13] is SubscriberStatus.ACTIVE and r[14] is SubscriptionStatus.ACTIVE) for r in rows]


def record_outcome(session: Session, row_id: int, status: OutboxStatus, *, now: datetime, attempts: int,
                   reply: str | None, message_id: str | None = None, next_attempt_at: datetime | None = None,
                   relay: str | None = None) -> None:
    """Write what became of a claimed row (and the relay that answered, when one did), and
    release its claim."""
    values: dict[str, Any] = dict(status=status, attempts=attempts, last_reply=reply, next_attempt_at=next_attempt_at,
                                  claimed_by=None, claimed_at=None)
    if message_id is not None:
        values["message_id"] = message_id
    if relay is not None:
        values["relay"] = relay
    if status is OutboxStatus.SENT:
        values["sent_at"] = now
    session.execute(update(_P).where(_P.id == row_id).values(**values).execution_options(synchronize_session=False))


def count_by_kind(session: Session) -> dict[tuple[str, str], int]:
    """(kind, status) -> rows."""
    rows = session.execute(select(_P.kind, _P.status, func.count()).group_by(_P.kind, _P.status))
    return {(kind, OutboxStatus(status).value): n for kind, status, n in rows}
