"""CSV that is safe to open in a spreadsheet: written escaped, read back unescaped.

`spreadsheet_safe` puts an apostrophe before a cell a spreadsheet would run as a formula
(OWASP's advice); `spreadsheet_unescape` takes exactly that apostrophe off again, so that an
export imported back (`newsletter import`) gives the same addresses and names, not new people
called `'-ana@example.org`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import TextIO

__all__ = ["spreadsheet_safe", "spreadsheet_unescape", "write_csv"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """The cell text, with a leading apostrophe when a spreadsheet would run it as a formula (OWASP)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def spreadsheet_unescape(text: str) -> str:
    """The cell `spreadsheet_safe` escaped, as it was: a leading apostrophe goes when what
    follows it starts like a formula; any other text is returned as it is."""
    if text.startswith("'") and text[1:2] in _FORMULA_CHARS:
        return text[1:]
    return text


_FORMULA_CHARS = frozenset(_FORMULA_START)


def write_csv(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write a header and rows, every cell made spreadsheet-safe; returns the rows written."""
    writer = csv.writer(out)
    writer.writerow(header)
    n = 0
    for row in rows:
        writer.writerow([spreadsheet_safe(v) for v in row])
        n += 1
    return n
