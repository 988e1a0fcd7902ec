"""The sending engine: a campaign's ledger drained through K reused SMTP connections.

    feeder ── claim_batch (consent re-checked) ──► dispatcher ──► K connection tasks
                                                                    │ personalise (skeleton)
                                                                    │ pace (rate, hourly cap, domains)
                                                                    │ MAIL / RCPT / DATA
    recorder ◄── outcome (each connection waits until it is written) ┘

Correctness first. A claimed row is `sending` in the database before its message goes out,
and each connection waits until its previous outcome is committed before it hands the relay
another message: after a crash at most one message per connection (the concurrency) can have
been accepted without being recorded, and those rows — left `sending` by a dead worker — are
taken over and sent again with the same Message-ID. Outcomes are written in bulk (one
transaction for everything finished meanwhile: group commit).

Stopping (Ctrl-C, `campaign pause`, an auth failure, too many failures, an unreachable relay)
stops claiming and dispatching, lets each connection finish its message, gives unsent rows back
as `queued` (or `skipped` if the campaign was cancelled) and leaves the campaign paused with
the reason. A campaign becomes finished when no row is queued, sending or deferred.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import NamedTuple

from . import bounces, campaigns, outbox
from .config import Config
from .dkim import signer_from_config
from .delivery import Reply, SmtpConnection, Stage, Verdict, classify_reply, open_smtp
from .errors import DeliveryError
from .message import ListInfo, MailSkeleton, Recipient, UnsafeHeaderValue, message_id_domain, message_id_for
from .outbox import ClaimedRow, Counts, Outcome
from .pacing import DomainLimits, Pace, RateLimiter
from .compose import RenderedMail
from .store import Campaign, CampaignStatus, OutboxStatus, Store
from .verp import envelope_sender
from .tokens import Purpose

__all__ = [
    "SendOptions",
    "Progress",
    "SendResult",
    "Links",
    "Sender",
    "send_campaign",
    "send_test",
    "new_worker_id",
    "build_skeletons",
    "with_installation_hooks",
    "SendPlan",
    "plan_send",
]

Connector = Callable[[], Awaitable[SmtpConnection]]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


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
    #: `verp.envelope_sender(config, campaign_id, row.key)` gives a VERP address.
    envelope_sender: Callable[[ClaimedRow], str] | None = None
    #: DKIM hook: applied to each finished message.
    signer: Callable[[bytes], bytes] | None = None
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


def new_worker_id() -> str:
    """host:pid:random — lets a restarted sender on the same host see that a holder is dead."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _dead_workers(holders: Mapping[str, int]) -> list[str]:
    host = socket.gethostname()
    dead = []
    for worker in holders:
        parts = worker.rsplit(":", 2)
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.append(worker)
        except PermissionError:
            pass
    return dead


def _fixed_time_signer(secret: bytes, purpose: Purpose, now: datetime) -> Callable[[dict], str]:
    from itsdangerous import URLSafeTimedSerializer

    serializer = URLSafeTimedSerializer(secret, salt=f"newsletter/{purpose.value}")
    signer = serializer.make_signer(serializer.salt)
    stamp = int(now.timestamp())
    signer.get_timestamp = lambda: stamp  # type: ignore[method-assign]
    return lambda payload: signer.sign(serializer.dump_payload(payload)).decode("ascii")


class Links:
    """Per-recipient link URLs: list-scoped unsubscribe, preferences, and the mailto address."""

    def __init__(self, config: Config, list_slug: str, *, now: datetime):
        self.secret = config.secret()
        self.base = config.base_url.rstrip("/")
        self.list_slug = list_slug
        self.now = now
        self.mailto = config.unsubscribe_mailto or config.from_address

        # The same tokens as `tokens.issue_token`, with the serializers and signers built once.
        self._unsub = _fixed_time_signer(self.secret, Purpose.UNSUBSCRIBE, now)
        self._prefs = _fixed_time_signer(self.secret, Purpose.PREFERENCES, now)

    def for_row(self, row: ClaimedRow) -> tuple[str, str, str]:
        unsub = self._unsub({"s": row.key, "l": self.list_slug})
        prefs = self._prefs({"s": row.key, "g": row.language} if row.language else {"s": row.key})
        return (f"{self.base}/{Purpose.UNSUBSCRIBE.value}/{unsub}", f"{self.base}/{Purpose.PREFERENCES.value}/{prefs}",
                f"mailto:{self.mailto}?subject=unsubscribe%20{unsub}")


def with_installation_hooks(options: SendOptions, config: Config, campaign_id: int) -> SendOptions:
    """`options` with this installation's DKIM signer and VERP return path, where configured.

    Every sender of a campaign (the CLI, workers, the demo) should send with these.
    """
    return replace(options, signer=signer_from_config(config),
                   envelope_sender=lambda row: envelope_sender(config, campaign_id, row.key))


def build_skeletons(config: Config, variants: Mapping[str, RenderedMail], list_slug: str, list_name: str,
                    campaign_slug: str, *, subject_prefix: str = "") -> dict[str, MailSkeleton]:
    """One pre-encoded skeleton per language variant."""
    info = ListInfo(list_slug, list_name, campaign_slug)
    return {lang: MailSkeleton(config, mail, info, subject_prefix=subject_prefix) for lang, mail in variants.items()}


class _Pending(NamedTuple):
    outcome: Outcome
    done: asyncio.Future


class _Dispatcher:
    """Claimed rows waiting for a connection, with per-domain concurrency respected."""

    def __init__(self, limits: DomainLimits):
        self.limits = limits
        self.ready: deque[ClaimedRow] = deque()
        self.parked: dict[str, deque[ClaimedRow]] = {}
        self.changed = asyncio.Condition()
        self.closed = False

    def __len__(self) -> int:
        return len(self.ready) + sum(len(q) for q in self.parked.values())

    async def put(self, rows: list[ClaimedRow]) -> None:
        async with self.changed:
            self.ready.extend(rows)
            self.changed.notify_all()

    def _take(self) -> ClaimedRow | None:
        for domain, queue in self.parked.items():
            if queue and self.limits.try_acquire(domain):
                return queue.popleft()
        while self.ready:
            row = self.ready.popleft()
            domain = row.email.rpartition("@")[2]
            if self.limits.try_acquire(domain):
                return row
            self.parked.setdefault(domain, deque()).append(row)
        return None

    async def get(self, finished: Callable[[], bool]) -> ClaimedRow | None:
        """The next row to send, or None when closed or when `finished()` says nothing more will come."""
        async with self.changed:
            while True:
                if self.closed:
                    return None
                row = self._take()
                if row is not None:
                    return row
                if finished() and not len(self):
                    return None
                await self.changed.wait()

    async def done_with(self, row: ClaimedRow) -> None:
        async with self.changed:
            self.limits.release(row.email.rpartition("@")[2])
            self.changed.notify_all()

    async def wake(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def close(self) -> None:
        """Stop handing out rows (those not handed out stay, for `take_all`)."""
        async with self.changed:
            self.closed = True
            self.changed.notify_all()

    def take_all(self) -> list[ClaimedRow]:
        """Remove and return every row never handed out."""
        left = list(self.ready) + [r for q in self.parked.values() for r in q]
        self.ready.clear()
        self.parked.clear()
        return left


class Sender:
    """Sends one campaign. Create, then `await run()`; `stop(reason)` from a signal handler.

    `connect` opens a relay connection (raises DeliveryError). `clock` gives the time for the
    ledger and the pacing; `sleep` waits (tests pass fakes). `on_progress` receives `Progress`.
    """

    def __init__(self, store: Store, config: Config, campaign_slug: str, skeletons: Mapping[str, MailSkeleton],
                 *, options: SendOptions = SendOptions(), connect: Connector | None = None,
                 clock: Callable[[], datetime] = _utc_now, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_progress: Callable[[Progress], None] | None = None, worker_id: str | None = None):
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
        self.secret = config.secret()
        self.mid_domain = message_id_domain(config)
        self.envelope_sender = options.envelope_sender or (lambda _rcpt: config.from_address)
        self.limiter = RateLimiter(options.pace.rate, options.pace.hourly_cap,
                                   clock=lambda: self.clock().timestamp(), sleep=sleep)
        self.dispatcher = _Dispatcher(DomainLimits(options.pace.domain_limits))
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsletter-db")
        self.stop_reason: str | None = None
        self.feeding_done = False
        self.pending: list[_Pending] = []
        self.pending_event = asyncio.Event()
        self.recent: deque[bool] = deque(maxlen=options.failure_window)
        self.totals = {"sent": 0, "deferred": 0, "failed": 0, "skipped": 0}
        self.held = 0  # rows taken from the dispatcher and not yet recorded or given back
        self._date_cache: tuple[int, str] = (-1, "")
        self._last_progress = 0.0
        self._started = time.monotonic()
        self._initial_open = 0

    # -- control ----------------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Stop claiming and dispatching; in-flight messages finish. The campaign is left paused."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.pending_event.set()
        asyncio.get_running_loop().create_task(self.dispatcher.close())

    async def _db(self, func, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: func(*args, **kwargs))

    # -- database work (runs in the DB thread) ------------------------------------------------

    def _load(self) -> tuple[Campaign, Counts, dict[str, int]]:
        with self.store.session() as session:
            campaign = campaigns.get_campaign(session, self.slug)
            counts = outbox.count_rows(session, campaign.id)
            holders = outbox.active_claims(session, campaign.id)
            campaign.mailing_list  # loaded while the session is open
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

    def _record(self, outcomes: list[Outcome]) -> None:
        now = self.clock()
        if not any(oc.hard_bounce_email for oc in outcomes):
            # The common case, many times a second: a bare connection, no ORM session.
            with self.store.engine.begin() as conn:
                outbox.record_outcomes(conn, self.worker, outcomes, now=now)
            return
        with self.store.session() as session:
            outbox.record_outcomes(session, self.worker, outcomes, now=now)
            campaign_id = campaigns.get_campaign(session, self.slug).id
            rules = bounces.rules_from_config(self.config)
            for oc in outcomes:
                if oc.hard_bounce_email:
                    # The same rules as a bounce by mail: recorded with its reason, then judged
                    # (an unknown user is suppressed at once; a full mailbox scores as soft).
                    reply = oc.reply or ""
                    code = int(reply[:3]) if reply[:3].isdigit() else 550
                    bounces.record_smtp_rejection(session, oc.hard_bounce_email, campaign_id, code,
                                                  reply[3:].strip(), now, rules=rules)

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
            self.links = Links(self.config, campaign.mailing_list.slug, now=self.clock())
            if campaign.status is not CampaignStatus.SENDING:
                status, counts, reason = await self._db(self._settle)
                return SendResult(status, counts, reason or f"the campaign is {status.value}", 0)
            self.dead = _dead_workers(holders)
            recorder = asyncio.create_task(self._recorder())
            workers = [asyncio.create_task(self._connection(i)) for i in range(self.options.concurrency)]
            try:
                await self._feeder(campaign)
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    if not task.done():
                        task.cancel()
                self.pending_event.set()
                self.feeding_done = True
                await self._drain_pending()
                recorder.cancel()
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
                    self.dead = _dead_workers(holders)
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
                if len(self.dispatcher) or self.held or self.pending:
                    await self._wait_a_little(0.05)
                    continue
                counts, due = await self._db(self._next_due, campaign.id)
                if counts.open == 0:
                    break
                if counts.queued == 0 and counts.sending == 0 and due is not None:
                    if not self.options.wait_for_deferred:
                        self.stop(f"{counts.deferred} message(s) deferred; the next retry is due at "
                                  f"{_aware(due):%Y-%m-%d %H:%M} UTC — resume then")
                        break
                    wait = max(0.0, (_aware(due) - self.clock()).total_seconds())
                    self._report(force=True, note=f"waiting for {counts.deferred} deferred until {_aware(due):%H:%M:%S}")
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
        try:
            while True:
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
                    outcome, reconnect = await self._send_row(conn, row)
                    if outcome is None:  # the relay refuses us: the row goes back unmarked
                        await self._give_back(row)
                        return
                    if reconnect or not conn.usable:
                        await conn.close()
                        conn = None
                    await self._record_and_wait(outcome)
                finally:
                    self.held -= 1
                    await self.dispatcher.done_with(row)
        finally:
            if conn is not None:
                await conn.close()

    async def _give_back(self, row: ClaimedRow) -> None:
        await self._db(self._release, [row])

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

    async def _send_row(self, conn: SmtpConnection, row: ClaimedRow) -> tuple[Outcome | None, bool]:
        """Personalise, pace and deliver one row; (outcome, reconnect). None outcome: stop."""
        try:
            message_id, data = self._message(row)
        except (UnsafeHeaderValue, UnicodeError) as exc:
            return Outcome(row.id, OutboxStatus.FAILED, f"cannot build the message: {exc}", attempted=False), False
        await self.limiter.acquire()
        # MailSkeleton.render (and a DKIM signature) give CRLF line ends only.
        reply = await conn.deliver(self.envelope_sender(row), row.email, data, crlf=True)
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

    # -- recording -----------------------------------------------------------------------------

    async def _record_and_wait(self, outcome: Outcome) -> None:
        done = asyncio.get_running_loop().create_future()
        self.pending.append(_Pending(outcome, done))
        self.pending_event.set()
        await done

    async def _recorder(self) -> None:
        while True:
            await self.pending_event.wait()
            self.pending_event.clear()
            try:
                await self._drain_pending()
            except Exception as exc:  # the waiting connections get the error; stop sending
                self.stop(f"recording outcomes failed: {exc}")

    async def _drain_pending(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                await self._db(self._record, [p.outcome for p in batch])
            except BaseException as exc:
                for p in batch:
                    if not p.done.done():
                        p.done.set_exception(exc)
                raise
            for p in batch:
                self._count(p.outcome)
                if not p.done.done():
                    p.done.set_result(None)
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


async def send_test(config: Config, variants: Mapping[str, RenderedMail], addresses: list[str], *, list_slug: str,
                    list_name: str, campaign_slug: str, connect: Connector | None = None,
                    clock: Callable[[], datetime] = _utc_now) -> list[tuple[str, str, Reply]]:
    """Send every language variant, subject prefixed "[TEST] ", to each address; records nothing.

    Links in test mail are placeholders that do not unsubscribe anyone. Returns
    (address, language, reply) for each message. Raises DeliveryError if the relay is unusable.
    """
    skeletons = build_skeletons(config, variants, list_slug, list_name, campaign_slug, subject_prefix="[TEST] ")
    conn = await (connect or (lambda: open_smtp(config.smtp)))()
    base = config.base_url.rstrip("/")
    results = []
    try:
        for address in addresses:
            for language, skeleton in skeletons.items():
                recipient = Recipient(address, "", message_id_for(config.secret(), campaign_slug + ":test:" + language,
                                                                  0, message_id_domain(config)),
                                      f"{base}/unsubscribe/TEST", f"{base}/preferences/TEST",
                                      f"mailto:{config.unsubscribe_mailto or config.from_address}?subject=TEST")
                data = skeleton.render(recipient, date=format_datetime(clock().astimezone(timezone.utc)))
                results.append((address, language, await conn.deliver(config.from_address, address, data)))
    finally:
        await conn.close()
    return results


class SendPlan(NamedTuple):
    """What `newsletter send` is about to do: which variant each reader language gets, and to how many."""

    slug: str
    list_slug: str
    list_name: str
    #: subscriber language -> variant language (along the list's fallback chain)
    variant_of: dict[str, str]
    #: variant language -> active subscribers who will get it
    audience: dict[str, int]
    fallback_chain: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(self.audience.values())


def plan_send(session, config: Config, slug: str, list_slug: str, available: list[str]) -> SendPlan:
    """Map every language to the variant its readers get and count the audience per variant.

    Raises UnknownList, MissingVariant (no variant along the fallback chain).
    """
    from .compose import variant_for
    from .lists import get_list, languages_in_use

    mailing_list = get_list(session, list_slug)
    chain = tuple(mailing_list.languages or ())
    in_use = languages_in_use(session, list_slug)
    variant_of = {lang: variant_for(lang, available, chain) for lang in set(config.languages) | set(in_use)}
    audience: dict[str, int] = {}
    for lang, n in in_use.items():
        audience[variant_of[lang]] = audience.get(variant_of[lang], 0) + n
    return SendPlan(slug, list_slug, mailing_list.name, variant_of, audience, chain)
