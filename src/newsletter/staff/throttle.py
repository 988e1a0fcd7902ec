"""Login throttling, per account and per IP, that tells nobody which addresses have accounts.

Failures are counted in the store (so every server process sees them) by the address tried,
whether it has an account or not, and by the client's IP. Past `ACCOUNT_LIMIT` failures for an
address, or `IP_LIMIT` from an IP, within `WINDOW`, logins are refused with `LoginThrottled`
until the oldest of those failures leaves the window, the right password included; a success
forgets the account's failures. Each function runs in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ..errors import LoginThrottled
from ..store import staff as staff_store

__all__ = ["ACCOUNT_LIMIT", "IP_LIMIT", "WINDOW", "check", "fail", "succeed"]

ACCOUNT_LIMIT = 5
IP_LIMIT = 20
WINDOW = timedelta(minutes=15)


def _scopes(address: str, ip: str | None) -> list[tuple[str, str, int]]:
    scopes = [("account", address.strip().lower()[:320], ACCOUNT_LIMIT)]
    if ip:
        scopes.append(("ip", ip, IP_LIMIT))
    return scopes


def check(session: Session, address: str, ip: str | None, now: datetime) -> None:
    """Raise LoginThrottled when `address` or `ip` has failed too often lately."""
    wait = 0
    for scope, key, limit in _scopes(address, ip):
        count, oldest = staff_store.count_login_failures(session, scope, key, now - WINDOW)
        if count >= limit and oldest is not None:
            wait = max(wait, int((oldest + WINDOW - now).total_seconds()) + 1)
    if wait:
        raise LoginThrottled(wait)


def fail(session: Session, address: str, ip: str | None, now: datetime) -> None:
    """Count a failed login (forgetting failures older than the window)."""
    for scope, key, _limit in _scopes(address, ip):
        staff_store.clear_login_failures(session, scope, key, before=now - WINDOW)
        staff_store.add_login_failure(session, scope, key, now)


def succeed(session: Session, address: str) -> None:
    """Forget the account's failures after a successful login (the IP's stay counted)."""
    scope, key, _limit = _scopes(address, None)[0]
    staff_store.clear_login_failures(session, scope, key)
