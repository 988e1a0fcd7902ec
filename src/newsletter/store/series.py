"""The statements of session series (`sessions`) and of readers' delivery choices
(`delivery_choices`). Nothing here decides anything or commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..statuses import DeliveryMode, SubscriberStatus, SubscriptionStatus
from .models import DeliveryChoice, MailingList, SessionSeries, Subscriber, Subscription

__all__ = ["add_session", "find_session", "sessions_of", "set_delivery", "deliveries_of", "digest_readers",
           "lists_with_digest_readers"]


def add_session(session: Session, **columns: Any) -> SessionSeries:
    """Insert a session (columns as in `SessionSeries`); returns it with its id."""
    row = SessionSeries(**columns)
    session.add(row)
    session.flush()
    return row


def find_session(session: Session, slug: str) -> SessionSeries | None:
    return session.scalar(select(SessionSeries).where(SessionSeries.slug == slug))


def sessions_of(session: Session, list_id: int | None = None) -> list[tuple[SessionSeries, str]]:
    """Sessions (of one list when given) with their list's slug, latest first."""
    query = (select(SessionSeries, MailingList.slug).join(MailingList, MailingList.id == SessionSeries.list_id)
             .order_by(SessionSeries.first_day.desc(), SessionSeries.id.desc()))
    if list_id is not None:
        query = query.where(SessionSeries.list_id == list_id)
    return [(row, slug) for row, slug in session.execute(query)]


def set_delivery(session: Session, subscriber_id: int, list_ids: Sequence[int], mode: DeliveryMode, *,
                 now: datetime) -> None:
    """Record `mode` for this person on these lists (daily is kept as no row)."""
    if not list_ids:
        return
    session.execute(delete(DeliveryChoice).where(DeliveryChoice.subscriber_id == subscriber_id,
                                                 DeliveryChoice.list_id.in_(list(list_ids))))
    if mode is not DeliveryMode.DAILY:
        session.add_all(DeliveryChoice(subscriber_id=subscriber_id, list_id=list_id, delivery=mode, chosen_at=now)
                        for list_id in list_ids)
    session.flush()


def deliveries_of(session: Session, subscriber_id: int) -> dict[int, DeliveryMode]:
    """list id -> the person's choice (lists without one: daily)."""
    return dict(session.execute(select(DeliveryChoice.list_id, DeliveryChoice.delivery)
                                .where(DeliveryChoice.subscriber_id == subscriber_id)).all())


def digest_readers(session: Session, list_id: int) -> list[int]:
    """Active subscribers of the list who take its daily summaries as a digest."""
    return list(session.scalars(
        select(Subscriber.id)
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .join(DeliveryChoice, (DeliveryChoice.subscriber_id == Subscriber.id) & (DeliveryChoice.list_id == list_id))
        .where(Subscription.list_id == list_id, Subscription.status == SubscriptionStatus.ACTIVE,
               Subscriber.status == SubscriberStatus.ACTIVE, DeliveryChoice.delivery == DeliveryMode.DIGEST)
        .order_by(Subscriber.id)))


def lists_with_digest_readers(session: Session) -> list[tuple[int, str]]:
    """(id, slug) of the lists someone takes as a digest."""
    return list(session.execute(
        select(MailingList.id, MailingList.slug).where(MailingList.id.in_(
            select(DeliveryChoice.list_id).where(DeliveryChoice.delivery == DeliveryMode.DIGEST)))
        .order_by(MailingList.id)).all())
