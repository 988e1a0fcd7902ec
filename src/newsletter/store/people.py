"""The statements about people: subscribers, subscriptions, consent events, suppressions, lists.

Named functions over the caller's session (or its connection), each one statement or a few,
none deciding anything: the rules are `people.rules`' and the transitions `people.consent`'s.
New people are written by `store.bulk` alone. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from ..statuses import ConsentKind, SubscriberStatus, SubscriptionStatus, SuppressionReason
from .models import (
    BounceScore,
    Campaign,
    ConsentEvent,
    MailingList,
    OutboxRow,
    Subscriber,
    Subscription,
    Suppression,
    SuppressionLift,
)

__all__ = [
    "ListRow",
    "StayingRow",
    "SubscriptionLine",
    "lists_by_slug",
    "find_list",
    "all_lists",
    "ListName",
    "list_names",
    "add_list",
    "count_campaigns",
    "list_names_by_slug",
    "subscribers_on",
    "delete_subscriptions",
    "list_is_named",
    "delete_list_row",
    "subscription_counts",
    "reader_languages",
    "find_subscriber",
    "subscriber_by_key",
    "find_suppression",
    "add_suppression",
    "add_suppressions",
    "set_people_status",
    "suppressions",
    "count_suppressions",
    "people_not_active",
    "lift_suppression",
    "forget_bounce_score",
    "add_event",
    "add_events",
    "consent_events",
    "count_confirmations_sent",
    "confirmations_sent_since",
    "has_active_subscription",
    "add_subscription",
    "ids_by_key",
    "staying_subscriptions",
    "end_subscriptions",
    "repend_subscriptions",
    "update_details",
    "detach_person",
    "count_people",
    "subscription_lines",
    "subscriptions_select",
]


class ListRow(NamedTuple):
    """A list as a sign-up needs it; `closed`: archived or deleted (it takes nobody new)."""

    id: int
    slug: str
    name: str
    public: bool
    translations: dict | None = None
    closed: bool = False


class StayingRow(NamedTuple):
    """A subscription not (yet) ended, as the one-click path reads it."""

    subscriber_id: int
    list_id: int
    slug: str


class SubscriptionLine(NamedTuple):
    """One subscription as the listings and the CSV export show it."""

    email: str
    name: str
    language: str
    list: str
    status: str


# -- lists ------------------------------------------------------------------------------------

#: Built once: SQLAlchemy then only looks up its compiled form (the sign-up fast path).
_LIST_ROW = select(MailingList.id, MailingList.slug, MailingList.name, MailingList.public, MailingList.translations,
                   (MailingList.archived_at.is_not(None) | MailingList.deleted_at.is_not(None)).label("closed"))
_LISTS_BY_SLUG = _LIST_ROW.where(MailingList.slug.in_(bindparam("slugs", expanding=True)))


def lists_by_slug(session: Session, slugs: Iterable[str] | None = None) -> dict[str, ListRow]:
    """The lists with these slugs (every list when None), by slug; unknown slugs are absent.
    Archived and deleted lists are there, `closed`."""
    if slugs is None:
        rows = session.connection().execute(_LIST_ROW)
    else:
        rows = session.connection().execute(_LISTS_BY_SLUG, {"slugs": sorted(set(slugs))})
    return {row.slug: ListRow(*row) for row in rows}


def find_list(session: Session, slug: str) -> MailingList | None:
    """The list with this slug, or None."""
    return session.scalar(select(MailingList).where(MailingList.slug == slug))


def all_lists(session: Session, *, public_only: bool = False) -> list[MailingList]:
    """Every list not deleted (or every public one), by slug."""
    query = select(MailingList).where(MailingList.deleted_at.is_(None)).order_by(MailingList.slug)
    if public_only:
        query = query.where(MailingList.public.is_(True))
    return list(session.scalars(query))


class ListName(NamedTuple):
    slug: str
    name: str


_LIST_NAMES = (select(MailingList.slug, MailingList.name).where(MailingList.deleted_at.is_(None))
               .order_by(MailingList.slug))


def list_names(session: Session) -> list[ListName]:
    """Every list not deleted (archived ones too), by slug: its slug and name, for a form that picks one."""
    return [ListName(*row) for row in session.connection().execute(_LIST_NAMES)]


def add_list(session: Session, *, slug: str, name: str, description: str, languages: list[str], public: bool,
             now: datetime) -> MailingList:
    """Write a new list (the caller has checked its fields) and return it."""
    mailing_list = MailingList(slug=slug, name=name, description=description, languages=languages, public=public,
                               created_at=now)
    session.add(mailing_list)
    session.flush()
    return mailing_list


def list_names_by_slug(session: Session, slugs: Iterable[str]) -> dict[str, tuple[str, dict]]:
    """The (name, translations) of these lists, by slug."""
    wanted = sorted(set(slugs))
    if not wanted:
        return {}
    return {slug: (name, translations or {}) for slug, name, translations in session.connection().execute(
        select(MailingList.slug, MailingList.name, MailingList.translations).where(MailingList.slug.in_(wanted)))}


def count_campaigns(session: Session, list_id: int) -> int:
    """How many campaigns were made for the list."""
    return session.scalar(select(func.count()).select_from(Campaign).where(Campaign.list_id == list_id)) or 0


def subscribers_on(session: Session, list_id: int, *, exclude: SubscriptionStatus | None = None) -> list[int]:
    """The ids of the people subscribed to the list (in any status but `exclude`), in id order."""
    query = select(Subscription.subscriber_id).where(Subscription.list_id == list_id)
    if exclude is not None:
        query = query.where(Subscription.status != exclude)
    return list(session.scalars(query.order_by(Subscription.subscriber_id)))


def delete_subscriptions(session: Session, list_id: int) -> None:
    """Delete every subscription to the list."""
    session.execute(delete(Subscription).where(Subscription.list_id == list_id))


def list_is_named(session: Session, list_id: int) -> bool:
    """Whether a consent-log line or a campaign names the list (then its row must stay)."""
    return bool(count_campaigns(session, list_id) or session.scalar(
        select(func.count()).select_from(ConsentEvent).where(ConsentEvent.list_id == list_id)))


def delete_list_row(session: Session, mailing_list: MailingList) -> None:
    """Delete the list's row (nothing names it any more)."""
    session.delete(mailing_list)
    session.flush()


def subscription_counts(session: Session) -> dict[int, dict[SubscriptionStatus, int]]:
    """How many subscriptions each list has in each status: {list id: {status: n}}."""
    counts: dict[int, dict[SubscriptionStatus, int]] = {}
    for list_id, status, n in session.execute(
            select(Subscription.list_id, Subscription.status, func.count())
            .group_by(Subscription.list_id, Subscription.status)):
        counts.setdefault(list_id, {})[status] = n
    return counts


def reader_languages(session: Session, list_id: int) -> dict[str, int]:
    """How many active subscribers of the list read each language."""
    return dict(session.execute(
        select(Subscriber.language, func.count())
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(Subscription.list_id == list_id, Subscription.status == SubscriptionStatus.ACTIVE)
        .group_by(Subscriber.language)).all())


# -- people -----------------------------------------------------------------------------------

def find_subscriber(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this (normalised) address, or None."""
    return session.scalar(select(Subscriber).where(Subscriber.email == email))


def subscriber_by_key(session: Session, key: str) -> Subscriber | None:
    """The subscriber with this public key, or None."""
    return session.scalar(select(Subscriber).where(Subscriber.key == key))


def find_suppression(session: Session, address_hash: str) -> Suppression | None:
    """The suppression of this address hash, or None."""
    return session.get(Suppression, address_hash)


def add_suppression(session: Session, address_hash: str, reason: SuppressionReason, *, now: datetime,
                    note: str | None) -> None:
    """Suppress an address hash (the caller has checked it is not suppressed yet)."""
    session.add(Suppression(address_hash=address_hash, reason=reason, at=now, note=note))


def add_suppressions(session: Session, rows: Sequence[tuple[str, SuppressionReason, str | None]], *,
                     now: datetime) -> None:
    """Suppress these (address hash, reason, note), all `now` (the caller has checked none is suppressed yet)."""
    if rows:
        session.connection().execute(insert(Suppression.__table__), [
            {"address_hash": h, "reason": reason, "at": now, "note": note} for h, reason, note in rows])


def set_people_status(session: Session, statuses: Sequence[tuple[int, SubscriberStatus]], *, now: datetime) -> None:
    """Set the status of these (subscriber id, status), updated `now`."""
    if statuses:
        session.connection().execute(_SET_STATUS, [
            {"person": sid, "new_status": status, "now": now} for sid, status in statuses])


_SET_STATUS = (update(Subscriber.__table__).where(Subscriber.id == bindparam("person"))
               .values(status=bindparam("new_status"), updated_at=bindparam("now")))


def suppressions(session: Session, *, reason: SuppressionReason | None = None,
                 limit: int | None = None) -> list[Suppression]:
    """The suppressions (of this reason), newest first."""
    query = select(Suppression).order_by(Suppression.at.desc(), Suppression.address_hash)
    if reason is not None:
        query = query.where(Suppression.reason == reason)
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def count_suppressions(session: Session) -> dict[SuppressionReason, int]:
    """How many suppressions there are of each reason."""
    return dict(session.execute(select(Suppression.reason, func.count()).group_by(Suppression.reason)).all())


def people_not_active(session: Session) -> list[tuple[str, SubscriberStatus]]:
    """(address, status) of every person suppressed or blocked."""
    return list(session.execute(select(Subscriber.email, Subscriber.status).where(
        Subscriber.status != SubscriberStatus.ACTIVE)).all())


def lift_suppression(session: Session, suppression: Suppression, why: str, *, now: datetime) -> None:
    """Delete a suppression, keeping what it was, when it was lifted and why in `suppression_lifts`."""
    session.add(SuppressionLift(address_hash=suppression.address_hash, reason=suppression.reason,
                                suppressed_at=suppression.at, suppression_note=suppression.note, lifted_at=now,
                                why=why))
    session.delete(suppression)


def forget_bounce_score(session: Session, subscriber_id: int) -> None:
    """Drop the person's soft-bounce score (a lifted suppression starts afresh)."""
    session.execute(delete(BounceScore).where(BounceScore.subscriber_id == subscriber_id))


def update_details(session: Session, rows: Sequence[tuple[int, str, str]], *, now: datetime) -> None:
    """Set (subscriber id, name, language) of known people, updated `now`."""
    if rows:
        session.connection().execute(_SET_DETAILS, [
            {"person": sid, "new_name": name, "new_language": language, "now": now} for sid, name, language in rows])


_SET_DETAILS = (update(Subscriber.__table__).where(Subscriber.id == bindparam("person"))
                .values(name=bindparam("new_name"), language=bindparam("new_language"), updated_at=bindparam("now")))


def detach_person(session: Session, subscriber_id: int) -> None:
    """Delete a person's consent log and subscriptions; their outbox rows keep the counts without them.

    The caller deletes the person's row itself (the ORM object it holds).
    """
    session.execute(update(OutboxRow).where(OutboxRow.subscriber_id == subscriber_id).values(subscriber_id=None))
    session.execute(delete(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber_id))
    session.execute(delete(Subscription).where(Subscription.subscriber_id == subscriber_id))


# -- consent events -----------------------------------------------------------------------------

_INSERT_EVENT = insert(ConsentEvent.__table__)


def add_event(session: Session, subscriber: Subscriber, values: dict[str, Any]) -> None:
    """Append one consent-log line about `subscriber` (an ORM object, perhaps not flushed yet)."""
    session.add(ConsentEvent(subscriber=subscriber, **values))


def add_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Append consent-log lines, each a dict of every column, in one statement."""
    if rows:
        session.connection().execute(_INSERT_EVENT, rows)


def consent_events(session: Session, subscriber_id: int) -> list[ConsentEvent]:
    """The person's consent log, oldest first."""
    return list(session.scalars(
        select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber_id).order_by(ConsentEvent.id)))


def count_confirmations_sent(session: Session, since: datetime) -> int:
    """Confirmation mails the consent log records after `since`, over every address."""
    return session.scalar(select(func.count()).select_from(ConsentEvent).where(
        ConsentEvent.kind == ConsentKind.CONFIRMATION_SENT, ConsentEvent.at > since)) or 0


def confirmations_sent_since(session: Session, subscriber_id: int, since: datetime) -> list[datetime]:
    """When the person was sent a confirmation mail after `since`."""
    return list(session.scalars(select(ConsentEvent.at).where(
        ConsentEvent.subscriber_id == subscriber_id, ConsentEvent.kind == ConsentKind.CONFIRMATION_SENT,
        ConsentEvent.at > since)))


# -- subscriptions ----------------------------------------------------------------------------

def has_active_subscription(session: Session, subscriber_id: int) -> bool:
    """Whether the person has confirmed (and not left) some list."""
    return bool(session.scalar(select(func.count()).select_from(Subscription).where(
        Subscription.subscriber_id == subscriber_id, Subscription.status == SubscriptionStatus.ACTIVE)))


def add_subscription(session: Session, subscriber_id: int, list_id: int, status: SubscriptionStatus, *,
                     now: datetime, confirmed_at: datetime | None = None) -> None:
    """A new subscription of a known person (through the ORM, flushed with the session)."""
    session.add(Subscription(subscriber_id=subscriber_id, list_id=list_id, status=status, created_at=now,
                             confirmed_at=confirmed_at))


_IDS_BY_KEY = select(Subscriber.key, Subscriber.id).where(Subscriber.key.in_(bindparam("keys", expanding=True)))
_STAYING = (select(Subscription.subscriber_id, Subscription.list_id, MailingList.slug)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscription.subscriber_id.in_(bindparam("ids", expanding=True)),
                   Subscription.status != SubscriptionStatus.UNSUBSCRIBED)
            .order_by(Subscription.subscriber_id, Subscription.list_id))
_LEAVE = (update(Subscription.__table__)
          .where(Subscription.subscriber_id == bindparam("person"), Subscription.list_id == bindparam("list"))
          .values(status=SubscriptionStatus.UNSUBSCRIBED, unsubscribed_at=bindparam("now")))
_REPEND = (update(Subscription.__table__)
           .where(Subscription.subscriber_id == bindparam("person"), Subscription.list_id == bindparam("list"))
           .values(status=SubscriptionStatus.PENDING, created_at=bindparam("now"), unsubscribed_at=None))


def ids_by_key(session: Session, keys: Iterable[str]) -> dict[str, int]:
    """The row ids of the people with these keys, by key (unknown keys are absent)."""
    return dict(session.connection().execute(_IDS_BY_KEY, {"keys": sorted(set(keys))}).all())


def staying_subscriptions(session: Session, subscriber_ids: Iterable[int]) -> list[StayingRow]:
    """The subscriptions of these people that have not ended, by person and list."""
    ids = sorted(set(subscriber_ids))
    if not ids:
        return []
    return [StayingRow(*row) for row in session.connection().execute(_STAYING, {"ids": ids})]


def end_subscriptions(session: Session, pairs: Sequence[tuple[int, int]], *, now: datetime) -> None:
    """Mark these (subscriber id, list id) subscriptions unsubscribed `now`."""
    if pairs:
        session.connection().execute(_LEAVE, [{"person": sid, "list": lid, "now": now} for sid, lid in pairs])


def repend_subscriptions(session: Session, pairs: Sequence[tuple[int, int]], *, now: datetime) -> None:
    """Make these (subscriber id, list id) subscriptions pending again, as if asked for `now`."""
    if pairs:
        session.connection().execute(_REPEND, [{"person": sid, "list": lid, "now": now} for sid, lid in pairs])


# -- listings --------------------------------------------------------------------------------

def count_people(session: Session, *, list_id: int | None = None, status: SubscriptionStatus | None = None) -> int:
    """How many people have a subscription (to this list, in this status)."""
    query = select(func.count(func.distinct(Subscription.subscriber_id))).select_from(Subscription)
    if list_id is not None:
        query = query.where(Subscription.list_id == list_id)
    if status is not None:
        query = query.where(Subscription.status == status)
    return session.scalar(query) or 0


def subscriptions_select(*extra, list_id: int | None = None, status: SubscriptionStatus | None = None) -> Select:
    """The SELECT of each subscription's address, name, language, list slug and status (then the
    `extra` columns), of this list, in this status, ordered by address and list slug."""
    query = (
        select(Subscriber.email, Subscriber.name, Subscriber.language, MailingList.slug, Subscription.status, *extra)
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .order_by(Subscriber.email, MailingList.slug)
    )
    if list_id is not None:
        query = query.where(Subscription.list_id == list_id)
    if status is not None:
        query = query.where(Subscription.status == status)
    return query


def subscription_lines(session: Session, *, list_id: int | None = None, status: SubscriptionStatus | None = None,
                       limit: int | None = None) -> list[SubscriptionLine]:
    """Subscriptions (of this list, in this status), ordered by address and list slug."""
    query = subscriptions_select(list_id=list_id, status=status)
    if limit:
        query = query.limit(limit)
    return [SubscriptionLine(e, n, lang, slug, st.value) for e, n, lang, slug, st in session.execute(query)]

