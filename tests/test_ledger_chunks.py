"""The ledger written in chunks (issue #17): the first chunk when a campaign starts, the rest
by its senders while it sends. Real SQLite and PostgreSQL, a few thousand people and a small
chunk size: whatever happens during the writing — a crash, an unsubscribe, a newcomer, a
second worker, a cancel — everyone of the audience is mailed once and nobody else."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from population import populate
from sqlalchemy import func, insert, select, update
from test_send import SLUG, variants

from newsletter.people import consent
from newsletter.people.consent import ConsentContext
from newsletter.sending import campaigns
from newsletter.sending.messages import build_skeletons
from newsletter.sending.sender import Sender, SendOptions
from newsletter.sending.writing import LedgerWriter
from newsletter.statuses import CampaignStatus, Channel, DeliveryMode, OutboxStatus
from newsletter.store import DeliveryChoice, OutboxRow, Subscriber, Subscription
from newsletter.store import ledger as outbox

HERE = Path(__file__).parent
PEOPLE = 3000
CHUNK = 400
LANGUAGES = {"en": "en", "fr": "fr", "es": "es", "ar": "ar"}


def begin(store, clock, *, n=PEOPLE, chunk=CHUNK, kind="", people=True):
    emails = populate(store, n, now=clock()) if people else []
    with store.session() as session:
        campaign, created = campaigns.start_campaign(
            session, SLUG, "asp-daily", now=clock(), subject="Day 2", kind=kind, source={"audience": n},
            languages=LANGUAGES, default_language="en", chunk=chunk, refuse_empty=True)
        assert created
    return emails


def rows_by_email(store) -> dict[str, OutboxRow]:
    with store.session() as session:
        return dict(session.execute(select(Subscriber.email, OutboxRow)
                                    .join(OutboxRow, OutboxRow.subscriber_id == Subscriber.id)).all())


def mark(store):
    with store.session() as session:
        return outbox.ledger_mark(session, campaigns.get_campaign(session, SLUG).id)


def sender_of(store, config, **kwargs) -> Sender:
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    return Sender(store, dataclasses.replace(config, ledger_chunk=CHUNK), SLUG, skeletons,
                  options=SendOptions(concurrency=4, batch_size=100, idle_poll=0.2), **kwargs)


def mailed(server) -> Counter:
    with server.lock:
        return Counter(r.rcpt_tos[0].lower() for r in server.received)


def test_a_campaign_starts_with_its_first_chunk_and_is_not_finished_before_the_rest(store, clock):
    begin(store, clock)
    with store.session() as session:
        campaign = campaigns.get_campaign(session, SLUG)
        counts = outbox.count_rows(session, campaign.id)
        assert counts.total == CHUNK and counts.queued == CHUNK
        # Every written row sent: still not finished, the rest is to be written.
        session.execute(update(OutboxRow).values(status=OutboxStatus.SENT))
        assert not campaigns.finish_if_done(session, campaign, now=clock())
        # What a face shows counts the whole audience.
        assert campaigns.summarise_campaign(session, campaign).counts.total == PEOPLE
    assert not mark(store).whole


async def test_the_sender_writes_the_rest_while_it_sends_and_counts_the_whole_audience(store, config, clock,
                                                                                     smtp_server):
    emails = begin(store, clock)
    progress = []
    result = await sender_of(store, config, clock=clock, on_progress=progress.append).run()
    assert result.status is CampaignStatus.FINISHED
    assert mailed(smtp_server) == Counter({e: 1 for e in emails})
    assert mark(store).whole
    rows = rows_by_email(store)
    assert len(rows) == PEOPLE and {r.status for r in rows.values()} == {OutboxStatus.SENT}
    # Each got the variant of their language, in the later chunks as in the first.
    assert all(r.language == ("en", "fr", "es", "ar")[int(e[6:12]) % 4] for e, r in rows.items())
    # Progress counted the whole audience from the start, not the rows written so far.
    assert progress and progress[0].sent + progress[0].remaining + progress[0].skipped >= PEOPLE - 10


def test_a_crash_while_writing_a_chunk_loses_it_whole_and_the_next_writer_goes_on(store, config, clock):
    begin(store, clock)
    writer = LedgerWriter(store, dataclasses.replace(config, ledger_chunk=CHUNK),
                          _campaign_id(store), clock=clock)
    assert not writer.write_next()
    before = mark(store)

    class Crash(Exception):
        pass

    try:  # a chunk written and its transaction lost (the process died before COMMIT)
        with store.session() as session:
            outbox.write_chunk(session, _campaign_id(store), languages=LANGUAGES, default_language="en", now=clock(),
                               chunk=CHUNK)
            raise Crash
    except Crash:
        pass
    assert mark(store) == before and len(rows_by_email(store)) == 2 * CHUNK
    while not writer.write_next():
        pass
    rows = rows_by_email(store)
    assert len(rows) == PEOPLE and mark(store).whole


def _campaign_id(store) -> int:
    with store.session() as session:
        return campaigns.get_campaign(session, SLUG).id


def test_kill_9_while_the_ledger_is_written_then_resume_mails_everyone_once(sqlite_store, clock, smtp_server):
    store = sqlite_store
    emails = begin(store, clock, n=3000, chunk=50)
    proc = subprocess.Popen([sys.executable, str(HERE / "sender_process.py"), str(store.engine.url),
                             str(smtp_server.port), SLUG, "4", "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(smtp_server.received) < 100 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not mark(store).whole, "killed while the ledger was still being written"
    proc = subprocess.Popen([sys.executable, str(HERE / "sender_process.py"), str(store.engine.url),
                             str(smtp_server.port), SLUG, "4", "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert out.split()[0] == "finished"
    seen = mailed(smtp_server)
    assert set(seen) == set(emails), "nobody lost"
    assert sum(n - 1 for n in seen.values()) <= 4, "at most the messages in flight went out twice"
    rows = rows_by_email(store)
    assert len(rows) == 3000 and {r.status for r in rows.values()} == {OutboxStatus.SENT}


async def test_who_unsubscribes_or_joins_while_the_ledger_is_written_is_not_mailed(store, config, clock, smtp_server):
    emails = begin(store, clock)
    assert not mark(store).whole
    written = set(rows_by_email(store))
    leaving = [e for e in emails if e in written][:20] + [e for e in emails if e not in written][:40]
    with store.session() as session:
        for email in leaving:
            consent.unsubscribe(session, consent.find_subscriber(session, email),
                                ConsentContext(channel=Channel.ONE_CLICK), now=clock())
    clock.advance(seconds=60)
    newcomer = populate(store, 1, now=clock(), start=PEOPLE)[0]  # joined after it started: not its audience
    result = await sender_of(store, config, clock=clock).run()
    assert result.status is CampaignStatus.FINISHED
    seen = mailed(smtp_server)
    assert not set(leaving) & set(seen) and newcomer not in seen
    assert seen == Counter({e: 1 for e in emails if e not in leaving})
    rows = rows_by_email(store)
    assert all(rows[e].status is OutboxStatus.SKIPPED for e in leaving if e in written)
    assert not [e for e in leaving if e not in written and e in rows], "no row for who left before it was written"


async def test_a_returning_subscriber_confirmed_after_the_start_is_left_out_of_later_chunks(store, config, clock,
                                                                                          smtp_server):
    emails = begin(store, clock)
    written = set(rows_by_email(store))
    later = [e for e in emails if e not in written][:5]
    clock.advance(seconds=60)
    with store.session() as session:
        ids = [consent.find_subscriber(session, e).id for e in later]
        session.execute(update(Subscription).where(Subscription.subscriber_id.in_(ids)).values(confirmed_at=clock()))
    await sender_of(store, config, clock=clock).run()
    assert set(mailed(smtp_server)) == set(emails) - set(later)


async def test_two_workers_while_rows_are_still_being_written_mail_each_once(store, config, clock, smtp_server):
    emails = begin(store, clock)
    first, second = sender_of(store, config, clock=clock), sender_of(store, config, clock=clock)
    results = await asyncio.gather(first.run(), second.run())
    assert {r.status for r in results} == {CampaignStatus.FINISHED}
    assert sum(r.sent_now for r in results) == PEOPLE
    assert mailed(smtp_server) == Counter({e: 1 for e in emails})
    assert len(rows_by_email(store)) == PEOPLE and mark(store).whole


async def test_cancel_while_writing_skips_the_whole_audience_and_the_writing_stops(store, config, clock,
                                                                                  smtp_server):
    from newsletter.installation import Newsletter
    from newsletter.sending import actions

    emails = begin(store, clock)
    newsletter = Newsletter(dataclasses.replace(config, database_url=str(store.engine.url)), store=store,
                            clock=clock)
    cancelled = actions.cancel(newsletter, SLUG)
    assert cancelled.skipped_now == PEOPLE and cancelled.counts.skipped == PEOPLE
    assert mark(store).whole
    rows = rows_by_email(store)
    assert set(rows) == set(emails)
    assert {(r.status, r.last_reply) for r in rows.values()} == {
        (OutboxStatus.SKIPPED, "skipped: the campaign was cancelled")}
    result = await sender_of(store, config, clock=clock).run()
    assert result.status is CampaignStatus.CANCELLED and not smtp_server.received
    assert len(rows_by_email(store)) == PEOPLE


async def test_digest_readers_are_left_out_of_every_chunk_of_a_daily_summary(store, config, clock, smtp_server):
    emails = populate(store, PEOPLE, now=clock())
    with store.session() as session:
        list_id = session.scalar(select(Subscription.list_id).limit(1))
        digest = list(session.scalars(select(Subscriber.id).order_by(Subscriber.id).where(Subscriber.id % 7 == 0)))
        session.execute(insert(DeliveryChoice), [dict(subscriber_id=sid, list_id=list_id, delivery=DeliveryMode.DIGEST,
                                                      chosen_at=clock()) for sid in digest])
        readers = dict(session.execute(select(Subscriber.id, Subscriber.email)).all())
    begin(store, clock, kind=outbox.DAILY_SUMMARY, people=False)
    result = await sender_of(store, config, clock=clock).run()
    assert result.status is CampaignStatus.FINISHED
    assert set(mailed(smtp_server)) == set(emails) - {readers[sid] for sid in digest}
    assert max(digest) > 2 * CHUNK  # later chunks had digest readers too


def test_a_chunk_is_of_the_lists_subscribers_whatever_other_lists_hold(store, clock):
    populate(store, 500, now=clock(), list_slug="other-list", domain="other.example.org")
    emails = begin(store, clock, n=1000, chunk=300)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxRow)) == 300
    writer_rows = []
    with store.session() as session:
        campaign_id = campaigns.get_campaign(session, SLUG).id
    while True:
        with store.session() as session:
            added, whole = outbox.write_chunk(session, campaign_id, languages=LANGUAGES, default_language="en",
                                              now=clock(), chunk=300)
        writer_rows.append(added)
        if whole:
            break
    assert writer_rows == [300, 300, 100]
    assert set(rows_by_email(store)) == set(emails)
