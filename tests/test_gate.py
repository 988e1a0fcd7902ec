"""The gate's rounds: how many messages a round carries, against a real SMTP server.

The ordering guarantees themselves (unsubscribes, crashes) are held by test_send_crash.py;
here: a round gathers the requests of every working connection, so that with few connections
a round still carries a message for each of them rather than one.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from mailing import FakeSleep
from test_send import SLUG, received_count, rows, run, start, variants

from newsletter.sending.gate import Gate
from newsletter.sending.messages import build_skeletons
from newsletter.sending.pacing import Pace
from newsletter.sending.sender import Sender, SendOptions
from newsletter.statuses import CampaignStatus, OutboxStatus


@pytest.fixture
def round_sizes(monkeypatch):
    """The number of rows to send in each gate round (rounds of outcomes only leave 0)."""
    sizes: list[int] = []
    plain = Gate._round

    async def counted(self, batch):
        sizes.append(sum(1 for a in batch if a.row is not None))
        return await plain(self, batch)

    monkeypatch.setattr(Gate, "_round", counted)
    return sizes


async def test_a_round_carries_a_message_for_every_working_connection(store, config, clock, smtp_server,
                                                                      round_sizes):
    emails = start(store, clock, 48)
    concurrency = 4
    result = await run(store, config, clock, concurrency=concurrency, batch_size=48, gate_gather=5.0)
    assert result.status is CampaignStatus.FINISHED
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})
    assert all(r.status is OutboxStatus.SENT for r in rows(store).values())
    carrying = [n for n in round_sizes if n]
    assert sum(carrying) == 48
    # Rounds carry several messages each (one a round was the old cost); how many exactly
    # depends on when connections ask, which a loaded machine shifts.
    assert len(carrying) <= 48 // 2, carrying


async def test_without_gathering_a_round_starts_at_the_first_request(store, config, clock, smtp_server,
                                                                   round_sizes):
    emails = start(store, clock, 12)
    result = await run(store, config, clock, concurrency=1, batch_size=12, gate_gather=0.0)
    assert result.status is CampaignStatus.FINISHED
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})
    assert [n for n in round_sizes if n] == [1] * 12


class HeldSleep(FakeSleep):
    """Moves the test clock, but holds every sleep (the rate limiter's waits among them) until
    `released` is set."""

    def __init__(self, clock):
        super().__init__(clock)
        self.released = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        await self.released.wait()
        await super().__call__(seconds)


async def test_a_paced_round_does_not_gather_for_connections_waiting_their_turn(store, config, clock, smtp_server,
                                                                                monkeypatch):
    """At a rate, the connections that wait for the limiter's turn are not working: a round
    goes with the requests it has instead of gathering for theirs. Here the waiting ones are
    held until the first round that carries a message is done, and the gathering would last
    an hour; before the fix the send stood still."""
    emails = start(store, clock, 6)
    sleep = HeldSleep(clock)
    plain = Gate._round

    async def releasing(self, batch):
        done = await plain(self, batch)
        if any(a.row is not None for a in batch):
            sleep.released.set()
        return done

    monkeypatch.setattr(Gate, "_round", releasing)
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    opts = SendOptions(concurrency=3, batch_size=6, idle_poll=3600.0, gate_gather=3600.0, pace=Pace(rate=1.0))
    sender = Sender(store, config, SLUG, skeletons, options=opts, clock=clock, sleep=sleep)
    result = await asyncio.wait_for(sender.run(), timeout=30)
    assert result.status is CampaignStatus.FINISHED
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})
    assert all(r.status is OutboxStatus.SENT for r in rows(store).values())
