"""Writing CSV that is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import TextIO

__all__ = ["spreadsheet_safe", "write_csv"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """The cell text, with a leading apostrophe when a spreadsheet would run it as a formula (OWASP)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_csv(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write a header and rows, every cell made spreadsheet-safe; returns the rows written."""
    writer = csv.writer(out)
    writer.writerow(header)
    n = 0
    for row in rows:
        writer.writerow([spreadsheet_safe(v) for v in row])
        n += 1
    return n
