"""The one way out for confirmation mail: every path queues it, one drainer sends it.

A sign-up — on the form, by the API, with `newsletter subscribe`, or in an import — writes the
mail due into the queue in its own transaction (`signups.record_signups`, beside the
CONFIRMATION_SENT event the re-send limits and the hourly ceiling count). A `ConfirmationDrainer`
sends what is queued, in batches, over one reused SMTP connection (`transport.SmtpConnection`,
which the campaign sender uses too, with its reading of the relay's replies), then deletes what
the relay took. The connection comes from `transport.relays.personal_connector`: through the
pool of `[relays.*]` when there are any (a relay that refuses the login or cannot be reached is
left out for its cool-off and the mail goes through another), else to `smtp_url`::

    sign-up transaction ──► confirmation_queue ──► claim a batch ──► SMTP ──► delete (sent)
                                                        │                    retry later (4xx, relay down)
                                                        └──────────────────► drop (5xx, blocked, too old)

The server runs one as a task (the web app's lifespan); commands that run without the server
(`newsletter subscribe`, `newsletter import`) run one in-process (`LocalDrainer`) for the rows
they queued, until each is sent, refused or waiting for a retry, and say which.

A temporary refusal of one recipient (4xx) puts that mail back for a retry with back-off and
goes on with the others; when the relay itself fails — it cannot be reached, refuses us, or
drops the connection twice running — the rest of the batch waits too (no hammering). Nothing is
lost when a process dies: queued rows wait for the next drainer, and a batch one process had
claimed is taken over once its claim is older than LEASE (its mails may then go twice, like a
campaign's in-flight messages). Several processes share the queue (`store.mailqueue` claims
with `FOR UPDATE SKIP LOCKED` on PostgreSQL). A person blocked or suppressed while their mail
waited is not mailed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from ..errors import DeliveryError
from ..installation import Newsletter
from ..mail.message import UnsafeHeaderValue
from ..statuses import SubscriberStatus
from ..store import mailqueue
from ..store import people as people_store
from ..transport.connection import SmtpConnection, Verdict, classify_reply
from ..transport.relays import personal_connector
from .confirmations import ConfirmationSender
from .names import name_in
from .rules import ConfirmationDue

__all__ = [
    "LEASE",
    "MAX_AGE",
    "MAX_BACKOFF",
    "Delivery",
    "MailOutcome",
    "ClaimedConfirmation",
    "DrainResult",
    "claim_confirmations",
    "count_queued",
    "ConfirmationDrainer",
    "LocalDrainer",
]

log = logging.getLogger(__name__)

#: A claim older than this is taken over by another drainer (its holder is presumed dead).
LEASE = timedelta(minutes=5)
#: A mail still failing this long after it was queued is given up (the person can sign up again).
MAX_AGE = timedelta(days=1)
#: Waits after the n-th temporary failure: 1, 2, 4 … minutes, at most MAX_BACKOFF.
MAX_BACKOFF = timedelta(hours=1)
#: Connections lost (or 421) one after the other before the rest of a batch waits.
_LOST_IN_A_ROW = 2


class Delivery(str, enum.Enum):
    """What became of one queued mail."""

    SENT = "sent"
    #: The relay refused it for good (5xx): not retried.
    REFUSED = "refused"
    #: Not sent and never will be: the person was blocked or suppressed meanwhile, the address
    #: cannot be put in a header, or the mail kept failing for MAX_AGE.
    DROPPED = "dropped"
    #: Not sent yet: it stays queued and is retried (a temporary refusal, the relay unreachable).
    WAITING = "waiting"


class MailOutcome(NamedTuple):
    """A queued mail's fate, with the relay's reply or the reason."""

    delivery: Delivery
    reason: str = ""


class ClaimedConfirmation(NamedTuple):
    """One queued mail claimed for sending: its row, and the person as they are now."""

    id: int
    attempts: int
    queued_at: datetime
    due: ConfirmationDue
    #: False for a person blocked or suppressed since: drop, do not send.
    sendable: bool


@dataclass
class DrainResult:
    """What one `drain` did: counts, and each row's outcome by row id."""

    sent: int = 0
    retried: int = 0
    #: Refused for good, or dropped.
    dropped: int = 0
    outcomes: dict[int, MailOutcome] = field(default_factory=dict)

    def note(self, row_id: int, outcome: MailOutcome) -> None:
        self.outcomes[row_id] = outcome
        if outcome.delivery is Delivery.SENT:
            self.sent += 1
        elif outcome.delivery is Delivery.WAITING:
            self.retried += 1
        else:
            self.dropped += 1


def claim_confirmations(session: Session, worker: str, *, now: datetime, limit: int,
                        among: Sequence[int] | None = None) -> list[ClaimedConfirmation]:
    """Claim up to `limit` mails that are due and unclaimed (or whose claim is stale), oldest
    first; only the rows `among` these ids when given."""
    rows = mailqueue.claim(session, worker, now=now, stale=now - LEASE, limit=limit, among=among)
    names = people_store.list_names_by_slug(session, [slug for r in rows for slug in r.list_slugs])
    return [ClaimedConfirmation(r.id, r.attempts, r.queued_at,
                                ConfirmationDue(r.key, r.email, r.name, r.language, r.list_slugs,
                                                tuple(name_in(names[s][1], names[s][0], "", r.language)[0]
                                                      if s in names else s for s in r.list_slugs)),
                                r.status is SubscriberStatus.ACTIVE)
            for r in rows]


def count_queued(session: Session) -> int:
    """Mails waiting in the queue (due or not)."""
    return mailqueue.count_queued(session)


async def _inline(func: Callable[..., Any], *args: Any) -> Any:
    return func(*args)


class ConfirmationDrainer:
    """Sends the queued confirmation mails of an installation, a batch at a time.

    `start()` runs it as a task of the event loop (the web app's lifespan does, so that mails a
    dead server left go out at once); it drains then, whenever `wake()` is called after a
    sign-up commits (after `linger` seconds, so that a batch gathers), and every `poll` seconds
    (retries, other processes' stale claims); `stop()` ends it. `drain()` sends everything due
    now (or only given rows) and returns when nothing more is due. Blocking store calls go
    through `db` (the web app's database threads; by default, inline).
    """

    def __init__(self, newsletter: Newsletter, sender: ConfirmationSender | None = None,
                 db: Callable[..., Awaitable[Any]] | None = None, *, batch: int = 200, poll: float = 5.0,
                 linger: float = 0.2):
        self.newsletter = newsletter
        self.sender = sender or ConfirmationSender(newsletter)
        self.db = db or _inline
        self.batch = batch
        self.poll = poll
        self.linger = linger
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._task: asyncio.Task | None = None
        self._smtp: SmtpConnection | None = None

    def start(self) -> None:
        """Run the drainer as a task of the running event loop (once; again if it ended)."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self.run(), name="confirmation drainer")

    def wake(self) -> None:
        """Ask for a drain now (call from the event loop, after the sign-up has committed).

        Starts the drainer if the app's lifespan did not (an app mounted in another app).
        """
        self.start()
        assert self._wake is not None
        self._wake.set()

    async def connect(self) -> None:
        """Open the relay connection now. Raises DeliveryError when the relay cannot be used."""
        if self._smtp is None or not self._smtp.usable:
            newsletter = self.newsletter
            self._smtp = await personal_connector(newsletter.config, clock=newsletter.clock)()

    async def stop(self) -> None:
        """Stop the task (a batch being sent is abandoned: its claim lapses after LEASE) and
        say goodbye on the SMTP connection."""
        task, self._task = self._task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        connection, self._smtp = self._smtp, None
        if connection is not None:
            await connection.close()

    async def run(self) -> None:
        """Drain now, then on every wake-up or poll, until cancelled; never raises otherwise."""
        if self._wake is None:
            self._wake = asyncio.Event()
        while True:
            self._wake.clear()
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store or the relay failed: log it, keep the server up, try again
                log.exception("sending queued confirmation mails failed; trying again in %s s", self.poll)
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll)
            except asyncio.TimeoutError:
                continue
            # Woken by a sign-up: let the ones right behind it join the batch (a claim and a
            # delete shared by many mails instead of one each; nobody notices 0.2 s in a mail).
            await asyncio.sleep(self.linger)

    async def drain(self, only: Sequence[int] | None = None) -> DrainResult:
        """Send every mail due now, batch after batch — or only the rows `only` names — and
        return what became of each (rows of `only` it could not claim have no outcome)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        result = DrainResult()
        async with self._lock:
            chunks = None if only is None else [list(only[i:i + self.batch]) for i in range(0, len(only), self.batch)]
            while chunks is None or chunks:
                among = None if chunks is None else chunks.pop(0)
                now = self.newsletter.clock()
                claimed = await self.db(self._claim, now, among)
                if not claimed:
                    if chunks is None:
                        return result
                    continue
                failing = await self._send(claimed, now, result)
                if failing and chunks:  # the relay is failing: the rest waits, as it is
                    for row_id in (i for chunk in chunks for i in chunk):
                        result.note(row_id, MailOutcome(Delivery.WAITING, failing))
                    return result
                if chunks is None and (len(claimed) < self.batch or failing):
                    return result  # nothing more due now (or the relay is failing: wait)
        return result

    def _claim(self, now: datetime, among: list[int] | None) -> list[ClaimedConfirmation]:
        with self.newsletter.store.session() as session:
            return claim_confirmations(session, self.worker, now=now, limit=self.batch, among=among)

    def _finish(self, done: list[int], retry: list[tuple[int, int, datetime, str]]) -> None:
        with self.newsletter.store.session() as session:
            mailqueue.forget(session, done)
            mailqueue.put_back(session, retry)

    async def _send(self, claimed: list[ClaimedConfirmation], now: datetime, result: DrainResult) -> str:
        """Hand the claimed mails to the relay over the drainer's connection, one after another,
        and record each outcome (the rows done are deleted, the others put back with a back-off).

        Returns why the relay is failing ("" when it is not): the rest of the batch waited.
        """
        done: list[int] = []
        retry: list[tuple[int, int, datetime, str]] = []
        failing = ""
        lost = 0

        def outcome(item: ClaimedConfirmation, delivery: Delivery, reason: str = "") -> None:
            if delivery is Delivery.WAITING and now - item.queued_at >= MAX_AGE:
                log.error("a confirmation mail queued at %s is given up after %d attempts: %s",
                          item.queued_at, item.attempts + 1, reason)
                delivery, reason = Delivery.DROPPED, f"given up after {item.attempts + 1} attempts: {reason}"
            if delivery is Delivery.WAITING:
                retry.append((item.id, item.attempts + 1,
                              now + min(MAX_BACKOFF, timedelta(minutes=2 ** item.attempts)), reason[:1000]))
            else:
                done.append(item.id)
            result.note(item.id, MailOutcome(delivery, reason))

        for item in claimed:
            if not item.sendable:
                log.info("queued confirmation %d dropped: the address was blocked or suppressed", item.id)
                outcome(item, Delivery.DROPPED, "the address was blocked or suppressed")
                continue
            if failing:
                outcome(item, Delivery.WAITING, failing)
                continue
            try:
                envelope_sender, recipients, data = self.sender.wire(item.due, item.due.list_names)
            except UnsafeHeaderValue as exc:
                log.warning("queued confirmation %d dropped: %s", item.id, exc)
                outcome(item, Delivery.DROPPED, str(exc))
                continue
            try:
                await self.connect()
            except DeliveryError as exc:
                failing = str(exc)
                log.error("confirmation mails could not be sent (%s); they stay queued and are tried again", failing)
                outcome(item, Delivery.WAITING, failing)
                continue
            reply = await self._smtp.deliver(envelope_sender, recipients[0], data)
            verdict, reason = classify_reply(reply), reply.describe()
            if verdict is Verdict.SENT:
                lost = 0
                log.debug("queued confirmation %d taken by the relay %s", item.id, self._smtp.relay)
                outcome(item, Delivery.SENT)
                continue
            if verdict in (Verdict.BOUNCE, Verdict.FAIL):
                log.warning("a confirmation mail was refused for good (%s); not retried", reason)
                outcome(item, Delivery.REFUSED, reason)
                continue
            log.error("a confirmation mail could not be sent (%s); it stays queued and is tried again", reason)
            outcome(item, Delivery.WAITING, reason)
            if verdict is Verdict.DEFER_RECONNECT:
                connection, self._smtp = self._smtp, None
                await connection.close()
                lost += 1
            if verdict is Verdict.RELAY or lost >= _LOST_IN_A_ROW:
                failing = reason
        await self.db(self._finish, done, retry)
        return failing


class LocalDrainer:
    """A drainer for commands that run without the server: sends the rows they queued, now.

    Blocking (it runs its own event loop): call it from synchronous code or a worker thread,
    and from one thread only. Keeps its relay connection until `close()`.
    """

    def __init__(self, newsletter: Newsletter):
        self._runner = asyncio.Runner()
        self._drainer = ConfirmationDrainer(newsletter)

    def connect(self) -> None:
        """Open the relay connection now; raises DeliveryError when the relay cannot be used."""
        self._runner.run(self._drainer.connect())

    def send(self, row_ids: Sequence[int]) -> DrainResult:
        """Send these queued mails: what became of each of them (a row another process holds,
        or one left as the relay failed, is WAITING)."""
        drained = self._runner.run(self._drainer.drain(only=row_ids)) if row_ids else DrainResult()
        result = DrainResult()
        for row_id in row_ids:
            result.note(row_id, drained.outcomes.get(row_id, MailOutcome(Delivery.WAITING, "another process has it")))
        return result

    def close(self) -> None:
        try:
            self._runner.run(self._drainer.stop())
        finally:
            self._runner.close()

    def __enter__(self) -> "LocalDrainer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
