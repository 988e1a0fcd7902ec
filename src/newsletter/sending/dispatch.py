"""Claimed rows waiting for a connection, with each mailbox provider's connection limit kept."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from ..store.ledger import ClaimedRow
from .pacing import DomainLimits

__all__ = ["Dispatcher"]


class Dispatcher:
    """Claimed rows waiting for a connection, with per-domain concurrency respected."""

    def __init__(self, limits: DomainLimits):
        self.limits = limits
        self.ready: deque[ClaimedRow] = deque()
        self.parked: dict[str, deque[ClaimedRow]] = {}
        self.changed = asyncio.Condition()
        self.closed = False

    def __len__(self) -> int:
        return len(self.ready) + sum(len(q) for q in self.parked.values())

    async def put(self, rows: list[ClaimedRow]) -> None:
        async with self.changed:
            self.ready.extend(rows)
            self.changed.notify_all()

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
        async with self.changed:
            while True:
                if self.closed:
                    return None
                row = self._take()
                if row is not None:
                    return row
                if finished() and not len(self):
                    return None
                await self.changed.wait()

    async def done_with(self, row: ClaimedRow) -> None:
        async with self.changed:
            self.limits.release(row.email.rpartition("@")[2])
            self.changed.notify_all()

    async def wake(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def close(self) -> None:
        """Stop handing out rows (those not handed out stay, for `take_all`)."""
        async with self.changed:
            self.closed = True
            self.changed.notify_all()

    def take_all(self) -> list[ClaimedRow]:
        """Remove and return every row never handed out."""
        left = list(self.ready) + [r for q in self.parked.values() for r in q]
        self.ready.clear()
        self.parked.clear()
        return left
