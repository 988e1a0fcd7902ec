"""Transfer encodings of body parts that are the same for everyone but a few short values.

A part is split at its per-recipient values once per variant (`EncodedPart(pieces)`), its
literal pieces are encoded once, and for each recipient only the values are encoded and the
bytes joined (`EncodedPart.write`). The decoded part is exactly the pieces and values joined.

Each part gets quoted-printable or base64, whichever is smaller for it, decided once from its
pieces: quoted-printable writes every non-ASCII byte as three (Arabic text nearly triples),
base64 costs a third on everything. Where the relay takes 8-bit mail (`eight_bit=True`), a
part that is not plain ASCII goes out as it is, in 8bit (RFC 6152), whenever its lines with
the recipient's values fit in 998 octets; otherwise that recipient's part falls back to the
smaller 7-bit encoding.

- Quoted-printable: every piece starts a line and, unless it ends with a line break, ends with
  a soft line break (`=\\r\\n`), which decodes to nothing; values are encoded the same way.
- Base64: a group of three bytes must not straddle a join. Each piece is pre-encoded from
  offsets 0, 1 and 2 up to its last whole group; per recipient, the bytes between two
  pre-encoded runs (the previous piece's tail, the value, the next piece's head) are encoded
  together. Every run is whole groups on lines of at most 76 characters (so decoders that read
  line by line are served too); only the last run is padded. Text is in canonical form (CRLF
  line breaks) before it is encoded, as RFC 2045 asks.

Lines never exceed 76 characters in the 7-bit encodings and 998 octets in 8bit, and line ends
are CRLF only.

`write(values, out, stuffed=True)` gives the part as SMTP's DATA carries it (RFC 5321 §4.5.2:
a line that begins with a period gets one more), for a part that starts a line: the pieces are
stuffed once, and per recipient only where a value, or a piece after it, begins a line. Base64
has no periods; every quoted-printable piece and value begins a line; in 8bit a value holds no
line break, so only its first byte and the piece after it can begin one.
"""

from __future__ import annotations

import binascii
import enum
from collections.abc import Sequence

__all__ = ["TransferEncoding", "EncodedPart", "encoded_size"]

CRLF = b"\r\n"
_SOFT_BREAK = b"=\r\n"
_MAX_LINE = 76
_B64_LINE_BYTES = 57  # three-byte groups that make a 76-character line
_MAX_8BIT_LINE = 998  # octets before CRLF (RFC 5322 2.1.1)


class TransferEncoding(str, enum.Enum):
    """The Content-Transfer-Encoding of a body part."""

    QUOTED_PRINTABLE = "quoted-printable"
    BASE64 = "base64"
    EIGHT_BIT = "8bit"


def _dot_stuffed(data: bytes) -> bytes:
    """`data`, which starts a line, with one more period before every line that begins with one."""
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed[:1] == b"." else stuffed


def _canonical(text: str) -> bytes:
    """`text` as UTF-8 with CRLF line breaks."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n").encode("utf-8")


# -- quoted-printable ---------------------------------------------------------------------------

def _fix_last_line(encoded: bytes) -> bytes:
    """Make room for a soft break after the last line (a line may be 76 characters with it)."""
    start = encoded.rfind(b"\n") + 1
    last = encoded[start:]
    if len(last) <= _MAX_LINE - 1:
        return encoded
    cut = _MAX_LINE - 1
    while b"=" in last[cut - 2:cut]:  # never split an =XX escape
        cut -= 1
    return encoded[:start] + last[:cut] + _SOFT_BREAK + last[cut:]


def _qp_piece(text: str) -> bytes:
    """A literal piece, quoted-printable, CRLF line ends, ready to be followed by anything."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).replace(b"\n", CRLF)
    if not encoded or encoded.endswith(CRLF):
        return encoded
    return _fix_last_line(encoded) + _SOFT_BREAK


def _qp_value(value: str) -> bytes:
    """A per-recipient value, quoted-printable (line breaks encoded too), followed by a soft break."""
    if not value:
        return b""
    encoded = binascii.b2a_qp(value.encode("utf-8"), quotetabs=False, istext=False, header=False)
    return _fix_last_line(encoded.replace(b"=\n", _SOFT_BREAK)) + _SOFT_BREAK


# -- base64 -----------------------------------------------------------------------------------

def _b64_lines(data: bytes) -> bytes:
    """`data` in base64 lines of at most 76 characters, each ending with CRLF ("" for no data).

    Whole groups unless `data` is the part's last run, which is padded.
    """
    if not data:
        return b""
    text = binascii.b2a_base64(data, newline=False)
    if len(text) <= _MAX_LINE:
        return text + CRLF
    return b"".join([text[i:i + _MAX_LINE] + CRLF for i in range(0, len(text), _MAX_LINE)])


def _b64_size(n: int) -> int:
    """Bytes of `n` bytes in base64 lines of 76 characters with CRLF."""
    chars = -(-n // 3) * 4
    return chars + 2 * -(-chars // _MAX_LINE)


def _base64_piece(data: bytes) -> tuple[bytes, tuple[tuple[bytes, bytes], ...]]:
    """(the piece, its runs): runs[k] is the piece from offset k to its last whole group,
    encoded, and the bytes after it; for each offset 0, 1 and 2 the piece has."""
    runs = []
    for head in range(min(3, len(data) + 1)):
        end = head + (len(data) - head) // 3 * 3
        runs.append((_b64_lines(data[head:end]), data[end:]))
    return data, tuple(runs)


# -- 8bit -----------------------------------------------------------------------------------------

def _edges(piece: bytes) -> tuple[int, int, bool]:
    """(length of the first line, of the last line, whether the piece holds a line break)."""
    first = piece.find(CRLF)
    if first < 0:
        return len(piece), len(piece), False
    return first, len(piece) - piece.rfind(CRLF) - 2, True


def _inner_lines_fit(piece: bytes) -> bool:
    """True when the piece's whole lines (all but its last, unfinished one) fit in 998 octets."""
    return all(len(line) <= _MAX_8BIT_LINE for line in piece.split(CRLF)[:-1])


def _fits(edges: Sequence[tuple[int, int, bool]], values: Sequence[bytes]) -> bool:
    """True when the pieces (of these `edges`) joined with `values` make no line over 998 octets."""
    line = edges[0][1]
    for value, (first, last, broken) in zip(values, edges[1:]):
        if b"\r" in value or b"\n" in value:
            return False
        line += len(value) + first
        if line > _MAX_8BIT_LINE:
            return False
        if broken:
            line = last
    return line <= _MAX_8BIT_LINE


# -- parts ----------------------------------------------------------------------------------------

class EncodedPart:
    """A body part as literal pieces with a per-recipient value between each two, pre-encoded.

    `encoding` is chosen by size when not given; `eight_bit=True` allows 8bit for a part that is
    not plain ASCII. `write(values, out)` appends the part's bytes for one recipient (`len(values)`
    must be `len(pieces) - 1`) and returns the encoding it used: an 8bit part falls back to the
    smaller 7-bit encoding for a recipient whose values would make a line over 998 octets.
    `ascii` is True when the literal pieces are plain ASCII.
    """

    __slots__ = ("encoding", "size", "ascii", "_qp", "_qp_stuffed", "_b64", "_raw", "_raw_stuffed", "_edges",
                 "_fallback")

    def __init__(self, pieces: Sequence[str], encoding: TransferEncoding | None = None, *,
                 eight_bit: bool = False):
        canonical = tuple(_canonical(p) for p in pieces)
        self.ascii = all(p.isascii() for p in canonical)
        self._raw: tuple[bytes, ...] = ()
        self._raw_stuffed: tuple[bytes, ...] = ()
        self._fallback: EncodedPart | None = None
        if encoding is TransferEncoding.EIGHT_BIT or (encoding is None and eight_bit and not self.ascii):
            edges = tuple(map(_edges, canonical))
            if all(map(_inner_lines_fit, canonical)) and not any(b"\0" in p for p in canonical):
                self.encoding = TransferEncoding.EIGHT_BIT
                self.size = sum(map(len, canonical))
                self._raw, self._edges = canonical, edges
                # A piece's first byte begins a line or not depending on the values before it.
                self._raw_stuffed = tuple(p.replace(b"\r\n.", b"\r\n..") for p in canonical)
                self._qp = self._qp_stuffed = self._b64 = ()
                self._fallback = EncodedPart(pieces)
                return
            encoding = None
        qp = tuple(_qp_piece(p) for p in pieces)
        qp_size = sum(map(len, qp))
        b64_size = _b64_size(sum(map(len, canonical)))
        if encoding is None:
            encoding = TransferEncoding.BASE64 if b64_size < qp_size else TransferEncoding.QUOTED_PRINTABLE
        self.encoding = encoding
        #: Bytes of the literal pieces as encoded (values not counted).
        self.size = b64_size if encoding is TransferEncoding.BASE64 else qp_size
        self._qp = qp if encoding is TransferEncoding.QUOTED_PRINTABLE else ()
        self._qp_stuffed = tuple(map(_dot_stuffed, self._qp))  # each piece begins a line
        self._b64 = tuple(map(_base64_piece, canonical)) if encoding is TransferEncoding.BASE64 else ()

    def write(self, values: Sequence[str], out: list[bytes], *, stuffed: bool = False) -> TransferEncoding:
        """Append the part filled with `values` (one between each two pieces), encoded; the
        encoding used. `stuffed`: dot-stuffed for SMTP's DATA (the part begins a line)."""
        if self.encoding is TransferEncoding.EIGHT_BIT:
            # No canonical form needed: a value with any line break falls back (`_fits`).
            raw = [v.encode("utf-8") for v in values]
            if not _fits(self._edges, raw):
                return self._fallback.write(values, out, stuffed=stuffed)
            if stuffed:
                self._write_stuffed_8bit(raw, out)
                return TransferEncoding.EIGHT_BIT
            pieces = self._raw
            out.append(pieces[0])
            for value, piece in zip(raw, pieces[1:]):
                out.append(value)
                out.append(piece)
            return TransferEncoding.EIGHT_BIT
        if self.encoding is TransferEncoding.QUOTED_PRINTABLE:
            if stuffed:
                pieces = self._qp_stuffed
                out.append(pieces[0])
                for value, piece in zip(values, pieces[1:]):
                    out.append(_dot_stuffed(_qp_value(value)))
                    out.append(piece)
                return TransferEncoding.QUOTED_PRINTABLE
            pieces = self._qp
            out.append(pieces[0])
            for value, piece in zip(values, pieces[1:]):
                out.append(_qp_value(value))
                out.append(piece)
            return TransferEncoding.QUOTED_PRINTABLE
        first, runs = self._b64[0]
        run, pending = runs[0]  # pending: bytes not yet encoded (a tail, a value, its neighbours)
        out.append(run)
        for value, (data, runs) in zip(values, self._b64[1:]):
            pending += value.encode("utf-8")
            head = -len(pending) % 3
            if head > len(data):  # too short to reach a group boundary: carry it on
                pending += data
                continue
            out.append(_b64_lines(pending + data[:head]))
            run, pending = runs[head]
            out.append(run)
        out.append(_b64_lines(pending))
        return TransferEncoding.BASE64

    def _write_stuffed_8bit(self, raw: Sequence[bytes], out: list[bytes]) -> None:
        """The 8bit part filled with `raw` (values with no line break), dot-stuffed: the pieces'
        inner lines were stuffed once; a period that begins a piece or a value here begins a
        line when what came before it in the part ended one."""
        pieces = self._raw_stuffed
        segment = pieces[0]
        if segment[:1] == b".":
            out.append(b".")
        out.append(segment)
        line_start = not segment or segment[-1:] == b"\n"
        for value, piece in zip(raw, pieces[1:]):
            for segment in (value, piece):
                if segment:
                    if line_start and segment[:1] == b".":
                        out.append(b".")
                    out.append(segment)
                    line_start = segment[-1:] == b"\n"


def encoded_size(text: str) -> int:
    """Bytes of `text` as a body part goes out: UTF-8, in the smaller of its two encodings."""
    return EncodedPart([text]).size
