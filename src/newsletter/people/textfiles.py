"""Text files of unknown encoding: which encoding a file is in, and a reader that counts bytes."""

from __future__ import annotations

import codecs
import io
import os
import re
from typing import BinaryIO

__all__ = ["CountingReader", "detect_encoding"]

_NOT_DECODED = re.compile(r"[\udc80-\udcff]")


class CountingReader(io.RawIOBase):
    """A binary file that counts the bytes read from it (for progress)."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001
        n = self.raw.readinto(buffer)
        self.bytes_read += n or 0
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def detect_encoding(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """"utf-8", unless the file is not valid UTF-8 and holds no UTF-8 sequence beyond ASCII at
    all: then "cp1252" (what Excel on Windows writes; it reads Latin-1 text the same). A file
    that mixes valid UTF-8 with other bytes stays "utf-8" (its unreadable rows are rejected).
    Reads the whole file once, in chunks."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    invalid = False
    with open(path, "rb") as raw:
        while True:
            data = raw.read(chunk)
            text = decoder.decode(data, final=not data)
            if text and not text.isascii():
                bad = len(_NOT_DECODED.findall(text))
                if len(text) - len(text.encode("ascii", "ignore")) > bad:
                    return "utf-8"  # real UTF-8 text: whatever else the file holds, it is UTF-8
                invalid = invalid or bad > 0
            if not data:
                break
    return "cp1252" if invalid else "utf-8"
