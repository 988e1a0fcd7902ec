"""The statements about people's attributes (the `subscribers.attributes` JSON column).

Named functions over the caller's session; which values are written is `people.profiles`'
business. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from ..statuses import SubscriptionStatus
from .models import Subscriber
from .people import subscriptions_select

__all__ = ["ExportLine", "PersonLine", "attributes_by_id", "write_attributes", "export_lines", "search_people"]


class ExportLine(NamedTuple):
    """One subscription with the person's attributes, as the CSV export writes it."""

    email: str
    name: str
    language: str
    list_slug: str
    status: str
    attributes: dict[str, Any]


class PersonLine(NamedTuple):
    """A person as a search finds them."""

    email: str
    name: str
    language: str
    status: str
    attributes: dict[str, Any]


def _contains(text: str) -> str:
    """A LIKE pattern for `text` anywhere, its wildcards escaped (with \\)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_people(session: Session, text: str, *, limit: int) -> list[PersonLine]:
    """People whose address or name holds `text` (any case), by address, at most `limit`."""
    pattern = _contains(text.lower())
    query = (select(Subscriber.email, Subscriber.name, Subscriber.language, Subscriber.status, Subscriber.attributes)
             .where(or_(func.lower(Subscriber.email).like(pattern, escape="\\"),
                        func.lower(Subscriber.name).like(pattern, escape="\\")))
             .order_by(Subscriber.email).limit(limit))
    return [PersonLine(e, n, lang, st.value, dict(attrs or {})) for e, n, lang, st, attrs in session.execute(query)]


def attributes_by_id(session: Session, subscriber_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The attributes of these people, by id (people not found are left out)."""
    found: dict[int, dict[str, Any]] = {}
    ids = sorted(set(subscriber_ids))
    for start in range(0, len(ids), 1000):
        query = select(Subscriber.id, Subscriber.attributes).where(Subscriber.id.in_(ids[start:start + 1000]))
        found.update({sid: dict(attrs or {}) for sid, attrs in session.execute(query)})
    return found


def write_attributes(session: Session, rows: Sequence[tuple[int, dict[str, Any]]], *, now: datetime) -> None:
    """Set the whole attributes object of each (subscriber id, attributes), updated `now`."""
    if rows:
        session.connection().execute(_SET_ATTRIBUTES, [
            {"person": sid, "new_attributes": attrs, "now": now} for sid, attrs in rows])


_SET_ATTRIBUTES = (update(Subscriber.__table__).where(Subscriber.id == bindparam("person"))
                   .values(attributes=bindparam("new_attributes", type_=Subscriber.__table__.c.attributes.type),
                           updated_at=bindparam("now")))


def export_lines(session: Session, *, list_id: int | None = None,
                 status: SubscriptionStatus | None = None) -> list[ExportLine]:
    """Subscriptions (of this list, in this status) with the person's attributes, by address and list."""
    query = subscriptions_select(Subscriber.attributes, list_id=list_id, status=status)
    return [ExportLine(e, n, lang, slug, st.value, dict(attrs or {}))
            for e, n, lang, slug, st, attrs in session.execute(query)]
