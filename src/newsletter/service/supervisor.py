"""The supervisor: starts the parts chosen, waits for SIGTERM or SIGINT, stops them.

Stopping goes in the reverse order of starting: the parts that send (scheduler, sender)
first — their sends finish the messages in flight and leave the campaigns paused, to be
carried on by the next start — then the mailbox reader, the drainer and, last, the pages
(so that /healthz answers while the rest winds down).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable
from typing import Any

from ..errors import InvalidField
from ..installation import Newsletter
from ..sending.options import SendOptions
from .http import HttpPart
from .parts import (
    ConfirmationPart,
    HousekeepingPart,
    MailboxPart,
    Part,
    SchedulerPart,
    SenderPart,
    WebhookPart,
    WelcomePart,
)

__all__ = ["PART_NAMES", "Service"]

log = logging.getLogger("newsletter.service")

#: Every part, in the order they start.
PART_NAMES = ("web", "confirmations", "mailbox", "welcome", "housekeeping", "sender", "scheduler", "webhooks")


class Service:
    """The long-running process of an installation: the parts named in `only` (default: all).

    Without "web" an HTTP server still answers /healthz and /readyz on host:port.
    """

    def __init__(self, newsletter: Newsletter, *, only: Iterable[str] = PART_NAMES, host: str = "127.0.0.1",
                 port: int = 8000, root_path: str = "", log_level: str = "info",
                 options: SendOptions = SendOptions(), poll: float = 5.0):
        chosen = set(only)
        unknown = chosen - set(PART_NAMES)
        if unknown:
            raise InvalidField("part", f"no part is called {', '.join(sorted(unknown))} "
                                       f"(the parts: {', '.join(PART_NAMES)})")
        self.newsletter = newsletter
        self.stopping = asyncio.Event()
        self.http = HttpPart(newsletter, self.readiness, host=host, port=port, root_path=root_path,
                             pages="web" in chosen, log_level=log_level)
        self.parts: list[Part] = [self.http]
        if "confirmations" in chosen:
            self.parts.append(ConfirmationPart(newsletter, self.http.drainer))
        if "mailbox" in chosen:
            self.parts.append(MailboxPart(newsletter))
        if "welcome" in chosen:
            self.parts.append(WelcomePart(newsletter, interval=poll))
        if "housekeeping" in chosen:
            self.parts.append(HousekeepingPart(newsletter))
        if "sender" in chosen:
            self.parts.append(SenderPart(newsletter, options=options, interval=poll))
        if "scheduler" in chosen:
            self.parts.append(SchedulerPart(newsletter, options=options, interval=poll))
        if "webhooks" in chosen:
            self.parts.append(WebhookPart(newsletter, interval=poll))

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, detail): every part started and the store at the code's schema."""
        try:
            self.newsletter.check_schema()
            store = "ok"
        except Exception as exc:  # the answer is the probe's: the message says what is wrong
            store = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        parts = {part.name: part.state for part in self.parts}
        return all(p.ready for p in self.parts) and store == "ok", {"store": store, "parts": parts}

    def stop(self, reason: str = "asked to stop") -> None:
        """Ask the service to stop (from the loop's thread)."""
        if not self.stopping.is_set():
            log.info("stopping: %s", reason, extra={"reason": reason})
            self.stopping.set()

    async def run(self, *, handle_signals: bool = True) -> None:
        """Start every part, run until `stop()` (or SIGTERM/SIGINT), then stop them in reverse."""
        loop = asyncio.get_running_loop()
        if handle_signals:
            for signum, reason in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
                loop.add_signal_handler(signum, self.stop, reason)
        started: list[Part] = []
        try:
            for part in self.parts:
                await part.start()
                started.append(part)
                log.info("%s: %s", part.name, part.state, extra={"part": part.name})
            log.info("service ready: %s", ", ".join(p.name for p in self.parts))
            await self.stopping.wait()
        finally:
            for part in reversed(started):
                try:
                    await part.stop()
                except Exception:
                    log.exception("%s: stopping failed", part.name, extra={"part": part.name})
                else:
                    log.info("%s: stopped", part.name, extra={"part": part.name})
            if handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)
            log.info("service stopped")
