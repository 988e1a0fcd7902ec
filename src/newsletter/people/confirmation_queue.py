"""The queue of confirmation mails: sign-ups record them, a drainer sends them in batches.

A busy sign-up form must not pay for SMTP in its request: `enqueue_confirmation` writes the
mail due into `confirmation_queue` in the sign-up's own transaction (beside its
CONFIRMATION_SENT event, which the re-send limits and the hourly ceiling count), and the
server's `ConfirmationDrainer` sends what is queued, in batches, over one reused SMTP
connection (`delivery.SmtpConnection`, which the campaign sender uses too, with its reading of
the relay's replies), then deletes what the relay took::

    sign-up transaction ──► confirmation_queue ──► claim a batch ──► SMTP ──► delete (sent)
                                                        │                    retry later (4xx, relay down)
                                                        └──────────────────► drop (5xx, blocked, too old)

Nothing is lost when the server dies: queued rows wait for the next server, and a batch one
process had claimed is taken over once its claim is older than LEASE (its mails may then go
twice, like a campaign's in-flight messages). Several server processes share the queue:
claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer at a time anyway.
A person blocked or suppressed while their mail waited is not mailed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from ..errors import DeliveryError
from ..mail.message import UnsafeHeaderValue
from ..statuses import SubscriberStatus
from ..store import MailingList, QueuedConfirmation, Subscriber
from ..transport.connection import SmtpConnection, Verdict, classify_reply, open_smtp
from .confirmations import ConfirmationSender
from .consent import ConfirmationDue

__all__ = [
    "LEASE",
    "MAX_AGE",
    "ClaimedConfirmation",
    "DrainResult",
    "enqueue_confirmation",
    "enqueue_confirmations",
    "claim_confirmations",
    "finish_confirmations",
    "count_queued",
    "ConfirmationDrainer",
]

log = logging.getLogger(__name__)

#: A claim older than this is taken over by another drainer (its holder is presumed dead).
LEASE = timedelta(minutes=5)
#: A mail still failing this long after it was queued is given up (the person can sign up again).
MAX_AGE = timedelta(days=1)
#: Waits after the n-th temporary failure: 1, 2, 4 … minutes, at most MAX_BACKOFF.
MAX_BACKOFF = timedelta(hours=1)

_Q = QueuedConfirmation
_INSERT = insert(_Q.__table__)
_CLAIMABLE = (
    select(_Q.id, _Q.list_slugs, _Q.attempts, _Q.queued_at, Subscriber.key, Subscriber.email, Subscriber.name,
           Subscriber.language, Subscriber.status)
    .join(Subscriber, Subscriber.id == _Q.subscriber_id)
    .where(_Q.due_at <= bindparam("now"),
           or_(_Q.claimed_at.is_(None), _Q.claimed_at < bindparam("stale")))
    .order_by(_Q.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True, of=_Q)
)
_CLAIM = update(_Q).where(_Q.id.in_(bindparam("ids", expanding=True))).values(
    claimed_by=bindparam("worker"), claimed_at=bindparam("now"))
_DELETE = delete(_Q).where(_Q.id.in_(bindparam("ids", expanding=True)))
_RETRY = update(_Q).where(_Q.id == bindparam("row_id")).values(
    attempts=bindparam("new_attempts"), due_at=bindparam("new_due_at"), last_error=bindparam("error"),
    claimed_by=None, claimed_at=None)


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
    """What one `drain` did."""

    sent: int = 0
    retried: int = 0
    dropped: int = 0


def enqueue_confirmation(session: Session, due: ConfirmationDue, *, now: datetime) -> None:
    """Queue the confirmation mail `due` in the caller's transaction (sent by a drainer)."""
    enqueue_confirmations(session, [due], now=now)


def enqueue_confirmations(session: Session, dues: list[ConfirmationDue], *, now: datetime) -> None:
    """Queue these confirmation mails in the caller's transaction, in one statement."""
    rows = []
    for due in dues:
        subscriber_id = due.subscriber_id
        if subscriber_id is None:
            subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.key == due.subscriber_key))
        rows.append(dict(subscriber_id=subscriber_id, list_slugs=",".join(due.list_slugs), queued_at=now,
                         due_at=now, attempts=0, claimed_by=None, claimed_at=None, last_error=None))
    if rows:
        session.connection().execute(_INSERT, rows)


def claim_confirmations(session: Session, worker: str, *, now: datetime, limit: int) -> list[ClaimedConfirmation]:
    """Claim up to `limit` mails that are due and unclaimed (or whose claim is stale), oldest first."""
    connection = session.connection()
    rows = connection.execute(_CLAIMABLE, {"now": now, "stale": now - LEASE, "limit": limit}).all()
    if not rows:
        return []
    connection.execute(_CLAIM, {"ids": [r.id for r in rows], "worker": worker, "now": now})
    slugs = {slug for r in rows for slug in r.list_slugs.split(",") if slug}
    names = {slug: name for slug, name in connection.execute(
        select(MailingList.slug, MailingList.name).where(MailingList.slug.in_(slugs)))}
    claimed = []
    for r in rows:
        list_slugs = tuple(s for s in r.list_slugs.split(",") if s)
        due = ConfirmationDue(r.key, r.email, r.name, r.language, list_slugs,
                              tuple(names.get(s, s) for s in list_slugs))
        claimed.append(ClaimedConfirmation(r.id, r.attempts, r.queued_at, due,
                                           r.status is SubscriberStatus.ACTIVE))
    return claimed


def finish_confirmations(session: Session, done: list[int], retry: list[tuple[int, int, str]], *,
                         now: datetime) -> None:
    """Delete the rows `done` (sent or dropped); put `retry` rows (id, attempts so far, error) back,
    due again after a back-off that doubles with each attempt."""
    connection = session.connection()
    if done:
        connection.execute(_DELETE, {"ids": done})
    if retry:
        connection.execute(_RETRY, [
            {"row_id": row_id, "new_attempts": attempts + 1, "error": error[:1000],
             "new_due_at": now + min(MAX_BACKOFF, timedelta(minutes=2 ** attempts))}
            for row_id, attempts, error in retry])


def count_queued(session: Session) -> int:
    """Mails waiting in the queue (due or not)."""
    return session.scalar(select(func.count()).select_from(_Q)) or 0


class ConfirmationDrainer:
    """Sends the queued confirmation mails of an installation, a batch at a time.

    `start()` runs it as a task of the event loop (the web app's lifespan does, so that mails a
    dead server left go out at once); it drains then, whenever `wake()` is called after a
    sign-up commits (after `linger` seconds, so that a batch gathers), and every `poll` seconds (retries, other processes' stale claims); `stop()`
    ends it. `drain()` sends everything due now and returns when nothing more is due; tests
    call it directly. Blocking store calls go
    through `db` (the web app's database threads).
    """

    def __init__(self, newsletter: Any, sender: ConfirmationSender,
                 db: Callable[..., Awaitable[Any]], *, batch: int = 200, poll: float = 5.0,
                 linger: float = 0.2):
        self.newsletter = newsletter
        self.sender = sender
        self.db = db
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

    async def drain(self) -> DrainResult:
        """Send every mail due now, batch after batch; what was sent, retried and dropped."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        result = DrainResult()
        async with self._lock:
            while True:
                now = self.newsletter.clock()
                claimed = await self.db(self._claim, now)
                if not claimed:
                    return result
                done, retry = await self._send(claimed, now, result)
                await self.db(self._finish, done, retry, self.newsletter.clock())
                if len(claimed) < self.batch or retry:
                    return result  # nothing more due now (or the relay is failing: wait)

    def _claim(self, now: datetime) -> list[ClaimedConfirmation]:
        with self.newsletter.store.session() as session:
            return claim_confirmations(session, self.worker, now=now, limit=self.batch)

    def _finish(self, done: list[int], retry: list[tuple[int, int, str]], now: datetime) -> None:
        with self.newsletter.store.session() as session:
            finish_confirmations(session, done, retry, now=now)

    async def _send(self, claimed: list[ClaimedConfirmation], now: datetime,
                    result: DrainResult) -> tuple[list[int], list[tuple[int, int, str]]]:
        """Hand the claimed mails to the relay over the drainer's connection, one after another.

        Returns (rows done: sent or dropped, rows to retry: (id, attempts so far, reason)).
        """
        done: list[int] = []
        retry: list[tuple[int, int, str]] = []
        failing = ""  # after one temporary failure the rest of the batch waits too (no hammering)
        for item in claimed:
            if not item.sendable:
                log.info("queued confirmation %d dropped: the address was blocked or suppressed", item.id)
                done.append(item.id)
                result.dropped += 1
                continue
            if failing:
                retry.append((item.id, item.attempts, failing))
                result.retried += 1
                continue
            try:
                envelope_sender, recipients, data = self.sender.wire(item.due, item.due.list_names)
            except UnsafeHeaderValue as exc:
                log.warning("queued confirmation %d dropped: %s", item.id, exc)
                done.append(item.id)
                result.dropped += 1
                continue
            verdict, reason = await self._deliver(envelope_sender, recipients[0], data)
            if verdict is Verdict.SENT:
                done.append(item.id)
                result.sent += 1
            elif verdict in (Verdict.BOUNCE, Verdict.FAIL):
                log.warning("a confirmation mail was refused for good (%s); not retried", reason)
                done.append(item.id)
                result.dropped += 1
            elif now - item.queued_at >= MAX_AGE:
                log.error("a confirmation mail queued at %s is given up after %d attempts: %s",
                          item.queued_at, item.attempts + 1, reason)
                done.append(item.id)
                result.dropped += 1
            else:
                log.error("a confirmation mail could not be sent (%s); it stays queued and is tried again", reason)
                retry.append((item.id, item.attempts, reason))
                result.retried += 1
                failing = reason
        return done, retry

    async def _deliver(self, envelope_sender: str, recipient: str, data: bytes) -> tuple[Verdict, str]:
        """One mail over the drainer's reused connection (opened, or re-opened, as needed)."""
        if self._smtp is None:
            try:
                self._smtp = await open_smtp(self.newsletter.config.smtp)
            except DeliveryError as exc:
                return Verdict.DEFER_RECONNECT, str(exc)
        reply = await self._smtp.deliver(envelope_sender, recipient, data)
        verdict = classify_reply(reply)
        if verdict is Verdict.DEFER_RECONNECT:
            connection, self._smtp = self._smtp, None
            await connection.close()
        return verdict, reply.describe()

