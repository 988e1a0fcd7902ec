"""Claimed rows waiting for a connection, with each mailbox provider's connection limit kept."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from ..store.ledger import ClaimedRow
from .pacing import DomainLimits

__all__ = ["Dispatcher"]


class Dispatcher:
    """Claimed rows waiting for a connection, with per-domain concurrency respected.

    Connections that found nothing to take wait in `get`; whatever may let one of them take a
    row (rows put, a domain's slot released, closing) wakes them all to look again. Nothing
    waits on a lock: a message's `release` costs a dictionary update, and a wake-up only when
    a connection waits.
    """

    def __init__(self, limits: DomainLimits):
        self.limits = limits
        self.ready: deque[ClaimedRow] = deque()
        self.parked: dict[str, deque[ClaimedRow]] = {}
        self.closed = False
        #: The connections waiting in `get`, each on a future of its own.
        self._waiting: list[asyncio.Future] = []

    def __len__(self) -> int:
        return len(self.ready) + sum(len(q) for q in self.parked.values())

    def _wake_all(self) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if not waiter.done():
                waiter.set_result(None)

    async def put(self, rows: list[ClaimedRow]) -> None:
        self.ready.extend(rows)
        self._wake_all()

    def _take(self) -> ClaimedRow | None:
        for domain, queue in self.parked.items():
            if queue and self.limits.try_acquire(domain):
                return queue.popleft()
        while self.ready:
            row = self.ready.popleft()
            domain = row.email.rpartition("@")[2]
            if self.limits.try_acquire(domain):
                return row
            self.parked.setdefault(domain, deque()).append(row)
        return None

    def take_nowait(self) -> ClaimedRow | None:
        """A row ready to send now, or None (never waits)."""
        return None if self.closed else self._take()

    async def get(self, finished: Callable[[], bool]) -> ClaimedRow | None:
        """The next row to send, or None when closed or when `finished()` says nothing more will come."""
        while True:
            if self.closed:
                return None
            row = self._take()
            if row is not None:
                return row
            if finished() and not len(self):
                return None
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():  # cancelled while waiting
                    waiter.cancel()

    def release(self, row: ClaimedRow) -> None:
        """`row` is done with (sent or not): its domain's slot is free for another."""
        self.limits.release(row.email.rpartition("@")[2])
        if self._waiting:
            self._wake_all()

    async def done_with(self, row: ClaimedRow) -> None:
        """`release`, for callers that await."""
        self.release(row)

    async def wake(self) -> None:
        self._wake_all()

    async def close(self) -> None:
        """Stop handing out rows (those not handed out stay, for `take_all`)."""
        self.closed = True
        self._wake_all()

    def take_all(self) -> list[ClaimedRow]:
        """Remove and return every row never handed out."""
        left = list(self.ready) + [r for q in self.parked.values() for r in q]
        self.ready.clear()
        self.parked.clear()
        return left
