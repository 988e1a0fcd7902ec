"""Outgoing webhooks, on SQLite and PostgreSQL, to a real HTTP receiver on loopback that fails,
times out and recovers: nothing is lost, each attempt is logged, and the signatures are the
ones the `standardwebhooks` package (an independent implementation) makes and accepts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from conftest import REPO
from population import populate
from standardwebhooks import Webhook
from webhook_receiver import Receiver

from newsletter.errors import InvalidField
from newsletter.hooks import delivery
from newsletter.hooks.signing import sign, signed_headers
from newsletter.installation import Newsletter, utc_now
from newsletter.people import lists, subscriptions
from newsletter.people.rules import ConsentContext
from newsletter.sending.launch import launch, prepare_send
from newsletter.sending.options import SendOptions
from newsletter.statuses import Channel, DeliveryStatus
from newsletter.store import people as people_store

DAY_3 = sorted((REPO / "examples" / "asp23").glob("day-3.*.md"))
CTX = ConsentContext(channel=Channel.FORM, ip="192.0.2.1", source="signup-form")
NOW = timedelta(0)


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def key_of(newsletter, email):
    with newsletter.store.session() as session:
        return people_store.find_subscriber(session, email).key


def make_events(newsletter, smtp_server):
    """A sign-up, its confirmation, an unsubscribe, a hard bounce at RCPT and a finished campaign."""
    from newsletter.tokens import Purpose

    with newsletter.store.session() as session:
        lists.create_list(session, "alerts", "Campaign alerts", now=newsletter.clock())
    subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "es", ["alerts"], CTX)
    subscriptions.confirm(newsletter, newsletter.token(Purpose.CONFIRM, key_of(newsletter, "ana@example.org")), CTX)
    subscriptions.unsubscribe_address(newsletter, "ana@example.org", ConsentContext(channel=Channel.LINK))
    populate(newsletter.store, 3, now=newsletter.clock())
    smtp_server.fail_rcpt["person000001@example.org"] = "550 5.1.1 No such user"
    launch(newsletter, prepare_send(newsletter, DAY_3), SendOptions(concurrency=1, idle_poll=3600.0))


def test_a_receiver_that_fails_times_out_and_recovers_loses_nothing(config, store, clock, receiver, smtp_server):
    newsletter = Newsletter(config, store, clock=clock)
    _, secret = delivery.add_webhook(newsletter, "crm", receiver.url)
    make_events(newsletter, smtp_server)

    receiver.mode = "fail"
    first = delivery.deliver_due(newsletter, settle=NOW, timeout=1.0)
    expected = {"subscriber.subscribed", "subscriber.confirmed", "subscriber.unsubscribed", "subscriber.bounced",
                "campaign.finished"}
    assert first.queued == first.retrying and first.delivered == 0
    lines = delivery.deliveries(newsletter)
    assert {d.event_type for d in lines} == expected
    assert all(d.status is DeliveryStatus.PENDING and d.attempts == 1 and d.last_status_code == 500 for d in lines)
    # Not due yet: nothing is sent before the back-off.
    assert delivery.deliver_due(newsletter, settle=NOW) == (0, 0, 0, 0)

    receiver.mode = "slow"
    clock.advance(seconds=6)
    second = delivery.deliver_due(newsletter, settle=NOW, timeout=0.3)
    assert second.retrying == first.queued
    [attempt_1, attempt_2] = delivery.delivery_attempts(newsletter, lines[0].id)
    assert attempt_1[1] == 500 and "down for maintenance" in attempt_1[2]
    assert attempt_2[1] is None and attempt_2[2] == "no answer within 0.3 s"

    # An event that happens while the receiver is down waits its turn too.
    subscriptions.record_signup(newsletter, "li@example.org", "Li", "en", ["alerts"], CTX)
    receiver.mode = "ok"
    clock.advance(minutes=6)
    third = delivery.deliver_due(newsletter, settle=NOW, timeout=5.0)
    assert third.queued == 1 and third.delivered == first.queued + 1 and third.retrying == third.failed == 0
    got = [json.loads(body) for _, body in receiver.accepted]
    # Ana's unsubscribe, and person 1's: a hard bounce unsubscribes (and suppresses) as well.
    assert sorted(g["type"] for g in got) == sorted([*expected, "subscriber.subscribed", "subscriber.unsubscribed"])
    assert {g["data"]["email"] for g in got if g["type"] == "subscriber.subscribed"} == {"ana@example.org",
                                                                                          "li@example.org"}
    bounced = next(g for g in got if g["type"] == "subscriber.bounced")["data"]
    assert bounced["email"] == "person000001@example.org" and bounced["kind"] == "hard"
    assert bounced["campaign"] == "asp23-day-3"
    assert bounced["provider"] is None and bounced["source"]  # a mailbox's DSN or the relay's reply, not a provider
    finished = next(g for g in got if g["type"] == "campaign.finished")["data"]
    assert finished["slug"] == "asp23-day-3" and finished["counts"]["sent"] == 2
    assert all(d.status is DeliveryStatus.DELIVERED for d in delivery.deliveries(newsletter))
    # Delivered is delivered: another pass sends nothing again.
    clock.advance(hours=3)
    assert delivery.deliver_due(newsletter, settle=NOW) == (0, 0, 0, 0) and len(receiver.accepted) == 7

    # Every signature is the one the independent implementation makes for that id, time and body.
    wh = Webhook(secret)
    for headers, body in receiver.accepted:
        at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), tz=timezone.utc)
        assert headers["webhook-signature"] == wh.sign(headers["webhook-id"], at, body.decode())
        assert headers["webhook-id"].startswith("msg_")


def test_retries_give_up_after_the_last_back_off_and_can_be_queued_again(config, store, clock, receiver):
    newsletter = Newsletter(config, store, clock=clock)
    delivery.add_webhook(newsletter, "crm", receiver.url, ["subscribe"])
    with newsletter.store.session() as session:
        lists.create_list(session, "alerts", "Campaign alerts", now=clock())
    subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "es", ["alerts"], CTX)
    receiver.mode = "fail"
    delivery.deliver_due(newsletter, settle=NOW)
    for wait in delivery.BACKOFF:
        clock.advance(seconds=wait.total_seconds())
        done = delivery.deliver_due(newsletter, settle=NOW)
    assert done.failed == 1
    [line] = delivery.deliveries(newsletter, status=DeliveryStatus.FAILED)
    assert line.attempts == len(delivery.BACKOFF) + 1 and len(delivery.delivery_attempts(newsletter, line.id)) == 8
    receiver.mode = "ok"
    assert delivery.retry_failed(newsletter, "crm") == 1
    assert delivery.deliver_due(newsletter, settle=NOW).delivered == 1 and len(receiver.accepted) == 1


def test_an_endpoint_gets_only_its_events_and_only_those_after_it_was_added(config, store, clock, receiver):
    newsletter = Newsletter(config, store, clock=clock)
    with newsletter.store.session() as session:
        lists.create_list(session, "alerts", "Campaign alerts", now=clock())
    subscriptions.record_signup(newsletter, "early@example.org", "", "en", ["alerts"], CTX)
    clock.advance(seconds=1)
    delivery.add_webhook(newsletter, "crm", receiver.url, ["unsubscribe"])
    subscriptions.record_signup(newsletter, "late@example.org", "", "en", ["alerts"], CTX)
    subscriptions.unsubscribe_address(newsletter, "early@example.org", ConsentContext(channel=Channel.LINK))
    assert delivery.deliver_due(newsletter, settle=NOW).delivered == 1
    [(_, body)] = receiver.accepted
    assert json.loads(body)["type"] == "subscriber.unsubscribed"
    # Events younger than `settle` wait for the next pass.
    subscriptions.unsubscribe_address(newsletter, "late@example.org", ConsentContext(channel=Channel.LINK))
    assert delivery.deliver_due(newsletter).queued == 0
    clock.advance(seconds=11)
    assert delivery.deliver_due(newsletter).delivered == 1


def test_a_real_time_delivery_verifies_with_standardwebhooks(config, store, receiver):
    newsletter = Newsletter(config, store, clock=utc_now)
    _, secret = delivery.add_webhook(newsletter, "site", receiver.url, ["subscribe"])
    with newsletter.store.session() as session:
        lists.create_list(session, "alerts", "Campaign alerts", now=utc_now())
    subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "es", ["alerts"], CTX)
    assert delivery.deliver_due(newsletter, settle=NOW).delivered == 1
    [(headers, body)] = receiver.accepted
    assert Webhook(secret).verify(body, headers)["data"]["email"] == "ana@example.org"
    forged = {**headers, "webhook-signature": sign(secret, headers["webhook-id"], int(headers["webhook-timestamp"]),
                                                   body + b" ")}
    with pytest.raises(Exception):
        Webhook(secret).verify(body, forged)


def test_signing_follows_the_spec_by_hand():
    """The spec's own example: secret, id, timestamp and body give this signature."""
    import base64
    import hashlib
    import hmac

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1," + base64.b64encode(hmac.new(base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                                                 b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330." + body,
                                                 hashlib.sha256).digest()).decode()
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    assert expected == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    headers = signed_headers(secret, "msg_1", datetime(2026, 1, 1, tzinfo=timezone.utc), body)
    assert headers["webhook-timestamp"] == "1767225600"


def test_bad_endpoints_are_refused(config, store, clock):
    newsletter = Newsletter(config, store, clock=clock)
    for name, url, events in (("Bad Name", "https://x.example", ()), ("crm", "ftp://x.example", ()),
                              ("crm", "https://x.example", ("open",))):
        with pytest.raises(InvalidField):
            delivery.add_webhook(newsletter, name, url, events)


def test_the_webhooks_commands(config, store, clock, receiver, monkeypatch):
    from newsletter import cli

    newsletter = Newsletter(config, store, clock=clock)
    monkeypatch.setattr(cli.State, "newsletter", lambda self, check_schema=True: newsletter)
    runner = CliRunner()
    added = runner.invoke(cli.main, ["webhooks", "add", "crm", receiver.url, "--event", "subscribe"])
    assert added.exit_code == 0 and added.stdout.startswith("whsec_")
    assert "crm" in runner.invoke(cli.main, ["webhooks", "list"]).output
    with newsletter.store.session() as session:
        lists.create_list(session, "alerts", "Campaign alerts", now=clock())
    subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "es", ["alerts"], CTX)
    clock.advance(seconds=11)
    receiver.mode = "fail"
    out = runner.invoke(cli.main, ["webhooks", "deliver"]).output
    assert "queued 1, delivered 0, to retry 1, given up 0" in out
    shown = runner.invoke(cli.main, ["webhooks", "deliveries"]).output
    assert "subscriber.subscribed" in shown and "HTTP 500" in shown and "pending" in shown
    assert "HTTP 500" in runner.invoke(cli.main, ["webhooks", "attempts", "1"]).output
    assert "0 deliver(y/ies) queued again" in runner.invoke(cli.main, ["webhooks", "retry"]).output
    bad = runner.invoke(cli.main, ["webhooks", "remove", "nope"])
    assert bad.exit_code == 1 and "there is no webhook 'nope'" in bad.output
    assert runner.invoke(cli.main, ["webhooks", "remove", "crm"]).exit_code == 0
