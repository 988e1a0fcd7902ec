"""The parts of the service, each a small class with `start()` and `stop()`.

A part's `start()` begins its work as tasks of the running loop and returns; `stop()` ends
it: senders finish the messages in flight and leave their campaigns paused with
`SERVICE_STOPPED`, which the next start carries on; the scheduler's sends likewise; the
drainer's batch in hand is left to its lease; a mailbox pass in progress ends first. Blocking
library calls run in threads (`asyncio.to_thread`), one pass at a time per part. A pass that
fails is logged and tried again at the next interval: a part never takes the service down.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..bounces.rules import read_bounces
from ..hooks.delivery import deliver_due
from ..installation import Newsletter
from ..people.confirmation_queue import ConfirmationDrainer
from ..routine.carry import SERVICE_STOPPED, campaigns_to_carry_on, carry_on
from ..routine.housekeeping import run_housekeeping
from ..routine.scheduler import fire_due
from ..routine.welcome import plan_personal_mail, send_personal_mail
from ..sending.launch import SendControl
from ..sending.options import SendOptions
from ..sending.workers import new_worker_id

__all__ = ["Part", "PollingPart", "SenderPart", "SchedulerPart", "ConfirmationPart", "MailboxPart", "WelcomePart",
           "WebhookPart", "HousekeepingPart"]

log = logging.getLogger("newsletter.service")


class Part:
    """One part of the service. `ready` once started; `state` says what it is doing, for /readyz."""

    name = "part"

    def __init__(self) -> None:
        self.ready = False
        self.state = "not started"

    async def start(self) -> None:
        self.ready, self.state = True, "running"

    async def stop(self) -> None:
        self.ready, self.state = False, "stopped"


class Controls:
    """The sends a part runs, to stop them all when the service stops (from the loop's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, SendControl] = {}
        self.stopping = False

    def register(self, control: SendControl) -> None:
        """`on_start` of each send (called in the send's thread)."""
        with self._lock:
            self._running[id(control)] = control
            stopping = self.stopping
        if stopping:  # the service began stopping before this send got going
            control.stop(SERVICE_STOPPED)

    def stop_all(self) -> None:
        with self._lock:
            self.stopping = True
            running = list(self._running.values())
        for control in running:
            try:
                control.stop(SERVICE_STOPPED)
            except RuntimeError:  # its loop has ended: that send is over
                pass


class PollingPart(Part):
    """A part that runs `work()` (blocking, in a thread) every `interval` seconds until stopped."""

    interval = 5.0

    def __init__(self, newsletter: Newsletter, *, interval: float | None = None):
        super().__init__()
        self.newsletter = newsletter
        if interval is not None:
            self.interval = interval
        self.controls = Controls()
        self._task: asyncio.Task | None = None
        self._stop = asyncio.Event()
        self.passes = 0

    def work(self) -> Any:  # pragma: no cover - every part has its own
        raise NotImplementedError

    async def start(self) -> None:
        await super().start()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"service {self.name}")

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.work)
            except Exception:  # logged, and tried again at the next interval
                log.exception("%s: a pass failed", self.name, extra={"part": self.name})
            self.passes += 1
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        self._stop.set()
        self.controls.stop_all()
        if self._task is not None:
            await self._task
        await super().stop()


class SenderPart(PollingPart):
    """Carries on campaigns (`routine.carry`): those sending, stopped by a service, or with
    deferred rows due; at most `campaigns` at once, each with `options`."""

    name = "sender"

    def __init__(self, newsletter: Newsletter, *, options: SendOptions = SendOptions(), campaigns: int = 4,
                 interval: float | None = None, connect: Callable | None = None):
        super().__init__(newsletter, interval=interval)
        self.options = options
        self.campaigns = campaigns
        self.connect = connect
        self._busy: set[str] = set()
        self._threads: list[threading.Thread] = []

    def work(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        room = self.campaigns - len(self._threads)
        if room <= 0 or self.controls.stopping:
            return
        for slug in campaigns_to_carry_on(self.newsletter, busy=set(self._busy))[:room]:
            self._busy.add(slug)
            thread = threading.Thread(target=self._send, args=(slug,), name=f"sender {slug}")
            self._threads.append(thread)
            thread.start()
        self.state = f"sending {', '.join(sorted(self._busy))}" if self._busy else "idle"

    def _send(self, slug: str) -> None:
        try:
            extra = {"connect": self.connect} if self.connect is not None else {}
            log.info("sender: carrying on %s", slug, extra={"part": self.name, "campaign": slug})
            result = carry_on(self.newsletter, slug, self.options, on_start=self.controls.register, **extra)
            log.info("sender: %s is %s (sent %d now)%s", slug, result.status.value, result.sent_now,
                     f": {result.reason}" if result.reason else "",
                     extra={"part": self.name, "campaign": slug, "status": result.status.value,
                            "sent_now": result.sent_now})
        except Exception:
            log.exception("sender: %s failed", slug, extra={"part": self.name, "campaign": slug})
        finally:
            self._busy.discard(slug)

    async def stop(self) -> None:
        await super().stop()
        for thread in list(self._threads):
            await asyncio.to_thread(thread.join)


class SchedulerPart(PollingPart):
    """Fires scheduled sends (`routine.scheduler.fire_due`), one pass every `interval` seconds."""

    name = "scheduler"

    def __init__(self, newsletter: Newsletter, *, options: SendOptions = SendOptions(),
                 interval: float | None = None, connect: Callable | None = None):
        super().__init__(newsletter, interval=interval)
        self.options = options
        self.connect = connect
        self.worker = new_worker_id()

    def work(self) -> None:
        if self.controls.stopping:
            return
        extra = {"connect": self.connect} if self.connect is not None else {}
        for fired in fire_due(self.newsletter, worker=self.worker, options=self.options,
                              on_start=self.controls.register, **extra):
            log.info("scheduler: schedule %d (%s) is %s%s", fired.schedule_id, fired.slug, fired.outcome.value,
                     f": {fired.reason}" if fired.reason else "",
                     extra={"part": self.name, "schedule": fired.schedule_id, "campaign": fired.slug,
                            "status": fired.outcome.value})


class ConfirmationPart(Part):
    """The drainer of the confirmation queue; the visitor pages' own when they run too."""

    name = "confirmations"

    def __init__(self, newsletter: Newsletter, drainer: ConfirmationDrainer | None = None):
        super().__init__()
        self.drainer = drainer or ConfirmationDrainer(newsletter)

    async def start(self) -> None:
        self.drainer.start()
        await super().start()

    async def stop(self) -> None:
        await self.drainer.stop()
        await super().stop()


class MailboxPart(PollingPart):
    """Reads the bounce mailbox (`bounce_mailbox`) every `interval` seconds — bounces, complaints
    and readers' unsubscribe requests to the `mailto:` of List-Unsubscribe; idle without one."""

    name = "mailbox"
    interval = 60.0

    def work(self) -> None:
        source = self.newsletter.config.bounce_mailbox
        if not source:
            self.state = "idle: no bounce_mailbox is set"
            return
        summary = read_bounces(self.newsletter, source)
        self.state = "reading"
        if summary.results:
            log.info("mailbox: %d message(s) read", len(summary.results),
                     extra={"part": self.name, "messages": len(summary.results)})


class WelcomePart(PollingPart):
    """Plans and sends welcome and catch-up mail (`routine.welcome`) every `interval` seconds."""

    name = "welcome"

    def __init__(self, newsletter: Newsletter, *, interval: float | None = None):
        super().__init__(newsletter, interval=interval)
        self.worker = new_worker_id()

    def work(self) -> None:
        queued = plan_personal_mail(self.newsletter)
        done = send_personal_mail(self.newsletter, worker=self.worker)
        if queued or any(done):
            log.info("welcome: %d queued; sent %d, deferred %d, failed %d, skipped %d", queued, *done,
                     extra={"part": self.name, "queued": queued, **done._asdict()})


class WebhookPart(PollingPart):
    """Queues new events for the outgoing webhooks and delivers what is due, every `interval`
    seconds (`hooks.delivery.deliver_due`); several services share the queue."""

    name = "webhooks"

    def work(self) -> None:
        done = deliver_due(self.newsletter)
        self.state = "delivering"
        if done.delivered or done.retrying or done.failed:
            log.info("webhooks: %d delivered, %d to retry, %d given up", done.delivered, done.retrying, done.failed,
                     extra={"part": self.name})


class HousekeepingPart(PollingPart):
    """Reminders and expiry of pending sign-ups, the consent log's retention
    (`routine.housekeeping`), every `interval` seconds."""

    name = "housekeeping"
    interval = 300.0

    def work(self) -> None:
        done = run_housekeeping(self.newsletter)
        if any(done):
            log.info("housekeeping: %d reminded, %d expired, %d consent-log lines blanked", *done,
                     extra={"part": self.name, **done._asdict()})
