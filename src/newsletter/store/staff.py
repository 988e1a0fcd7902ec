"""Staff accounts, their sessions, login failures, workspace settings and the audit trail.

Each function takes the caller's session and runs in its transaction; none decides anything
(who may log in, what a role allows, how many failures are too many is `newsletter.staff`'s
business). The audit trail has an insert and reads, and nothing else: the database refuses
UPDATE and DELETE of it (a trigger, migration 0400_staff).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from ..statuses import StaffRole, StaffStatus
from . import AuditEvent, LoginFailure, StaffMember, StaffSession, WorkspaceSetting

__all__ = [
    "add_member", "member_by_email", "member_by_id", "all_members", "update_member", "count_members",
    "add_session", "session_with_member", "touch_session", "revoke_session", "revoke_member_sessions",
    "live_sessions",
    "add_audit", "audit_lines", "count_audit_lines", "iter_audit_lines",
    "add_login_failure", "count_login_failures", "clear_login_failures",
    "get_setting", "get_settings", "put_setting",
]


# -- accounts ---------------------------------------------------------------------------------------

def add_member(session: Session, *, email: str, name: str, role: StaffRole, languages: list[str],
               security_stamp: str, invited_by: int | None, now: datetime) -> StaffMember:
    """Insert an invited account (no password yet); returns it with its id."""
    member = StaffMember(email=email, name=name, role=role, languages=list(languages), status=StaffStatus.INVITED,
                         security_stamp=security_stamp, invited_by=invited_by, created_at=now)
    session.add(member)
    session.flush()
    return member


def member_by_email(session: Session, email: str) -> StaffMember | None:
    """The account with this (normalised) address, or None."""
    return session.scalar(select(StaffMember).where(StaffMember.email == email))


def member_by_id(session: Session, member_id: int) -> StaffMember | None:
    return session.get(StaffMember, member_id)


def all_members(session: Session) -> list[StaffMember]:
    """Every account, revoked ones too, by address."""
    return list(session.scalars(select(StaffMember).order_by(StaffMember.email)))


def count_members(session: Session, *, role: StaffRole | None = None, status: StaffStatus | None = None) -> int:
    query = select(func.count()).select_from(StaffMember)
    if role is not None:
        query = query.where(StaffMember.role == role)
    if status is not None:
        query = query.where(StaffMember.status == status)
    return session.scalar(query) or 0


def update_member(session: Session, member_id: int, **values: Any) -> None:
    """Set these columns of the account `member_id`."""
    session.execute(update(StaffMember).where(StaffMember.id == member_id).values(**values))
    session.expire_all()


# -- sessions ---------------------------------------------------------------------------------------

def add_session(session: Session, *, session_id: str, member_id: int, csrf: str, now: datetime,
                expires_at: datetime, ip: str | None, user_agent: str | None) -> None:
    """Insert a session; `session_id` is the SHA-256 of the cookie's value, never the value."""
    session.add(StaffSession(id=session_id, member_id=member_id, csrf=csrf, created_at=now, last_seen_at=now,
                             expires_at=expires_at, ip=ip, user_agent=user_agent))
    session.flush()


# Every workspace request reads its session (and now and then touches it): these statements are
# built once, not per request.
_SESSION_WITH_MEMBER = (select(StaffSession, StaffMember).join(StaffMember, StaffMember.id == StaffSession.member_id)
                        .where(StaffSession.id == bindparam("session_id")))
_TOUCH_SESSION = (update(StaffSession).where(StaffSession.id == bindparam("session_id"))
                  .values(last_seen_at=bindparam("seen_at"), expires_at=bindparam("idle_expiry")))


def session_with_member(session: Session, session_id: str) -> tuple[StaffSession, StaffMember] | None:
    """The session with this id and its account, whatever their state, or None."""
    row = session.execute(_SESSION_WITH_MEMBER, {"session_id": session_id}).first()
    return (row[0], row[1]) if row else None


def touch_session(session: Session, session_id: str, now: datetime, expires_at: datetime) -> None:
    """Record activity on a session, moving its idle expiry."""
    session.execute(_TOUCH_SESSION, {"session_id": session_id, "seen_at": now, "idle_expiry": expires_at})


def revoke_session(session: Session, session_id: str, now: datetime) -> None:
    session.execute(update(StaffSession).where(StaffSession.id == session_id, StaffSession.revoked_at.is_(None))
                    .values(revoked_at=now))


def revoke_member_sessions(session: Session, member_id: int, now: datetime) -> int:
    """Revoke every live session of an account; returns how many."""
    result = session.execute(update(StaffSession).where(StaffSession.member_id == member_id,
                                                        StaffSession.revoked_at.is_(None)).values(revoked_at=now))
    return result.rowcount or 0


def live_sessions(session: Session, member_id: int, now: datetime) -> list[StaffSession]:
    """An account's sessions not revoked and not past their idle expiry, newest activity first."""
    return list(session.scalars(select(StaffSession).where(
        StaffSession.member_id == member_id, StaffSession.revoked_at.is_(None), StaffSession.expires_at > now)
        .order_by(StaffSession.last_seen_at.desc())))


# -- the audit trail --------------------------------------------------------------------------------

def add_audit(session: Session, *, at: datetime, actor_id: int | None, actor: str, action: str, target: str,
              detail: str, ip: str | None) -> None:
    """Append one line to the audit trail."""
    session.add(AuditEvent(at=at, actor_id=actor_id, actor=actor, action=action, target=target, detail=detail,
                           ip=ip))
    session.flush()


def _audit_query(actor: str | None, action: str | None, since: datetime | None, until: datetime | None):
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    return query


def audit_lines(session: Session, *, actor: str | None = None, action: str | None = None,
                since: datetime | None = None, until: datetime | None = None, limit: int = 100,
                offset: int = 0) -> list[AuditEvent]:
    """The newest lines first, filtered."""
    query = _audit_query(actor, action, since, until).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query))


def count_audit_lines(session: Session, *, actor: str | None = None, action: str | None = None,
                      since: datetime | None = None, until: datetime | None = None) -> int:
    query = _audit_query(actor, action, since, until).with_only_columns(func.count())
    return session.scalar(query) or 0


def iter_audit_lines(session: Session, *, actor: str | None = None, action: str | None = None,
                     since: datetime | None = None, until: datetime | None = None,
                     batch: int = 1000) -> Iterator[AuditEvent]:
    """Every matching line, oldest first, read in batches (memory does not grow with the trail)."""
    last = 0
    while True:
        rows = list(session.scalars(_audit_query(actor, action, since, until).where(AuditEvent.id > last)
                                    .order_by(AuditEvent.id).limit(batch)))
        if not rows:
            return
        yield from rows
        last = rows[-1].id


# -- login failures ---------------------------------------------------------------------------------

def add_login_failure(session: Session, scope: str, key: str, now: datetime) -> None:
    session.add(LoginFailure(scope=scope, key=key, at=now))
    session.flush()


def count_login_failures(session: Session, scope: str, key: str, since: datetime) -> tuple[int, datetime | None]:
    """(failures of `key` in `scope` since `since`, the oldest of them)."""
    count, oldest = session.execute(select(func.count(), func.min(LoginFailure.at))
                                    .where(LoginFailure.scope == scope, LoginFailure.key == key,
                                           LoginFailure.at >= since)).one()
    return count or 0, oldest


def clear_login_failures(session: Session, scope: str, key: str, *, before: datetime | None = None) -> None:
    """Forget the failures of `key` (all, or those before `before`)."""
    query = delete(LoginFailure).where(LoginFailure.scope == scope, LoginFailure.key == key)
    if before is not None:
        query = query.where(LoginFailure.at < before)
    session.execute(query)


# -- settings ---------------------------------------------------------------------------------------

def get_setting(session: Session, key: str, default: Any = None) -> Any:
    row = session.get(WorkspaceSetting, key)
    return default if row is None else row.value


_SETTINGS = (select(WorkspaceSetting.key, WorkspaceSetting.value)
             .where(WorkspaceSetting.key.in_(bindparam("keys", expanding=True))))


def get_settings(session: Session, keys: Iterable[str]) -> dict[str, Any]:
    """The settings among `keys` that are set, by key, read in one statement."""
    return {key: value for key, value in session.execute(_SETTINGS, {"keys": list(keys)})}


def put_setting(session: Session, key: str, value: Any, now: datetime) -> None:
    row = session.get(WorkspaceSetting, key)
    if row is None:
        session.add(WorkspaceSetting(key=key, value=value, updated_at=now))
    else:
        row.value = value
        row.updated_at = now
    session.flush()
