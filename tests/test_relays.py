"""Several relays: two real aiosmtpd relays, one refusing logins: failover with a cool-off,
weights, per-relay connection limits, routing by From domain, per-relay counts; and a campaign
sent through them."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from conftest import REPO, Clock
from population import populate
from smtp_server import RecordingSMTP

from newsletter.config import parse_relays
from newsletter.errors import ConfigError, DeliveryError
from newsletter.installation import Newsletter
from newsletter.sending.launch import launch, prepare_send
from newsletter.sending.options import SendOptions
from newsletter.transport.relays import relay_pool

DAY_3 = sorted((REPO / "examples" / "asp23").glob("day-3.*.md"))


@pytest.fixture
def relays():
    good, refusing = RecordingSMTP(), RecordingSMTP()
    refusing.auth = {"news": "the-real-password"}
    good.start()
    refusing.start()
    yield good, refusing
    good.stop()
    refusing.stop()


def specs(good, refusing, **extra):
    return parse_relays({
        "provider": {"url": f"smtp://news:a-wrong-password@127.0.0.1:{refusing.port}?starttls=off&timeout=5",
                     "weight": 5, **extra.get("provider", {})},
        "office": {"url": f"smtp://127.0.0.1:{good.port}?starttls=off&timeout=5", "weight": 1,
                   **extra.get("office", {})},
    })


async def test_a_relay_refusing_the_login_is_left_out_for_its_cool_off(relays):
    good, refusing = relays
    clock = Clock()
    pool = relay_pool(specs(good, refusing), cool_off=timedelta(minutes=5), clock=clock)
    pool.rng = random.Random(1)
    connections = [await pool.connect("example.org") for _ in range(4)]
    assert {c.relay for c in connections} == {"office"}
    counts = pool.counts()
    assert counts["provider"].failed == 1 and counts["provider"].opened == 0 == refusing.auth_attempts - 1
    assert counts["office"].opened == 4 and counts["office"].open_now == 4
    assert counts["provider"].cooling_until == clock() + timedelta(minutes=5)
    for c in connections:
        await c.close()
    assert pool.counts()["office"].open_now == 0
    # After the cool-off it is tried again (and, still refusing, left out again).
    clock.advance(minutes=6)
    refusing.auth["news"] = "a-wrong-password"  # the password was fixed at the provider meanwhile
    tried = [await pool.connect("example.org") for _ in range(6)]
    assert {c.relay for c in tried} == {"provider", "office"} and pool.counts()["provider"].opened >= 1
    for c in tried:
        await c.close()


async def test_when_no_relay_can_be_used_the_error_names_each(relays):
    good, refusing = relays
    good.stop()
    pool = relay_pool(specs(good, refusing))
    with pytest.raises(DeliveryError) as caught:
        await pool.connect("example.org")
    assert "provider:" in str(caught.value) and "office:" in str(caught.value)
    with pytest.raises(DeliveryError, match="every relay is cooling off"):
        await pool.connect("example.org")
    good.start()


async def test_connection_limits_and_routing_by_from_domain(relays):
    good, _ = relays
    both_on_good = parse_relays({
        "provider": {"url": f"smtp://127.0.0.1:{good.port}?starttls=off", "weight": 5,
                     "from_domains": ["campaigns.example.org"]},
        "office": {"url": f"smtp://127.0.0.1:{good.port}?starttls=off", "max_connections": 1},
    })
    pool = relay_pool(both_on_good)
    pool.rng = random.Random(3)
    first = await pool.connect("example.org")  # only the office relay carries example.org
    assert first.relay == "office"
    with pytest.raises(DeliveryError, match="at its connection limit"):
        await pool.connect("example.org")
    await first.close()
    again = await pool.connect("example.org")
    assert again.relay == "office"
    await again.close()
    routed = []
    for _ in range(4):
        connection = await pool.connect("campaigns.example.org")
        routed.append(connection.relay)
        await connection.close()
    assert set(routed) <= {"provider", "office"} and routed.count("provider") >= 2
    with pytest.raises(DeliveryError, match="no relay serves the From domain"):
        await relay_pool(parse_relays({"a": {"url": "smtp://h", "from_domains": ["a.example"]}})).connect("c.example")


def test_bad_relay_tables_are_refused():
    for table, words in (({"x": {"weight": 1}}, "needs url"), ({"x": {"url": "http://x"}}, "smtp_url"),
                         ({"x": {"url": "smtp://h", "weight": 0}}, "weight"),
                         ({"x": {"url": "smtp://h", "max_connections": -1}}, "max_connections"),
                         ({"x": {"url": "smtp://h", "port": 25}}, "unknown key")):
        with pytest.raises(ConfigError, match=words):
            parse_relays(table)


def test_a_campaign_goes_out_through_the_relay_that_takes_it(config, store, clock, relays):
    good, refusing = relays
    newsletter = Newsletter(config.with_changes(relays=specs(good, refusing)), store, clock=clock)
    populate(newsletter.store, 6, now=clock())
    result = launch(newsletter, prepare_send(newsletter, DAY_3), SendOptions(concurrency=2, idle_poll=3600.0))
    assert result.counts.sent == 6
    assert len(good.received) == 6 and refusing.received == [] and refusing.auth_attempts >= 1
