"""The gate's tickets: how one claimed row passes the consent re-check before its MAIL FROM.

A connection hands the gate an `Admission` (the outcomes it has not yet recorded, and the row
it wants to send next) and waits on its `Ticket`: `decided` (skipped or go), then, after writing
MAIL FROM, `began`; it sends the message's data only once `committed` (see `sender.Sender`).
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from ..store.ledger import ClaimedRow, Outcome

__all__ = ["Ticket", "Admission"]


class Ticket:
    """A row's passage through the gate: `decided` (skipped or not), `began` (set by the
    connection once MAIL FROM is written), `committed` (the round's transaction)."""

    __slots__ = ("decided", "began", "committed", "skipped")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.decided = loop.create_future()
        self.began = loop.create_future()
        self.committed = loop.create_future()
        self.skipped: str | None = None

    def decide(self, skipped: str | None) -> None:
        self.skipped = skipped
        if not self.decided.done():
            self.decided.set_result(None)

    def mail_began(self) -> None:
        """MAIL FROM is written (or the attempt ended): the round may commit."""
        if not self.began.done():
            self.began.set_result(None)

    async def wait_committed(self) -> None:
        """Before the message's data: wait for the round's commit. Raises if it failed."""
        await asyncio.shield(self.committed)

    def commit(self) -> None:
        if not self.committed.done():
            self.committed.set_result(None)

    def fail(self, exc: BaseException) -> None:
        for future in (self.decided, self.committed):
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: nobody may wait for it


class Admission(NamedTuple):
    outcomes: list[Outcome]
    row: ClaimedRow | None
    ticket: Ticket
