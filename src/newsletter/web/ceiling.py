"""The installation-wide hourly ceiling on confirmation mails.

The consent log is the truth (`visitor.confirmations_sent_since`, which counts across every
process); it is re-read at most every REFRESH seconds and the mails this process records in
between are added, so a flood costs one COUNT query per REFRESH, not one per request.
When the ceiling is reached no further sign-up is recorded or mailed, and the log says so at
ERROR level (once per minute, with how many were turned away).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import anyio
import anyio.to_thread

from ..installation import Newsletter
from ..people import subscriptions as visitor

__all__ = ["ConfirmationCeiling"]


async def _in_thread(func: Callable[..., Any], *args: Any) -> Any:
    return await anyio.to_thread.run_sync(functools.partial(func, *args))

log = logging.getLogger(__name__)

REFRESH = timedelta(seconds=5)


class ConfirmationCeiling:
    """At most `limit` confirmation mails in any hour (0: no ceiling)."""

    def __init__(self, newsletter: Newsletter, limit: int,
                 db: Callable[..., Awaitable[Any]] | None = None):
        self.newsletter = newsletter
        #: How blocking library calls are run (the app's database threads).
        self.db = db or _in_thread
        self.limit = limit
        self._count = 0
        self._read_at: datetime | None = None
        self._refused = 0
        self._warned_at: datetime | None = None
        self._lock = threading.Lock()

    async def allows(self, now: datetime) -> bool:
        """Whether one more confirmation mail may go out now; logs loudly when not."""
        if self.limit <= 0:
            return True
        if self._read_at is None or now - self._read_at >= REFRESH or now < self._read_at:
            count = await self.db(visitor.confirmations_sent_since, self.newsletter, now - timedelta(hours=1))
            with self._lock:
                self._count, self._read_at = count, now
        with self._lock:
            if self._count < self.limit:
                return True
            self._refused += 1
            if self._warned_at is None or now - self._warned_at >= timedelta(minutes=1):
                log.error(
                    "SIGN-UP CEILING REACHED: %d confirmation mails in the last hour (signup_hourly_ceiling=%d); "
                    "%d sign-up(s) refused since the last warning. Visitors are told to check their inbox but "
                    "nothing is recorded or sent. If this is a real rush, raise signup_hourly_ceiling; "
                    "otherwise someone is flooding the form.",
                    self._count, self.limit, self._refused,
                )
                self._warned_at, self._refused = now, 0
            return False

    def note_sent(self) -> None:
        """Count a confirmation mail this process has just recorded."""
        with self._lock:
            self._count += 1
