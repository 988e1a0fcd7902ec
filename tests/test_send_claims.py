"""A sender that holds rows while it waits its turn (a slow pace, an hourly cap) keeps them:
its claims are renewed, so another worker never takes them as stale and mails them too."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from test_send import SLUG, received_count, rows, start, variants

from newsletter.people import consent
from newsletter.people.consent import ConsentContext
from newsletter.sending.messages import build_skeletons
from newsletter.sending.pacing import Pace
from newsletter.sending.sender import Sender, SendOptions
from newsletter.statuses import CampaignStatus, Channel, OutboxStatus
from newsletter.store import OutboxRow, Subscriber
from newsletter.store import campaigns as stored
from newsletter.store import ledger
from newsletter.transport.connection import open_smtp

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


async def until(condition, timeout: float = 30) -> None:
    """Wait (polling, without blocking the loop) until `condition()` (run in a thread) holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(condition):
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_rows_taken_over_from_a_worker_presumed_dead_are_sent_once(store, config, clock, smtp_server):
    """Worker A claims the campaign's rows, then stalls (its relay is slow to take the first
    connection) for longer than `stale_after`, renewing no claim: worker B takes A's rows over
    as stale and sends them. When A wakes, its gate's re-check finds those rows no longer its
    own: A sends none of them and counts none as skipped; each reader gets one message."""
    emails = start(store, clock, 8)
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    options = SendOptions(concurrency=1, batch_size=4, idle_poll=0.02, status_poll=3600.0, stale_after=STALE_AFTER)
    b = Sender(store, config, SLUG, skeletons, options=options, clock=clock, worker_id="worker-b")
    b_run: list[asyncio.Task] = []

    def queued_none() -> bool:
        with store.session() as session:
            return ledger.count_rows(session, stored.find_campaign(session, SLUG).id).queued == 0

    def b_holds_none() -> bool:
        with store.session() as session:
            campaign = stored.find_campaign(session, SLUG)
            return (ledger.count_rows(session, campaign.id).sent > 0
                    and "worker-b" not in ledger.active_claims(session, campaign.id))

    async def stalled_connect():
        if not b_run:  # A's first connection: A stalls and is presumed dead meanwhile
            clock.advance(seconds=(STALE_AFTER + timedelta(minutes=1)).total_seconds())
            # A's first batch is stale now; its feeder claims the second (fresh) while it waits.
            await until(queued_none)
            b_run.append(asyncio.create_task(b.run()))
            await until(b_holds_none)  # B took over A's stale rows and sent them
        return await open_smtp(config.smtp)

    a = Sender(store, config, SLUG, skeletons, options=options, clock=clock, worker_id="worker-a",
               connect=stalled_connect)
    a_result = await asyncio.wait_for(a.run(), timeout=60)
    b_result = await asyncio.wait_for(b_run[0], timeout=60)
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})
    assert a_result.sent_now + b_result.sent_now == 8 and b_result.sent_now > 0
    assert a.totals["skipped"] == 0 and b.totals["skipped"] == 0
    assert a.held == 0  # A waits for no outcome of the rows it dropped
    _finished_with_every_row_sent(store, 8)


def _finished_with_every_row_sent(store, rows: int) -> None:
    """The campaign is finished, and its ledger has each of its `rows` rows sent."""
    with store.session() as session:
        campaign = stored.find_campaign(session, SLUG)
        assert campaign.status is CampaignStatus.FINISHED
        assert ledger.count_rows(session, campaign.id).sent == rows


async def test_a_row_taken_over_after_its_message_went_is_not_counted_by_the_worker_that_lost_it(
        store, config, clock, smtp_server):
    """Worker A's relay takes a message, and before A writes its outcome A is presumed dead: B
    takes A's rows over as stale and sends them, the same row included. A's write of that
    outcome changes nothing, and A counts only what it wrote: between them the two senders
    report each row sent once (the reader of the row in flight got it twice, as after a crash)."""
    emails = start(store, clock, 8)
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    options = SendOptions(concurrency=1, batch_size=4, idle_poll=0.02, status_poll=3600.0, stale_after=STALE_AFTER)
    b = Sender(store, config, SLUG, skeletons, options=options, clock=clock, worker_id="worker-b")
    b_run: list[asyncio.Task] = []
    in_flight: list[str] = []

    def b_holds_none() -> bool:
        with store.session() as session:
            campaign = stored.find_campaign(session, SLUG)
            return (ledger.count_rows(session, campaign.id).sent > 0
                    and "worker-b" not in ledger.active_claims(session, campaign.id))

    async def connect():
        conn = await open_smtp(config.smtp)
        deliver = conn.deliver

        async def delivered_then_presumed_dead(sender, recipient, data, **kwargs):
            reply = await deliver(sender, recipient, data, **kwargs)
            if not b_run:  # A's first message is at the relay; its outcome is not written yet
                in_flight.append(recipient)
                clock.advance(seconds=(STALE_AFTER + timedelta(minutes=1)).total_seconds())
                b_run.append(asyncio.create_task(b.run()))
                await until(b_holds_none)  # B took over A's stale rows, this one too, and sent them
            return reply

        conn.deliver = delivered_then_presumed_dead
        return conn

    a = Sender(store, config, SLUG, skeletons, options=options, clock=clock, worker_id="worker-a", connect=connect)
    a_result = await asyncio.wait_for(a.run(), timeout=60)
    b_result = await asyncio.wait_for(b_run[0], timeout=60)
    assert received_count(smtp_server) == Counter({e: 2 if e in in_flight else 1 for e in emails})
    assert a_result.sent_now + b_result.sent_now == 8 and b_result.sent_now > 0
    assert a.totals["sent"] == a_result.sent_now and a.held == 0
    _finished_with_every_row_sent(store, 8)


async def test_on_postgresql_neither_a_takeover_nor_an_unsubscribe_slips_between_the_recheck_and_mail_from(
        store, config, clock, smtp_server):
    """PostgreSQL: from a round's re-check until it commits (once the MAIL FROM is written) the
    round holds its rows' subscriber and subscription share-locked and its outbox rows
    key-share-locked. Here worker A's round is held open just before the MAIL FROM while A
    looks dead: another worker's stale claim passes the round's row by, without waiting, and
    takes A's other rows; the unsubscribe of the round's reader waits for the commit, and
    then goes as the ledger says: the message was begun before it, the row stays sent. The
    unsubscribe of a reader outside the round does not wait, and that reader is not mailed.
    Worker B then gives its rows back and A claims them anew while its first copies wait: each
    goes once (two copies of a row once went out twice: the old copy's outcome and the new
    copy in one round, whose re-check does not see the write beside it)."""
    if store.dialect != "postgresql":
        pytest.skip("PostgreSQL's row locks")
    emails = start(store, clock, 4)
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    options = SendOptions(concurrency=1, batch_size=4, idle_poll=0.02, status_poll=3600.0, stale_after=STALE_AFTER,
                          consent_hold=60.0)
    seen: dict[str, object] = {}

    def claim_as_other() -> list[int]:
        with store.session() as session:
            campaign = stored.find_campaign(session, SLUG)
            now = clock()
            taken, _ = ledger.claim_batch(session, campaign, "worker-b", limit=100, now=now,
                                          stale_before=now - STALE_AFTER)
            return [r.id for r in taken]

    def give_back(ids: list[int]) -> None:
        with store.session() as session:
            ledger.release_rows(session, "worker-b", ids, now=clock())

    def unsubscribe(email: str) -> None:
        with store.session() as session:
            consent.unsubscribe(session, consent.find_subscriber(session, email),
                                ConsentContext(channel=Channel.ONE_CLICK), now=clock())

    def lock_waiters() -> int:
        with store.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                     "AND wait_event_type = 'Lock'")).scalar()

    def claimed_anew(ids: list[int]) -> bool:
        with store.session() as session:
            return not session.scalar(select(func.count()).where(OutboxRow.id.in_(ids),
                                                                 OutboxRow.status == OutboxStatus.QUEUED))

    def row_of(email: str) -> int:
        with store.session() as session:
            return session.scalar(select(OutboxRow.id).join(Subscriber, Subscriber.id == OutboxRow.subscriber_id)
                                  .where(Subscriber.email == email))

    async def connect():
        conn = await open_smtp(config.smtp)
        deliver = conn.deliver

        async def held_before_mail_from(sender, recipient, data, **kwargs):
            if not seen:  # the round re-checked this row and waits for its MAIL FROM
                seen["in_round"] = recipient
                clock.advance(seconds=(STALE_AFTER + timedelta(minutes=1)).total_seconds())  # A looks dead
                taken = await asyncio.wait_for(asyncio.to_thread(claim_as_other), timeout=10)
                seen["taken"] = taken
                outside = next(e for e in emails if e != recipient)
                seen["outside"] = outside
                await asyncio.wait_for(asyncio.to_thread(unsubscribe, outside), timeout=10)  # not locked
                waiting = threading.Thread(target=unsubscribe, args=(recipient,))
                waiting.start()
                await until(lambda: lock_waiters() == 1, timeout=10)
                await asyncio.sleep(0.2)
                seen["waited"] = waiting.is_alive()
                seen["unsubscribe"] = waiting
                await asyncio.to_thread(give_back, taken)  # worker B gives its rows back unsent
                await until(lambda: claimed_anew(taken))  # A claims them anew (the unsubscribed one: skipped)
            return await deliver(sender, recipient, data, **kwargs)

        conn.deliver = held_before_mail_from
        return conn

    a = Sender(store, config, SLUG, skeletons, options=options, clock=clock, worker_id="worker-a", connect=connect)
    try:
        result = await asyncio.wait_for(a.run(), timeout=60)
    finally:
        if "unsubscribe" in seen:
            await asyncio.to_thread(seen["unsubscribe"].join, 10)
    in_round, outside = seen["in_round"], seen["outside"]
    assert seen["waited"] and not seen["unsubscribe"].is_alive()
    assert row_of(in_round) not in seen["taken"]
    assert sorted(seen["taken"]) == sorted(row_of(e) for e in emails if e != in_round)
    assert result.status is CampaignStatus.FINISHED
    assert received_count(smtp_server) == Counter({e: 1 for e in emails if e != outside})
    by_email = rows(store)
    assert by_email[in_round].status is OutboxStatus.SENT
    assert by_email[outside].status is OutboxStatus.SKIPPED and "unsubscribed" in by_email[outside].last_reply
    with store.session() as session:
        assert consent.find_subscriber(session, in_round).subscriptions[0].status.value == "unsubscribed"
