"""REST API tokens: each with a name, scopes and a rate limit; only its SHA-256 is stored.

    read         read lists, subscribers, segments, campaigns, suppressions, the event log
    subscribers  create, change, unsubscribe and erase subscribers; save segments
    send         create, schedule, send and pause campaigns

A token is `nlt_` and 43 characters of URL-safe base64 (256 random bits), shown once when it is
made. With that much randomness a fast hash is as safe as a slow one and lets each request be
checked with one indexed look-up. A revoked token is refused like an unknown one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from ..errors import ApiAccessDenied, InvalidField
from ..store import api_tokens as stored

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["SCOPES", "TokenGrant", "TokenLine", "create_token", "list_tokens", "revoke_token", "authenticate"]

SCOPES = ("read", "subscribers", "send")
PREFIX = "nlt_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class TokenGrant(NamedTuple):
    """What a presented token may do."""

    id: int
    name: str
    scopes: frozenset[str]
    per_minute: int


class TokenLine(NamedTuple):
    name: str
    prefix: str
    scopes: tuple[str, ...]
    per_minute: int
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def create_token(newsletter: Newsletter, name: str, scopes: Iterable[str], *, per_minute: int = 60) -> str:
    """Make a token; returns it (the only time it is seen). Raises InvalidField (a bad or used
    name, an unknown scope, no scope, a negative rate)."""
    wanted = sorted(set(scopes))
    if not _NAME.match(name or ""):
        raise InvalidField("name", "use lower-case letters, digits and hyphens (e.g. civicrm-sync)")
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise InvalidField("scope", f"choose one or more of {', '.join(SCOPES)}")
    if per_minute < 0:
        raise InvalidField("rate", "requests a minute must be 0 (no limit) or more")
    token = PREFIX + secrets.token_urlsafe(32)
    with newsletter.store.session() as session:
        if stored.find_token(session, name) is not None:
            raise InvalidField("name", f"a token {name!r} exists already")
        stored.add_token(session, name=name, token_hash=_hash(token), prefix=token[:8], scopes=wanted,
                         per_minute=per_minute, now=newsletter.clock())
    return token


def list_tokens(newsletter: Newsletter) -> list[TokenLine]:
    """Every token (never the token itself), by name."""
    with newsletter.store.reading() as session:
        return [TokenLine(t.name, t.prefix, tuple(t.scopes), t.per_minute, t.created_at, t.last_used_at,
                          t.revoked_at) for t in stored.all_tokens(session)]


def revoke_token(newsletter: Newsletter, name: str) -> bool:
    """Revoke a token at once; False when it was revoked already. Raises InvalidField (no such token)."""
    with newsletter.store.session() as session:
        token = stored.find_token(session, name)
        if token is None:
            raise InvalidField("name", f"there is no token {name!r}")
        if token.revoked_at is not None:
            return False
        token.revoked_at = newsletter.clock()
        return True


def authenticate(newsletter: Newsletter, presented: str | None) -> TokenGrant:
    """The grant of a presented token (its use recorded). Raises ApiAccessDenied("token") for a
    missing, unknown or revoked token."""
    if not presented or not presented.startswith(PREFIX) or len(presented) > 200:
        raise ApiAccessDenied("token")
    with newsletter.store.session() as session:
        token = stored.token_by_hash(session, _hash(presented))
        if token is None or token.revoked_at is not None:
            raise ApiAccessDenied("token")
        stored.note_use(session, token.id, newsletter.clock())
        return TokenGrant(token.id, token.name, frozenset(token.scopes), token.per_minute)
