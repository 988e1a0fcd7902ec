"""How a send runs and what it reports: `SendOptions` in, `Progress` while it runs, `SendResult`
after; `run_sending` runs a send's coroutine on its own event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, TypeVar

from ..statuses import CampaignStatus
from ..store.ledger import ClaimedRow, Counts
from .pacing import Pace

__all__ = ["SendOptions", "Progress", "SendResult", "run_sending"]

T = TypeVar("T")


@dataclass(frozen=True)
class SendOptions:
    """How to send. Durations are timedeltas; `None` limits mean unlimited."""

    concurrency: int = 8
    batch_size: int = 200
    pace: Pace = field(default_factory=Pace)
    #: First retry of a deferred message after this; doubling each time up to `defer_max`.
    defer_base: timedelta = timedelta(minutes=5)
    defer_max: timedelta = timedelta(hours=2)
    #: A `sending` claim older than this is taken over (its worker is presumed dead).
    stale_after: timedelta = timedelta(minutes=30)
    #: Seconds between looks for dead holders (a process on this host that is gone) while
    #: busy; a sender with nothing of its own left to claim looks every time it polls.
    dead_check_every: float = 5.0
    #: Pause when more than this share of the last `failure_window` outcomes failed.
    failure_threshold: float = 0.5
    failure_window: int = 100
    #: Connection attempts (with doubling backoff from `reconnect_base` seconds) before pausing.
    reconnect_attempts: int = 5
    reconnect_base: float = 1.0
    #: Keep running while deferred rows wait for their retry (else pause, to be resumed later).
    wait_for_deferred: bool = True
    #: VERP hook: the envelope sender (return path) for a claimed row. Default from_address;
    #: `with_installation_hooks` sets the installation's (`Postmark.return_path`).
    envelope_sender: Callable[[ClaimedRow], str] | None = None
    #: DKIM hook: applied to each finished message.
    signer: Callable[[bytes], bytes] | None = None
    #: Longest wait (seconds) for a connection to write a message's MAIL FROM while the gate's
    #: transaction, which re-checked the recipient's consent, stays open (see `gate.Gate`).
    consent_hold: float = 2.0
    #: Gate rounds open at once on PostgreSQL (SQLite: always one). One: a round then carries a
    #: message for each working connection (8.0 at 8 connections, against 4.5 with two open),
    #: and its cost is nearly all per round (docs/benchmarks.md, "PostgreSQL sending, session 11").
    gate_rounds: int = 1
    #: Longest wait (seconds) of a gate round for the working connections' requests, so that one
    #: round carries a message for each rather than one round a message (see `gate.Gate`).
    gate_gather: float = 0.004
    #: Longest sleep while idle (waiting for deferred rows or other workers) before looking again.
    idle_poll: float = 5.0
    #: Seconds between looks at the campaign's status while it sends (a pause or a cancel
    #: from elsewhere stops it within this long, whatever it is waiting for).
    status_poll: float = 1.0
    #: Seconds between progress reports.
    progress_every: float = 0.5


class Progress(NamedTuple):
    """Where a send stands; `rate` in messages/s (this worker), `eta` in seconds or None."""

    sent: int
    deferred: int
    failed: int
    skipped: int
    remaining: int
    rate: float
    eta: float | None
    note: str = ""


class SendResult(NamedTuple):
    """A campaign's state after a sender's run: `reason` says what stopped it, in words that
    name no command; `next_due` is when its earliest deferred row may be tried again."""

    status: CampaignStatus
    counts: Counts
    reason: str | None
    sent_now: int
    slug: str = ""
    next_due: datetime | None = None

    @property
    def paused(self) -> bool:
        return self.status is CampaignStatus.PAUSED


def run_sending(main: Awaitable[T]) -> T:
    """Run a send's coroutine to its end on a fresh event loop: uvloop's when it is installed
    (a faster loop for the many small reads and writes of K relay connections), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # an optional speed-up: asyncio's own loop works the same
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
