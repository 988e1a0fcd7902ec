"""The statements of outgoing webhooks: endpoints, the sources of events, the delivery queue
and its attempts. What is sent when is `hooks.delivery`'s business."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from ..statuses import CampaignStatus, ConsentKind, DeliveryStatus
from .models import (
    BounceEvent,
    Campaign,
    ConsentEvent,
    MailingList,
    Subscriber,
    WebhookAttempt,
    WebhookCursor,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = ["Claimed", "DeliveryLine", "find_endpoint", "all_endpoints", "add_endpoint", "delete_endpoint",
           "cursor", "set_cursor", "consent_after", "bounces_after", "finished_after", "existing_keys",
           "add_deliveries", "claim_due", "record_attempt", "delivery_lines", "attempts_of", "requeue_failed"]


class Claimed(NamedTuple):
    """A delivery a process holds to send now."""

    id: int
    url: str
    secret: str
    message_id: str
    body: str
    attempts: int


class DeliveryLine(NamedTuple):
    id: int
    endpoint: str
    event_type: str
    message_id: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None


def find_endpoint(session: Session, name: str) -> WebhookEndpoint | None:
    return session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.name == name))


def all_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.name)))


def add_endpoint(session: Session, *, name: str, url: str, secret: str, events: list[str],
                 now: datetime) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(name=name, url=url, secret=secret, events=events, created_at=now)
    session.add(endpoint)
    session.flush()
    return endpoint


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    session.delete(endpoint)
    session.flush()


def cursor(session: Session, source: str) -> int:
    """How far `source` has been read (0 at first), the row locked until the transaction ends
    (PostgreSQL), so that two producers do not read the same events."""
    row = session.scalar(select(WebhookCursor).where(WebhookCursor.source == source).with_for_update())
    if row is None:
        session.add(WebhookCursor(source=source, last=0))
        session.flush()
        return 0
    return row.last


def set_cursor(session: Session, source: str, last: int) -> None:
    session.execute(update(WebhookCursor).where(WebhookCursor.source == source).values(last=last))


def consent_after(session: Session, after_id: int, kinds: Collection[ConsentKind], *, limit: int) -> list[tuple]:
    """(id, at, kind, channel, email, list slug, source) of consent events of `kinds` after
    `after_id`, oldest first; and the last id looked at comes from the caller's max."""
    query = (select(ConsentEvent.id, ConsentEvent.at, ConsentEvent.kind, ConsentEvent.channel, Subscriber.email,
                    MailingList.slug, ConsentEvent.source)
             .join(Subscriber, Subscriber.id == ConsentEvent.subscriber_id)
             .outerjoin(MailingList, MailingList.id == ConsentEvent.list_id)
             .where(ConsentEvent.id > after_id, ConsentEvent.kind.in_(list(kinds)))
             .order_by(ConsentEvent.id).limit(limit))
    return [tuple(r) for r in session.execute(query)]


def bounces_after(session: Session, after_id: int, *, limit: int) -> list[tuple]:
    """(id, at, kind, status, reason, outcome, email or None, campaign slug or None, source,
    provider or None) after `after_id`."""
    query = (select(BounceEvent.id, BounceEvent.at, BounceEvent.kind, BounceEvent.status, BounceEvent.reason,
                    BounceEvent.outcome, Subscriber.email, Campaign.slug, BounceEvent.source, BounceEvent.provider)
             .outerjoin(Subscriber, Subscriber.id == BounceEvent.subscriber_id)
             .outerjoin(Campaign, Campaign.id == BounceEvent.campaign_id)
             .where(BounceEvent.id > after_id).order_by(BounceEvent.id).limit(limit))
    return [tuple(r) for r in session.execute(query)]


def finished_after(session: Session, after: datetime, *, limit: int) -> list[tuple]:
    """(id, slug, list slug, subject, finished_at) of campaigns finished after `after`, in that order."""
    query = (select(Campaign.id, Campaign.slug, MailingList.slug, Campaign.subject, Campaign.finished_at)
             .join(MailingList, MailingList.id == Campaign.list_id)
             .where(Campaign.status == CampaignStatus.FINISHED, Campaign.finished_at > after)
             .order_by(Campaign.finished_at, Campaign.id).limit(limit))
    return [tuple(r) for r in session.execute(query)]


def existing_keys(session: Session, keys: Sequence[str]) -> set[tuple[int, str]]:
    """(endpoint id, event key) of the deliveries already queued for these keys."""
    if not keys:
        return set()
    query = select(WebhookDelivery.endpoint_id, WebhookDelivery.event_key).where(
        WebhookDelivery.event_key.in_(list(set(keys))))
    return {(e, k) for e, k in session.execute(query)}


def add_deliveries(session: Session, rows: Sequence[dict]) -> None:
    """Queue deliveries: dicts of endpoint_id, event_key, event_type, message_id, body, created_at."""
    for row in rows:
        session.add(WebhookDelivery(**row, status=DeliveryStatus.PENDING, attempts=0,
                                    next_attempt_at=row["created_at"]))
    session.flush()


def claim_due(session: Session, now: datetime, until: datetime, *, limit: int) -> list[Claimed]:
    """Hold (until `until`) and return up to `limit` deliveries due now that nobody holds."""
    due = (select(WebhookDelivery.id)
           .where(WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= now,
                  or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now))
           .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)
           .with_for_update(skip_locked=True))
    ids = list(session.scalars(due))
    if not ids:
        return []
    session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(claimed_until=until))
    query = (select(WebhookDelivery.id, WebhookEndpoint.url, WebhookEndpoint.secret, WebhookDelivery.message_id,
                    WebhookDelivery.body, WebhookDelivery.attempts)
             .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
             .where(WebhookDelivery.id.in_(ids)).order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id))
    return [Claimed(*r) for r in session.execute(query)]


def record_attempt(session: Session, delivery_id: int, *, at: datetime, status_code: int | None, error: str | None,
                   duration_ms: int, status: DeliveryStatus, next_attempt_at: datetime | None) -> None:
    """Log one attempt and set where the delivery stands (its hold released)."""
    session.add(WebhookAttempt(delivery_id=delivery_id, at=at, status_code=status_code, error=error,
                               duration_ms=duration_ms))
    values: dict = {"attempts": WebhookDelivery.attempts + 1, "status": status, "last_status_code": status_code,
                    "last_error": error, "claimed_until": None}
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    if status is DeliveryStatus.DELIVERED:
        values["delivered_at"] = at
    session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(**values))


def delivery_lines(session: Session, *, endpoint_id: int | None = None, status: DeliveryStatus | None = None,
                   limit: int = 100) -> list[DeliveryLine]:
    """Deliveries, newest first."""
    query = (select(WebhookDelivery.id, WebhookEndpoint.name, WebhookDelivery.event_type, WebhookDelivery.message_id,
                    WebhookDelivery.status, WebhookDelivery.attempts, WebhookDelivery.created_at,
                    WebhookDelivery.next_attempt_at, WebhookDelivery.last_status_code, WebhookDelivery.last_error,
                    WebhookDelivery.delivered_at)
             .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
             .order_by(WebhookDelivery.id.desc()).limit(limit))
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return [DeliveryLine(*r) for r in session.execute(query)]


def attempts_of(session: Session, delivery_id: int) -> list[tuple]:
    """(at, status code, error, duration ms) of each attempt of a delivery, oldest first."""
    query = (select(WebhookAttempt.at, WebhookAttempt.status_code, WebhookAttempt.error, WebhookAttempt.duration_ms)
             .where(WebhookAttempt.delivery_id == delivery_id).order_by(WebhookAttempt.id))
    return [tuple(r) for r in session.execute(query)]


def requeue_failed(session: Session, *, endpoint_id: int | None, now: datetime) -> int:
    """Failed deliveries (of the endpoint) pending again, due now; returns how many."""
    condition = WebhookDelivery.status == DeliveryStatus.FAILED
    if endpoint_id is not None:
        condition = and_(condition, WebhookDelivery.endpoint_id == endpoint_id)
    count = session.scalar(select(func.count()).select_from(WebhookDelivery).where(condition)) or 0
    session.execute(update(WebhookDelivery).where(condition).values(status=DeliveryStatus.PENDING, next_attempt_at=now,
                                                                    attempts=0))
    return count
