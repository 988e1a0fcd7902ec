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
Every message passes the gate (`gate.Gate`, where the rounds and their ordering argument are):
a round's transaction writes the outcomes its connections hand in and re-checks the consent of
the rows they are about to send, and the connection sends a message's data only after the
round that admitted it committed. A row that another worker took over meanwhile (this one was
presumed dead: its claim older than `stale_after`) is dropped there: its new holder sends it. The hold does not wait for the relay's answer: with a relay
20 ms away, waiting for it kept SQLite's write lock taken nearly all the time and made other
writers (sign-ups) wait up to seconds. After a crash at most one message per connection (the
concurrency) can have been accepted without being recorded, and those rows — left `sending`
by a dead worker — are taken over and sent again with the same Message-ID.

Stopping (Ctrl-C, a pause, an auth failure, too many failures, an unreachable relay) stops
claiming and dispatching, lets each connection finish its message, gives unsent rows back as
`queued` (or `skipped` if the campaign was cancelled) and leaves the campaign paused with the
reason: what happened, in words that name no command (the faces add how to resume). A
campaign becomes finished when no row is queued, sending or deferred.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

from ..bounces import rules as bounces
from ..config import Config
from ..errors import DeliveryError
from ..mail.compose import RenderedMail
from ..mail.message import (
    MailKind,
    MailSkeleton,
    MessageIds,
    Recipient,
    SmtpData,
    UnsafeHeaderValue,
    message_id_domain,
)
from ..mail.postmark import Postmark
from ..statuses import CampaignStatus, OutboxStatus
from ..store import Campaign, Store
from ..store import campaigns as stored
from ..store import ledger as outbox
from ..store.ledger import ClaimedRow, Counts, Outcome, Recheck
from ..texts import N_, NP_, Text
from ..transport.connection import (
    SmtpConnection,
    Stage,
    Verdict,
    classify_reply,
    open_smtp,
)
from ..transport.relays import Connector, RelayPool, relay_pool
from . import campaigns
from .db_threads import DbThreads
from .dispatch import Dispatcher
from .gate import Gate
from .messages import Links, build_skeletons
from .options import Progress, SendOptions, SendResult, run_sending
from .pacing import DomainLimits, RateLimiter, RelayPacing
from .workers import dead_workers, new_worker_id
from .writing import LedgerWriter

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


#: Waits shorter than this (seconds) are not worth making stoppable.
_SHORT_WAIT = 0.05
#: A connection whose relay is at its own pace for longer than this (seconds) moves to a relay
#: with room, when one serves the From domain; a shorter wait is cheaper than a new connection.
_SWITCH_AFTER = 0.5


class _Stopping(Exception):
    """The send stopped while a connection waited for its turn (the pacing)."""


def _stopped_because(status: CampaignStatus) -> Text:
    if status is CampaignStatus.PAUSED:
        return Text(CampaignStatus.PAUSED.value)
    return Text.of(N_("the campaign was %(status)s while sending"), status=Text(status.value))


#: `_send_row`'s answer for a message that never reached the relay: send it again at once.
_AGAIN = Outcome(0, OutboxStatus.QUEUED, None, attempted=False)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


#: The totals' key of each outcome status that counts.
_TOTAL_OF = {OutboxStatus.SENT: "sent", OutboxStatus.DEFERRED: "deferred", OutboxStatus.FAILED: "failed"}


class Sender:
    """Sends one campaign. Create, then `await run()`; `stop(reason)` from a signal handler.

    `connect` opens a relay connection (raises DeliveryError). `relays`, the pool `connect`
    opens connections from when there are several relays, brings each relay's own rate and
    hourly cap: a connection whose relay is at its pace moves to one with room, or waits.
    `clock` gives the time for the ledger and the pacing; `sleep` waits (tests pass fakes).
    `on_progress` receives `Progress`. `secret` is the installation's (read from the
    configuration when not given).
    """

    def __init__(self, store: Store, config: Config, campaign_slug: str, skeletons: Mapping[str, MailSkeleton],
                 *, options: SendOptions = SendOptions(), connect: Connector | None = None,
                 clock: Callable[[], datetime] = _utc_now, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_progress: Callable[[Progress], None] | None = None, worker_id: str | None = None,
                 secret: bytes | None = None, relays: RelayPool | None = None):
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
        self.message_ids = MessageIds(self.secret, campaign_slug, self.mid_domain)
        self.envelope_sender = options.envelope_sender or (lambda _rcpt: config.from_address)
        self.limiter = RateLimiter(options.pace.rate, options.pace.hourly_cap,
                                   clock=lambda: self.clock().timestamp(), sleep=self._pace)
        #: Whether the send has a rate or an hourly cap (else no message waits for the limiter).
        self.paced = self.limiter.rate is not None or self.limiter.hourly_cap is not None
        self.relays = relays
        self.from_domain = config.from_address.rpartition("@")[2]
        #: Each relay's own rate and hourly cap (None: no relay has one).
        self.relay_pacing: RelayPacing | None = None
        if relays is not None:
            pacing = RelayPacing({r.spec.name: (r.spec.rate, r.spec.hourly_cap) for r in relays.relays},
                                 clock=lambda: self.clock().timestamp())
            if pacing:
                self.relay_pacing = pacing
                relays.prefer = pacing.has_room
        # The configured per-provider limits, and over them any the send's pace names.
        self.dispatcher = Dispatcher(DomainLimits({**config.domain_limit_table(), **options.pace.domain_limits}))
        # SQLite has one writer at a time: one DB thread, and the gate's rounds one after another.
        # PostgreSQL locks rows: several rounds may be open at once, each in a thread of its own.
        self.serial_db = store.dialect == "sqlite"
        rounds = 1 if self.serial_db else max(1, options.gate_rounds)
        self.db_threads = DbThreads(1 if self.serial_db else rounds + 1, name="newsletter-db")
        self.campaign_id = self.list_id = 0
        self.stop_reason: str | Text | None = None
        #: Set by `stop`: wakes every wait (pacing, the hourly cap, deferred rows, back-off).
        self._stopping = asyncio.Event()
        self.next_due: datetime | None = None
        self.feeding_done = False
        #: On SQLite every transaction runs under this lock (see `_db`); a gate round holds it.
        self.db_lock = asyncio.Lock()
        #: Held by the first connection's login (see `_open`).
        self._first_login = asyncio.Lock()
        self._logged_in = False
        self.gate = Gate(store, worker=self.worker, clock=clock, bounce_rules=bounces.rules_from_config(config),
                         consent_hold=options.consent_hold, rounds=rounds,
                         db_lock=self.db_lock if self.serial_db else None, in_db_thread=self._in_db_thread,
                         on_round=self._recorded, on_failure=lambda exc: self.stop(
                             Text.of(N_("recording outcomes failed: %(error)s"), error=str(exc))),
                         working=lambda: self.working, gather=options.gate_gather)
        #: Connections that will hand the gate a request soon: not waiting for rows, not ended.
        self.working = options.concurrency
        self.recent: deque[bool] = deque(maxlen=options.failure_window)
        self.totals = {"sent": 0, "deferred": 0, "failed": 0, "skipped": 0}
        self.held = 0  # rows taken from the dispatcher whose outcome is not yet committed or given back
        #: The ids of the rows in the dispatcher or in flight. A claim can return one of them again
        #: (another worker took it over, then gave it back, and this one claimed it anew): the
        #: copy this sender has goes on, and no second copy is sent.
        self.live: set[int] = set()
        self._date_cache: tuple[int, str] = (-1, "")
        self._last_progress = 0.0
        self._started = time.monotonic()
        self._initial_open = 0
        #: Whether the campaign's ledger is whole; until it is, `_write_ledger` writes it on.
        self.ledger_whole = True
        self._unwritten = 0

    # -- control ----------------------------------------------------------------------------

    def stop(self, reason: str | Text) -> None:
        """Stop claiming and dispatching; in-flight messages finish. The campaign is left paused."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stopping.set()
        asyncio.get_running_loop().create_task(self.dispatcher.close())

    async def _wait(self, seconds: float) -> None:
        """Sleep `seconds` (the injected sleep), or less: `stop` ends every wait at once."""
        if self.stop_reason is not None:
            return
        if seconds < _SHORT_WAIT:
            await self.sleep(seconds)
            return
        sleeping = asyncio.ensure_future(self.sleep(seconds))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait((sleeping, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            stopping.cancel()

    async def _pace(self, seconds: float) -> None:
        """The rate limiter's wait; raises _Stopping when the send stops meanwhile."""
        await self._wait(seconds)
        if self.stop_reason is not None:
            raise _Stopping

    async def _watch_status(self) -> None:
        """Every `status_poll` seconds, read the campaign's status: paused or cancelled from
        elsewhere (another process, the staff pages) stops this send even while every
        connection waits on the pacing and nothing is being claimed. Every quarter of
        `stale_after`, renew the claims on the rows this sender holds, so that another worker
        never takes them as stale while they wait for the pace or an hourly cap."""
        renewed = self.clock()
        while self.stop_reason is None:
            try:
                await asyncio.wait_for(self._stopping.wait(), self.options.status_poll)
                return
            except asyncio.TimeoutError:
                pass
            status = await self._db(self._status)
            if status is not CampaignStatus.SENDING:
                self.stop(_stopped_because(status))
            elif self.clock() - renewed >= self.options.stale_after / 4:
                renewed = self.clock()
                await self._db(self._renew_claims, renewed)

    async def _db(self, func, *args, **kwargs):
        """Run `func` in the DB thread, in turn with the gate's rounds: on SQLite every
        transaction takes the one write lock, which a gate round holds while it waits for the
        relay, so a second transaction from this thread would wait on itself."""
        if not self.serial_db:
            return await self._in_db_thread(func, *args, **kwargs)
        async with self.db_lock:
            return await self._in_db_thread(func, *args, **kwargs)

    async def _in_db_thread(self, func, *args, **kwargs):
        """`func(*args, **kwargs)` in the DB thread; its result (or its exception raised here)."""
        return await self.db_threads.run(func, *args, **kwargs)

    # -- database work (runs in the DB thread) ------------------------------------------------

    def _load(self) -> tuple[Campaign, Counts, dict[str, int]]:
        with self.store.session() as session:
            campaign = campaigns.get_campaign(session, self.slug)
            counts = outbox.count_rows(session, campaign.id)
            holders = outbox.active_claims(session, campaign.id)
            campaign.mailing_list  # loaded while the session is open
            self.campaign_id, self.list_id = campaign.id, campaign.list_id
            self.ledger_whole = campaign.ledger_until is None
            self._unwritten = campaigns.unwritten_rows(session, campaign, counts)
            return campaign, counts, holders

    # The status poll, the holders and the count read only: `reading()` never waits for SQLite's
    # write lock, which the sign-ups' commits (another process) may hold.
    def _status(self) -> CampaignStatus:
        with self.store.reading() as session:
            return stored.campaign_by_id(session, self.campaign_id, fresh=True).status

    def _holders(self) -> dict[str, int]:
        with self.store.reading() as session:
            return outbox.active_claims(session, self.campaign_id)

    def _claim(self, campaign: Campaign, dead: list[str]) -> tuple[CampaignStatus, list[ClaimedRow], int]:
        now = self.clock()
        with self.store.session() as session:
            status = stored.campaign_status(session, campaign.id)
            if status is not CampaignStatus.SENDING:
                return status, [], 0
            rows, skipped = outbox.claim_batch(session, campaign, self.worker, limit=self.options.batch_size, now=now,
                                               stale_before=now - self.options.stale_after, dead_workers=dead)
            return status, rows, skipped

    def _renew_claims(self, now: datetime) -> None:
        with self.store.session() as session:
            outbox.renew_claims(session, self.campaign_id, self.worker, now=now)

    def _release(self, rows: list[ClaimedRow]) -> None:
        now = self.clock()
        with self.store.session() as session:
            campaigns.release_claims(session, self.slug, self.worker, [r.id for r in rows], now=now)

    def _settle(self) -> tuple[CampaignStatus, Counts, str | None]:
        now = self.clock()
        with self.store.session() as session:
            return campaigns.settle_campaign(session, self.slug, self.stop_reason, now=now, retry_at=self.next_due)

    def _next_due(self, campaign_id: int) -> tuple[Counts, datetime | None]:
        with self.store.reading() as session:
            return outbox.count_rows(session, campaign_id), outbox.next_due_at(session, campaign_id)

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> SendResult:
        """Send until the campaign is finished or stopped. Returns the campaign's state after.

        Raises UnknownCampaign. A relay that refuses us pauses the campaign (reason in the
        result); it is not raised.
        """
        try:
            campaign, counts, holders = await self._db(self._load)
            self.gate.campaign_id, self.gate.list_id = self.campaign_id, self.list_id
            self._initial_open = counts.open + self._unwritten  # the whole audience, written or not
            self.expires = campaigns.expires_at(campaign)
            self.links = Links(self.config, campaign.mailing_list.slug, now=self.clock(), secret=self.secret)
            if campaign.status is not CampaignStatus.SENDING:
                status, counts, reason = await self._db(self._settle)
                return SendResult(status, counts, reason or f"the campaign is {status.value}", 0, self.slug)
            self.dead = dead_workers(holders)
            gate = asyncio.create_task(self.gate.run())
            watcher = asyncio.create_task(self._watch_status())
            workers = [asyncio.create_task(self._connection(i)) for i in range(self.options.concurrency)]
            writer = asyncio.create_task(self._write_ledger())
            try:
                await self._feeder(campaign)
                await asyncio.gather(*workers)
            finally:
                self.feeding_done = True
                await writer  # ends after the chunk it is writing
                for task in workers:
                    if not task.done():
                        task.cancel()
                self.feeding_done = True
                watcher.cancel()
                await self.gate.drain()  # admissions of connections that ended normally
                gate.cancel()
                await self._in_db_thread(self.gate.close)
                await self.dispatcher.close()
                left = self.dispatcher.take_all()
                if left:
                    await self._db(self._release, left)
            status, counts, reason = await self._db(self._settle)
            self._report(force=True)
            return SendResult(status, counts, reason, self.totals["sent"], self.slug,
                              self.next_due if status is CampaignStatus.PAUSED else None)
        finally:
            self.db_threads.shutdown()

    def _idle(self) -> bool:
        return self.feeding_done

    async def _write_ledger(self) -> None:
        """Write the rest of the campaign's ledger while it sends (`writing.LedgerWriter`), a
        chunk at a time, until it is whole or the send stops; a failure stops the send."""
        if self.ledger_whole:
            return
        writer = LedgerWriter(self.store, self.config, self.campaign_id, clock=self.clock)
        # SQLite: in turn with the gate's rounds; PostgreSQL: in a thread of its own, beside them.
        own = None if self.serial_db else ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsletter-ledger")
        try:
            while not self.ledger_whole and self.stop_reason is None and not self.feeding_done:
                if own is None:
                    self.ledger_whole = await self._db(writer.write_next)
                else:
                    self.ledger_whole = await asyncio.get_running_loop().run_in_executor(own, writer.write_next)
        except Exception as exc:  # noqa: BLE001 — any failure stops the send, with what it was
            self.stop(Text.of(N_("writing the rest of the ledger failed: %(error)s"), error=str(exc)))
        finally:
            if own is not None:
                own.shutdown(wait=True)

    async def _feeder(self, campaign: Campaign) -> None:
        last_dead_check = time.monotonic()
        polled = False  # the last round found nothing to claim while others held rows
        try:
            while self.stop_reason is None:
                if len(self.dispatcher) >= self.options.batch_size:
                    await self._wait_a_little(0.02)
                    continue
                if polled or time.monotonic() - last_dead_check > self.options.dead_check_every:
                    self.dead = dead_workers(await self._db(self._holders))
                    last_dead_check, polled = time.monotonic(), False
                status, rows, skipped = await self._db(self._claim, campaign, self.dead)
                self.totals["skipped"] += skipped
                if status is not CampaignStatus.SENDING:
                    self.stop(_stopped_because(status))
                    break
                if rows and self.live:
                    rows = [r for r in rows if r.id not in self.live]
                if rows:
                    self.live.update(r.id for r in rows)
                    await self.dispatcher.put(rows)
                    continue
                # Nothing to claim now: wait for what is in flight, then see what is left.
                if len(self.dispatcher) or self.held:
                    await self._wait_a_little(0.05)
                    continue
                counts, due = await self._db(self._next_due, campaign.id)
                if not self.ledger_whole:  # the rest of the ledger is being written
                    await self._wait_a_little(0.05)
                    continue
                if counts.open == 0:
                    break
                if counts.queued == 0 and counts.sending == 0 and due is not None:
                    if not self.options.wait_for_deferred:
                        self.next_due = due
                        self.stop(Text.counted(NP_("%(n)s message deferred; the next retry is due at %(due)s UTC",
                                                   "%(n)s messages deferred; the next retry is due at %(due)s UTC"),
                                               counts.deferred, due=f"{due:%Y-%m-%d %H:%M}"))
                        break
                    wait = max(0.0, (due - self.clock()).total_seconds())
                    self._report(force=True, note=f"waiting for {counts.deferred} deferred until {due:%H:%M:%S}")
                    await self._wait(min(wait, self.options.idle_poll) if wait > 0 else 0)
                    continue
                # Rows held by other workers (or a dead one not yet stale): poll, and look again
                # for holders that died.
                polled = True
                await self._wait(min(1.0, self.options.idle_poll))
        finally:
            self.feeding_done = True
            await self.dispatcher.wake()

    async def _wait_a_little(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    # -- connections -----------------------------------------------------------------------------

    async def _open(self) -> SmtpConnection | None:
        """A new relay connection, or None when the send is stopping (the reason is set).

        Until one login has worked, connections open one at a time: a wrong password is
        refused once, and the send stops, rather than once per connection."""
        if self._logged_in:
            return await self._connect()
        async with self._first_login:
            conn = await self._connect()
            self._logged_in = self._logged_in or conn is not None
            return conn

    async def _connect(self) -> SmtpConnection | None:
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
                    self.stop(Text.of(N_("the relay refused us: %(error)s"), error=str(exc)))
                    return None
            if attempt + 1 < self.options.reconnect_attempts:
                await self._wait(delay)
                delay = min(delay * 2, 60.0)
        self.stop(Text.counted(NP_("cannot reach the relay after %(n)s attempt: %(error)s",
                                   "cannot reach the relay after %(n)s attempts: %(error)s"),
                               self.options.reconnect_attempts, error=str(last)))
        return None

    async def _usable(self, conn: SmtpConnection | None) -> SmtpConnection | None:
        """`conn` if the relay has not closed it (an idle connection may have timed out while
        the pacing waited), else a new one; None when the send is stopping."""
        if conn is not None and conn.usable:
            return conn
        if conn is not None:
            await conn.close()
        return await self._open()

    async def _connection(self, index: int) -> None:
        conn: SmtpConnection | None = None
        unrecorded: list[Outcome] = []  # outcomes that go to the gate with this connection's next message
        try:
            while True:
                row = self.dispatcher.take_nowait()
                if row is None:
                    if unrecorded:  # nothing ready: record what is done before waiting
                        await self.gate.admit(unrecorded, None)
                        unrecorded = []
                    self._not_working()
                    try:
                        row = await self.dispatcher.get(self._idle)
                    finally:
                        self.working += 1
                    if row is None:
                        return
                self.held += 1
                try:
                    try:
                        message = self._message(row)
                    except (UnsafeHeaderValue, UnicodeError) as exc:
                        unrecorded.append(Outcome(row.id, OutboxStatus.FAILED, f"cannot build the message: {exc}",
                                                  attempted=False))
                        continue
                    try:
                        if self.paced:
                            await self._paced_turn()
                    except _Stopping:  # stopped while waiting its turn: the row goes back unmarked
                        await self._give_back(row)
                        return
                    for last_try in (False, True):
                        if conn is None or not conn.usable:
                            conn = await self._usable(conn)
                        if conn is not None and self.relay_pacing is not None:
                            conn = await self._relay_turn(conn)
                        if conn is None:  # stopping: the row goes back unmarked
                            await self._give_back(row)
                            return
                        outcome, reconnect = await self._send_row(conn, row, message, unrecorded, last_try=last_try)
                        unrecorded = []
                        if reconnect or not conn.usable:
                            await conn.close()
                            conn = None
                        if outcome is not _AGAIN:
                            break
                    if outcome is None:
                        if reconnect:  # the relay refuses us: the row goes back unmarked
                            await self._give_back(row)
                            return
                        continue  # skipped at the gate, or another worker's now
                    unrecorded.append(outcome)
                finally:
                    self.dispatcher.release(row)
        finally:
            if unrecorded:
                await self.gate.admit(unrecorded, None)
            self._not_working()
            if conn is not None:
                await conn.close()

    async def _relay_turn(self, conn: SmtpConnection) -> SmtpConnection | None:
        """`conn` once its relay may take one more message (counted against the relay's rate
        and hourly cap), or a new connection to another relay of the From domain that has room
        now when `conn`'s would keep the message waiting; None when the send is stopping.

        A relay at its pace is not a failure: with no other relay to go to, the message waits,
        in waits that a stop or a pause ends at once."""
        pacing: RelayPacing = self.relay_pacing  # type: ignore[assignment]  # the caller checked
        while True:
            wait = pacing.try_take(conn.relay)
            if wait <= 0:
                return conn
            if (wait > _SWITCH_AFTER and self.relays is not None
                    and self.relays.can_open(self.from_domain, besides=conn.relay, having=pacing.has_room)):
                await conn.close()
                opened = await self._open()
                if opened is None:
                    return None
                conn = opened
                continue
            if wait >= 5:
                self._report(force=True, note=f"relay {conn.relay} is at its rate or hourly cap, and no other "
                                              f"relay has room: the next message goes in {wait:.0f} s")
            await self._wait(min(wait, 1.0))
            if self.stop_reason is not None:
                await conn.close()
                return None
            if not conn.usable:  # the relay dropped it while it waited
                await conn.close()
                opened = await self._open()
                if opened is None:
                    return None
                conn = opened

    async def _paced_turn(self) -> None:
        """Wait for the rate limiter's turn. Meanwhile the connection does not count as working:
        a gate round must not gather for a request that waits for the pace (at 100/s each round
        would otherwise wait out `gate_gather` for the connections still waiting their turn)."""
        self._not_working()
        try:
            await self.limiter.acquire()
        finally:
            self.working += 1

    def _not_working(self) -> None:
        """A connection waits for rows or has ended: the gate's round need not wait for it."""
        self.working -= 1
        self.gate.poke()

    async def _give_back(self, row: ClaimedRow) -> None:
        await self._db(self._release, [row])
        self.held -= 1
        self.live.discard(row.id)

    def _date(self) -> str:
        now = self.clock()
        second = int(now.timestamp())
        if self._date_cache[0] != second:
            self._date_cache = (second, format_datetime(now.astimezone(timezone.utc)))
        return self._date_cache[1]

    def _message(self, row: ClaimedRow) -> tuple[str, bytes | SmtpData]:
        """(Message-ID, the message): as DATA carries it, unless a signer signs the message
        itself (the transport then stuffs the signed bytes)."""
        message_id = self.message_ids(row.subscriber_id)
        unsub, prefs, mailto = self.links.for_row(row)
        recipient = Recipient(row.email, row.name, message_id, unsub, prefs, mailto)
        skeleton = self.skeletons.get(row.language, self.default_skeleton)
        if self.options.signer:
            return message_id, self.options.signer(skeleton.render(recipient, date=self._date()))
        return message_id, skeleton.render_for_smtp(recipient, date=self._date())

    async def _send_row(self, conn: SmtpConnection, row: ClaimedRow, message: tuple[str, bytes | SmtpData],
                        unrecorded: list[Outcome], *, last_try: bool) -> tuple[Outcome | None, bool]:
        """Pass the gate (which records `unrecorded`) and deliver one personalised row;
        (outcome, reconnect). None outcome: skipped at the gate, not held any more (another
        worker has the row: no outcome of ours), or the relay refuses us (stop).
        `_AGAIN`: the connection was lost before any of the message reached the relay, and this
        was not `last_try`: send it again at once on a new connection, counting no attempt."""
        message_id, data = message
        ticket = await self.gate.admit(unrecorded, row)
        if not ticket.goes:
            return None, False
        # MailSkeleton.render (and a DKIM signature) give CRLF line ends only.
        reply = await conn.deliver(self.envelope_sender(row), row.email, data, crlf=True, gate=ticket)
        if not reply.reached and not last_try and self.stop_reason is None:
            return _AGAIN, True
        verdict = classify_reply(reply)
        text = reply.describe()[:1000]
        relay, code = conn.relay, reply.code
        if verdict is Verdict.RELAY:
            self.stop(Text.of(N_("the relay refused the sender: %(reply)s"), reply=text))
            return None, True
        if verdict is Verdict.SENT:
            return Outcome(row.id, OutboxStatus.SENT, text, message_id, None, None, True, relay, code), False
        if verdict is Verdict.BOUNCE:
            return Outcome(row.id, OutboxStatus.FAILED, text, message_id, None, row.email, True, relay, code), False
        if verdict is Verdict.FAIL:
            return Outcome(row.id, OutboxStatus.FAILED, text, message_id, None, None, True, relay, code), False
        # Deferred: retry with exponential backoff until the campaign's expiry, then fail.
        backoff = min(self.options.defer_base * (2 ** row.attempts), self.options.defer_max)
        due = self.clock() + backoff
        if due > self.expires:
            outcome = Outcome(row.id, OutboxStatus.FAILED, f"{text}; still deferred when the campaign expired",
                              message_id, relay=relay, reply_code=code)
        else:
            outcome = Outcome(row.id, OutboxStatus.DEFERRED, text, message_id, next_attempt_at=due, relay=relay,
                              reply_code=code)
        return outcome, verdict is Verdict.DEFER_RECONNECT or reply.stage is Stage.CONNECTION

    # -- what the gate's rounds wrote ------------------------------------------------------------

    def _recorded(self, outcomes: list[Outcome], recheck: Recheck) -> None:
        """A gate round committed `outcomes`, skipped the rows in `recheck.skipped` and found
        those in `recheck.not_held` no longer this sender's (not counted: their holder's), among
        them any of the outcomes' rows that another worker took over before the round wrote."""
        lost = recheck.not_held
        written = [oc for oc in outcomes if oc.row_id not in lost] if lost else outcomes
        self.held -= len(written) + len(recheck.skipped) + len(lost)
        live = self.live
        for oc in outcomes:
            live.discard(oc.row_id)
        live.difference_update(recheck.skipped)
        live.difference_update(lost)
        self.totals["skipped"] += len(recheck.skipped)
        for oc in written:
            self._count(oc)
        self._check_failure_rate()
        self._report()

    def _count(self, outcome: Outcome) -> None:
        key = _TOTAL_OF.get(outcome.status)
        if key:
            self.totals[key] += 1
        if outcome.attempted and outcome.status is not OutboxStatus.DEFERRED:
            self.recent.append(outcome.status is OutboxStatus.FAILED)

    def _check_failure_rate(self) -> None:
        window = self.recent
        if len(window) >= window.maxlen and sum(window) / len(window) > self.options.failure_threshold:
            self.stop(Text.of(N_("%(failed)s of the last %(n)s messages failed, more than %(share)s"),
                              failed=sum(window), n=len(window), share=f"{self.options.failure_threshold:.0%}"))

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
    if config.relays and kwargs.get("connect") is None:
        pool = relay_pool(config.relays, cool_off=timedelta(seconds=config.relay_cool_off_seconds),
                          eight_bit=config.eight_bit_mime)
        kwargs["connect"] = pool.connector(config.from_address.rpartition("@")[2])
        kwargs["relays"] = pool
    return Sender(store, config, slug, skeletons, options=hooks, secret=secret, **kwargs)
