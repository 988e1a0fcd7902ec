"""The confirmation queue: a sign-up queues its mail in its own transaction, the drainer sends it
in batches over the real recording SMTP server, on SQLite and PostgreSQL; faults are injected."""

from __future__ import annotations

import logging
import time
import warnings

import pytest

# `drain` and `queued` are also imported from here by other tests (test_api, test_cli, test_importer).
from mailing import drain_confirmations as drain
from mailing import queued

from newsletter.installation import Newsletter
from newsletter.people import consent, lists, subscriptions
from newsletter.people import subscriptions as visitor
from newsletter.people.confirmation_queue import LEASE, claim_confirmations
from newsletter.people.consent import ConsentContext
from newsletter.statuses import Channel, SuppressionReason
from newsletter.store import QueuedConfirmation

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from newsletter.app import create_app

CTX = ConsentContext(channel=Channel.API, ip="203.0.113.7", user_agent="test", source="test")


@pytest.fixture
def newsletter(config, store, clock) -> Newsletter:
    newsletter = Newsletter(config, store, clock=clock)
    with store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr"], now=clock())
    return newsletter


def sign_up(newsletter, email: str) -> visitor.SignupRecord:
    return visitor.record_signup(newsletter, email, "Ana", "en", ["asp-daily"], CTX)


def test_a_signup_queues_its_mail_and_the_drainer_sends_it(newsletter, smtp_server):
    record = sign_up(newsletter, "ana@example.org")
    assert record.due is not None and queued(newsletter) == 1
    assert smtp_server.received == []  # nothing is sent in the sign-up itself
    result = drain(newsletter)
    assert (result.sent, result.retried, result.dropped) == (1, 0, 0)
    [mail] = smtp_server.to("ana@example.org")
    assert "/confirm/" in mail.get_body(("plain",)).get_content()
    assert "ASP daily summaries" in mail.get_body(("plain",)).get_content()
    assert queued(newsletter) == 0
    assert drain(newsletter).sent == 0  # sent once only


def test_the_resend_limits_hold_with_the_queue(newsletter, smtp_server, clock):
    for _ in range(5):
        sign_up(newsletter, "ana@example.org")
        clock.advance(minutes=1)
    assert queued(newsletter) == 1  # at most one per 10 minutes
    for _ in range(4):
        clock.advance(minutes=11)
        sign_up(newsletter, "ana@example.org")
    drain(newsletter)
    assert len(smtp_server.to("ana@example.org")) == consent.RESEND_MAX  # at most 3 per 7 days


def test_mails_a_dead_server_left_queued_are_sent_when_a_server_starts(newsletter, smtp_server):
    for i in range(3):
        sign_up(newsletter, f"p{i}@example.org")  # recorded; the server "died" before sending
    with TestClient(create_app(newsletter)):
        deadline = time.monotonic() + 30
        # the drainer runs at start, on its own; wait for it to record the sends too (under load
        # the relay's 250 can come well before the queue's row is written)
        while (len(smtp_server.received) < 3 or queued(newsletter)) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == ["p0@example.org", "p1@example.org",
                                                                   "p2@example.org"]
    assert queued(newsletter) == 0


def test_a_batch_claimed_by_a_dead_process_is_taken_over_after_the_lease(newsletter, smtp_server, clock):
    sign_up(newsletter, "ana@example.org")
    with newsletter.store.session() as session:
        assert len(claim_confirmations(session, "dead-process", now=clock(), limit=10)) == 1
    clock.advance(minutes=1)
    assert drain(newsletter).sent == 0 and smtp_server.received == []  # the claim still holds
    clock.advance(seconds=LEASE.total_seconds())
    assert drain(newsletter).sent == 1 and len(smtp_server.to("ana@example.org")) == 1


def test_a_temporary_refusal_keeps_that_mail_queued_and_it_is_retried(newsletter, smtp_server, clock, caplog):
    """A 4xx at RCPT is about that recipient: their mail waits (with back-off), the others go."""
    smtp_server.fail_rcpt["ana@example.org"] = ["451 4.3.0 try again later"]
    sign_up(newsletter, "ana@example.org")
    sign_up(newsletter, "ben@example.org")
    with caplog.at_level(logging.ERROR, "newsletter.people.confirmation_queue"):
        result = drain(newsletter)
    assert (result.sent, result.retried) == (1, 1)
    assert any("stays queued" in r.getMessage() for r in caplog.records)
    with newsletter.store.session() as session:
        rows = session.query(QueuedConfirmation).order_by(QueuedConfirmation.id).all()
        assert [r.attempts for r in rows] == [1] and "451" in rows[0].last_error
    assert drain(newsletter).sent == 0  # not due yet: back-off
    clock.advance(minutes=2)
    assert drain(newsletter).sent == 1
    assert len(smtp_server.to("ana@example.org")) == len(smtp_server.to("ben@example.org")) == 1
    assert queued(newsletter) == 0


def test_when_the_relay_drops_the_connection_twice_the_rest_of_the_batch_waits(newsletter, smtp_server, clock):
    """No hammering a failing relay: after two lost connections in a row the batch stops trying."""
    smtp_server.drop_in_data = 2
    for name in ("ana", "ben", "cem"):
        sign_up(newsletter, f"{name}@example.org")
    result = drain(newsletter)
    assert (result.sent, result.retried) == (0, 3)
    assert smtp_server.rcpt_attempts == {"ana@example.org": 1, "ben@example.org": 1}  # cem was not tried
    assert queued(newsletter) == 3
    clock.advance(minutes=2)
    assert drain(newsletter).sent == 3 and queued(newsletter) == 0


def test_a_permanent_refusal_is_dropped_not_retried(newsletter, smtp_server, clock, caplog):
    smtp_server.fail_rcpt["nobody@example.org"] = "550 5.1.1 No such user"
    sign_up(newsletter, "nobody@example.org")
    sign_up(newsletter, "ana@example.org")
    with caplog.at_level(logging.WARNING, "newsletter.people.confirmation_queue"):
        result = drain(newsletter)
    assert (result.sent, result.dropped, result.retried) == (1, 1, 0)
    assert any("refused for good" in r.getMessage() for r in caplog.records)
    assert queued(newsletter) == 0


def test_an_unreachable_relay_keeps_everything_queued(config, store, clock, smtp_server, refused_port):
    newsletter = Newsletter(config.with_changes(smtp_url=f"smtp://127.0.0.1:{refused_port}?starttls=off"), store,
                            clock=clock)
    with store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", now=clock())
    sign_up(newsletter, "ana@example.org")
    assert drain(newsletter).retried == 1 and queued(newsletter) == 1
    working = Newsletter(config, store, clock=clock)  # the relay is back
    clock.advance(minutes=1)
    assert drain(working).sent == 1 and len(smtp_server.to("ana@example.org")) == 1


def test_nobody_blocked_or_erased_while_waiting_is_mailed(newsletter, smtp_server, clock):
    sign_up(newsletter, "blocked@example.org")
    sign_up(newsletter, "erased@example.org")
    with newsletter.store.session() as session:
        consent.suppress(session, "blocked@example.org", SuppressionReason.BLOCKED, now=clock())
    subscriptions.erase(newsletter, "erased@example.org")
    assert queued(newsletter) == 1  # the erased person's row went with them
    result = drain(newsletter)
    assert (result.sent, result.dropped) == (0, 1)
    assert smtp_server.received == [] and queued(newsletter) == 0
