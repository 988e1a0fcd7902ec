"""Workspace sessions: server-side, revocable, and new at every login.

`login` checks the throttle, the password (argon2id) and, when the account has one, the TOTP
code, then makes a *new* session: a random cookie value of which only the SHA-256 is stored,
with its own CSRF token. A session the browser presented before logging in is revoked, so a
value planted in a browser before login is worth nothing after it (no fixation). `current`
reads the session a cookie names (None when unknown, revoked, expired or its account is not
active); `logout` ends one session, `logout_everywhere` every session of an account.
Every failure of `login` is the same `LoginRefused`, for addresses with and without accounts.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..addresses import normalise_address
from ..errors import LoginRefused
from ..installation import Newsletter
from ..statuses import StaffStatus
from ..store import staff as staff_store
from . import audit, throttle, totp
from .accounts import Member, language_setting, member_value, verify_password
from .audit import Actor

__all__ = ["Login", "StaffContext", "SessionLine", "IDLE", "LIFETIME", "login", "current", "logout",
           "logout_everywhere", "session_hash", "my_sessions", "end_session"]

#: A session ends after this long without a request…
IDLE = timedelta(hours=12)
#: …and this long after login, whatever happens.
LIFETIME = timedelta(days=7)
#: Activity is written at most this often per session.
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Login:
    """A new session: the cookie's value (give it to the browser, keep it nowhere) and who."""

    cookie: str
    member: Member
    csrf: str


@dataclass(frozen=True)
class StaffContext:
    """The session a request came with: who, the session's CSRF token, and whether they must
    enroll a second factor before anything else."""

    member: Member
    session_id: str
    csrf: str
    needs_totp: bool
    created_at: datetime


@dataclass(frozen=True)
class SessionLine:
    """One of an account's live sessions, as its owner sees it; `ref` names it in a form."""

    ref: str
    created_at: datetime
    last_seen_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


def session_hash(cookie: str) -> str:
    """What the store keeps of a cookie value."""
    return hashlib.sha256(cookie.encode("utf-8", "replace")).hexdigest()


def login(newsletter: Newsletter, email: str, password: str, code: str = "", *, ip: str | None = None,
          user_agent: str | None = None, replacing: str | None = None) -> Login:
    """Open a new session for this address and password (and TOTP code, when enrolled).

    `replacing` is the session cookie the browser sent, if any: it is revoked either way.
    Raises LoginThrottled (too many failures for this address or IP), LoginRefused (anything
    else: unknown address, wrong password or code, an account not active).
    """
    now = newsletter.clock()
    tried = email.strip().lower()
    try:
        address = normalise_address(email)
    except ValueError:
        address = None
    refused = False
    with newsletter.store.session() as session:
        if replacing:
            staff_store.revoke_session(session, session_hash(replacing), now)
        throttle.check(session, address or tried, ip, now)
        row = staff_store.member_by_email(session, address) if address else None
        good = verify_password(row.password_hash if row is not None else None, password)
        if good and row.status is not StaffStatus.ACTIVE:
            good = False
        step = None
        if good and row.totp_secret is not None:
            step = totp.matching_step(row.totp_secret, code or "", now, after=row.totp_last_step)
            good = step is not None
        if not good:
            throttle.fail(session, address or tried, ip, now)
            if row is not None:
                audit.record(session, Actor(row, ip), "account.login_failed", row.email, now=now)
            refused = True
        else:
            throttle.succeed(session, address)
            cookie = secrets.token_urlsafe(32)
            csrf = secrets.token_urlsafe(32)
            staff_store.add_session(session, session_id=session_hash(cookie), member_id=row.id, csrf=csrf, now=now,
                                    expires_at=now + IDLE, ip=ip, user_agent=(user_agent or "")[:512] or None)
            values = {"last_login_at": now}
            if step is not None:
                values["totp_last_step"] = step
            staff_store.update_member(session, row.id, **values)
            row = staff_store.member_by_id(session, row.id)
            audit.record(session, Actor(row, ip), "account.login", row.email, now=now)
            result = Login(cookie, member_value(row), csrf)
    if refused:
        raise LoginRefused()
    return result


def current(newsletter: Newsletter, cookie: str | None) -> StaffContext | None:
    """The live session `cookie` names, or None. Moves its idle expiry (at most once a minute)."""
    if not cookie or len(cookie) > 200:
        return None
    now = newsletter.clock()
    # Read without the write lock (every page asks this); write only when activity is due.
    with newsletter.store.reading() as session:
        found = staff_store.session_with_member(session, session_hash(cookie))
        if found is None:
            return None
        row, member = found
        if (row.revoked_at is not None or row.expires_at <= now or row.created_at + LIFETIME <= now
                or member.status is not StaffStatus.ACTIVE):
            return None
        language_key = language_setting(member.id)
        settings = staff_store.get_settings(session, (totp.SETTING, language_key))
        needs = member.totp_secret is None and member.role in totp.roles_named(settings.get(totp.SETTING))
        context = StaffContext(member_value(member, settings.get(language_key)), row.id, row.csrf, needs,
                               row.created_at)
    if now - row.last_seen_at >= _TOUCH_EVERY:
        with newsletter.store.session() as session:
            staff_store.touch_session(session, row.id, now, min(now + IDLE, row.created_at + LIFETIME))
    return context


def logout(newsletter: Newsletter, cookie: str | None, *, ip: str | None = None) -> None:
    """End the session `cookie` names (nothing when it names none)."""
    if not cookie:
        return
    now = newsletter.clock()
    with newsletter.store.session() as session:
        found = staff_store.session_with_member(session, session_hash(cookie))
        if found is None or found[0].revoked_at is not None:
            return
        staff_store.revoke_session(session, found[0].id, now)
        audit.record(session, Actor(found[1], ip), "account.logout", found[1].email, now=now)


def logout_everywhere(newsletter: Newsletter, actor: Actor) -> int:
    """End every session of `actor`'s account, this one too; returns how many ended."""
    now = newsletter.clock()
    with newsletter.store.session() as session:
        ended = staff_store.revoke_member_sessions(session, actor.member.id, now)
        audit.record(session, actor, "account.logout_everywhere", actor.member.email, f"sessions ended={ended}",
                     now=now)
        return ended



def my_sessions(newsletter: Newsletter, actor: Actor, current_id: str) -> list[SessionLine]:
    """The live sessions of `actor`'s account, this one (`current_id`) marked."""
    now = newsletter.clock()
    with newsletter.store.reading() as session:
        return [SessionLine(row.id[:16], row.created_at, row.last_seen_at, row.ip, row.user_agent,
                            row.id == current_id)
                for row in staff_store.live_sessions(session, actor.member.id, now)
                if row.created_at + LIFETIME > now]


def end_session(newsletter: Newsletter, actor: Actor, ref: str) -> bool:
    """End one of `actor`'s own sessions by its `ref`; False when they have none by that ref."""
    now = newsletter.clock()
    with newsletter.store.session() as session:
        for row in staff_store.live_sessions(session, actor.member.id, now):
            if ref and len(ref) == 16 and row.id.startswith(ref):
                staff_store.revoke_session(session, row.id, now)
                audit.record(session, actor, "account.session_ended", actor.member.email,
                             f"session from {row.ip or 'unknown'} since {row.created_at.isoformat()}", now=now)
                return True
        return False
