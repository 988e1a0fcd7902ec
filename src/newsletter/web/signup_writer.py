"""Group commit of the sign-up form: the sign-ups that arrive while the database is busy are
recorded together, in one transaction (`visitor.record_signups`).

A request awaits `SignupWriter.record(...)`, which answers exactly what `visitor.record_signup`
would (its SignupRecord, or the error it would raise). The first request finds the writer idle
and is written at once, alone; those that arrive while a write is in progress wait for it and
go together in the next one (at most MAX_BATCH). So under a light load nothing waits, and under
a heavy one each transaction, thread hop and commit is shared by many sign-ups. If the store
fails a batch as a whole, its sign-ups are retried one by one, each in its own transaction, so
that one bad request never costs the others theirs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .. import visitor
from ..consent import ConsentContext
from ..errors import NewsletterError
from ..service import Newsletter
from ..signups import SignupRequest

__all__ = ["SignupWriter", "MAX_BATCH"]

log = logging.getLogger("newsletter.web.signup_writer")

MAX_BATCH = 100


class SignupWriter:
    """Records sign-ups for the web app, batching those that arrive together."""

    def __init__(self, newsletter: Newsletter, db: Callable[..., Awaitable[Any]]):
        self.newsletter = newsletter
        #: How blocking library calls are run (the app's database threads).
        self.db = db
        self._waiting: list[tuple[SignupRequest, asyncio.Future]] = []
        self._writing = False

    async def record(self, email: str, name: str, language: str | None, list_slugs: list[str],
                     ctx: ConsentContext) -> visitor.SignupRecord:
        """`visitor.record_signup`, shared with the sign-ups around it; raises what it raises."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((SignupRequest(email, name, language, tuple(list_slugs), ctx), future))
        if not self._writing:
            self._writing = True
            asyncio.get_running_loop().create_task(self._write())
        return await future

    async def _write(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._write_batch(batch)
        finally:
            self._writing = False

    async def _write_batch(self, batch: list[tuple[SignupRequest, asyncio.Future]]) -> None:
        try:
            outcomes = await self.db(visitor.record_signups, self.newsletter, [request for request, _ in batch])
        except Exception as exc:  # the store failed the batch: nothing of it was recorded
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            log.warning("a batch of %d sign-ups failed as a whole (%s); recording them one by one", len(batch), exc)
            for item in batch:
                await self._write_batch([item])
            return
        for (_, future), outcome in zip(batch, outcomes):
            _settle(future, outcome)


def _settle(future: asyncio.Future, outcome: Any) -> None:
    if future.done():  # the request went away (client disconnected): nothing to tell it
        return
    if isinstance(outcome, (NewsletterError, Exception)):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
