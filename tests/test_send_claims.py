"""A sender that holds rows while it waits its turn (a slow pace, an hourly cap) keeps them:
its claims are renewed, so another worker never takes them as stale and mails them too."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from test_send import SLUG, received_count, start, variants

from newsletter.sending.messages import build_skeletons
from newsletter.sending.pacing import Pace
from newsletter.sending.sender import Sender, SendOptions
from newsletter.statuses import CampaignStatus
from newsletter.store import campaigns as stored
from newsletter.store import ledger

STALE_AFTER = timedelta(minutes=30)


class SlowHours:
    """The sender's sleep: the (test) clock moves on five minutes at a time, each step a real
    moment long, so the sender's other tasks run while it waits. Once the wait has passed
    `stale_after`, another worker tries to claim the campaign's rows, as it would on another host."""

    def __init__(self, store, clock):
        self.store, self.clock = store, clock
        self.waited = timedelta(0)
        self.taken_by_other: list[int] = []

    def _other_claims(self) -> list[int]:
        with self.store.session() as session:
            campaign = stored.find_campaign(session, SLUG)
            now = self.clock()
            rows, _ = ledger.claim_batch(session, campaign, "elsewhere:1:abcdef", limit=100, now=now,
                                         stale_before=now - STALE_AFTER)
            return [r.id for r in rows]

    async def __call__(self, seconds: float) -> None:
        left = timedelta(seconds=seconds)
        while left > timedelta(0):
            step = min(left, timedelta(minutes=5))
            self.clock.advance(seconds=step.total_seconds())
            left -= step
            self.waited += step
            await asyncio.sleep(0.05)
            if self.waited > STALE_AFTER + timedelta(minutes=10):
                self.taken_by_other += await asyncio.to_thread(self._other_claims)


async def test_rows_held_through_an_hourly_cap_are_not_taken_by_another_worker(store, config, clock, smtp_server):
    emails = start(store, clock, 8)
    sleep = SlowHours(store, clock)
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    # Three an hour: the eight rows, claimed at once, wait up to three hours for their turn.
    options = SendOptions(concurrency=1, batch_size=8, idle_poll=3600.0, status_poll=0.01,
                          stale_after=STALE_AFTER, pace=Pace(hourly_cap=3))
    sender = Sender(store, config, SLUG, skeletons, options=options, clock=clock, sleep=sleep)
    # (Had the other worker taken rows, this sender would wait for them for ever: the timeout says so.)
    result = await asyncio.wait_for(sender.run(), timeout=60)
    assert result.status is CampaignStatus.FINISHED and result.counts.sent == 8
    assert sleep.waited >= timedelta(hours=2)  # the cap made it wait (and the other worker try)
    assert sleep.taken_by_other == []
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})
