"""HMAC (RFC 2104) of many short messages under one key, for the values a send makes per message
(the link tokens' signatures, the Message-ID).

`hmac.new(key, digestmod=…).copy()` per message runs three Python methods of `hmac.HMAC` around
OpenSSL's; here the keyed inner and outer hash states are made once, by the RFC's construction,
and each message costs two state copies, two updates and two digests, all in C. The digest is
the same as `hmac.digest(key, prefix + message, name)` (tests/test_keyed_hash.py).
"""

from __future__ import annotations

import hashlib

__all__ = ["KeyedHash"]

_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class KeyedHash:
    """HMAC-`name` (a hashlib name: "sha1", "sha256") under `key` of `prefix` + each message."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, name: str, prefix: bytes = b""):
        block = hashlib.new(name).block_size
        if len(key) > block:
            key = hashlib.new(name, key).digest()
        key = key.ljust(block, b"\0")
        self._inner, self._outer = (hashlib.new(name, key.translate(pad)) for pad in (_IPAD, _OPAD))
        self._inner.update(prefix)

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()
