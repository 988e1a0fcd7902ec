"""The gate: every message passes it just before its MAIL FROM, in rounds of one transaction.

A connection hands the gate an `Admission` (the outcomes it has not yet recorded, and the row
it wants to send next) and waits on its `Ticket`: `decided` (go, skipped, or not held), then,
after writing MAIL FROM, tells it (`mail_began`); it sends the message's data only once
`committed`.

A round's transaction writes the outcomes handed in, re-checks the consent of the rows about
to be sent (`rounds.recheck_rows`: skipped if it no longer holds) and whether this sender still
holds them (not held: another worker, presuming this one dead, took the row over, or it is
finished; the row is dropped, with no outcome here), and stays open until each admitted
message's MAIL FROM has been written to its connection (or `consent_hold` has passed). It holds
SQLite's write lock (PostgreSQL: share locks on the subscriber and subscription rows, key-share
locks on the outbox rows, which other workers' claims pass by) all that time, so an unsubscribe
either committed before the re-check — and the row is skipped — or commits after the message
was begun (none is begun after it), and no other worker takes a row over between its re-check
and its MAIL FROM. Connections send a message's data only after the round that admitted it
committed, and that round wrote the connection's previous outcome: after a crash at most one
message per connection can have been accepted without being recorded.

A round's cost is mostly fixed (a transaction, two hops to the database thread), so a round
should carry many messages. With few connections the requests would arrive one by one and each
start a round of its own; so a round first gathers: it waits until every connection that is
working (`working()`, those not waiting for rows to send) has handed in its request — they are
in lock-step then, each round carrying one message per connection —, or until `gather` seconds
have passed since the first request, so that a slow relay connection holds nobody up for long.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import NamedTuple

from ..bounces import rules as bounces
from ..store import Store
from ..store import rounds as stored_rounds
from ..store.ledger import ClaimedRow, Outcome, Recheck
from ..store.rounds import HeldRound, RoundConnections

__all__ = ["Ticket", "Admission", "Gate"]


class _Hold:
    """A round's wait for the MAIL FROM of the messages it let go: how many have not begun, and
    the future the round waits on (set when none is left)."""

    __slots__ = ("left", "waiter")

    def __init__(self, left: int, waiter: asyncio.Future):
        self.left = left
        self.waiter = waiter


class Ticket:
    """A row's passage through the gate: `decided` (go, skipped, or not held), then, for a row
    let go, `mail_began` (called by the connection once MAIL FROM is written), `committed` (the
    round's transaction).

    Once decided, `skipped` is the reason the row was skipped, and `not_held` says that another
    worker holds the row now (or it is finished): it is not sent, and has no outcome here."""

    __slots__ = ("decided", "committed", "skipped", "not_held", "_hold")

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.decided = loop.create_future()
        self.committed = loop.create_future()
        self.skipped: str | None = None
        self.not_held = False
        #: The round's hold while it waits for this row's MAIL FROM (None once told, or not let go).
        self._hold: _Hold | None = None

    @property
    def goes(self) -> bool:
        """Whether the row may be sent (once decided)."""
        return self.skipped is None and not self.not_held

    def decide(self, skipped: str | None, *, not_held: bool = False) -> None:
        self.skipped = skipped
        self.not_held = not_held
        if not self.decided.done():
            self.decided.set_result(None)

    def mail_began(self) -> None:
        """MAIL FROM is written (or the attempt ended): the round may commit."""
        hold, self._hold = self._hold, None
        if hold is not None:
            hold.left -= 1
            if hold.left <= 0 and not hold.waiter.done():
                hold.waiter.set_result(None)

    async def wait_committed(self) -> None:
        """Before the message's data: wait for the round's commit. Raises if it failed."""
        await self.committed  # this ticket's own: a cancelled wait cancels nobody else's

    def commit(self) -> None:
        if not self.committed.done():
            self.committed.set_result(None)

    def fail(self, exc: BaseException) -> None:
        for future in (self.decided, self.committed):
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: nobody may wait for it


def _end_wait(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Admission(NamedTuple):
    outcomes: list[Outcome]
    row: ClaimedRow | None
    ticket: Ticket


#: Runs a function in the sender's database thread and returns its result.
InDbThread = Callable[..., Awaitable]


class Gate:
    """The rounds of one sender. `run()` is a task for the send's lifetime; connections call
    `admit`. After each committed round, `on_round(outcomes, recheck)` is told what it wrote
    and what its re-check found;
    a round that fails calls `on_failure(exc)` (the sender stops) and fails its tickets.

    `db_lock` is the sender's SQLite lock (None on PostgreSQL): a round holds it from its
    BEGIN to its commit, so no other transaction of the sender's DB thread waits on it.
    `rounds` is how many rounds may be open at once (1 on SQLite). `working()` is how many
    connections will hand in a request soon; a round gathers up to `gather` seconds for them
    (shared among the `rounds`: with two, each gathers half of them).
    """

    def __init__(self, store: Store, *, worker: str, clock: Callable[[], datetime],
                 bounce_rules: bounces.BounceRules, consent_hold: float, rounds: int,
                 db_lock: asyncio.Lock | None, in_db_thread: InDbThread,
                 on_round: Callable[[list[Outcome], Recheck], None],
                 on_failure: Callable[[Exception], None],
                 working: Callable[[], int] = lambda: 0, gather: float = 0.0):
        self.store = store
        self.worker = worker
        self.clock = clock
        self.bounce_rules = bounce_rules
        self.consent_hold = consent_hold
        self.db_lock = db_lock
        self.in_db_thread = in_db_thread
        self.on_round = on_round
        self.on_failure = on_failure
        #: The campaign and its list, set by the sender once it has loaded them.
        self.campaign_id = self.list_id = 0
        self.admissions: list[Admission] = []
        self.rounds_running = 0
        self.event = asyncio.Event()
        self.slots = asyncio.Semaphore(rounds)
        self.rounds = rounds
        self.working = working
        self.gather = gather
        self._gathering: asyncio.Future | None = None
        self.connections = RoundConnections(store)

    async def admit(self, outcomes: list[Outcome], row: ClaimedRow | None) -> Ticket:
        """Hand `outcomes` to the gate and, with `row`, ask to send it. Returns when the gate has
        decided (`row` None: when the outcomes are committed). Raises if the round failed."""
        ticket = Ticket(asyncio.get_running_loop())
        self.admissions.append(Admission(list(outcomes), row, ticket))
        self.event.set()
        self.poke()
        await (ticket.decided if row is not None else ticket.committed)
        return ticket

    async def run(self) -> None:
        """Start a round for whatever admissions wait, as round slots free up (until cancelled)."""
        while True:
            await self.event.wait()
            self.event.clear()
            while self.admissions:
                await self.slots.acquire()
                await self._gather()
                batch, self.admissions = self.admissions, []
                self.rounds_running += 1
                asyncio.get_running_loop().create_task(self._run_round(batch))

    def _gathered(self) -> bool:
        return len(self.admissions) * self.rounds >= self.working()

    async def _gather(self) -> None:
        """Wait (at most `gather` seconds) until the working connections have handed in theirs."""
        if self.gather <= 0 or self._gathered():
            return
        loop = asyncio.get_running_loop()
        self._gathering = loop.create_future()
        timer = loop.call_later(self.gather, self.poke, True)
        try:
            await self._gathering
        finally:
            timer.cancel()
            self._gathering = None

    def poke(self, now: bool = False) -> None:
        """End the gathering when it is complete (or `now`): a request came in, or a connection
        stopped working."""
        waiter = self._gathering
        if waiter is not None and not waiter.done() and (now or self._gathered()):
            waiter.set_result(None)

    async def drain(self) -> None:
        """Return once every admission handed in has had its round."""
        while self.admissions or self.rounds_running:
            self.event.set()
            await asyncio.sleep(0.01)

    async def _run_round(self, batch: list[Admission]) -> None:
        try:
            await self._round(batch)
        except Exception as exc:  # the waiting connections get the error; the sender stops
            self.on_failure(exc)
        finally:
            self.rounds_running -= 1
            self.slots.release()
            if self.admissions:
                self.event.set()

    async def _round(self, batch: list[Admission]) -> None:
        """One transaction: write the outcomes handed in, re-check consent for the rows about to
        be sent and skip those that fail it, drop those another worker holds now, let the others
        go, and commit once each one's MAIL FROM is written (or `consent_hold` has passed)."""
        outcomes = [oc for a in batch for oc in a.outcomes]
        rows = [a.row for a in batch if a.row is not None]
        async with (self.db_lock if self.db_lock is not None else contextlib.nullcontext()):
            try:
                held, recheck = await self.in_db_thread(self._open, outcomes, rows)
            except BaseException as exc:
                for a in batch:
                    a.ticket.fail(exc)
                raise
            committed = False
            try:
                for a in batch:
                    if a.row is not None:
                        a.ticket.decide(recheck.skipped.get(a.row.id), not_held=a.row.id in recheck.not_held)
                going = [a.ticket for a in batch if a.row is not None and a.ticket.goes]
                if going:
                    # Set before any connection runs again: none can tell its MAIL FROM earlier.
                    hold = _Hold(len(going), asyncio.get_running_loop().create_future())
                    for ticket in going:
                        ticket._hold = hold
                    await self._wait_began(hold)
                await self.in_db_thread(self.connections.end, held, commit=True)
                committed = True
            finally:
                if not committed:
                    await asyncio.shield(self.in_db_thread(self.connections.end, held, commit=False))
                    for a in batch:
                        a.ticket.fail(RuntimeError("the gate's transaction did not commit"))
        for a in batch:
            a.ticket.commit()
        self.on_round(outcomes, recheck)

    async def _wait_began(self, hold: _Hold) -> None:
        """Until every message the round let go has begun, or `consent_hold` seconds."""
        timer = asyncio.get_running_loop().call_later(self.consent_hold, _end_wait, hold.waiter)
        try:
            await hold.waiter
        finally:
            timer.cancel()

    def close(self) -> None:
        """(In the DB thread, once no round is open.) Close the rounds' connections."""
        self.connections.close()

    def _open(self, outcomes: list[Outcome], rows: list[ClaimedRow]) -> tuple[HeldRound, Recheck]:
        """(In the DB thread.) Begin the round's transaction: write `outcomes`, re-check consent
        for `rows` (skipping those that fail it, naming those no longer held). The transaction
        is left open."""
        now = self.clock()
        # On SQLite BEGIN IMMEDIATE takes the write lock; a hard bounce is recorded through the ORM.
        held = self.connections.begin(orm=any(oc.hard_bounce_email for oc in outcomes))
        try:
            recheck = stored_rounds.write_and_recheck(held, self.list_id, self.worker, outcomes, rows, now=now)
            for oc in outcomes:
                if oc.hard_bounce_email:
                    # The same rules as a bounce by mail: recorded with its reason, then judged
                    # (an unknown user is suppressed at once; a full mailbox scores as soft).
                    reply = oc.reply or ""
                    code = int(reply[:3]) if reply[:3].isdigit() else 550
                    bounces.record_smtp_rejection(held.session, oc.hard_bounce_email, self.campaign_id, code,
                                                  reply[3:].strip(), now, rules=self.bounce_rules)
            return held, recheck
        except BaseException:
            self.connections.end(held, commit=False)
            raise
