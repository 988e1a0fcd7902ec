"""Personal mail through the relay pool: a confirmation, a welcome, a staff invitation and a test
send each reach the relay that takes the login, past one that refuses it (AUTH 535), from one
pool per process; with `[relays.*]` configured nothing tries `smtp_url`; with every relay
down the mail stays queued and goes out when one comes back. Two real aiosmtpd relays, on
SQLite and PostgreSQL."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from conftest import REPO
from mailing import drain_confirmations as drain
from mailing import queued, relay_url
from population import populate
from sqlalchemy import select

from newsletter.config import parse_relays
from newsletter.installation import Newsletter
from newsletter.people import subscriptions
from newsletter.people.confirmation_queue import Delivery
from newsletter.people.consent import ConsentContext
from newsletter.routine.welcome import plan_personal_mail, send_personal_mail
from newsletter.sending.launch import prepare_send, send_test_mail
from newsletter.staff import accounts
from newsletter.staff.audit import Actor
from newsletter.staff.roles import Role
from newsletter.statuses import Channel
from newsletter.store.models import PersonalMail, Subscriber
from newsletter.tokens import Purpose
from newsletter.transport.relays import shared_pool

DAY_3 = sorted((REPO / "examples" / "asp23").glob("day-3.*.md"))
FORM = ConsentContext(channel=Channel.FORM, ip="203.0.113.7", user_agent="test", source="website-footer")


@pytest.fixture
def untouched():
    """What `smtp_url` points at: a socket that listens and never answers; a connection to it
    would wait in its backlog, where `accept` finds it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        yield listener


def nobody_came(listener: socket.socket) -> bool:
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return True
    connection.close()
    return False


@pytest.fixture
def pooled(config, store, clock, relays, untouched, tmp_path) -> Newsletter:
    """An installation whose mail goes through `[relays.*]` only; the refusing relay weighs so
    much that it is always tried first while it is not cooling off."""
    good, refusing = relays
    tables = parse_relays({
        "provider": {"url": f"smtp://news:a-wrong-password@127.0.0.1:{refusing.port}?starttls=off&timeout=5",
                     "weight": 1_000_000},
        "office": {"url": relay_url(good), "weight": 1},
    })
    folder = tmp_path / "welcome"
    folder.mkdir()
    (folder / "asp-daily.en.md").write_text("---\nsubject: Welcome to the ASP daily summaries\n---\n"
                                            "Each evening of a session, one mail.\n", encoding="utf-8")
    never = f"smtp://127.0.0.1:{untouched.getsockname()[1]}?starttls=off&timeout=2"
    newsletter = Newsletter(config.with_changes(relays=tables, smtp_url=never, welcome_dir=str(folder),
                                                catch_up="off"), store, clock=clock)
    populate(store, 0, now=clock())  # the list asp-daily, in en, fr, es, ar
    clock.advance(days=3)
    return newsletter


def personal_rows(newsletter):
    with newsletter.store.session() as session:
        return [(r.status.value, r.relay) for r in session.scalars(select(PersonalMail).order_by(PersonalMail.id))]


def test_every_kind_of_personal_mail_goes_through_the_relay_that_takes_it(pooled, relays, untouched):
    newsletter = pooled
    good, refusing = relays
    # A double opt-in sign-up: its confirmation, sent by the drainer the server runs.
    record = subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "en", ["asp-daily"], FORM)
    assert drain(newsletter).sent == 1 and queued(newsletter) == 0
    (confirmation,) = good.to("ana@example.org")
    assert "/confirm/" in confirmation.get_body(("plain",)).get_content()
    # Confirmed: the welcome, whose row keeps the relay.
    token = newsletter.token(Purpose.CONFIRM, record.due.subscriber_key, language="en")
    assert subscriptions.confirm(newsletter, token, FORM) == ["asp-daily"]
    assert plan_personal_mail(newsletter) == 1 and send_personal_mail(newsletter).sent == 1
    assert personal_rows(newsletter) == [("sent", "office")]
    assert good.to("ana@example.org")[-1]["Subject"] == "Welcome to the ASP daily summaries"
    # A staff invitation, and a test send of an issue.
    owner = accounts.add_member(newsletter, "owner@example.org", Role.OWNER).member
    invitation = accounts.invite(newsletter, Actor(owner), "editor@example.org", Role.EDITOR)
    assert invitation.mailed, invitation.mail_error
    assert invitation.link in good.to("editor@example.org")[0].get_body(("plain",)).get_content()
    results = send_test_mail(newsletter, prepare_send(newsletter, DAY_3), ["tester@example.net"])
    assert results and all(reply.code == 250 for _, _, reply in results)
    assert len(good.to("tester@example.net")) == len(results)
    # The refusing relay was tried once, by the first mail; then it cooled off in the one pool
    # every sender shares, and nobody asked it again. Nothing went to smtp_url.
    assert refusing.received == [] and refusing.auth_attempts == 1
    counts = shared_pool(newsletter.config, clock=newsletter.clock).counts()
    assert counts["provider"].failed == 1 and counts["provider"].opened == 0
    assert counts["office"].opened >= 4 and counts["office"].open_now == 0
    assert nobody_came(untouched)


def test_the_refusing_relay_is_asked_again_after_its_cool_off(pooled, relays):
    newsletter = pooled
    _, refusing = relays
    subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "en", ["asp-daily"], FORM)
    assert drain(newsletter).sent == 1 and refusing.auth_attempts == 1
    newsletter.clock.advance(seconds=newsletter.config.relay_cool_off_seconds + 1)
    refusing.auth["news"] = "a-wrong-password"  # put right at the provider meanwhile
    subscriptions.record_signup(newsletter, "rosa@example.org", "Rosa", "en", ["asp-daily"], FORM)
    assert drain(newsletter).sent == 1
    assert refusing.auth_attempts == 2 and len(refusing.to("rosa@example.org")) == 1


def test_with_every_relay_down_the_mail_waits_and_goes_when_one_is_back(pooled, relays, untouched):
    newsletter = pooled
    good, refusing = relays
    good.stop()
    # `newsletter subscribe`: the sign-up, then its mail sent at once by a local drainer.
    outcome = subscriptions.subscribe(newsletter, "ana@example.org", "Ana", "en", ["asp-daily"], FORM).confirmation
    assert outcome.delivery is Delivery.WAITING
    assert "provider:" in outcome.reason and "office:" in outcome.reason
    assert queued(newsletter) == 1
    with newsletter.store.session() as session:
        key = session.scalar(select(Subscriber.key).where(Subscriber.email == "ana@example.org"))
    token = newsletter.token(Purpose.CONFIRM, key, language="en")
    subscriptions.confirm(newsletter, token, FORM)
    assert plan_personal_mail(newsletter) == 1
    assert send_personal_mail(newsletter).deferred == 1 and personal_rows(newsletter) == [("deferred", None)]
    owner = accounts.add_member(newsletter, "owner@example.org", Role.OWNER).member
    invitation = accounts.invite(newsletter, Actor(owner), "editor@example.org", Role.EDITOR)
    assert not invitation.mailed and "relay" in invitation.mail_error  # the account stays; staff can resend
    good.start()  # the office relay is back (same port)
    newsletter.clock.advance(minutes=10)  # past the queue's back-off and the relays' cool-off
    assert drain(newsletter).sent == 1 and queued(newsletter) == 0
    assert send_personal_mail(newsletter).sent == 1 and personal_rows(newsletter) == [("sent", "office")]
    assert len(good.to("ana@example.org")) == 2 and refusing.received == []
    assert nobody_came(untouched)


def test_without_relays_personal_mail_still_goes_to_smtp_url(config, store, clock, smtp_server):
    newsletter = Newsletter(config, store, clock=clock)
    populate(store, 0, now=clock())
    subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "en", ["asp-daily"], FORM)
    assert drain(newsletter).sent == 1 and len(smtp_server.to("ana@example.org")) == 1


def test_one_pool_per_configuration_and_clock(pooled):
    config, clock = pooled.config, pooled.clock
    assert shared_pool(config, clock=clock) is shared_pool(config.with_changes(base_url="https://x.example"),
                                                           clock=clock)
    assert shared_pool(config, clock=clock) is not shared_pool(config.with_changes(relay_cool_off_seconds=60),
                                                               clock=clock)
    assert shared_pool(config, clock=clock).cool_off == timedelta(seconds=config.relay_cool_off_seconds)
