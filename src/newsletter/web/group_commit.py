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

The web app uses it for sign-ups (`visitor.record_signups`) and RFC 8058 one-click
unsubscribes (`visitor.unsubscribe_by_tokens`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["GroupCommit", "MAX_BATCH"]

log = logging.getLogger(__name__)

MAX_BATCH = 100
Q = TypeVar("Q")


class GroupCommit(Generic[Q]):
    """Batches calls of `write` (run through `db`, the app's database threads)."""

    def __init__(self, write: Callable[[list[Q]], list[Any]], db: Callable[..., Awaitable[Any]], *,
                 max_batch: int = MAX_BATCH):
        self.write = write
        self.db = db
        self.max_batch = max_batch
        self._waiting: list[tuple[Q, asyncio.Future]] = []
        self._writing = False

    async def submit(self, request: Q) -> Any:
        """This request's outcome once its transaction has committed; raises its error."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((request, future))
        if not self._writing:
            self._writing = True
            loop.create_task(self._write())
        return await future

    async def _write(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:self.max_batch], self._waiting[self.max_batch:]
                await self._write_batch(batch)
        finally:
            self._writing = False

    async def _write_batch(self, batch: list[tuple[Q, asyncio.Future]]) -> None:
        try:
            outcomes = await self.db(self.write, [request for request, _ in batch])
        except Exception as exc:  # the store failed the batch: nothing of it was written
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            log.warning("a batch of %d requests failed as a whole (%s); writing them one by one", len(batch), exc)
            for item in batch:
                await self._write_batch([item])
            return
        for (_, future), outcome in zip(batch, outcomes):
            _settle(future, outcome)


def _settle(future: asyncio.Future, outcome: Any) -> None:
    if future.done():  # the request went away (client disconnected): nothing to tell it
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
