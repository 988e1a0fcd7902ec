"""Defences of the public sign-up against robots and mail-bombing, with no web code in them.

- `issue_form_token` / `check_form_token`: a signed, timestamped token the sign-up form
  carries; a form sent back sooner than a person could fill it, or with a forged token, is a
  robot's. Stateless: nothing is stored per form.
- `RateLimiter`: a sliding-window counter per key (client IP, address) **in the memory of
  one process**. Several server processes each keep their own counts, so the effective limit
  is multiplied by their number; the store's own limits on confirmation mails
  (`consent.RESEND_*`) and the installation-wide hourly ceiling still hold across processes.
- `client_key`: what the per-IP limit counts a client by: an IPv4 address, or an IPv6
  address's whole network (a /64 by default: one household, one server, gets a /64 and can use
  every address in it).
- `count_confirmations_sent`: the confirmation mails recorded in the consent log since a
  moment, which the hourly ceiling is checked against.
"""

from __future__ import annotations

import enum
import ipaddress
import secrets
import threading
from collections import deque
from datetime import datetime, timedelta, timezone

from itsdangerous import BadData, TimestampSigner
from sqlalchemy.orm import Session

from ..store import people as people_store

__all__ = ["FormCheck", "issue_form_token", "check_form_token", "RateLimiter", "client_key",
           "count_confirmations_sent"]

#: A sign-up form older than this is sent back to be submitted again.
FORM_MAX_AGE = timedelta(days=1)
_FORM_SALT = "newsletter/signup-form"


class FormCheck(str, enum.Enum):
    """What a sign-up form token says about the request that carried it."""

    OK = "ok"
    #: Missing, tampered with, or signed with another key: a robot (or a foreign form).
    FORGED = "forged"
    #: Sent back sooner than `min_seconds` after the form was served: a robot.
    TOO_FAST = "too_fast"
    #: Older than FORM_MAX_AGE: a person who left the page open; show the form again.
    EXPIRED = "expired"


def issue_form_token(secret: bytes, now: datetime) -> str:
    """A token for one sign-up form, stamped with `now`."""
    signer = TimestampSigner(secret, salt=_FORM_SALT)
    stamp = int(now.timestamp())
    signer.get_timestamp = lambda: stamp  # type: ignore[method-assign]
    return signer.sign(secrets.token_urlsafe(9)).decode("ascii")


def check_form_token(secret: bytes, token: str | None, now: datetime, *, min_seconds: float) -> FormCheck:
    """Judge a sign-up form token returned at `now`; never raises."""
    if not token:
        return FormCheck.FORGED
    signer = TimestampSigner(secret, salt=_FORM_SALT)
    try:
        _value, issued = signer.unsign(token, return_timestamp=True)
    except (BadData, UnicodeError, ValueError, TypeError):
        return FormCheck.FORGED
    issued = issued if issued.tzinfo else issued.replace(tzinfo=timezone.utc)
    age = now - issued
    if age < timedelta(seconds=min_seconds) or age < timedelta(seconds=-60):
        return FormCheck.TOO_FAST
    if age > FORM_MAX_AGE:
        return FormCheck.EXPIRED
    return FormCheck.OK


class RateLimiter:
    """At most `limit` events per key in any `window`, counted in this process's memory.

    `limit` 0 means no limit. Thread-safe. Keys that fall idle are forgotten, so memory is
    bounded by the keys active within one window.
    """

    def __init__(self, limit: int, window: timedelta):
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()
        self._next_sweep: datetime | None = None

    def allow(self, key: str, now: datetime) -> bool:
        """Count one event for `key` and say whether it is within the limit (refused ones count too)."""
        if self.limit <= 0:
            return True
        horizon = now - self.window
        with self._lock:
            self._sweep(now, horizon)
            events = self._events.setdefault(key, deque())
            while events and events[0] <= horizon:
                events.popleft()
            events.append(now)
            return len(events) <= self.limit

    def _sweep(self, now: datetime, horizon: datetime) -> None:
        if self._next_sweep is not None and now < self._next_sweep:
            return
        self._next_sweep = now + self.window
        for key in [k for k, ev in self._events.items() if not ev or ev[-1] <= horizon]:
            del self._events[key]


def client_key(ip: str | None, *, ipv6_prefix: int = 64) -> str:
    """The key a client's requests are counted under: its IPv4 address, or its IPv6 network of
    `ipv6_prefix` bits (an IPv4-mapped IPv6 address counts as the IPv4 address); "?" when unknown."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return ip or "?"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, ipv6_prefix), strict=False))
    return str(address)


def count_confirmations_sent(session: Session, since: datetime) -> int:
    """How many confirmation mails the consent log records after `since` (all addresses)."""
    return people_store.count_confirmations_sent(session, since)
