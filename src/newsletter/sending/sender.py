"""The sending engine: a campaign's ledger drained through K reused SMTP connections.

    feeder ── claim_batch (consent checked) ──► dispatcher ──► K connection tasks
                                                                 │ personalise (skeleton), pace
                 gate round: one transaction ◄── admit(row, ────┘
                   records outcomes handed in,   previous outcomes)
                   re-checks consent of the rows ──► skipped, or go:
                   about to go, commits once the       MAIL FROM + RCPT TO + DATA (pipelined)
                   MAIL FROMs are written      ◄──── MAIL FROM written
                        commit ──────────────────► the message's data, then its outcome

Correctness first. A claimed row is `sending` in the database before its message goes out.
Every message passes the gate: a round's transaction writes the outcomes its connections hand
in, re-checks the consent of the rows they are about to send (`outbox.recheck_consent`: skipped
if it no longer holds) and stays open until each admitted message's MAIL FROM has been written
to its connection. It holds SQLite's write lock (PostgreSQL: share locks on the subscriber and
subscription rows) all that time, so an unsubscribe either committed before the re-check — and
the row is skipped — or commits after the message was begun; none is begun after it. The hold
does not wait for the relay's answer: with a relay 20 ms away, waiting for it kept SQLite's
write lock taken nearly all the time and made other writers (sign-ups) wait up to seconds. A
connection sends a message's data only after the round that admitted it committed, and that
round wrote the connection's previous outcome: after a crash at most one message per
connection (the concurrency) can have been accepted without being recorded, and those rows —
left `sending` by a dead worker — are taken over and sent again with the same Message-ID.

Stopping (Ctrl-C, `campaign pause`, an auth failure, too many failures, an unreachable relay)
stops claiming and dispatching, lets each connection finish its message, gives unsent rows back
as `queued` (or `skipped` if the campaign was cancelled) and leaves the campaign paused with
the reason. A campaign becomes finished when no row is queued, sending or deferred.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import NamedTuple, TypeVar

from sqlalchemy.orm import Session

from ..bounces import rules as bounces
from ..config import Config
from ..errors import DeliveryError
from ..mail.compose import RenderedMail
from ..mail.message import (
    MailKind,
    MailSkeleton,
    Recipient,
    UnsafeHeaderValue,
    message_id_domain,
    message_id_for,
)
from ..mail.postmark import Postmark
from ..statuses import CampaignStatus, OutboxStatus
from ..store import Campaign, Store
from ..store import ledger as outbox
from ..store.ledger import ClaimedRow, Counts, Outcome
from ..transport.connection import (
    SmtpConnection,
    Stage,
    Verdict,
    classify_reply,
    open_smtp,
)
from . import campaigns
from .dispatch import Dispatcher
from .gate import Admission, Ticket
from .messages import Links, build_skeletons
from .pacing import DomainLimits, Pace, RateLimiter
from .workers import dead_workers, new_worker_id

__all__ = [
    "SendOptions",
    "Progress",
    "SendResult",
    "Sender",
    "send_campaign",
    "with_installation_hooks",
    "run_sending",
    "sender_for",
]

Connector = Callable[[], Awaitable[SmtpConnection]]
T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


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
    #: transaction, which re-checked the recipient's consent, stays open (see `_gate_round`).
    consent_hold: float = 2.0
    #: Gate rounds open at once on PostgreSQL (SQLite: always one).
    gate_rounds: int = 2
    #: Longest sleep while idle (waiting for deferred rows or other workers) before looking again.
    idle_poll: float = 5.0
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
    status: CampaignStatus
    counts: Counts
    reason: str | None
    sent_now: int


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




















class Sender:
    """Sends one campaign. Create, then `await run()`; `stop(reason)` from a signal handler.

    `connect` opens a relay connection (raises DeliveryError). `clock` gives the time for the
    ledger and the pacing; `sleep` waits (tests pass fakes). `on_progress` receives `Progress`.
    `secret` is the installation's (read from the configuration when not given).
    """

    def __init__(self, store: Store, config: Config, campaign_slug: str, skeletons: Mapping[str, MailSkeleton],
                 *, options: SendOptions = SendOptions(), connect: Connector | None = None,
                 clock: Callable[[], datetime] = _utc_now, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_progress: Callable[[Progress], None] | None = None, worker_id: str | None = None,
                 secret: bytes | None = None):
        self.store = store
        self.config = config
        self.slug = campaign_slug
        self.skeletons = dict(skeletons)
        self.default_skeleton = next(iter(self.skeletons.values()))
        self.options = options
        self.connect = connect or (lambda: open_smtp(config.smtp))
        self.clock = clock
        self.sleep = sleep
        self.on_progress = on_progress
        self.worker = worker_id or new_worker_id()
        self.secret = config.secret() if secret is None else secret
        self.mid_domain = message_id_domain(config)
        self.envelope_sender = options.envelope_sender or (lambda _rcpt: config.from_address)
        self.limiter = RateLimiter(options.pace.rate, options.pace.hourly_cap,
                                   clock=lambda: self.clock().timestamp(), sleep=sleep)
        self.dispatcher = Dispatcher(DomainLimits(options.pace.domain_limits))
        # SQLite has one writer at a time: one DB thread, and the gate's rounds one after another.
        # PostgreSQL locks rows: several rounds may be open at once, each in a thread of its own.
        self.serial_db = store.dialect == "sqlite"
        rounds = 1 if self.serial_db else max(1, options.gate_rounds)
        self.executor = ThreadPoolExecutor(max_workers=1 if self.serial_db else rounds + 1,
                                           thread_name_prefix="newsletter-db")
        self.round_slots = asyncio.Semaphore(rounds)
        self.bounce_rules = bounces.rules_from_config(config)
        self.campaign_id = self.list_id = 0
        self.stop_reason: str | None = None
        self.feeding_done = False
        #: On SQLite every transaction runs under this lock (see `_db`); a gate round holds it.
        self.db_lock = asyncio.Lock()
        self.admissions: list[Admission] = []
        self.rounds_running = 0
        self.gate_event = asyncio.Event()
        self.recent: deque[bool] = deque(maxlen=options.failure_window)
        self.totals = {"sent": 0, "deferred": 0, "failed": 0, "skipped": 0}
        self.held = 0  # rows taken from the dispatcher whose outcome is not yet committed or given back
        self._date_cache: tuple[int, str] = (-1, "")
        self._last_progress = 0.0
        self._started = time.monotonic()
        self._initial_open = 0

    # -- control ----------------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Stop claiming and dispatching; in-flight messages finish. The campaign is left paused."""
        if self.stop_reason is None:
            self.stop_reason = reason
        asyncio.get_running_loop().create_task(self.dispatcher.close())

    async def _db(self, func, *args, **kwargs):
        """Run `func` in the DB thread, in turn with the gate's rounds: on SQLite every
        transaction takes the one write lock, which a gate round holds while it waits for the
        relay, so a second transaction from this thread would wait on itself."""
        if not self.serial_db:
            return await self._in_db_thread(func, *args, **kwargs)
        async with self.db_lock:
            return await self._in_db_thread(func, *args, **kwargs)

    async def _in_db_thread(self, func, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: func(*args, **kwargs))

    # -- database work (runs in the DB thread) ------------------------------------------------

    def _load(self) -> tuple[Campaign, Counts, dict[str, int]]:
        with self.store.session() as session:
            campaign = campaigns.get_campaign(session, self.slug)
            counts = outbox.count_rows(session, campaign.id)
            holders = outbox.active_claims(session, campaign.id)
            campaign.mailing_list  # loaded while the session is open
            self.campaign_id, self.list_id = campaign.id, campaign.list_id
            return campaign, counts, holders

    def _claim(self, campaign: Campaign, dead: list[str]) -> tuple[CampaignStatus, list[ClaimedRow], int]:
        now = self.clock()
        with self.store.session() as session:
            current = session.get(Campaign, campaign.id, populate_existing=True)
            if current.status is not CampaignStatus.SENDING:
                return current.status, [], 0
            rows, skipped = outbox.claim_batch(session, current, self.worker, limit=self.options.batch_size, now=now,
                                               stale_before=now - self.options.stale_after, dead_workers=dead)
            return current.status, rows, skipped

    def _open_round(self, outcomes: list[Outcome], rows: list[ClaimedRow]) -> tuple[Session, dict[int, str]]:
        """Begin a gate round's transaction: write `outcomes`, re-check consent for `rows`
        (skipping those that fail it). The transaction is left open: `_close_round` ends it."""
        now = self.clock()
        session = Session(self.store.engine, expire_on_commit=False)
        try:
            conn = session.connection()  # begins: on SQLite BEGIN IMMEDIATE takes the write lock
            if outcomes:
                outbox.record_outcomes(conn, self.worker, outcomes, now=now)
            for oc in outcomes:
                if oc.hard_bounce_email:
                    # The same rules as a bounce by mail: recorded with its reason, then judged
                    # (an unknown user is suppressed at once; a full mailbox scores as soft).
                    reply = oc.reply or ""
                    code = int(reply[:3]) if reply[:3].isdigit() else 550
                    bounces.record_smtp_rejection(session, oc.hard_bounce_email, self.campaign_id, code,
                                                  reply[3:].strip(), now, rules=self.bounce_rules)
            skipped = outbox.recheck_consent(conn, self.list_id, self.worker, rows, now=now)
            return session, skipped
        except BaseException:
            session.rollback()
            session.close()
            raise

    @staticmethod
    def _close_round(session: Session, commit: bool) -> None:
        try:
            if commit:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()

    def _release(self, rows: list[ClaimedRow]) -> None:
        now = self.clock()
        with self.store.session() as session:
            campaign = campaigns.get_campaign(session, self.slug)
            if campaign.status is CampaignStatus.CANCELLED:
                outbox.release_rows(session, self.worker, [r.id for r in rows], now=now,
                                    status=OutboxStatus.SKIPPED, reason="skipped: the campaign was cancelled")
            else:
                outbox.release_rows(session, self.worker, [r.id for r in rows], now=now)

    def _settle(self) -> tuple[CampaignStatus, Counts, str | None]:
        now = self.clock()
        with self.store.session() as session:
            campaign = campaigns.get_campaign(session, self.slug)
            if not campaigns.finish_if_done(session, campaign, now=now) and self.stop_reason:
                campaigns.pause_campaign(session, self.slug, self.stop_reason, only_if_sending=True)
            session.flush()
            session.refresh(campaign)
            return campaign.status, outbox.count_rows(session, campaign.id), campaign.status_reason

    def _next_due(self, campaign_id: int) -> tuple[Counts, datetime | None]:
        with self.store.session() as session:
            return outbox.count_rows(session, campaign_id), outbox.next_due_at(session, campaign_id)

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> SendResult:
        """Send until the campaign is finished or stopped. Returns the campaign's state after.

        Raises UnknownCampaign. A relay that refuses us pauses the campaign (reason in the
        result); it is not raised.
        """
        try:
            campaign, counts, holders = await self._db(self._load)
            self._initial_open = counts.open
            self.expires = campaigns.expires_at(campaign)
            self.links = Links(self.config, campaign.mailing_list.slug, now=self.clock(), secret=self.secret)
            if campaign.status is not CampaignStatus.SENDING:
                status, counts, reason = await self._db(self._settle)
                return SendResult(status, counts, reason or f"the campaign is {status.value}", 0)
            self.dead = dead_workers(holders)
            gate = asyncio.create_task(self._gate())
            workers = [asyncio.create_task(self._connection(i)) for i in range(self.options.concurrency)]
            try:
                await self._feeder(campaign)
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    if not task.done():
                        task.cancel()
                self.feeding_done = True
                while self.admissions or self.rounds_running:  # admissions of connections that ended normally
                    self.gate_event.set()
                    await asyncio.sleep(0.01)
                gate.cancel()
                await self.dispatcher.close()
                left = self.dispatcher.take_all()
                if left:
                    await self._db(self._release, left)
            status, counts, reason = await self._db(self._settle)
            self._report(force=True)
            return SendResult(status, counts, reason, self.totals["sent"])
        finally:
            self.executor.shutdown(wait=True)

    def _idle(self) -> bool:
        return self.feeding_done

    async def _feeder(self, campaign: Campaign) -> None:
        last_dead_check = time.monotonic()
        try:
            while self.stop_reason is None:
                if len(self.dispatcher) >= self.options.batch_size:
                    await self._wait_a_little(0.02)
                    continue
                if time.monotonic() - last_dead_check > 30:
                    _c, _n, holders = await self._db(self._load)
                    self.dead = dead_workers(holders)
                    last_dead_check = time.monotonic()
                status, rows, skipped = await self._db(self._claim, campaign, self.dead)
                self.totals["skipped"] += skipped
                if status is not CampaignStatus.SENDING:
                    self.stop(f"the campaign was {status.value} while sending" if status is not CampaignStatus.PAUSED
                              else "paused")
                    break
                if rows:
                    await self.dispatcher.put(rows)
                    continue
                # Nothing to claim now: wait for what is in flight, then see what is left.
                if len(self.dispatcher) or self.held:
                    await self._wait_a_little(0.05)
                    continue
                counts, due = await self._db(self._next_due, campaign.id)
                if counts.open == 0:
                    break
                if counts.queued == 0 and counts.sending == 0 and due is not None:
                    if not self.options.wait_for_deferred:
                        self.stop(f"{counts.deferred} message(s) deferred; the next retry is due at "
                                  f"{due:%Y-%m-%d %H:%M} UTC — resume then")
                        break
                    wait = max(0.0, (due - self.clock()).total_seconds())
                    self._report(force=True, note=f"waiting for {counts.deferred} deferred until {due:%H:%M:%S}")
                    await self.sleep(min(wait, self.options.idle_poll) if wait > 0 else 0)
                    continue
                # Rows held by other workers (or a dead one not yet stale): poll.
                await self.sleep(min(1.0, self.options.idle_poll))
        finally:
            self.feeding_done = True
            await self.dispatcher.wake()

    async def _wait_a_little(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    # -- connections -----------------------------------------------------------------------------

    async def _open(self) -> SmtpConnection | None:
        delay = self.options.reconnect_base
        last: DeliveryError | None = None
        for attempt in range(self.options.reconnect_attempts):
            if self.stop_reason:
                return None
            try:
                return await self.connect()
            except DeliveryError as exc:
                last = exc
                if exc.code is not None:  # the relay answered: auth refused, or a 5xx greeting
                    self.stop(f"the relay refused us: {exc}")
                    return None
            if attempt + 1 < self.options.reconnect_attempts:
                await self.sleep(delay)
                delay = min(delay * 2, 60.0)
        self.stop(f"cannot reach the relay after {self.options.reconnect_attempts} attempts: {last}")
        return None

    async def _connection(self, index: int) -> None:
        conn: SmtpConnection | None = None
        unrecorded: list[Outcome] = []  # outcomes that go to the gate with this connection's next message
        try:
            while True:
                row = self.dispatcher.take_nowait()
                if row is None:
                    if unrecorded:  # nothing ready: record what is done before waiting
                        await self._admit(unrecorded, None)
                        unrecorded = []
                    row = await self.dispatcher.get(self._idle)
                    if row is None:
                        return
                self.held += 1
                try:
                    if conn is None:
                        conn = await self._open()
                        if conn is None:
                            await self._give_back(row)
                            return
                    outcome, reconnect = await self._send_row(conn, row, unrecorded)
                    unrecorded = []
                    if outcome is None:
                        if reconnect:  # the relay refuses us: the row goes back unmarked
                            await self._give_back(row)
                            return
                        continue  # skipped at the gate
                    unrecorded.append(outcome)
                    if reconnect or not conn.usable:
                        await conn.close()
                        conn = None
                finally:
                    await self.dispatcher.done_with(row)
        finally:
            if unrecorded:
                await self._admit(unrecorded, None)
            if conn is not None:
                await conn.close()

    async def _give_back(self, row: ClaimedRow) -> None:
        await self._db(self._release, [row])
        self.held -= 1

    def _date(self) -> str:
        now = self.clock()
        second = int(now.timestamp())
        if self._date_cache[0] != second:
            self._date_cache = (second, format_datetime(now.astimezone(timezone.utc)))
        return self._date_cache[1]

    def _message(self, row: ClaimedRow) -> tuple[str, bytes]:
        message_id = message_id_for(self.secret, self.slug, row.subscriber_id, self.mid_domain)
        unsub, prefs, mailto = self.links.for_row(row)
        recipient = Recipient(row.email, row.name, message_id, unsub, prefs, mailto)
        skeleton = self.skeletons.get(row.language, self.default_skeleton)
        data = skeleton.render(recipient, date=self._date())
        if self.options.signer:
            data = self.options.signer(data)
        return message_id, data

    async def _send_row(self, conn: SmtpConnection, row: ClaimedRow,
                        unrecorded: list[Outcome]) -> tuple[Outcome | None, bool]:
        """Personalise, pace, pass the gate (which records `unrecorded`) and deliver one row;
        (outcome, reconnect). None outcome: skipped at the gate, or the relay refuses us (stop)."""
        try:
            message_id, data = self._message(row)
        except (UnsafeHeaderValue, UnicodeError) as exc:
            return Outcome(row.id, OutboxStatus.FAILED, f"cannot build the message: {exc}", attempted=False), False
        await self.limiter.acquire()
        ticket = await self._admit(unrecorded, row)
        if ticket.skipped:
            return None, False
        # MailSkeleton.render (and a DKIM signature) give CRLF line ends only.
        reply = await conn.deliver(self.envelope_sender(row), row.email, data, crlf=True, gate=ticket)
        verdict = classify_reply(reply)
        text = reply.describe()[:1000]
        if verdict is Verdict.RELAY:
            self.stop(f"the relay refused the sender: {text}; check the relay's settings, then "
                      f"`newsletter campaign resume {self.slug}`")
            return None, True
        if verdict is Verdict.SENT:
            return Outcome(row.id, OutboxStatus.SENT, text, message_id), False
        if verdict is Verdict.BOUNCE:
            return Outcome(row.id, OutboxStatus.FAILED, text, message_id, hard_bounce_email=row.email), False
        if verdict is Verdict.FAIL:
            return Outcome(row.id, OutboxStatus.FAILED, text, message_id), False
        # Deferred: retry with exponential backoff until the campaign's expiry, then fail.
        backoff = min(self.options.defer_base * (2 ** row.attempts), self.options.defer_max)
        due = self.clock() + backoff
        if due > self.expires:
            outcome = Outcome(row.id, OutboxStatus.FAILED, f"{text}; still deferred when the campaign expired",
                              message_id)
        else:
            outcome = Outcome(row.id, OutboxStatus.DEFERRED, text, message_id, next_attempt_at=due)
        return outcome, verdict is Verdict.DEFER_RECONNECT or reply.stage is Stage.CONNECTION

    # -- the gate: outcomes recorded and consent re-checked, one transaction per round ------------

    async def _admit(self, outcomes: list[Outcome], row: ClaimedRow | None) -> Ticket:
        """Hand `outcomes` to the gate and, with `row`, ask to send it. Returns when the gate has
        decided (`row` None: when the outcomes are committed). Raises if the round failed."""
        ticket = Ticket(asyncio.get_running_loop())
        self.admissions.append(Admission(list(outcomes), row, ticket))
        self.gate_event.set()
        await (ticket.decided if row is not None else ticket.committed)
        return ticket

    async def _gate(self) -> None:
        """Start a round for whatever admissions wait, as round slots free up."""
        while True:
            await self.gate_event.wait()
            self.gate_event.clear()
            while self.admissions:
                await self.round_slots.acquire()
                batch, self.admissions = self.admissions, []
                self.rounds_running += 1
                asyncio.get_running_loop().create_task(self._run_round(batch))

    async def _run_round(self, batch: list[Admission]) -> None:
        try:
            await self._gate_round(batch)
        except Exception as exc:  # the waiting connections get the error; stop sending
            self.stop(f"recording outcomes failed: {exc}")
        finally:
            self.rounds_running -= 1
            self.round_slots.release()
            if self.admissions:
                self.gate_event.set()

    async def _gate_round(self, batch: list[Admission]) -> None:
        """One transaction: write the outcomes handed in, re-check consent for the rows about to
        be sent and skip those that fail it, let the others go, and commit once each one's MAIL
        FROM is written (or `consent_hold` has passed) — so an unsubscribe either commits before
        the re-check or after the message was begun. Connections send a message's data
        only after the round that admitted it committed: their previous outcome is then on disk."""
        outcomes = [oc for a in batch for oc in a.outcomes]
        rows = [a.row for a in batch if a.row is not None]
        async with (self.db_lock if self.serial_db else contextlib.nullcontext()):
            try:
                session, skipped = await self._in_db_thread(self._open_round, outcomes, rows)
            except BaseException as exc:
                for a in batch:
                    a.ticket.fail(exc)
                raise
            committed = False
            try:
                going = []
                for a in batch:
                    if a.row is not None:
                        a.ticket.decide(skipped.get(a.row.id))
                        if a.row.id not in skipped:
                            going.append(a.ticket.began)
                if going:
                    await asyncio.wait(going, timeout=self.options.consent_hold)
                await self._in_db_thread(self._close_round, session, True)
                committed = True
            finally:
                if not committed:
                    await asyncio.shield(self._in_db_thread(self._close_round, session, False))
                    for a in batch:
                        a.ticket.fail(RuntimeError("the gate's transaction did not commit"))
        for a in batch:
            a.ticket.commit()
        self.held -= len(outcomes) + len(skipped)
        self.totals["skipped"] += len(skipped)
        for oc in outcomes:
            self._count(oc)
        self._check_failure_rate()
        self._report()

    def _count(self, outcome: Outcome) -> None:
        key = {OutboxStatus.SENT: "sent", OutboxStatus.DEFERRED: "deferred", OutboxStatus.FAILED: "failed"}.get(
            outcome.status)
        if key:
            self.totals[key] += 1
        if outcome.attempted and outcome.status is not OutboxStatus.DEFERRED:
            self.recent.append(outcome.status is OutboxStatus.FAILED)

    def _check_failure_rate(self) -> None:
        window = self.recent
        if len(window) >= window.maxlen and sum(window) / len(window) > self.options.failure_threshold:
            self.stop(f"{sum(window)} of the last {len(window)} messages failed, more than "
                      f"{self.options.failure_threshold:.0%}; check the relay and the list, then "
                      f"`newsletter campaign resume {self.slug}`")

    def _report(self, *, force: bool = False, note: str = "") -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if not force and now - self._last_progress < self.options.progress_every:
            return
        self._last_progress = now
        t = self.totals
        elapsed = max(now - self._started, 1e-6)
        rate = t["sent"] / elapsed
        remaining = max(0, self._initial_open - t["sent"] - t["failed"] - t["skipped"])
        eta = remaining / rate if rate > 0 else None
        self.on_progress(Progress(t["sent"], t["deferred"], t["failed"], t["skipped"], remaining, rate, eta, note))


async def send_campaign(store: Store, config: Config, campaign_slug: str, skeletons: Mapping[str, MailSkeleton],
                        **kwargs) -> SendResult:
    """Run a `Sender` for the campaign (see `Sender` for the keyword arguments)."""
    return await Sender(store, config, campaign_slug, skeletons, **kwargs).run()


def with_installation_hooks(options: SendOptions, config: Config, campaign_id: int, *,
                            secret: bytes | None = None, postmark: Postmark | None = None) -> SendOptions:
    """`options` with this installation's DKIM signer and VERP return path, where configured
    (`postmark`, made from `config` and `secret` when not given; `secret` read once when not given).

    Every sender of a campaign (the CLI, workers, the demo) should send with these.
    """
    if postmark is None:
        postmark = Postmark.from_config(config, config.secret() if secret is None else secret)
    return replace(options, signer=postmark.signer,
                   envelope_sender=lambda row: postmark.return_path(MailKind.CAMPAIGN, row.key, campaign_id))


def sender_for(store: Store, config: Config, slug: str, variants: Mapping[str, RenderedMail], *,
               options: SendOptions = SendOptions(), secret: bytes | None = None, **kwargs) -> Sender:
    """A `Sender` for the started campaign `slug`, from its rendered language variants: one
    skeleton per variant, and this installation's DKIM and VERP hooks. Every sender of a
    campaign (the CLI, `--worker`, the demo) is made here; `kwargs` go to `Sender`. `secret`
    is the installation's (read once from the configuration when not given): the whole send
    uses it, and reads no key file again.

    Raises UnknownCampaign, DkimError.
    """
    secret = config.secret() if secret is None else secret
    with store.session() as session:
        campaign = campaigns.get_campaign(session, slug)
        list_slug, list_name, campaign_id = campaign.mailing_list.slug, campaign.mailing_list.name, campaign.id
    skeletons = build_skeletons(config, variants, list_slug, list_name, slug)
    hooks = with_installation_hooks(options, config, campaign_id, secret=secret)
    return Sender(store, config, slug, skeletons, options=hooks, secret=secret, **kwargs)
