"""Signed, purpose-bound tokens for the links we mail: confirm, unsubscribe, preferences, block.

A token carries a subscriber's random `key` (never a row id), optionally a list slug, and is
signed with the installation's secret and a per-purpose salt, so a token made for one purpose
never verifies for another. Verification is constant-time (itsdangerous compares with
`hmac.compare_digest`). Confirmation tokens expire; unsubscribe tokens never do.

Every failure — tampered, truncated, expired, wrong purpose, or another spelling of a valid
token (padding, stray characters, base64's slack bits) — raises the one `InvalidToken`: a link
is accepted exactly as it was mailed, so no variant of it can be told apart by a server.
"""

from __future__ import annotations

import binascii
import enum
import json
import re
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from itsdangerous import BadData, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode, int_to_bytes

from .errors import InvalidToken
from .keyed_hash import KeyedHash

__all__ = ["Purpose", "TokenClaims", "TokenIssuer", "issue_token", "read_token"]


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


#: What `issue_token` makes: payload (a leading "." when compressed), timestamp and signature,
#: each unpadded URL-safe base64.
_TOKEN_SHAPE = re.compile(r"\.?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def _is_canonical(token: str) -> bool:
    """True if `token` is spelt exactly as `issue_token` spells it (each part re-encodes to itself)."""
    if not _TOKEN_SHAPE.fullmatch(token):
        return False
    try:
        return all(base64_encode(base64_decode(part)).decode("ascii") == part for part in token.lstrip(".").split("."))
    except BadData:
        return False


def _serializer(secret: bytes, purpose: Purpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"newsletter/{purpose.value}")


def _payload(subscriber_key: str, list_slug: str | None, language: str | None) -> dict[str, str]:
    payload: dict[str, str] = {"s": subscriber_key}
    if list_slug:
        payload["l"] = list_slug
    if language:
        payload["g"] = language
    return payload


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
    payload = _payload(subscriber_key, list_slug, language)
    serializer = _serializer(secret, purpose)
    if now is not None:
        # itsdangerous stamps with time.time(); an injected clock stamps with ours.
        ts = int(now.timestamp())
        signer = serializer.make_signer(serializer.salt)
        signer.get_timestamp = lambda: ts  # type: ignore[method-assign]
        return signer.sign(serializer.dump_payload(payload)).decode("ascii")
    return serializer.dumps(payload)


#: Values that JSON writes as they are, between quotes (no escape needed).
_PLAIN = re.compile(r"[A-Za-z0-9_.-]*")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _urlsafe_b64(data: bytes) -> bytes:
    """itsdangerous' `base64_encode` (URL-safe, unpadded), without its three Python calls."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


class TokenIssuer:
    """`issue_token(secret, purpose, …, now=now)` for many subscribers, cheaply (the sender makes
    two per message).

    The same format (itsdangerous' URL-safe timed serializer, the same salt and key), with the
    key derived, the HMAC's keyed states made and the timestamp encoded once (`KeyedHash`). The payload's JSON is written by hand when every value
    is plain (letters, digits, `_.-`: what JSON writes unescaped), as the encoder writes it;
    other values go through the encoder. Short payloads are not offered to zlib, which never
    makes them shorter; `read_token` reads both.
    """

    def __init__(self, secret: bytes, purpose: Purpose, now: datetime):
        self._serializer = _serializer(secret, purpose)
        self._signer = self._serializer.make_signer(self._serializer.salt)
        stamp = int(now.timestamp())
        self._signer.get_timestamp = lambda: stamp  # type: ignore[method-assign]
        self._mac = KeyedHash(self._signer.derive_key(), "sha1")
        self._sep = self._signer.sep
        self._suffix = self._sep + base64_encode(int_to_bytes(stamp))
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        #: (list slug, language) -> the JSON after the key, or None when a value needs the encoder.
        self._tails: dict[tuple[str | None, str | None], str | None] = {}

    def _tail(self, list_slug: str | None, language: str | None) -> str | None:
        found = self._tails.get((list_slug, language), "")
        if found == "":
            if all(_PLAIN.fullmatch(v) for v in (list_slug, language) if v):
                found = ('"' + (f',"l":"{list_slug}"' if list_slug else "")
                         + (f',"g":"{language}"' if language else "") + "}")
            else:
                found = None
            self._tails[(list_slug, language)] = found
        return found

    def __call__(self, subscriber_key: str, *, list_slug: str | None = None, language: str | None = None) -> str:
        tail = self._tail(list_slug, language)
        if tail is not None and _PLAIN.fullmatch(subscriber_key):
            data = ('{"s":"' + subscriber_key + tail).encode("ascii")
        else:
            data = self._dumps(_payload(subscriber_key, list_slug, language)).encode("utf-8")
        if len(data) > 64:
            payload = _payload(subscriber_key, list_slug, language)
            return self._signer.sign(self._serializer.dump_payload(payload)).decode("ascii")
        value = _urlsafe_b64(data) + self._suffix
        return (value + self._sep + _urlsafe_b64(self._mac.digest(value))).decode("ascii")


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
    if not isinstance(token, str) or not _is_canonical(token):
        raise InvalidToken()
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
