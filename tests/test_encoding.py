"""Body parts pre-encoded piece by piece decode to exactly the filled-in text, in both encodings."""

from __future__ import annotations

import base64
import binascii
import quopri

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.mail.encoding import EncodedPart, TransferEncoding, encoded_size

# No CR (the builder writes CRLF line ends; a lone CR becomes one), no surrogates.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=300)
VALUE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=120)


def encode(pieces: list[str], values: list[str], encoding: TransferEncoding | None = None) -> tuple[EncodedPart, bytes]:
    part = EncodedPart(pieces, encoding)
    out: list[bytes] = []
    part.write(values, out)
    return part, b"".join(out)


def decode(part: EncodedPart, data: bytes) -> str:
    if part.encoding is TransferEncoding.BASE64:
        raw = base64.b64decode(b"".join(data.split(b"\r\n")), validate=True)
    else:
        raw = quopri.decodestring(data)
    return raw.decode("utf-8").replace("\r\n", "\n")


def filled(pieces: list[str], values: list[str]) -> str:
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:]):
        out += [value, piece]
    return "".join(out)


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(TEXT, min_size=1, max_size=6), data=st.data(),
       encoding=st.sampled_from([TransferEncoding.BASE64, TransferEncoding.QUOTED_PRINTABLE, None]))
def test_pieces_and_values_decode_to_the_filled_text(pieces, data, encoding):
    values = data.draw(st.lists(VALUE, min_size=len(pieces) - 1, max_size=len(pieces) - 1))
    part, encoded = encode(pieces, values, encoding)
    assert decode(part, encoded) == filled(pieces, values)
    lines = encoded.split(b"\r\n")
    assert b"\n" not in encoded.replace(b"\r\n", b"") and b"\r" not in encoded.replace(b"\r\n", b"")
    assert all(len(line) <= 76 for line in lines)
    if part.encoding is TransferEncoding.BASE64:
        # Whole groups on every line, so that decoders reading line by line are served too.
        assert all(len(line) % 4 == 0 for line in lines)
        for line in lines:
            binascii.a2b_base64(line)
        assert b"=" not in b"".join(lines[:-2])  # padding only at the very end


def test_the_smaller_encoding_is_chosen_per_part():
    arabic = "<p>" + "المحكمة الجنائية الدولية " * 40 + "</p>"
    english = "<p>" + "The International Criminal Court " * 40 + "</p>"
    assert EncodedPart([arabic]).encoding is TransferEncoding.BASE64
    assert EncodedPart([english]).encoding is TransferEncoding.QUOTED_PRINTABLE
    for text in (arabic, english):
        qp, b64 = (encode([text], [], e)[1] for e in (TransferEncoding.QUOTED_PRINTABLE, TransferEncoding.BASE64))
        assert encoded_size(text) == min(len(qp), len(b64))


@pytest.mark.parametrize("value", ["", "a", "ab", "abc", "ليلى", "x" * 200])
def test_a_value_between_short_pieces_keeps_its_bytes(value):
    """Pieces shorter than a base64 group, and values of every length modulo three."""
    pieces = ["<a href=\"", "\">", "", "x", "</a>"]
    values = [value, value[::-1], value.upper(), value]
    part, data = encode(pieces, values, TransferEncoding.BASE64)
    assert decode(part, data) == filled(pieces, values)


# -- 8bit ----------------------------------------------------------------------------------------

def decode_as(used: TransferEncoding, data: bytes) -> str:
    if used is TransferEncoding.EIGHT_BIT:
        return data.decode("utf-8").replace("\r\n", "\n")
    if used is TransferEncoding.BASE64:
        return base64.b64decode(b"".join(data.split(b"\r\n")), validate=True).decode("utf-8").replace("\r\n", "\n")
    return quopri.decodestring(data).decode("utf-8").replace("\r\n", "\n")


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(TEXT, min_size=1, max_size=6), data=st.data(),
       long_line=st.integers(min_value=0, max_value=1200))
def test_eight_bit_parts_decode_to_the_filled_text_and_keep_lines_under_998(pieces, data, long_line):
    """8bit for a part that is not ASCII; a recipient whose values would make a line over 998
    octets gets the 7-bit encoding instead; either way the part decodes to the filled text."""
    pieces = [pieces[0] + "ا" * (long_line // 2), *pieces[1:]]
    values = [data.draw(VALUE) for _ in pieces[1:]]
    part = EncodedPart(pieces, eight_bit=True)
    out: list[bytes] = []
    used = part.write(values, out)
    wire = b"".join(out)
    assert decode_as(used, wire) == filled(pieces, values).replace("\r\n", "\n")
    limit = 998 if used is TransferEncoding.EIGHT_BIT else 76
    assert all(len(line) <= limit for line in wire.split(b"\r\n"))
    if all(p.isascii() for p in pieces):
        assert part.encoding is not TransferEncoding.EIGHT_BIT
    if used is not part.encoding:
        assert part.encoding is TransferEncoding.EIGHT_BIT and used is not TransferEncoding.EIGHT_BIT


def test_a_long_value_on_a_long_line_falls_back_for_that_recipient_only():
    pieces = ["مرحبا " + "x" * 900, "\n"]
    part = EncodedPart(pieces, eight_bit=True)
    assert part.encoding is TransferEncoding.EIGHT_BIT
    short, long = [], []
    assert part.write(["https://news.example.org/u/abc"], short) is TransferEncoding.EIGHT_BIT
    assert part.write(["https://news.example.org/u/" + "y" * 200], long) is not TransferEncoding.EIGHT_BIT
    assert decode_as(TransferEncoding.EIGHT_BIT, b"".join(short)).endswith("abc\n")
