"""The people pages' statements: search people, their subscriptions at a glance, the issues they got.

Each function takes the caller's session and runs in its transaction; none decides anything.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Engine, func, or_, select, text
from sqlalchemy.orm import Session

from ..statuses import (
    CampaignStatus,
    OutboxStatus,
    SubscriberStatus,
    SubscriptionStatus,
)
from . import Campaign, MailingList, OutboxRow, Subscriber, Subscription

__all__ = ["COUNT_CAP", "PersonRow", "ReceivedRow", "received_by", "search_people", "subscriptions_of"]


class PersonRow(NamedTuple):
    id: int
    key: str
    email: str
    name: str
    language: str
    status: SubscriberStatus
    created_at: datetime


class ReceivedRow(NamedTuple):
    """One campaign's row for one person: what became of it."""

    campaign_slug: str
    subject: str
    campaign_status: CampaignStatus
    status: OutboxStatus
    language: str | None
    sent_at: datetime | None
    last_reply: str | None
    #: The relay of the last attempt and its reply code (None: never attempted).
    relay: str | None = None
    reply_code: int | None = None


#: A search counts its matches up to this many (beyond: "more than").
COUNT_CAP = 1000


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


#: libc collations that order text by code point, as SQLite does: in them a range of the address
#: index holds exactly the addresses that begin with a text.
_CODE_POINT_COLLATIONS = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8"})
#: The database's default collation and its provider ('c': libc; the column before PostgreSQL 15).
_DEFAULT_COLLATION = text("SELECT datcollate, coalesce(to_jsonb(d) ->> 'datlocprovider', 'c') "
                          "FROM pg_database d WHERE datname = current_database()")
#: Engine -> whether its addresses are ordered by code point (asked once an engine).
_CODE_POINT_ORDER: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def _ordered_by_code_point(session: Session) -> bool:
    """The address index orders addresses by code point (SQLite; PostgreSQL under a C collation)."""
    engine = session.get_bind().engine
    if engine.dialect.name == "sqlite":
        return True
    found = _CODE_POINT_ORDER.get(engine)
    if found is None:
        collation, provider = session.execute(_DEFAULT_COLLATION).one()
        found = _CODE_POINT_ORDER[engine] = provider == "c" and collation in _CODE_POINT_COLLATIONS
    return found


def _address_start(text: str) -> str | None:
    """The lower-cased text when it reads as the start of an address (it holds an "@": no name
    does), else None."""
    return text.lower() if "@" in text else None


def search_people(session: Session, text: str, *, list_id: int | None = None,
                  status: SubscriptionStatus | None = None, limit: int = 50,
                  offset: int = 0, cap: int = COUNT_CAP) -> tuple[list[PersonRow], int, bool]:
    """People whose address or name contains `text` (any case), on `list_id` in `status` when
    given, by address: (the page of `limit` from `offset`, how many match, whether more match).

    Text with an "@" is the start of an address: only addresses that begin with it match, found
    on the address index (a range of it where the addresses are ordered by code point, as on
    SQLite and under PostgreSQL's C collations; else the index scanned in order, with the
    pattern deciding). The matches are counted up to `cap` (or through the page, when it lies
    beyond): one scan in address order that stops there, whose page of rows comes back with the
    count beside each (a window over the scan), in one statement; when more match, the count is
    `cap` and the flag is True."""
    query = select(Subscriber.id, Subscriber.key, Subscriber.email, Subscriber.name, Subscriber.language,
                   Subscriber.status, Subscriber.created_at)
    start = _address_start(text.strip()) if text else None
    if start is not None:
        if _ordered_by_code_point(session):  # the range is exactly the prefix, on the index
            query = query.where(Subscriber.email >= start, Subscriber.email < start + "\U0010ffff")
        if session.get_bind().dialect.name != "sqlite":  # where a collation may order otherwise, it decides
            query = query.where(Subscriber.email.like(_like(start)[1:], escape="\\"))
    elif text:
        pattern = _like(text.strip())
        query = query.where(or_(Subscriber.email.ilike(pattern, escape="\\"),
                                Subscriber.name.ilike(pattern, escape="\\")))
    if list_id is not None or status is not None:
        sub = select(Subscription.subscriber_id)
        if list_id is not None:
            sub = sub.where(Subscription.list_id == list_id)
        if status is not None:
            sub = sub.where(Subscription.status == status)
        query = query.where(Subscriber.id.in_(sub))
    counted = max(cap, offset + limit)
    matches = query.order_by(Subscriber.email).limit(counted + 1).subquery()
    found = session.execute(select(matches, func.count().over()).order_by(matches.c.email)
                            .offset(offset).limit(limit)).all()
    if found:
        total = found[0][-1]
    else:  # no row to carry the count: none matched, or the page lies beyond the matches
        total = session.scalar(select(func.count()).select_from(matches)) if offset else 0
    return [PersonRow(*row[:-1]) for row in found], min(total, counted), total > counted
def subscriptions_of(session: Session, subscriber_ids: Iterable[int]) -> dict[int, list[tuple[str, SubscriptionStatus]]]:
    """Each person's (list slug, status) pairs, by slug."""
    ids = list(subscriber_ids)
    found: dict[int, list[tuple[str, SubscriptionStatus]]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = session.execute(select(Subscription.subscriber_id, MailingList.slug, Subscription.status)
                           .join(MailingList, MailingList.id == Subscription.list_id)
                           .where(Subscription.subscriber_id.in_(ids)).order_by(MailingList.slug))
    for subscriber_id, slug, status in rows:
        found[subscriber_id].append((slug, status))
    return found


def received_by(session: Session, subscriber_id: int, *, limit: int = 200) -> list[ReceivedRow]:
    """The campaigns that had a row for this person, newest first, with what became of it."""
    rows = session.execute(
        select(Campaign.slug, Campaign.subject, Campaign.status, OutboxRow.status, OutboxRow.language,
               OutboxRow.sent_at, OutboxRow.last_reply, OutboxRow.relay, OutboxRow.reply_code)
        .join(Campaign, Campaign.id == OutboxRow.campaign_id)
        .where(OutboxRow.subscriber_id == subscriber_id)
        .order_by(Campaign.created_at.desc(), Campaign.id.desc()).limit(limit))
    return [ReceivedRow(*row) for row in rows]
