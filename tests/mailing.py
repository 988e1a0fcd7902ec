"""What the tests of sending repeat: a sleep that moves the test clock, a campaign started over a
fast population, a relay's URL, one drain of the confirmation queue and what is left queued.

The relays themselves are fixtures in conftest.py (`relays`: one takes mail, one refuses our
login; `open_relays`: two that take mail), beside `smtp_server`.
"""

from __future__ import annotations

import asyncio

from population import populate

from newsletter.installation import Newsletter
from newsletter.people.confirmation_queue import (
    ConfirmationDrainer,
    DrainResult,
    count_queued,
)
from newsletter.sending import campaigns
from newsletter.store import Store

LANGUAGES = ("en", "fr", "es", "ar")


class FakeSleep:
    """The sender's sleep: moves the test clock instead of waiting; `total` is the time it was asked for."""

    def __init__(self, clock):
        self.clock = clock
        self.total = 0.0

    async def __call__(self, seconds: float) -> None:
        self.total += seconds
        self.clock.advance(seconds=seconds)
        await asyncio.sleep(0)


def start_campaign(store: Store, clock, n: int, *, slug: str) -> list[str]:
    """`n` active subscribers on the list asp-daily (in en, fr, es, ar) and the campaign `slug`
    started for them ("Day 2", English by default); returns their addresses."""
    emails = populate(store, n, now=clock())
    with store.session() as session:
        campaigns.start_campaign(session, slug, "asp-daily", now=clock(), subject="Day 2", languages=LANGUAGES,
                                 default_language="en")
    return emails


def relay_url(server, *, timeout: float = 5) -> str:
    """The `smtp://` URL of a test SMTP server on loopback (plain text, no login)."""
    return f"smtp://127.0.0.1:{server.port}?starttls=off&timeout={timeout:g}"


def drain_confirmations(newsletter: Newsletter) -> DrainResult:
    """One drain of the confirmation queue by a fresh drainer (as a fresh server process would),
    its connection closed after; returns what it did."""
    drainer = ConfirmationDrainer(newsletter)

    async def go() -> DrainResult:
        try:
            return await drainer.drain()
        finally:
            await drainer.stop()

    return asyncio.run(go())


def queued(newsletter: Newsletter) -> int:
    """How many confirmation mails are still queued."""
    with newsletter.store.session() as session:
        return count_queued(session)
