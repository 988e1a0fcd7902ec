"""Signed, purpose-bound tokens for the links we mail: confirm, unsubscribe, preferences, block.

A token carries a subscriber's random `key` (never a row id), optionally a list slug, and is
signed with the installation's secret and a per-purpose salt, so a token made for one purpose
never verifies for another. Verification is constant-time (itsdangerous compares with
`hmac.compare_digest`). Confirmation tokens expire; unsubscribe tokens never do.

Every failure — tampered, truncated, expired, wrong purpose — raises the one `InvalidToken`.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from itsdangerous import BadData, URLSafeTimedSerializer

from .errors import InvalidToken

__all__ = ["Purpose", "TokenClaims", "issue_token", "read_token"]


class Purpose(str, enum.Enum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    #: "This wasn't me": the address asks never to be mailed again.
    BLOCK = "block"


#: How long a token of each purpose stays valid; None: forever.
DEFAULT_MAX_AGE: dict[Purpose, timedelta | None] = {
    Purpose.CONFIRM: timedelta(days=7),
    Purpose.UNSUBSCRIBE: None,
    Purpose.PREFERENCES: None,
    Purpose.BLOCK: timedelta(days=30),
}


class TokenClaims(NamedTuple):
    """What a verified token says."""

    subscriber_key: str
    list_slug: str | None
    language: str | None
    issued_at: datetime


def _serializer(secret: bytes, purpose: Purpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"newsletter/{purpose.value}")


def issue_token(
    secret: bytes,
    purpose: Purpose,
    subscriber_key: str,
    *,
    list_slug: str | None = None,
    language: str | None = None,
    now: datetime | None = None,
) -> str:
    """A URL-safe token for `purpose` naming one subscriber (and optionally a list and language)."""
    payload: dict[str, str] = {"s": subscriber_key}
    if list_slug:
        payload["l"] = list_slug
    if language:
        payload["g"] = language
    serializer = _serializer(secret, purpose)
    if now is not None:
        # itsdangerous stamps with time.time(); an injected clock stamps with ours.
        ts = int(now.timestamp())
        signer = serializer.make_signer(serializer.salt)
        signer.get_timestamp = lambda: ts  # type: ignore[method-assign]
        return signer.sign(serializer.dump_payload(payload)).decode("ascii")
    return serializer.dumps(payload)


def read_token(
    secret: bytes,
    purpose: Purpose,
    token: str,
    *,
    max_age: timedelta | None | type[...] = ...,
    now: datetime | None = None,
) -> TokenClaims:
    """Verify `token` for `purpose` and return its claims.

    `max_age` defaults to the purpose's (7 days to confirm, forever to unsubscribe).
    Raises InvalidToken for anything that is not a valid, current token of this purpose.
    """
    limit = DEFAULT_MAX_AGE[purpose] if max_age is ... else max_age
    serializer = _serializer(secret, purpose)
    try:
        payload, signed_at = serializer.loads(token, return_timestamp=True)
    except (BadData, UnicodeError, ValueError, TypeError):
        raise InvalidToken() from None
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), str):
        raise InvalidToken()
    current = now or datetime.now(timezone.utc)
    if limit is not None and current - signed_at > limit:
        raise InvalidToken()
    if signed_at - current > timedelta(minutes=5):
        raise InvalidToken()
    return TokenClaims(payload["s"], payload.get("l"), payload.get("g"), signed_at)
