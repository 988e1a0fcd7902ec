"""The engine against a real SMTP server (aiosmtpd on loopback) with scripted faults.

After each scenario every row is in the state the rules give, and the server received exactly
what it should have. The clock is a test clock; the engine's sleeps advance it, so backoff,
deferral and expiry take no real time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest
from mailing import FakeSleep, start_campaign
from population import populate
from sqlalchemy import select

from newsletter.bounces import rules as bounces
from newsletter.mail.compose import RenderedMail
from newsletter.mail.personalise import Field, marker
from newsletter.people import consent, subscriptions
from newsletter.sending import campaigns
from newsletter.sending.messages import build_skeletons, send_test
from newsletter.sending.pacing import Pace
from newsletter.sending.sender import Sender, SendOptions
from newsletter.statuses import CampaignStatus, OutboxStatus, SubscriberStatus
from newsletter.store import OutboxRow, Subscriber
from newsletter.transport.connection import Reply, Stage, Verdict, classify_reply

SLUG = "asp25-day-2"


def variants() -> dict[str, RenderedMail]:
    out = {}
    for lang in ("en", "fr", "es", "ar"):
        text = f"[{lang}] Hello {marker(Field.NAME)}\n\nUnsubscribe: {marker(Field.UNSUBSCRIBE_URL)}\n"
        html = (f"<p>[{lang}] Hello {marker(Field.NAME)}</p><a href=\"{marker(Field.UNSUBSCRIBE_URL)}\">x</a>"
                f"<a href=\"{marker(Field.PREFERENCES_URL)}\">p</a>")
        out[lang] = RenderedMail(lang, f"Day 2 [{lang}]", text, html)
    return out


def start(store, clock, n=20):
    """`n` subscribers and the campaign SLUG started for them (also used by test_gate, test_send_stop, test_send_crash)."""
    return start_campaign(store, clock, n, slug=SLUG)


async def run(store, config, clock, progress=None, **options):
    opts = dict(concurrency=3, batch_size=7, idle_poll=3600.0)
    opts.update(options)
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    sender = Sender(store, config, SLUG, skeletons, options=SendOptions(**opts), clock=clock, sleep=FakeSleep(clock),
                    on_progress=progress)
    return await sender.run()


def rows(store) -> dict[str, OutboxRow]:
    with store.session() as session:
        found = session.execute(select(Subscriber.email, OutboxRow).join(Subscriber, Subscriber.id == OutboxRow.subscriber_id))
        return {email: row for email, row in found}


def received_count(server) -> Counter:
    return Counter(r.rcpt_tos[0].lower() for r in server.received)


async def test_everyone_gets_one_personalised_message(store, config, clock, smtp_server):
    emails = start(store, clock, 20)
    progress = []
    result = await run(store, config, clock, progress=progress.append)
    assert result.status is CampaignStatus.FINISHED and result.counts.sent == 20 and result.sent_now == 20
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})
    by_id = {}
    for email, row in rows(store).items():
        assert row.status is OutboxStatus.SENT and row.attempts == 1 and row.sent_at is not None
        by_id[email] = row.message_id
    for msg in smtp_server.messages():
        to = msg["To"].addresses[0]
        assert msg["Message-ID"] == by_id[to.addr_spec]
        lang = msg["Content-Language"]
        index = int(to.addr_spec[6:12])
        assert lang == ("en", "fr", "es", "ar")[index % 4]
        assert f"Hello {to.display_name}" in msg.get_body(("plain",)).get_content()
        assert msg["List-Unsubscribe"].startswith("<https://news.example.org/unsubscribe/")
    assert progress and progress[-1].sent == 20 and progress[-1].remaining == 0


async def test_links_in_the_mail_unsubscribe_from_the_list(newsletter, store, config, clock, smtp_server):
    from newsletter.people.consent import ConsentContext
    from newsletter.statuses import Channel

    emails = start(store, clock, 2)
    await run(store, config, clock)
    msg = smtp_server.to(emails[0])[0]
    token = msg["List-Unsubscribe"].split("/unsubscribe/")[1].split(">")[0]
    assert subscriptions.unsubscribe_by_token(newsletter, token, ConsentContext(channel=Channel.ONE_CLICK)) == ["asp-daily"]


async def test_send_again_resumes_and_never_duplicates(store, config, clock, smtp_server):
    emails = start(store, clock, 10)
    await run(store, config, clock)
    with pytest.raises(Exception, match="finished"), store.session() as session:
        campaigns.start_campaign(session, SLUG, "asp-daily", now=clock())
    result = await run(store, config, clock)
    assert result.sent_now == 0
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})


async def test_550_at_rcpt_fails_and_suppresses(store, config, clock, smtp_server):
    emails = start(store, clock, 10)
    smtp_server.fail_rcpt[emails[3]] = "550 5.1.1 No such user"
    result = await run(store, config, clock)
    assert result.status is CampaignStatus.FINISHED
    state = rows(store)
    assert state[emails[3]].status is OutboxStatus.FAILED and "550" in state[emails[3]].last_reply
    assert all(state[e].status is OutboxStatus.SENT for e in emails if e != emails[3])
    with store.session() as session:
        assert consent.is_suppressed(session, emails[3])
        assert consent.find_subscriber(session, emails[3]).status is SubscriberStatus.SUPPRESSED
        # fed through the bounce rules: an event with its reason, counted for the campaign
        [event] = bounces.bounce_history(session, emails[3])
        assert event.kind.value == "hard" and event.source == "smtp" and "5.1.1" in (event.status or event.reason)
        assert event.campaign_slug is not None
    assert emails[3] not in received_count(smtp_server)


@pytest.mark.parametrize("reply", ["451 4.7.1 Greylisted, try later", "452 4.2.2 Over quota", "450 4.2.0 Busy",
                                   "552 5.2.2 Mailbox full"])
async def test_temporary_refusal_at_rcpt_is_deferred_then_sent(store, config, clock, smtp_server, reply):
    emails = start(store, clock, 10)
    smtp_server.fail_rcpt[emails[5]] = [reply, reply]
    result = await run(store, config, clock)
    assert result.status is CampaignStatus.FINISHED
    row = rows(store)[emails[5]]
    assert row.status is OutboxStatus.SENT and row.attempts == 3
    with store.session() as session:
        assert not consent.is_suppressed(session, emails[5])
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})


async def test_deferral_expires_into_failure(store, config, clock, smtp_server):
    emails = start(store, clock, 6)
    smtp_server.fail_rcpt[emails[0]] = "451 4.3.0 Try again later"
    result = await run(store, config, clock)
    row = rows(store)[emails[0]]
    assert row.status is OutboxStatus.FAILED and "expired" in row.last_reply
    assert row.attempts == smtp_server.rcpt_attempts[emails[0]] >= 5
    assert result.status is CampaignStatus.FINISHED
    # Retried with doubling backoff (5, 10, 20 … min, capped at 2 h) for the 24 hours: ~15 attempts.
    assert 8 <= row.attempts <= 20


async def test_deferred_rows_can_wait_for_a_later_run(store, config, clock, smtp_server):
    emails = start(store, clock, 5)
    smtp_server.fail_rcpt[emails[1]] = ["451 later"]
    result = await run(store, config, clock, wait_for_deferred=False)
    assert result.status is CampaignStatus.PAUSED and "deferred" in result.reason
    assert rows(store)[emails[1]].status is OutboxStatus.DEFERRED
    clock.advance(minutes=10)
    with store.session() as session:
        campaigns.resume_campaign(session, SLUG)
    result = await run(store, config, clock, wait_for_deferred=False)
    assert result.status is CampaignStatus.FINISHED and received_count(smtp_server)[emails[1]] == 1


@pytest.mark.parametrize("reply", ["552 5.3.4 Message too big", "554 5.7.1 Rejected as spam"])
async def test_5xx_after_data_fails_that_message_only(store, config, clock, smtp_server, reply):
    emails = start(store, clock, 10)
    smtp_server.fail_data[emails[2]] = reply
    result = await run(store, config, clock)
    state = rows(store)
    assert state[emails[2]].status is OutboxStatus.FAILED and reply[:3] in state[emails[2]].last_reply
    assert sum(r.status is OutboxStatus.SENT for r in state.values()) == 9
    with store.session() as session:
        assert not consent.is_suppressed(session, emails[2])
    assert result.status is CampaignStatus.FINISHED


async def test_421_mid_session_reconnects_and_defers(store, config, clock, smtp_server):
    emails = start(store, clock, 12)
    smtp_server.next_replies = [None, None, "421 4.3.2 Shutting down"]
    smtp_server.fail_rcpt[emails[7]] = ["421 4.7.0 Too many connections"]
    result = await run(store, config, clock)
    assert result.status is CampaignStatus.FINISHED
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})
    deferred_once = [e for e, r in rows(store).items() if r.attempts == 2]
    assert emails[7] in deferred_once and len(deferred_once) == 2


@pytest.mark.parametrize("fault", ["mid_data", "after_dot"])
async def test_connection_lost_defers_and_resends_with_the_same_message_id(store, config, clock, smtp_server, fault):
    emails = start(store, clock, 10)
    if fault == "mid_data":
        smtp_server.drop_in_data = 1
    else:
        smtp_server.next_replies = ["drop"]
    result = await run(store, config, clock)
    assert result.status is CampaignStatus.FINISHED
    state = rows(store)
    retried = [e for e, r in state.items() if r.attempts == 2]
    assert len(retried) == 1 and "connection lost" in state[retried[0]].last_reply.lower() or retried
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})
    [msg] = smtp_server.to(retried[0])
    assert msg["Message-ID"] == state[retried[0]].message_id


async def test_auth_failure_pauses_and_marks_nothing(store, config, clock, smtp_server):
    smtp_server.stop()
    smtp_server.auth = {"news": "right"}
    smtp_server.start()
    emails = start(store, clock, 8)
    bad = config.with_changes(smtp_url=f"smtp://news:wrong@127.0.0.1:{smtp_server.port}?starttls=off&timeout=5")
    result = await run(store, bad, clock)
    assert result.status is CampaignStatus.PAUSED and "NEWSLETTER_SMTP_PASSWORD" in result.reason
    assert result.counts.queued == 8 and result.counts.sent == 0 and not smtp_server.received
    good = config.with_changes(smtp_url=f"smtp://news:right@127.0.0.1:{smtp_server.port}?starttls=off&timeout=5")
    with store.session() as session:
        campaigns.resume_campaign(session, SLUG)
    result = await run(store, good, clock)
    assert result.status is CampaignStatus.FINISHED
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})


async def test_a_relay_without_8bitmime_pauses_and_marks_nothing(store, config, clock, smtp_server):
    """8-bit bodies (the default) need a relay that offers 8BITMIME: without it the campaign stops
    before anything is sent and says which setting to change; with it off, every message is 7-bit."""
    smtp_server.eight_bit_mime = False
    emails = start(store, clock, 8)
    result = await run(store, config, clock)
    assert result.status is CampaignStatus.PAUSED and "eight_bit_mime = false" in result.reason
    assert result.counts.queued == 8 and result.counts.sent == 0 and not smtp_server.received
    with store.session() as session:
        campaigns.resume_campaign(session, SLUG)
    result = await run(store, config.with_changes(eight_bit_mime=False), clock)
    assert result.status is CampaignStatus.FINISHED
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})
    assert all(r.data.isascii() and "BODY=8BITMIME" not in r.mail_options for r in smtp_server.received)


async def test_a_refused_sender_pauses_and_marks_nothing(store, config, clock, smtp_server):
    """5xx to MAIL FROM (pipelined with RCPT and DATA, whose 503s only follow from it)."""
    start(store, clock, 8)
    smtp_server.fail_mail = "550 5.7.1 Sender address rejected"
    result = await run(store, config, clock)
    assert result.status is CampaignStatus.PAUSED and "refused the sender" in result.reason
    assert result.counts.queued == 8 and result.counts.failed == 0 and not smtp_server.received


async def test_unreachable_relay_pauses_after_backoff(store, config, clock, smtp_server, refused_port):
    start(store, clock, 5)
    nowhere = config.with_changes(smtp_url=f"smtp://127.0.0.1:{refused_port}?starttls=off&timeout=5")
    result = await run(store, nowhere, clock, reconnect_attempts=3, reconnect_base=2.0)
    assert result.status is CampaignStatus.PAUSED and "cannot reach the relay" in result.reason
    assert result.counts.queued == 5


async def test_high_failure_rate_pauses(store, config, clock, smtp_server):
    emails = start(store, clock, 30)
    for e in emails:
        smtp_server.fail_data[e] = "554 5.7.1 Policy rejection"
    result = await run(store, config, clock, failure_window=10, concurrency=2)
    assert result.status is CampaignStatus.PAUSED and "failed" in result.reason
    assert 10 < result.counts.failed < 30 and result.counts.queued + result.counts.failed == 30
    assert result.counts.sending == 0


async def test_slow_replies_are_waited_for(store, config, clock, smtp_server):
    emails = start(store, clock, 6)
    smtp_server.delay = 0.3
    result = await run(store, config, clock, concurrency=6)
    assert result.status is CampaignStatus.FINISHED
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})


async def test_external_pause_and_cancel(store, config, clock, smtp_server):
    start(store, clock, 40)
    sent = []

    def on_progress(p):
        sent.append(p.sent)

    with store.session() as session:
        campaigns.pause_campaign(session, SLUG, "held by the editor")
    result = await run(store, config, clock, progress=on_progress)
    assert result.status is CampaignStatus.PAUSED and result.reason == "held by the editor"
    assert not smtp_server.received
    with store.session() as session:
        campaigns.resume_campaign(session, SLUG)
        campaigns.cancel_campaign(session, SLUG, now=clock())
    result = await run(store, config, clock)
    assert result.status is CampaignStatus.CANCELLED and result.counts.skipped == 40


async def test_stop_finishes_in_flight_and_pauses(store, config, clock, smtp_server):
    emails = start(store, clock, 60)
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    sender = Sender(store, config, SLUG, skeletons, options=SendOptions(concurrency=3, batch_size=10), clock=clock,
                    sleep=FakeSleep(clock))
    smtp_server.delay = 0.05

    async def interrupt():
        while len(smtp_server.received) < 5:
            await asyncio.sleep(0.01)
        sender.stop("interrupted (Ctrl-C)")

    result, _ = await asyncio.gather(sender.run(), interrupt())
    assert result.status is CampaignStatus.PAUSED and result.reason == "interrupted (Ctrl-C)"
    c = result.counts
    assert c.sending == 0 and c.sent == len(smtp_server.received) and c.queued == 60 - c.sent
    assert 5 <= c.sent < 60
    with store.session() as session:
        campaigns.start_campaign(session, SLUG, "asp-daily", now=clock())
    result = await run(store, config, clock)
    assert result.status is CampaignStatus.FINISHED
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})


async def test_rate_limit_and_domain_limits(store, config, clock, smtp_server):
    emails = start(store, clock, 20)
    sleep = FakeSleep(clock)
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    opts = SendOptions(concurrency=4, batch_size=20, pace=Pace(rate=2.0, domain_limits={"example.org": 1}))
    result = await Sender(store, config, SLUG, skeletons, options=opts, clock=clock, sleep=sleep).run()
    assert result.status is CampaignStatus.FINISHED
    assert sleep.total >= (20 - 1) / 2.0 - 0.5  # 20 messages at 2/s need ~9.5 s of waiting
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})


async def test_test_send_records_nothing(store, config, clock, smtp_server):
    start(store, clock, 3)
    results = await send_test(config, variants(), ["editor@example.net"], list_slug="asp-daily",
                              list_name="ASP daily summaries", campaign_slug=SLUG, clock=clock)
    assert [r[2].code for r in results] == [250] * 4
    subjects = sorted(m["Subject"] for m in smtp_server.to("editor@example.net"))
    assert subjects == sorted(f"[TEST] Day 2 [{lang}]" for lang in ("en", "fr", "es", "ar"))
    with store.session() as session:
        assert campaigns.summarise_campaigns(session)[0].counts.queued == 3


@pytest.mark.parametrize("reply,verdict", [
    (Reply(250, "ok", Stage.DATA), Verdict.SENT),
    (Reply(421, "bye", Stage.RCPT), Verdict.DEFER_RECONNECT),
    (Reply(0, "reset", Stage.CONNECTION), Verdict.DEFER_RECONNECT),
    (Reply(451, "later", Stage.RCPT), Verdict.DEFER),
    (Reply(552, "full", Stage.RCPT), Verdict.DEFER),
    (Reply(550, "unknown", Stage.RCPT), Verdict.BOUNCE),
    (Reply(552, "too big", Stage.DATA), Verdict.FAIL),
    (Reply(554, "spam", Stage.DATA), Verdict.FAIL),
    (Reply(535, "auth", Stage.MAIL), Verdict.RELAY),
    (Reply(550, "sender refused", Stage.MAIL), Verdict.RELAY),
])
def test_classify_reply(reply, verdict):
    assert classify_reply(reply) is verdict


async def test_campaign_goes_out_with_this_installations_verp_and_dkim(store, config, clock, smtp_server, tmp_path):
    import dkim as dkimpy

    from newsletter.mail import dkim, verp
    from newsletter.sending.sender import with_installation_hooks

    key = dkim.generate_key("news2026", "example.org", tmp_path)
    config = config.with_changes(bounce_address="bounces@news.example.org", dkim_selector="news2026",
                                 dkim_domain="example.org", dkim_key_file=str(key.private_key_path))
    emails = start(store, clock, 5)
    with store.session() as session:
        campaign_id = campaigns.get_campaign(session, SLUG).id
        keys = {s.email: s.key for s in session.scalars(select(Subscriber))}
    options = with_installation_hooks(SendOptions(concurrency=2, batch_size=7, idle_poll=3600.0), config, campaign_id)
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    result = await Sender(store, config, SLUG, skeletons, options=options, clock=clock, sleep=FakeSleep(clock)).run()
    assert result.counts.sent == 5

    def dnsfunc(qname, timeout=5):
        wanted = qname.decode() if isinstance(qname, bytes) else qname
        return key.dns_value.encode() if wanted.rstrip(".") == key.dns_name else None

    for received in smtp_server.received:
        recipient = received.rcpt_tos[0]
        assert verp.read_verp(config.secret(), received.mail_from) == (campaign_id, keys[recipient], "campaign")
        assert dkimpy.verify(received.data, dnsfunc=dnsfunc)
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == sorted(emails)


@pytest.mark.parametrize("key", ["k000000000000000000000001", "Zx9-q_w2Ab3sTt6yUu8vVw", "a" * 40])
def test_link_tokens_are_the_tokens_module_s(key):
    """The fast token maker the sender uses gives tokens `read_token` accepts, for the same claims;
    equal to `issue_token`'s unless zlib would have shortened the payload (then both read)."""
    from datetime import datetime

    from newsletter.tokens import Purpose, TokenIssuer, issue_token, read_token

    secret, now = b"s" * 32, datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    token = TokenIssuer(secret, Purpose.UNSUBSCRIBE, now)(key, list_slug="asp-daily")
    claims = read_token(secret, Purpose.UNSUBSCRIBE, token)
    assert (claims.subscriber_key, claims.list_slug, claims.issued_at) == (key, "asp-daily", now)
    if key == "Zx9-q_w2Ab3sTt6yUu8vVw":
        assert token == issue_token(secret, Purpose.UNSUBSCRIBE, key, list_slug="asp-daily", now=now)
    with pytest.raises(Exception):
        read_token(secret, Purpose.PREFERENCES, token)


class PacedSleep(FakeSleep):
    """Moves the test clock and sleeps for real too (a second at most), so that a relay's idle
    timeout runs out while the rate limiter waits."""

    async def __call__(self, seconds: float) -> None:
        self.total += seconds
        self.clock.advance(seconds=seconds)
        await asyncio.sleep(min(seconds, 1.0))


async def test_a_connection_the_relay_closed_while_idle_is_not_used(store, config, clock, smtp_server):
    """The rate limiter's wait outlasts the relay's idle timeout: each message goes on a
    connection that is open, costs one attempt and is never deferred."""
    smtp_server.stop()
    smtp_server.idle_timeout = 0.3
    smtp_server.start()
    emails = start(store, clock, 6)
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    opts = SendOptions(concurrency=2, batch_size=6, idle_poll=3600.0, pace=Pace(rate=2.0))
    result = await Sender(store, config, SLUG, skeletons, options=opts, clock=clock, sleep=PacedSleep(clock)).run()
    assert result.status is CampaignStatus.FINISHED and result.counts.deferred == 0
    assert {(r.status, r.attempts) for r in rows(store).values()} == {(OutboxStatus.SENT, 1)}
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})


async def test_a_message_lost_before_it_reached_the_relay_costs_no_attempt(store, config, clock, smtp_server):
    """The relay hangs up at MAIL FROM (its idle timeout running out as the message began): the
    message goes at once on a new connection, with no attempt counted and no back-off."""
    emails = start(store, clock, 6)
    smtp_server.drop_at_mail = 1
    result = await run(store, config, clock, concurrency=1)
    assert result.status is CampaignStatus.FINISHED and result.counts.deferred == 0
    assert {(r.status, r.attempts) for r in rows(store).values()} == {(OutboxStatus.SENT, 1)}
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})
    assert clock.now == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # no back-off was waited for


async def test_a_relay_that_always_hangs_up_defers_as_before(store, config, clock, smtp_server):
    """Once more on a new connection, not for ever: the second loss is a deferral like any other."""
    emails = start(store, clock, 2)
    smtp_server.drop_at_mail = 2
    result = await run(store, config, clock, concurrency=1)
    assert result.status is CampaignStatus.FINISHED
    assert sorted(r.attempts for r in rows(store).values()) == [1, 2]
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})


async def test_a_wrong_password_is_refused_once_not_once_per_connection(store, config, clock, smtp_server):
    """Eight connections and two login methods used to make sixteen refused logins at once:
    enough to trip a relay's brute-force ban. The first refusal stops the send."""
    smtp_server.stop()
    smtp_server.auth = {"news": "right"}
    smtp_server.start()
    start(store, clock, 8)
    bad = config.with_changes(smtp_url=f"smtp://news:wrong@127.0.0.1:{smtp_server.port}?starttls=off&timeout=5")
    result = await run(store, bad, clock, concurrency=8)
    assert result.status is CampaignStatus.PAUSED and "NEWSLETTER_SMTP_PASSWORD" in result.reason
    assert smtp_server.auth_attempts == 1
    assert result.counts.queued == 8 and not smtp_server.received


async def test_a_dead_workers_rows_are_taken_over_as_soon_as_its_own_are_done(store, config, clock, smtp_server):
    """A worker out of rows of its own looks for dead holders each time it polls (the docs say
    so): once the holder's process is gone, the very next polls take its rows over."""
    import os
    import socket
    import subprocess
    import sys

    from newsletter.store import ledger

    emails = start(store, clock, 8)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    worker = f"{socket.gethostname()}:{holder.pid}:abcdef"
    with store.session() as session:
        campaign = campaigns.get_campaign(session, SLUG)
        held, _ = ledger.claim_batch(session, campaign, worker, limit=3, now=clock(),
                                     stale_before=clock() - campaigns.DEFAULT_EXPIRY)
    sleep = FakeSleep(clock)
    polls_after_the_kill = []

    async def counting_sleep(seconds: float) -> None:
        if holder.poll() is None and len(smtp_server.received) == 5:
            holder.kill()
            holder.wait()  # reaped: its process id is gone
        elif holder.returncode is not None:
            polls_after_the_kill.append(seconds)
        await sleep(seconds)

    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    opts = SendOptions(concurrency=2, batch_size=7, idle_poll=0.05)
    try:
        sender = Sender(store, config, SLUG, skeletons, options=opts, clock=clock, sleep=counting_sleep)
        result = await asyncio.wait_for(sender.run(), timeout=120)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert result.status is CampaignStatus.FINISHED
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})
    assert len(held) == 3 and len(polls_after_the_kill) <= 2
    assert os.getpid() != holder.pid


async def test_a_providers_connection_limit_holds_at_the_relay_while_others_go_in_parallel(store, config, clock,
                                                                                           smtp_server):
    """`[domain_limits] "gmail.com" = 1` with 4 connections: the relay never holds two
    transactions for Gmail recipients at once, and holds several for the other domains."""
    from newsletter.config import parse_domain_limits

    emails = []
    for start_at, domain in ((0, "gmail.com"), (100, "example.org"), (200, "example.net")):
        emails += populate(store, 8, now=clock(), start=start_at, domain=domain)
    with store.session() as session:
        campaigns.start_campaign(session, SLUG, "asp-daily", now=clock(), subject="Day 2",
                                 languages=("en", "fr", "es", "ar"), default_language="en")
    smtp_server.delay = 0.05  # each message's reply takes a while, as at a busy relay: sessions overlap
    limited = config.with_changes(domain_limits=parse_domain_limits({"gmail.com": 1}))
    result = await run(store, limited, clock, concurrency=4, batch_size=50)
    assert result.status is CampaignStatus.FINISHED and result.counts.sent == 24
    assert received_count(smtp_server) == Counter({e: 1 for e in emails})
    assert smtp_server.most_at_once["gmail.com"] == 1
    assert smtp_server.most_at_once["example.org"] + smtp_server.most_at_once["example.net"] >= 3
    assert max(smtp_server.most_at_once["example.org"], smtp_server.most_at_once["example.net"]) >= 2
