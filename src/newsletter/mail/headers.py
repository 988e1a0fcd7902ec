"""Header values, encoded and folded one way for every kind of mail.

User data never reaches a header unencoded: every value is checked for CR, LF and NUL before
it is written (`UnsafeHeaderValue`), display names become an atom, a quoted string or RFC 2047
encoded words, and text with anything beyond ASCII becomes encoded words.

The encoded words are base64 UTF-8, at most 75 characters, each holding whole characters and
the spaces between them, folded with CRLF + space. RFC 2047 tells decoders to drop the white
space *between* two encoded words, so no space may sit there: CPython's own folder (3.11–3.13)
puts it there, and a long Arabic subject then arrives with words run together. ASCII text is
folded at its spaces. Every line is at most 78 characters (an address or a word of ASCII too
long to fold aside).
"""

from __future__ import annotations

import base64
import hmac
import re
from email.utils import getaddresses

from ..config import Config
from ..keyed_hash import KeyedHash

__all__ = [
    "UnsafeHeaderValue",
    "check_value",
    "format_address",
    "format_addresses",
    "list_id",
    "text_header",
    "message_id_domain",
    "message_id_for",
    "MessageIds",
    "unsubscribe_mailto",
]

CRLF = "\r\n"
_MAX_LINE = 78
_WORD_LINE = 76  # encoded words: RFC 2047's limit for a line that holds them
_WORD_OVERHEAD = len("=?utf-8?b?") + len("?=")
# RFC 5322 atext plus space: a display name of these needs no quoting.
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: What an address may not hold in a header of ours.
_ADDRESS_PUNCTUATION = re.compile(r'[<>,;" ]')


class UnsafeHeaderValue(ValueError):
    """A value meant for a header contains CR, LF or NUL (it would start a header of its own)."""


def check_value(value: str, what: str) -> str:
    """`value` unchanged. Raises UnsafeHeaderValue when it holds CR, LF or NUL."""
    # Three substring tests (memchr each) cost a few dozen instructions where the regex's
    # character class costs ~25 a character: five values a message, URLs of 150 characters.
    if "\r" in value or "\n" in value or "\0" in value:
        raise UnsafeHeaderValue(f"{what} contains a line break or NUL: {value!r}")
    return value


def _encoded_words(text: str, first_room: int) -> str:
    """`text` as encoded words, folded; the first line has `first_room` characters for its word."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    room = max(4, (first_room - _WORD_OVERHEAD) // 4) * 3
    for char in text:
        n = len(char.encode("utf-8"))
        if size + n > room and chunk:
            words.append("".join(chunk))
            chunk, size = [], 0
            room = (_WORD_LINE - 1 - _WORD_OVERHEAD) // 4 * 3  # after the folding space
        chunk.append(char)
        size += n
    if chunk:
        words.append("".join(chunk))
    return (CRLF + " ").join(f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words)


def _fold_ascii(text: str, first_room: int) -> str:
    """`text` folded before spaces so that lines stay within 78 characters where it can be."""
    lines: list[str] = []
    line, room = "", first_room
    for i, word in enumerate(text.split(" ")):
        candidate = word if i == 0 else f"{line} {word}"
        if i and word and line.strip() and len(candidate) > room:
            lines.append(line)
            line, room = " " + word, _MAX_LINE
        else:
            line = candidate
    lines.append(line)
    return CRLF.join(lines)


def _needs_words(text: str) -> bool:
    return not text.isascii() or "=?" in text or any(len(w) > 900 for w in text.split(" "))


def text_header(name: str, value: str) -> str:
    """`Name: value` and its line end, the value encoded and folded. Raises UnsafeHeaderValue."""
    check_value(value, name)
    room = _MAX_LINE - len(name) - 2
    if _needs_words(value):
        folded = _encoded_words(value, min(room, _WORD_LINE - len(name) - 2))
    else:
        folded = _fold_ascii(value, room)
    return f"{name}: {folded}{CRLF}"


def _phrase(name: str, first_room: int) -> str:
    if _ATOM_PHRASE.fullmatch(name) and "  " not in name:
        return name
    if _PRINTABLE_ASCII.fullmatch(name) and len(name) < 60 and "=?" not in name:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return _encoded_words(name, first_room)


def _with_angle(phrase: str, inside: str, prefix: int) -> str:
    """`phrase <inside>`, the angle part on a line of its own when the last line would be long.

    `prefix` is what precedes the phrase on its first line (the header's name, colon, space).
    """
    head, newline, last = phrase.rpartition("\n")
    used = len(last) + (0 if newline else prefix)
    joiner = f"{CRLF} " if used + len(inside) + 3 > _MAX_LINE else " "
    return f"{phrase}{joiner}<{inside}>"


def format_address(name: str, address: str, *, header: str = "To") -> str:
    """`Name <address>` for the header `header`, the name encoded so that it cannot inject anything.

    Returns just the address when `name` is empty. Control characters in a name become spaces.
    Raises UnsafeHeaderValue if the address contains CR, LF, NUL or header punctuation.
    """
    check_value(address, "address")
    if _ADDRESS_PUNCTUATION.search(address):
        raise UnsafeHeaderValue(f"address contains characters not allowed here: {address!r}")
    # A name never needs control characters; the store refuses them, and here they become spaces.
    name = _CONTROL.sub(" ", name).strip()
    if not name:
        return address
    return _with_angle(_phrase(name, _WORD_LINE - len(header) - 2), address, len(header) + 2)


def format_addresses(value: str, *, header: str) -> str:
    """A configured address list (`a@example.org, Office <b@example.org>`) written as
    `format_address` writes each. Raises UnsafeHeaderValue."""
    check_value(value, header)
    pairs = [(n, a) for n, a in getaddresses([value]) if a]
    if not pairs:
        raise UnsafeHeaderValue(f"{header} holds no address: {value!r}")
    return f",{CRLF} ".join(format_address(n, a, header=header) for n, a in pairs)


def list_id(name: str, slug: str, domain: str) -> str:
    """The List-Id value `Name <slug.domain>` (RFC 2919), the name encoded like a display name."""
    inside = check_value(f"{slug}.{domain}", "list id")
    name = _CONTROL.sub(" ", check_value(name, "list name")).strip()
    prefix = len("List-Id: ")
    return _with_angle(_phrase(name, _WORD_LINE - prefix), inside, prefix) if name else f"<{inside}>"


def message_id_domain(config: Config) -> str:
    return config.from_address.rpartition("@")[2] or "localhost"


def message_id_for(secret: bytes, campaign_slug: str, subscriber_id: int, domain: str) -> str:
    """The Message-ID of one campaign's mail to one subscriber, with angle brackets.

    Deterministic (a re-send after a crash carries the same one) and opaque: an HMAC of the
    campaign and subscriber under the installation's secret, so it reveals neither.
    """
    digest = hmac.digest(secret, f"message-id\0{campaign_slug}\0{subscriber_id}".encode(), "sha256")
    return f"<{digest.hex()[:40]}@{domain}>"


class MessageIds:
    """`message_id_for(secret, campaign_slug, id, domain)` for one campaign's many subscribers,
    cheaply: the HMAC keyed and fed the campaign's part once (`KeyedHash`)."""

    __slots__ = ("_domain", "_mac")

    def __init__(self, secret: bytes, campaign_slug: str, domain: str):
        self._mac = KeyedHash(secret, "sha256", f"message-id\0{campaign_slug}\0".encode())
        self._domain = domain

    def __call__(self, subscriber_id: int) -> str:
        return f"<{self._mac.hexdigest(str(subscriber_id).encode())[:40]}@{self._domain}>"


def unsubscribe_mailto(config: Config, token: str) -> str:
    """The mailto: URL of List-Unsubscribe: a mail to it with this subject unsubscribes (read
    from bounce_mailbox by `bounces.requests`); "" when no mailbox is read (not advertised)."""
    address = config.mailto_address
    return f"mailto:{address}?subject=unsubscribe%20{token}" if address else ""
