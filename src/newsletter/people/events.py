"""The event log: every consent event of the installation, in order, for the REST API (and any
system that keeps in step by reading it: a cursor, `after`, instead of a date)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from ..store import events as stored

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["LogEvent", "event_log"]


class LogEvent(NamedTuple):
    id: int
    at: datetime
    event: str
    channel: str
    email: str
    list_slug: str | None
    source: str | None
    note: str | None


def event_log(newsletter: Newsletter, *, after: int = 0, limit: int = 100) -> list[LogEvent]:
    """Events with an id above `after`, oldest first, at most `limit` (1 to 1000)."""
    limit = max(1, min(limit, 1000))
    with newsletter.store.reading() as session:
        return [LogEvent(i, at, kind.value, channel.value, email, slug, source, note)
                for i, at, kind, channel, email, slug, source, note in stored.events_after(session, after,
                                                                                          limit=limit)]
