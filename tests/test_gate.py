"""The gate's rounds: how many messages a round carries, against a real SMTP server.

The ordering guarantees themselves (unsubscribes, crashes) are held by test_send_crash.py;
here: a round gathers the requests of every working connection, so that with few connections
a round still carries a message for each of them rather than one.
"""

from __future__ import annotations

from collections import Counter

import pytest
from test_send import received_count, rows, run, start

from newsletter.sending.gate import Gate
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
