"""The files beside an import: the addresses seen so far, and the rejected rows."""

from __future__ import annotations

import csv
import sqlite3

from .csvrows import RejectedRow
from .records import spreadsheet_safe

__all__ = ["SeenAddresses", "RejectFile"]


class SeenAddresses:
    """Addresses seen so far in the file, as 64-bit hashes in a private on-disk SQLite database.

    The hash is Python's own string hash (SipHash, salted per process, cached on the string):
    the table lives no longer than the import. A collision (about 1 in 10^8 for a million
    addresses) could only mislabel one row's count as a merged duplicate; what is written to
    the store never depends on it.
    """

    def __init__(self) -> None:
        # "" opens a private temporary database on disk, deleted when closed.
        self._db = sqlite3.connect("")
        self._db.execute("CREATE TABLE seen (h INTEGER PRIMARY KEY)")

    def add(self, emails: list[str]) -> list[bool]:
        """Record the addresses; for each, whether it had been recorded before."""
        keys = [hash(e) for e in emails]
        before: set[int] = set()
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            before.update(h for (h,) in self._db.execute(
                f"SELECT h FROM seen WHERE h IN ({','.join('?' * len(part))})", part))
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", ((k,) for k in keys))
        return [k in before for k in keys]

    def __enter__(self) -> "SeenAddresses":
        return self

    def __exit__(self, *exc: object) -> None:
        self._db.close()


class RejectFile:
    """The rejected rows as CSV: the file's header plus `line` and `reason`, cells spreadsheet-safe."""

    def __init__(self, path: str | None, header: list[str]):
        self._file = None
        if path:
            self._file = open(path, "w", encoding="utf-8", errors="surrogateescape", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._file)
            self._writer.writerow([*header, "line", "reason"])
            self._width = len(header)

    def write(self, row: RejectedRow) -> None:
        if self._file is None:
            return
        cells = list(row.cells[:self._width]) + [""] * (self._width - len(row.cells))
        self._writer.writerow([spreadsheet_safe(c) for c in cells]
                              + [row.line, spreadsheet_safe(f"{row.reason.value}: {row.detail}")])

    def __enter__(self) -> "RejectFile":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
