"""Checks on messages as they go on the wire, shared by the tests of every kind of mail."""

from __future__ import annotations

import email
from email import policy

CRLF = b"\r\n"


def long_lines(data: bytes) -> list[bytes]:
    """The lines of `data` over the limits this project keeps: 998 octets in the headers (RFC 5322;
    a long link in List-Unsubscribe cannot be folded) and in 8bit parts, 76 characters in the
    7-bit ones (quoted-printable and base64, RFC 2045) and in the parts' own headers."""
    head, _, body = data.partition(CRLF + CRLF)
    too_long = [line for line in head.split(CRLF) if len(line) > 998]
    boundary = email.message_from_bytes(data, policy=policy.SMTP).get_boundary()
    chunks = body.split(b"--" + boundary.encode("ascii")) if boundary else [head + CRLF + CRLF + body]
    for chunk in chunks:
        part_head, blank, part_body = chunk.partition(CRLF + CRLF)
        if not blank:
            continue
        eight_bit = b"content-transfer-encoding: 8bit" in part_head.lower()
        limit = 998 if eight_bit else 76
        too_long += [line for line in part_head.split(CRLF) if len(line) > 76]
        too_long += [line for line in part_body.split(CRLF) if len(line) > limit]
    return too_long
