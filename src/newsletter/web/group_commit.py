"""Group commit: requests that arrive while the database is busy are written together, in one
transaction.

`GroupCommit(write, db)` wraps a library function `write(requests) -> outcomes` that handles a
list of requests in one transaction and returns one outcome per request (an error returned as
a value concerns that request alone). A handler awaits `submit(request)` and gets its own
outcome, or its error raised. The first request finds the writer idle and is written at once,
alone; those that arrive while a write is in progress wait for it and go together in the next
one (at most `max_batch`). So under a light load nothing waits, and under a heavy one a
transaction, a thread hop and a commit are shared by many requests. Each request is answered
only after the transaction holding it has committed. If the store fails a batch as a whole,
its requests are written again one by one, so that one bad request never costs the others.

With `lanes` > 1, up to that many batches are written at once, each in its own transaction
(PostgreSQL, whose writers take row locks, not SQLite's one write lock). `key(request)` then
names what a request writes (for a sign-up, the canonical mailbox it reaches): a batch never
takes a request whose key a batch being written holds, so two transactions never write the
same person or count the same mailbox's re-send limits, and the requests of one key are
written one batch after the other, in the order they came. A request whose key is None
conflicts with nothing.

The web app uses it for sign-ups (`visitor.record_signups`, several lanes on PostgreSQL) and
RFC 8058 one-click unsubscribes (`visitor.unsubscribe_by_tokens`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["MAX_BATCH", "GroupCommit"]

log = logging.getLogger(__name__)

MAX_BATCH = 100
Q = TypeVar("Q")


class GroupCommit(Generic[Q]):
    """Batches calls of `write` (run through `db`, the app's database threads), at most `lanes`
    batches at once, no two of them holding requests of the same `key`."""

    def __init__(self, write: Callable[[list[Q]], list[Any]], db: Callable[..., Awaitable[Any]], *,
                 max_batch: int = MAX_BATCH, lanes: int = 1, key: Callable[[Q], Hashable | None] | None = None):
        if lanes > 1 and key is None:
            raise ValueError("several lanes need a key: two batches must never write the same thing")
        self.write = write
        self.db = db
        self.max_batch = max_batch
        self.lanes = lanes
        self.key = key
        self._waiting: list[tuple[Q, asyncio.Future, Hashable | None]] = []
        self._held: set[Hashable] = set()  # the keys of the batches being written
        self._running = 0

    async def submit(self, request: Q) -> Any:
        """This request's outcome once its transaction has committed; raises its error."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future, self.key(request) if self.key else None))
        self._start()
        return await future

    def _start(self) -> None:
        """Start batches of waiting requests while a lane is free and a request can go."""
        while self._running < self.lanes and self._waiting:
            batch = self._take()
            if not batch:
                return  # every waiting request's key is being written: the batch ending starts the next
            self._running += 1
            asyncio.get_running_loop().create_task(self._run(batch))

    def _take(self) -> list[tuple[Q, asyncio.Future, Hashable | None]]:
        """The next batch, in arrival order: up to max_batch requests whose keys no batch holds
        (those stay waiting, in their order); their keys are held from now."""
        if not self._held:
            batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
        else:
            batch, rest = [], []
            for item in self._waiting:
                (batch if len(batch) < self.max_batch and item[2] not in self._held else rest).append(item)
            self._waiting = rest
        self._held.update(k for _, _, k in batch if k is not None)
        return batch

    async def _run(self, batch: list[tuple[Q, asyncio.Future, Hashable | None]]) -> None:
        try:
            await self._write_batch(batch)
        finally:
            self._held.difference_update(k for _, _, k in batch if k is not None)
            self._running -= 1
            self._start()

    async def _write_batch(self, batch: list[tuple[Q, asyncio.Future, Hashable | None]]) -> None:
        try:
            outcomes = await self.db(self.write, [request for request, _, _ in batch])
        except Exception as exc:  # noqa: BLE001 (the store failed the batch: nothing of it was written)
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            log.warning("a batch of %d requests failed as a whole (%s); writing them one by one", len(batch), exc)
            for item in batch:
                await self._write_batch([item])
            return
        for (_, future, _), outcome in zip(batch, outcomes):
            _settle(future, outcome)


def _settle(future: asyncio.Future, outcome: Any) -> None:
    if future.done():  # the request went away (client disconnected): nothing to tell it
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
