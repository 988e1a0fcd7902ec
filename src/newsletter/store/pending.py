"""The statements of what time does to people's records: pending sign-ups that get a reminder
or expire, and the consent log's IP addresses and user agents blanked after their retention.
Nothing here decides anything or commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from ..statuses import ConsentKind, SubscriberStatus, SubscriptionStatus
from .models import ConsentEvent, MailingList, Subscriber, Subscription

__all__ = ["Pending", "pending_before", "reminders_sent", "forget_subscriptions", "blank_origins"]


class Pending(NamedTuple):
    subscriber_id: int
    list_id: int
    list_slug: str
    created_at: datetime


def pending_before(session: Session, before: datetime, *, limit: int = 1000) -> list[Pending]:
    """Pending subscriptions of people who may be mailed, made before `before`, oldest first."""
    rows = session.execute(
        select(Subscription.subscriber_id, Subscription.list_id, MailingList.slug, Subscription.created_at)
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.status == SubscriptionStatus.PENDING, Subscription.created_at <= before,
               Subscriber.status == SubscriberStatus.ACTIVE)
        .order_by(Subscription.created_at, Subscription.subscriber_id).limit(limit))
    return [Pending(*row) for row in rows]


def reminders_sent(session: Session, subscriber_ids: Sequence[int], prefix: str) -> dict[int, datetime]:
    """subscriber id -> when the consent log last shows them a CONFIRMATION_SENT whose note
    starts with `prefix` (the reminders), for those it does."""
    if not subscriber_ids:
        return {}
    return dict(session.execute(
        select(ConsentEvent.subscriber_id, func.max(ConsentEvent.at))
        .where(ConsentEvent.kind == ConsentKind.CONFIRMATION_SENT, ConsentEvent.note.startswith(prefix),
               ConsentEvent.subscriber_id.in_(sorted(set(subscriber_ids))))
        .group_by(ConsentEvent.subscriber_id)).all())


def forget_subscriptions(session: Session, pairs: Iterable[tuple[int, int]]) -> int:
    """Delete these (subscriber, list) subscriptions if they are still pending; returns how many."""
    total = 0
    for subscriber_id, list_id in pairs:
        total += session.execute(delete(Subscription).where(
            Subscription.subscriber_id == subscriber_id, Subscription.list_id == list_id,
            Subscription.status == SubscriptionStatus.PENDING)).rowcount
    return total


def blank_origins(session: Session, before: datetime) -> int:
    """Blank the IP address and user agent of consent-log lines older than `before` (the one
    UPDATE the log's trigger lets through); returns how many lines changed."""
    result = session.execute(
        update(ConsentEvent)
        .where(ConsentEvent.at < before, or_(ConsentEvent.ip.is_not(None), ConsentEvent.user_agent.is_not(None)))
        .values(ip=None, user_agent=None)
        .execution_options(synchronize_session=False))
    return result.rowcount
