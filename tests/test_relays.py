"""Several relays: two real aiosmtpd relays, one refusing logins: failover with a cool-off,
weights, per-relay connection limits, routing by From domain, per-relay counts; and a campaign
sent through them."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta

import pytest
from conftest import REPO, Clock
from mailing import FakeSleep, relay_url, start_campaign
from population import populate

from newsletter.config import parse_relays
from newsletter.errors import ConfigError, DeliveryError
from newsletter.installation import Newsletter
from newsletter.sending.launch import launch, prepare_send
from newsletter.sending.options import SendOptions
from newsletter.transport.relays import relay_pool

DAY_3 = sorted((REPO / "examples" / "asp23").glob("day-3.*.md"))


def specs(good, refusing, **extra):
    return parse_relays({
        "provider": {"url": f"smtp://news:a-wrong-password@127.0.0.1:{refusing.port}?starttls=off&timeout=5",
                     "weight": 5, **extra.get("provider", {})},
        "office": {"url": relay_url(good), "weight": 1,
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


async def test_connections_opened_at_once_keep_to_the_relays_limit(open_relays):
    """A sender opens its connections together: the limit holds for those still being opened."""
    small, big = open_relays
    pool = relay_pool(parse_relays({
        "small": {"url": f"smtp://127.0.0.1:{small.port}?starttls=off", "weight": 1_000_000, "max_connections": 2},
        "big": {"url": f"smtp://127.0.0.1:{big.port}?starttls=off", "weight": 1}}))
    connections = await asyncio.gather(*(pool.connect("example.org") for _ in range(6)))
    assert Counter(c.relay for c in connections) == Counter({"small": 2, "big": 4})
    assert pool.counts()["small"].open_now == 2
    await asyncio.gather(*(c.close() for c in connections))
    assert pool.counts()["small"].open_now == 0 == pool.counts()["big"].open_now


def test_bad_relay_tables_are_refused():
    for table, words in (({"x": {"weight": 1}}, "needs url"), ({"x": {"url": "http://x"}}, "smtp_url"),
                         ({"x": {"url": "smtp://h", "weight": 0}}, "weight"),
                         ({"x": {"url": "smtp://h", "max_connections": -1}}, "max_connections"),
                         ({"x": {"url": "smtp://h", "port": 25}}, "unknown key")):
        with pytest.raises(ConfigError, match=words):
            parse_relays(table)


def test_a_campaign_goes_out_through_the_relay_that_takes_it(config, store, clock, relays):
    good, refusing = relays
    # The refusing relay weighs so much that it is tried first (at 5:1 both connections chose the
    # other one about one run in 36, and the failover went untested).
    weighty = specs(good, refusing, provider={"weight": 1_000_000})
    newsletter = Newsletter(config.with_changes(relays=weighty), store, clock=clock)
    populate(newsletter.store, 6, now=clock())
    result = launch(newsletter, prepare_send(newsletter, DAY_3), SendOptions(concurrency=2, idle_poll=3600.0))
    assert result.counts.sent == 6
    assert len(good.received) == 6 and refusing.received == [] and refusing.auth_attempts >= 1
    rows = ledger(store)
    assert len(rows) == 6 and {(r.relay, r.reply_code) for r in rows} == {("office", 250)}
    assert all(r.last_reply.startswith("250 2.0.0 OK queued") for r in rows)


def test_a_campaign_leaves_out_a_relay_without_8bitmime_as_smtp_url_would_refuse_it(config, store, clock, open_relays):
    """8-bit bodies (eight_bit_mime, the default) go only to relays that offer 8BITMIME: one that
    does not is left out like a relay that refuses the login, and nothing 8-bit reaches it."""
    seven_bit, eight_bit = open_relays
    seven_bit.eight_bit_mime = False
    both = parse_relays({
        "old": {"url": f"smtp://127.0.0.1:{seven_bit.port}?starttls=off&timeout=5", "weight": 1_000_000},
        "new": {"url": f"smtp://127.0.0.1:{eight_bit.port}?starttls=off&timeout=5", "weight": 1}})
    newsletter = Newsletter(config.with_changes(relays=both), store, clock=clock)
    populate(newsletter.store, 6, now=clock())
    result = launch(newsletter, prepare_send(newsletter, DAY_3), SendOptions(concurrency=2, idle_poll=3600.0))
    assert result.counts.sent == 6 and seven_bit.received == [] and len(eight_bit.received) == 6
    assert {r.relay for r in ledger(store)} == {"new"}
    assert all("BODY=8BITMIME" in r.mail_options for r in eight_bit.received if not r.data.isascii())


def ledger(store):
    from sqlalchemy import select

    from newsletter.store import OutboxRow

    with store.session() as session:
        return list(session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def test_the_ledger_keeps_each_messages_relay_and_reply_and_the_reports_show_them(config, store, clock, open_relays):
    """Two relays that both take mail: every row names the one that took it, with its reply;
    a refusal names the relay that refused. `campaign report`, `show`, the API's report and
    the workspace's report say so."""
    from newsletter.api.openapi import SCHEMAS
    from newsletter.editorial.reports import report as issue_report
    from newsletter.people.subscriptions import person
    from newsletter.sending import actions

    good, other = open_relays
    both = parse_relays({"office": {"url": relay_url(good)}, "spare": {"url": relay_url(other)}})
    newsletter = Newsletter(config.with_changes(relays=both), store, clock=clock)
    emails = populate(newsletter.store, 12, now=clock())
    good.fail_data[emails[0]] = other.fail_data[emails[0]] = "554 5.7.1 Refused by policy"
    prepared = prepare_send(newsletter, DAY_3)
    result = launch(newsletter, prepared, SendOptions(concurrency=4, idle_poll=3600.0, failure_window=1000))
    assert result.counts.sent == 11 and result.counts.failed == 1
    by_relay = Counter(r.relay for r in ledger(store) if r.status.value == "sent")
    assert by_relay == Counter({"office": len(good.received), "spare": len(other.received)})
    assert sum(by_relay.values()) == 11
    failed = next(r for r in ledger(store) if r.status.value == "failed")
    assert failed.reply_code == 554 and failed.relay in ("office", "spare")
    slug = prepared.slug
    report = actions.report(newsletter, slug)
    assert Counter({relay: c.get("sent", 0) + c.get("failed", 0) for relay, c in report.by_relay.items()}) == (
        by_relay + Counter({failed.relay: 1}))
    line = next(f for f in report.failures if f.email == emails[0])
    assert (line.relay, line.reply_code) == (failed.relay, 554) and "554 5.7.1 Refused by policy" in line.reply
    shown = issue_report(newsletter, slug)
    assert shown.by_relay == report.by_relay and shown.not_reached[0].relay == failed.relay
    record = person(newsletter, emails[1], with_bounces=True).as_json(with_bounces=True)
    (mailed,) = record["campaigns"]
    assert mailed["campaign"] == slug and mailed["relay"] in ("office", "spare") and mailed["reply_code"] == 250
    assert mailed["reply"].startswith("250 2.0.0 OK queued")
    assert set(SCHEMAS["PersonRecord"]["properties"]) >= set(record)
    assert set(SCHEMAS["Report"]["properties"]["failures"]["items"]["properties"]) == set(line._asdict())


SLUG = "relays-day-2"


def variants():
    from newsletter.mail.compose import RenderedMail
    from newsletter.mail.personalise import Field, marker

    return {lang: RenderedMail(lang, f"Day 2 [{lang}]", f"Hello {marker(Field.NAME)}\n{marker(Field.UNSUBSCRIBE_URL)}\n",
                               f"<p>Hello {marker(Field.NAME)}</p><a href=\"{marker(Field.UNSUBSCRIBE_URL)}\">x</a>")
            for lang in ("en", "fr", "es", "ar")}


def paced_sender(store, config, clock, tables, *, sleep, **options):
    from newsletter.sending.sender import sender_for

    opts = SendOptions(**{"concurrency": 3, "batch_size": 20, "idle_poll": 3600.0, **options})
    return sender_for(store, config.with_changes(relays=parse_relays(tables)), SLUG, variants(), options=opts,
                      clock=clock, sleep=sleep)


async def test_a_relay_at_its_hourly_cap_is_no_failure_its_messages_go_to_the_other(store, config, clock, open_relays):
    capped, spare = open_relays
    start_campaign(store, clock, 12, slug=SLUG)
    sleep = FakeSleep(clock)
    sender = paced_sender(store, config, clock, {"capped": {"url": relay_url(capped), "weight": 50, "hourly_cap": 3},
                                                 "spare": {"url": relay_url(spare), "weight": 1}}, sleep=sleep)
    result = await sender.run()
    assert result.status.value == "finished" and result.counts.sent == 12 and result.counts.failed == 0
    assert len(capped.received) == 3 and len(spare.received) == 9
    assert Counter(r.relay for r in ledger(store)) == Counter({"capped": 3, "spare": 9})
    assert sleep.total < 60  # nobody waited for the cap: the other relay had room
    counts = sender.relays.counts()
    assert counts["capped"].opened >= 1 and counts["spare"].opened >= 1 and counts["capped"].failed == 0


async def test_with_no_other_relay_a_message_waits_for_its_relays_rate(store, config, clock, open_relays):
    only, other = open_relays
    start_campaign(store, clock, 10, slug=SLUG)
    begun = clock()
    sender = paced_sender(store, config, clock, {"only": {"url": relay_url(only), "rate": 2},
                                                 "elsewhere": {"url": relay_url(other), "from_domains": ["other.example"]}},
                          sleep=FakeSleep(clock))
    result = await sender.run()
    assert result.status.value == "finished" and len(only.received) == 10 and other.received == []
    # The campaign has no pace of its own: the relay's 2/s (a burst of 1) made the waits.
    assert (clock() - begun).total_seconds() >= (10 - 1) / 2
    assert {r.relay for r in ledger(store)} == {"only"}


async def test_a_relays_hourly_cap_waits_an_hour_with_no_other(store, config, clock, open_relays):
    only, _ = open_relays
    start_campaign(store, clock, 5, slug=SLUG)
    begun = clock()
    result = await paced_sender(store, config, clock, {"only": {"url": relay_url(only), "hourly_cap": 3}},
                                sleep=FakeSleep(clock), concurrency=2).run()
    assert result.status.value == "finished" and len(only.received) == 5
    assert (clock() - begun).total_seconds() >= 3600 - 120


async def test_a_send_waiting_for_its_relays_cap_stops_for_a_pause(store, config, clock, open_relays):
    """A real wait (asyncio's sleep): the relay's hourly cap is reached, a pause from elsewhere
    stops the send within a second or so, and the rest is given back queued."""
    from newsletter.sending import actions

    only, _ = open_relays
    start_campaign(store, clock, 4, slug=SLUG)
    newsletter = Newsletter(config, store, clock=clock)
    sender = paced_sender(store, config, clock, {"only": {"url": relay_url(only), "hourly_cap": 2}}, sleep=asyncio.sleep,
                          concurrency=2, status_poll=0.2)
    task = asyncio.ensure_future(sender.run())
    for _ in range(400):
        if len(only.received) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(only.received) == 2
    await asyncio.get_running_loop().run_in_executor(None, actions.pause, newsletter, SLUG)
    result = await asyncio.wait_for(task, timeout=30)  # a guard: it is within a second in practice
    assert result.status.value == "paused" and result.counts.sent == 2 and result.counts.queued == 2
    assert len(only.received) == 2
