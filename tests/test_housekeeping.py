"""Housekeeping (`routine.housekeeping`, `people.housekeeping`): one reminder to a pending
sign-up within the re-send limits, then its expiry, both in the consent log; the consent log's
IPs and user agents blanked after their retention, and nothing else of it changeable — on
SQLite and PostgreSQL, with an injected clock and the recording SMTP server."""

from __future__ import annotations

import asyncio

import pytest
from population import populate
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from newsletter.people import subscriptions
from newsletter.people.confirmation_queue import ConfirmationDrainer
from newsletter.people.consent import ConsentContext
from newsletter.routine.housekeeping import Housekeeping, run_housekeeping
from newsletter.statuses import Channel

FORM = ConsentContext(channel=Channel.FORM, ip="203.0.113.7", user_agent="Mozilla/5.0 (test)",
                      source="website-footer")


def sign_up(newsletter, email="ana@example.org"):
    subscriptions.record_signup(newsletter, email, "Ana", "fr", ["asp-daily"], FORM)
    return asyncio.run(ConfirmationDrainer(newsletter).drain())


def log_of(newsletter, email="ana@example.org"):
    return [(line.event, line.note) for line in subscriptions.consent_events(newsletter, email)]


@pytest.fixture
def listed(newsletter):
    populate(newsletter.store, 0, now=newsletter.clock())
    return newsletter


def test_a_pending_signup_gets_one_reminder_then_expires(listed, smtp_server, clock):
    newsletter = listed
    sign_up(newsletter)
    assert len(smtp_server.to("ana@example.org")) == 1
    clock.advance(days=2, hours=23)
    assert run_housekeeping(newsletter) == Housekeeping(0, 0, 0)
    clock.advance(hours=1)  # three days
    assert run_housekeeping(newsletter).reminded == 1
    asyncio.run(ConfirmationDrainer(newsletter).drain())
    first, reminder = smtp_server.to("ana@example.org")
    assert reminder["Subject"] == first["Subject"] and "/confirm/" in reminder.get_body(("plain",)).get_content()
    clock.advance(days=1)
    assert run_housekeeping(newsletter).reminded == 0  # at most one
    clock.advance(days=26)  # thirty days after the sign-up
    assert run_housekeeping(newsletter) == Housekeeping(0, 1, 0)
    assert log_of(newsletter) == [("signup", None), ("confirmation_sent", "asp-daily"),
                                  ("confirmation_sent", "reminder: asp-daily"), ("expired", "not confirmed in 30 days")]
    assert subscriptions.count_subscribers(newsletter, list_slug="asp-daily") == 0
    assert run_housekeeping(newsletter) == Housekeeping(0, 0, 0)
    assert len(smtp_server.to("ana@example.org")) == 2


def test_the_reminders_link_confirms(listed, smtp_server, clock):
    newsletter = listed
    sign_up(newsletter)
    clock.advance(days=8)  # the first link has expired (confirm_days = 7)
    assert run_housekeeping(newsletter).reminded == 1
    asyncio.run(ConfirmationDrainer(newsletter).drain())
    reminder = smtp_server.to("ana@example.org")[-1]
    token = reminder.get_body(("plain",)).get_content().split("/confirm/", 1)[1].split()[0]
    assert subscriptions.confirm(newsletter, token, FORM) == ["asp-daily"]
    clock.advance(days=30)
    assert run_housekeeping(newsletter).expired == 0  # confirmed: nothing to expire


def test_no_reminder_beyond_the_resend_limits(listed, smtp_server, clock):
    newsletter = listed
    for _ in range(3):  # three mails asked for within the week: the most the limits allow
        sign_up(newsletter)
        clock.advance(minutes=20)
    assert len(smtp_server.to("ana@example.org")) == 3
    clock.advance(days=3)
    assert run_housekeeping(newsletter).reminded == 0
    clock.advance(days=4, hours=1)  # a week after the first: the limits allow one again
    assert run_housekeeping(newsletter).reminded == 1


def test_settings_of_zero_turn_the_jobs_off(listed, smtp_server, clock):
    newsletter = listed
    newsletter.config = newsletter.config.with_changes(reminder_days=0, pending_expiry_days=0)
    sign_up(newsletter)
    clock.advance(days=400)
    assert run_housekeeping(newsletter) == Housekeeping(0, 0, 0)
    assert subscriptions.count_subscribers(newsletter, list_slug="asp-daily", status="pending") == 1


def test_ips_and_user_agents_are_blanked_after_their_retention_and_nothing_else(listed, smtp_server, clock):
    newsletter = listed
    newsletter.config = newsletter.config.with_changes(consent_origin_retention_days=90, reminder_days=0,
                                                       pending_expiry_days=0)
    sign_up(newsletter, "old@example.org")
    clock.advance(days=60)
    sign_up(newsletter, "new@example.org")
    clock.advance(days=31)
    assert run_housekeeping(newsletter).blanked == 2  # the old sign-up and its confirmation mail
    assert run_housekeeping(newsletter).blanked == 0
    old = subscriptions.consent_events(newsletter, "old@example.org")
    new = subscriptions.consent_events(newsletter, "new@example.org")
    assert {(line.ip, line.user_agent) for line in old} == {(None, None)}
    assert [(line.event, line.source, line.consent_version) for line in old] == \
        [(line.event, line.source, line.consent_version) for line in new]
    signup = next(line for line in new if line.event == "signup")
    assert (signup.ip, signup.user_agent) == ("203.0.113.7", "Mozilla/5.0 (test)")
    for statement in ("UPDATE consent_events SET note = 'changed'", "UPDATE consent_events SET ip = '192.0.2.1'",
                      "UPDATE consent_events SET ip = NULL, user_agent = NULL, source = 'elsewhere'"):
        with pytest.raises(DBAPIError, match="append-only"):
            with newsletter.store.session() as session:
                session.execute(text(statement))


def test_the_housekeeping_command(listed, smtp_server, clock, monkeypatch):
    from click.testing import CliRunner

    from newsletter.cli import State, main

    sign_up(listed)
    clock.advance(days=3)
    monkeypatch.setattr(State, "newsletter", lambda self, check_schema=True: listed)
    result = CliRunner().invoke(main, ["housekeeping"])
    assert result.exit_code == 0, result.output
    assert "1 person(s) reminded (their mail is queued), 0 pending sign-up(s) expired, 0 consent-log line(s) " \
           "blanked" in result.output
