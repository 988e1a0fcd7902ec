"""VERP return paths: an envelope sender that says which mail, to whom, a bounce is for.

With a bounce address `bounces@news.example.org`, the message for one subscriber goes out with
the envelope sender `bounces+<ref>@news.example.org`; a bounce comes back to that address, so
it identifies its recipient without anyone parsing its body. The reference names the kind of
mail (`kinds.MailKind`), the campaign when the mail belongs to one, and the subscriber's key
(empty for a test send, which goes to staff).

The reference is opaque and signed, so nobody can forge a bounce that suppresses someone
else: it is the payload encrypted SIV-style — a 64-bit HMAC-SHA256 tag of the payload, then
the payload XORed with an HMAC-derived keystream seeded by that tag — written in lower-case
base32. Lower case because some MTAs fold local parts to lower case, and base32 survives that;
64 bits because a forger gets one guess per mail sent, and the local part must stay within
RFC 5321's 64 characters. Verification compares tags in constant time.

Payloads: a version byte (its top bit says the key is raw bytes), then for version 1, a
campaign's mail: the campaign id (varint) and the key; for version 2, any other kind: the
kind's code, the campaign id + 1 or 0 for none (varint), and the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import NamedTuple

from ..errors import InvalidVerp
from .kinds import MailKind

__all__ = ["VerpReference", "verp_address", "read_verp", "is_verp_address", "MAX_LOCAL_PART", "DELIMITER"]

#: RFC 5321 §4.5.3.1.1: the longest local part every MTA must accept.
MAX_LOCAL_PART = 64
#: Postfix's and Exim's usual `recipient_delimiter`.
DELIMITER = "+"
_TAG_BYTES = 8
_CAMPAIGN_VERSION = 1
_KIND_VERSION = 2
#: Flag bit: the subscriber key is the base64url text of raw bytes (what `new_subscriber_key` makes).
_RAW_KEY = 0x80
#: The kinds' codes in version 2 payloads; a code, once given, is never reused.
_KIND_CODES = {MailKind.CONFIRMATION: 1, MailKind.WELCOME: 2, MailKind.CATCH_UP: 3, MailKind.TEST: 4, MailKind.STAFF: 5,
               MailKind.DIGEST: 6}
_KINDS_BY_CODE = {code: kind for kind, code in _KIND_CODES.items()}


class VerpReference(NamedTuple):
    """What a VERP address says: which campaign (None: a mail of no campaign), whom, what kind."""

    campaign_id: int | None
    subscriber_key: str
    kind: MailKind = MailKind.CAMPAIGN


def _keys(secret: bytes) -> tuple[bytes, bytes]:
    """Separate MAC and keystream keys derived from the installation secret."""
    mac_key = hmac.new(secret, b"newsletter/verp/mac", hashlib.sha256).digest()
    enc_key = hmac.new(secret, b"newsletter/verp/enc", hashlib.sha256).digest()
    return mac_key, enc_key


def _keystream(enc_key: bytes, tag: bytes, length: int) -> bytes:
    stream = b""
    counter = 0
    while len(stream) < length:
        stream += hmac.new(enc_key, tag + bytes([counter]), hashlib.sha256).digest()
        counter += 1
    return stream[:length]


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes) -> tuple[int, int]:
    """(value, bytes used); raises ValueError when the data ends inside the number."""
    value = shift = 0
    for i, byte in enumerate(data[:10]):
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    raise ValueError("truncated number")


def _key_bytes(subscriber_key: str) -> tuple[int, bytes]:
    """(flag, bytes): raw bytes when the key is canonical base64url, else its UTF-8 text."""
    try:
        raw = base64.urlsafe_b64decode(subscriber_key + "=" * (-len(subscriber_key) % 4))
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == subscriber_key and raw:
            return _RAW_KEY, raw
    except (binascii.Error, ValueError):
        pass
    return 0, subscriber_key.encode("utf-8")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    upper = text.upper()
    return base64.b32decode(upper + "=" * (-len(upper) % 8))


def _payload(campaign_id: int | None, subscriber_key: str, kind: MailKind) -> bytes:
    flag, key = _key_bytes(subscriber_key)
    if kind is MailKind.CAMPAIGN:
        if campaign_id is None:
            raise ValueError("a campaign's mail needs its campaign_id")
        return bytes([_CAMPAIGN_VERSION | flag]) + _varint(campaign_id) + key
    return bytes([_KIND_VERSION | flag, _KIND_CODES[kind]]) + _varint(0 if campaign_id is None else campaign_id + 1) + key


def verp_address(secret: bytes, bounce_address: str, campaign_id: int | None, subscriber_key: str, *,
                 kind: MailKind = MailKind.CAMPAIGN, delimiter: str = DELIMITER) -> str:
    """The envelope sender for one mail of `kind` to one subscriber: `local+<ref>@domain`.

    `campaign_id` is required for a campaign's mail, optional (None) for the other kinds.
    Deterministic: the same inputs give the same address (a re-send after a crash keeps it).
    Raises ValueError when `bounce_address` has no domain, `campaign_id` is negative or
    missing, or the local part would exceed 64 characters (choose a shorter bounce address).
    """
    local, at, domain = bounce_address.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"the bounce address {bounce_address!r} must look like bounces@example.org")
    if campaign_id is not None and campaign_id < 0:
        raise ValueError("campaign_id must not be negative")
    payload = _payload(campaign_id, subscriber_key, kind)
    mac_key, enc_key = _keys(secret)
    tag = hmac.new(mac_key, payload, hashlib.sha256).digest()[:_TAG_BYTES]
    ref = _b32(tag + _xor(payload, _keystream(enc_key, tag, len(payload))))
    new_local = f"{local}{delimiter}{ref}"
    if len(new_local) > MAX_LOCAL_PART:
        raise ValueError(
            f"the VERP local part would be {len(new_local)} characters (at most {MAX_LOCAL_PART}); "
            f"use a shorter bounce address than {bounce_address!r}"
        )
    return f"{new_local}@{domain}"


def read_verp(secret: bytes, address: str, *, delimiter: str = DELIMITER) -> VerpReference:
    """The reference a VERP address carries: (campaign_id, subscriber_key, kind).

    Accepts the address in any letter case and in angle brackets. Raises InvalidVerp for
    anything that is not an untampered reference made with this secret.
    """
    text = address.strip().strip("<>").strip()
    local = text.rpartition("@")[0]
    ref = local.rpartition(delimiter)[2] if delimiter in local else ""
    try:
        data = _unb32(ref)
    except (binascii.Error, ValueError):
        raise InvalidVerp(address) from None
    if len(data) < _TAG_BYTES + 2 or _b32(data) != ref.lower():
        # The second test refuses non-canonical spellings (stray padding bits): one reference, one address.
        raise InvalidVerp(address)
    tag, body = data[:_TAG_BYTES], data[_TAG_BYTES:]
    mac_key, enc_key = _keys(secret)
    payload = _xor(body, _keystream(enc_key, tag, len(body)))
    expected = hmac.new(mac_key, payload, hashlib.sha256).digest()[:_TAG_BYTES]
    if not hmac.compare_digest(tag, expected):
        raise InvalidVerp(address)
    try:
        return _read_payload(payload)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        raise InvalidVerp(address) from None


def _read_payload(payload: bytes) -> VerpReference:
    version, start = payload[0] & 0x7F, 1
    if version == _CAMPAIGN_VERSION:
        kind = MailKind.CAMPAIGN
        campaign_id, used = _read_varint(payload[start:])
    elif version == _KIND_VERSION:
        kind = _KINDS_BY_CODE[payload[start]]
        start += 1
        stored, used = _read_varint(payload[start:])
        campaign_id = stored - 1 if stored else None
    else:
        raise ValueError("unknown version")
    key = payload[start + used:]
    if payload[0] & _RAW_KEY:
        subscriber_key = base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")
    else:
        subscriber_key = key.decode("utf-8")
    return VerpReference(campaign_id, subscriber_key, kind)


def is_verp_address(address: str, bounce_address: str, *, delimiter: str = DELIMITER) -> bool:
    """Whether `address` has the shape `local+something@domain` of `bounce_address` (case-insensitive).

    Says nothing about the signature: `read_verp` checks that.
    """
    local, _, domain = bounce_address.strip().lower().rpartition("@")
    text = address.strip().strip("<>").strip().lower()
    return text.startswith(f"{local}{delimiter}") and text.endswith(f"@{domain}")
