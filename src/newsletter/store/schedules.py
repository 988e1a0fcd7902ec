"""The statements of scheduled sends (`schedules` table).

A transition is a conditional UPDATE (`… WHERE id = :id AND status = :expected`): when several
services look at one store, exactly one sees its UPDATE touch the row, and only that one fires
it (PostgreSQL makes the second wait for the first's commit, then finds the status changed;
SQLite has one writer at a time). Nothing here decides anything or commits.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..statuses import ScheduleStatus
from .models import Schedule

__all__ = [
    "add_schedule",
    "get_schedule",
    "all_schedules",
    "open_schedule_for",
    "schedules_in",
    "move_schedule",
]

#: The statuses of a schedule not yet over: one of them per campaign at most.
OPEN = (ScheduleStatus.WAITING, ScheduleStatus.HELD, ScheduleStatus.SENDING)


def add_schedule(session: Session, **columns: Any) -> Schedule:
    """Insert a schedule (columns as in `Schedule`); returns it with its id."""
    schedule = Schedule(**columns)
    session.add(schedule)
    session.flush()
    return schedule


def get_schedule(session: Session, schedule_id: int) -> Schedule | None:
    """The schedule with this id, read afresh, or None."""
    return session.get(Schedule, schedule_id, populate_existing=True)


def all_schedules(session: Session, *, statuses: Collection[ScheduleStatus] | None = None) -> list[Schedule]:
    """Schedules (of these statuses when given), soonest first."""
    query = select(Schedule).order_by(Schedule.due_at, Schedule.id)
    if statuses is not None:
        query = query.where(Schedule.status.in_(list(statuses)))
    return list(session.scalars(query))


def open_schedule_for(session: Session, slug: str) -> Schedule | None:
    """The schedule of campaign `slug` that is not over (waiting, held or sending), or None."""
    return session.scalar(select(Schedule).where(Schedule.slug == slug, Schedule.status.in_(OPEN)).limit(1))


def schedules_in(session: Session, status: ScheduleStatus, *, due_by: datetime | None = None) -> list[Schedule]:
    """Schedules in `status` (due at or before `due_by` when given), soonest first, read afresh."""
    query = select(Schedule).where(Schedule.status == status).order_by(Schedule.due_at, Schedule.id)
    if due_by is not None:
        query = query.where(Schedule.due_at <= due_by)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def move_schedule(session: Session, schedule_id: int, expected: ScheduleStatus, new: ScheduleStatus, *,
                  if_claimed_at: datetime | None | type(...) = ..., **changes: Any) -> bool:
    """Set the schedule's status to `new` (and the columns in `changes`) if it is `expected`
    now (and, when `if_claimed_at` is given, its claim is still that one). Returns whether this
    call did it."""
    query = update(Schedule).where(Schedule.id == schedule_id, Schedule.status == expected)
    if if_claimed_at is not ...:
        query = query.where(Schedule.claimed_at.is_(None) if if_claimed_at is None
                            else Schedule.claimed_at == if_claimed_at)
    result = session.execute(query.values(status=new, **changes).execution_options(synchronize_session=False))
    return result.rowcount == 1
