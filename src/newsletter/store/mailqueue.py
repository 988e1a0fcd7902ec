"""The statements of the confirmation-mail queue (`confirmation_queue` table).

A row is a mail due to one person: written in the transaction that recorded the sign-up,
claimed by a drainer, deleted once the relay took it (or it was given up), put back with a
later `due_at` after a temporary failure. Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL
(SQLite has one writer at a time anyway). Nothing here decides anything or commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from ..statuses import SubscriberStatus
from .models import MailingList, QueuedConfirmation, Subscriber

__all__ = ["QueuedRow", "enqueue", "claim", "forget", "put_back", "count_queued", "list_names"]

_Q = QueuedConfirmation


class QueuedRow(NamedTuple):
    """A claimed row, with the person as they are now."""

    id: int
    attempts: int
    queued_at: datetime
    list_slugs: tuple[str, ...]
    key: str
    email: str
    name: str
    language: str
    status: SubscriberStatus


_INSERT = insert(_Q.__table__).returning(_Q.id, sort_by_parameter_order=True)
_CLAIMABLE = (
    select(_Q.id, _Q.attempts, _Q.queued_at, _Q.list_slugs, Subscriber.key, Subscriber.email, Subscriber.name,
           Subscriber.language, Subscriber.status)
    .join(Subscriber, Subscriber.id == _Q.subscriber_id)
    .where(_Q.due_at <= bindparam("now"), or_(_Q.claimed_at.is_(None), _Q.claimed_at < bindparam("stale")))
    .order_by(_Q.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True, of=_Q)
)
_CLAIMABLE_AMONG = _CLAIMABLE.where(_Q.id.in_(bindparam("among", expanding=True)))
_CLAIM = update(_Q).where(_Q.id.in_(bindparam("ids", expanding=True))).values(
    claimed_by=bindparam("worker"), claimed_at=bindparam("now"))
_DELETE = delete(_Q).where(_Q.id.in_(bindparam("ids", expanding=True)))
_PUT_BACK = update(_Q).where(_Q.id == bindparam("row_id")).values(
    attempts=bindparam("new_attempts"), due_at=bindparam("new_due_at"), last_error=bindparam("error"),
    claimed_by=None, claimed_at=None)


def enqueue(session: Session, rows: Sequence[tuple[int, str]], *, now: datetime) -> list[int]:
    """Queue mails of (subscriber id, comma-separated list slugs), due `now`; their row ids, in order."""
    if not rows:
        return []
    result = session.connection().execute(_INSERT, [
        dict(subscriber_id=sid, list_slugs=slugs, queued_at=now, due_at=now, attempts=0, claimed_by=None,
             claimed_at=None, last_error=None) for sid, slugs in rows])
    return [row_id for (row_id,) in result]


def claim(session: Session, worker: str, *, now: datetime, stale: datetime, limit: int,
          among: Sequence[int] | None = None) -> list[QueuedRow]:
    """Claim for `worker` up to `limit` rows due `now` and unclaimed (or claimed before `stale`),
    oldest first; only rows whose id is `among` these when given."""
    connection = session.connection()
    params = {"now": now, "stale": stale, "limit": limit}
    if among is None:
        rows = connection.execute(_CLAIMABLE, params).all()
    elif among:
        rows = connection.execute(_CLAIMABLE_AMONG, {**params, "among": list(among)}).all()
    else:
        rows = []
    if rows:
        connection.execute(_CLAIM, {"ids": [r.id for r in rows], "worker": worker, "now": now})
    return [QueuedRow(r.id, r.attempts, r.queued_at, tuple(s for s in r.list_slugs.split(",") if s), r.key, r.email,
                      r.name, r.language, r.status) for r in rows]


def list_names(session: Session, slugs: Sequence[str]) -> dict[str, str]:
    """The names of these lists, by slug."""
    if not slugs:
        return {}
    return dict(session.connection().execute(
        select(MailingList.slug, MailingList.name).where(MailingList.slug.in_(sorted(set(slugs))))).all())


def forget(session: Session, row_ids: Sequence[int]) -> None:
    """Delete these rows (sent, or given up)."""
    if row_ids:
        session.connection().execute(_DELETE, {"ids": list(row_ids)})


def put_back(session: Session, rows: Sequence[tuple[int, int, datetime, str]]) -> None:
    """Release claimed rows for a later try: (row id, attempts now, due again at, last error)."""
    if rows:
        session.connection().execute(_PUT_BACK, [
            {"row_id": row_id, "new_attempts": attempts, "new_due_at": due_at, "error": error}
            for row_id, attempts, due_at, error in rows])


def count_queued(session: Session) -> int:
    """Rows waiting in the queue (due or not)."""
    return session.scalar(select(func.count()).select_from(_Q)) or 0
