"""The subscriber lifecycle, on SQLite and PostgreSQL, with confirmation mail through real SMTP."""

from __future__ import annotations

import re

import pytest

from newsletter.errors import InvalidAddress, InvalidField, InvalidToken, UnknownList
from newsletter.people import consent, lists, subscriptions
from newsletter.people.consent import ConsentContext
from newsletter.statuses import Channel, ConsentKind, SubscriptionStatus
from newsletter.tokens import Purpose

FORM = ConsentContext(channel=Channel.FORM, ip="203.0.113.7", user_agent="Mozilla/5.0 test", source="website-footer")


@pytest.fixture
def newsletter(newsletter, clock):
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"], now=clock())
        lists.create_list(session, "alerts", "Campaign alerts", languages=["en", "fr"], now=clock())
    return newsletter


def confirm_link(message) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(r"/confirm/(\S+)", text).group(1)


def status_of(newsletter, email, slug="asp-daily"):
    rows = [r for r in subscriptions.subscription_lines(newsletter, list_slug=slug) if r[0] == email]
    return rows[0][4] if rows else None


def test_signup_sends_confirmation_in_the_persons_language(newsletter, smtp_server):
    result = subscriptions.subscribe(newsletter, "Ana.Ruiz@Example.ORG", "Ana Ruiz", "fr", ["asp-daily"], FORM)
    assert result.confirmation_sent
    [mail] = smtp_server.to("ana.ruiz@example.org")
    assert mail["Subject"].startswith("Veuillez confirmer")
    assert mail["Auto-Submitted"] == "auto-generated"
    assert status_of(newsletter, "ana.ruiz@example.org") == "pending"


def test_confirm_activates_and_records_proof(newsletter, smtp_server, clock):
    subscriptions.subscribe(newsletter, "ana@example.org", "Ana", "en", ["asp-daily", "alerts"], FORM)
    token = confirm_link(smtp_server.to("ana@example.org")[0])
    clock.advance(hours=2)
    confirmed = subscriptions.confirm(newsletter, token, ConsentContext(channel=Channel.LINK, ip="198.51.100.9", user_agent="UA2"))
    assert sorted(confirmed) == ["alerts", "asp-daily"]
    assert subscriptions.confirm(newsletter, token, ConsentContext(channel=Channel.LINK)) == []  # replay: no-op
    data = subscriptions.person(newsletter, "ana@example.org").as_json()
    signup = [e for e in data["consent_log"] if e["event"] == "signup"][0]
    assert (signup["ip"], signup["user_agent"], signup["source"], signup["consent_version"]) == (
        "203.0.113.7", "Mozilla/5.0 test", "website-footer", "2026-12")
    confirms = [e for e in data["consent_log"] if e["event"] == "confirmed"]
    assert len(confirms) == 2 and confirms[0]["ip"] == "198.51.100.9" and confirms[0]["at"].startswith("2026-11-23T11:00")
    assert all(s["status"] == "active" for s in data["subscriptions"])


@pytest.mark.parametrize("state", ["new", "pending", "active", "unsubscribed", "suppressed", "blocked"])
def test_signup_result_does_not_reveal_the_address_state(newsletter, smtp_server, clock, state):
    email = "who@example.org"
    if state != "new":
        subscriptions.subscribe(newsletter, email, "Who", "en", ["asp-daily"], FORM)
        token = confirm_link(smtp_server.to(email)[0])
        if state in ("active", "unsubscribed"):
            subscriptions.confirm(newsletter, token, FORM)
        if state == "unsubscribed":
            subscriptions.unsubscribe_address(newsletter, email, ConsentContext(channel=Channel.LINK))
        if state == "suppressed":
            subscriptions.erase(newsletter, email)
        if state == "blocked":
            subscriptions.block_by_token(newsletter, newsletter.token(Purpose.BLOCK, _key(newsletter, email)), FORM)
    clock.advance(minutes=11)
    before = len(smtp_server.received)
    # The library's answer carries no state a caller could show; the web layer shows one page.
    result = subscriptions.subscribe(newsletter, email, "Who", "en", ["asp-daily"], FORM)
    assert type(result).__name__ == "SignupResult"
    sent = len(smtp_server.received) - before
    assert sent == (1 if state in ("new", "pending", "unsubscribed") else 0)


def _key(newsletter, email):
    with newsletter.store.session() as session:
        return consent.find_subscriber(session, email).key


def test_resend_limits_once_per_10_minutes_and_3_per_week(newsletter, smtp_server, clock):
    email = "pending@example.org"
    for _ in range(5):
        subscriptions.subscribe(newsletter, email, "", "en", ["asp-daily"], FORM)
    assert len(smtp_server.to(email)) == 1
    clock.advance(minutes=9)
    subscriptions.subscribe(newsletter, email, "", "en", ["asp-daily"], FORM)
    assert len(smtp_server.to(email)) == 1
    clock.advance(minutes=2)
    subscriptions.subscribe(newsletter, email, "", "en", ["asp-daily"], FORM)
    assert len(smtp_server.to(email)) == 2
    clock.advance(hours=1)
    subscriptions.subscribe(newsletter, email, "", "en", ["asp-daily"], FORM)
    clock.advance(hours=1)
    subscriptions.subscribe(newsletter, email, "", "en", ["asp-daily"], FORM)
    assert len(smtp_server.to(email)) == 3  # the weekly cap
    clock.advance(days=7, minutes=1)
    subscriptions.subscribe(newsletter, email, "", "en", ["asp-daily"], FORM)
    assert len(smtp_server.to(email)) == 4


def test_active_signup_changes_nothing_and_sends_nothing(newsletter, smtp_server, clock):
    subscriptions.subscribe(newsletter, "a@example.org", "Original", "es", ["asp-daily"], FORM)
    subscriptions.confirm(newsletter, confirm_link(smtp_server.to("a@example.org")[0]), FORM)
    clock.advance(hours=1)
    subscriptions.subscribe(newsletter, "a@example.org", "Attacker", "ar", ["asp-daily"], FORM)
    data = subscriptions.person(newsletter, "a@example.org").as_json()
    assert (data["name"], data["language"]) == ("Original", "es")
    assert len(smtp_server.to("a@example.org")) == 1


@pytest.mark.parametrize("name", ["Eve\r\nBcc: victim@example.org", "Eve\nX", "Eve\x00", "Eve\u2028Bcc: x@example.org"])
def test_control_characters_in_names_are_refused(newsletter, smtp_server, name):
    with pytest.raises(InvalidField):
        subscriptions.subscribe(newsletter, "eve@example.org", name, "en", ["asp-daily"], FORM)
    assert smtp_server.received == []
    assert subscriptions.count_subscribers(newsletter) == 0


@pytest.mark.parametrize("email", ["", "not-an-address", "a@b", "a@@example.org", "ana@example.org\r\nBcc: x@y.org"])
def test_invalid_addresses_are_refused_with_a_reason(newsletter, email):
    with pytest.raises(InvalidAddress) as info:
        subscriptions.subscribe(newsletter, email, "", "en", ["asp-daily"], FORM)
    assert info.value.reason


def test_unknown_list_and_language_change_nothing(newsletter, smtp_server):
    with pytest.raises(UnknownList):
        subscriptions.subscribe(newsletter, "x@example.org", "", "en", ["asp-daily", "nope"], FORM)
    with pytest.raises(InvalidField):
        subscriptions.subscribe(newsletter, "x@example.org", "", "de", ["asp-daily"], FORM)
    assert subscriptions.count_subscribers(newsletter) == 0 and smtp_server.received == []


def test_unsubscribe_token_never_expires_and_is_list_scoped(newsletter, smtp_server, clock):
    subscriptions.subscribe(newsletter, "u@example.org", "", "en", ["asp-daily", "alerts"], FORM)
    subscriptions.confirm(newsletter, confirm_link(smtp_server.to("u@example.org")[0]), FORM)
    token = newsletter.token(Purpose.UNSUBSCRIBE, _key(newsletter, "u@example.org"), list_slug="alerts")
    clock.advance(days=3650)
    assert subscriptions.unsubscribe_by_token(newsletter, token, ConsentContext(channel=Channel.ONE_CLICK)) == ["alerts"]
    assert status_of(newsletter, "u@example.org", "alerts") == "unsubscribed"
    assert status_of(newsletter, "u@example.org", "asp-daily") == "active"
    log = subscriptions.person(newsletter, "u@example.org").as_json()["consent_log"]
    assert log[-1]["event"] == "unsubscribed" and log[-1]["channel"] == "one_click"


def test_one_click_unsubscribes_in_one_batch_each_get_their_own_answer(newsletter, smtp_server, clock):
    for email in ("u@example.org", "v@example.org"):
        subscriptions.subscribe(newsletter, email, "", "en", ["asp-daily", "alerts"], FORM)
        subscriptions.confirm(newsletter, confirm_link(smtp_server.to(email)[0]), FORM)
    u, v = _key(newsletter, "u@example.org"), _key(newsletter, "v@example.org")
    one_click = ConsentContext(channel=Channel.ONE_CLICK)
    answers = subscriptions.unsubscribe_by_tokens(newsletter, [
        (newsletter.token(Purpose.UNSUBSCRIBE, u, list_slug="alerts"), one_click),
        (newsletter.token(Purpose.UNSUBSCRIBE, u, list_slug="alerts"), one_click),  # a second click: nothing left
        (newsletter.token(Purpose.UNSUBSCRIBE, v), one_click),  # every list
        (newsletter.token(Purpose.UNSUBSCRIBE, "nobody-has-this-key"), one_click),
        (newsletter.token(Purpose.UNSUBSCRIBE, u)[:-3] + "xyz", one_click),  # tampered
        (newsletter.token(Purpose.UNSUBSCRIBE, u), one_click),  # what is left of u
    ])
    assert answers[:3] == [["alerts"], [], ["asp-daily", "alerts"]] and answers[5] == ["asp-daily"]
    assert isinstance(answers[3], InvalidToken) and isinstance(answers[4], InvalidToken)
    for email in ("u@example.org", "v@example.org"):
        assert {status_of(newsletter, email, slug) for slug in ("asp-daily", "alerts")} == {"unsubscribed"}
        log = [e for e in subscriptions.person(newsletter, email).as_json()["consent_log"] if e["event"] == "unsubscribed"]
        assert sorted(e["list"] for e in log) == ["alerts", "asp-daily"]  # one event per list left


def test_expired_confirmation_is_refused(newsletter, smtp_server, clock):
    subscriptions.subscribe(newsletter, "late@example.org", "", "en", ["asp-daily"], FORM)
    token = confirm_link(smtp_server.to("late@example.org")[0])
    clock.advance(days=7, minutes=1)
    with pytest.raises(InvalidToken):
        subscriptions.confirm(newsletter, token, FORM)
    assert status_of(newsletter, "late@example.org") == "pending"


def test_block_link_stops_all_further_mail(newsletter, smtp_server, clock):
    subscriptions.subscribe(newsletter, "victim@example.org", "", "en", ["asp-daily"], FORM)
    text = smtp_server.to("victim@example.org")[0].get_body(("plain",)).get_content()
    block_token = re.search(r"/block/(\S+)", text).group(1)
    subscriptions.block_by_token(newsletter, block_token, FORM)
    clock.advance(days=1)
    subscriptions.subscribe(newsletter, "victim@example.org", "", "en", ["asp-daily"], FORM)
    assert len(smtp_server.to("victim@example.org")) == 1
    with pytest.raises(InvalidToken):  # a confirm link sent earlier no longer works either
        subscriptions.confirm(newsletter, confirm_link(smtp_server.to("victim@example.org")[0]), FORM) or _raise()


def _raise():
    raise InvalidToken()


def test_erase_deletes_data_and_blocks_reimport(newsletter, smtp_server, clock):
    subscriptions.subscribe(newsletter, "gone@example.org", "Gone", "en", ["asp-daily"], FORM)
    assert subscriptions.erase(newsletter, "gone@example.org")
    assert subscriptions.subscription_lines(newsletter) == []
    with newsletter.store.session() as session:
        assert consent.is_suppressed(session, "GONE@example.org")
    clock.advance(days=30)
    subscriptions.subscribe(newsletter, "gone@example.org", "Gone", "en", ["asp-daily"], FORM)
    assert subscriptions.subscription_lines(newsletter) == [] and len(smtp_server.received) == 1


def test_preferences_change_language_and_lists(newsletter, smtp_server, clock):
    subscriptions.subscribe(newsletter, "p@example.org", "", "en", ["asp-daily"], FORM)
    subscriptions.confirm(newsletter, confirm_link(smtp_server.to("p@example.org")[0]), FORM)
    with newsletter.store.session() as session:
        sub = consent.find_subscriber(session, "p@example.org")
        changes = consent.set_preferences(session, sub, FORM, now=clock(), languages=("en", "fr", "es", "ar"),
                                          language="ar", list_slugs=["alerts"])
    assert changes == consent.PreferenceChanges(language="ar", added=("alerts",), removed=("asp-daily",))
    assert status_of(newsletter, "p@example.org", "alerts") == "active"
    assert status_of(newsletter, "p@example.org", "asp-daily") == "unsubscribed"


def test_consent_log_is_append_only(newsletter, clock):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    with newsletter.store.session() as session:
        sub = consent.Subscriber(key="k" * 22, email="z@example.org", name="", language="en",
                                 created_at=clock(), updated_at=clock())
        session.add(sub)
        session.flush()
        session.add(consent.ConsentEvent(subscriber_id=sub.id, kind=ConsentKind.SIGNUP, channel=Channel.CLI, at=clock()))
    with pytest.raises(DBAPIError, match="append-only"):
        with newsletter.store.session() as session:
            session.execute(text("UPDATE consent_events SET ip = '1.2.3.4'"))


def test_subscription_statuses_are_database_enums(newsletter):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError, StatementError

    with pytest.raises((DBAPIError, StatementError)):
        with newsletter.store.session() as session:
            session.execute(text("INSERT INTO lists (slug, name, description, languages, public, created_at) "
                                 "VALUES ('x', 'x', '', '[]', true, CURRENT_TIMESTAMP)"))
            session.execute(text("INSERT INTO subscribers (key, email, name, language, status, created_at, updated_at) "
                                 "VALUES ('k', 'e@example.org', '', 'en', 'bogus', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    assert SubscriptionStatus.PENDING.value == "pending"


def test_public_only_sign_up_refuses_a_private_list_and_names_the_lists(newsletter, clock):
    """The public form's sign-up: a list that is not public is unknown; the due mail carries list names."""
    with newsletter.store.session() as session:
        lists.create_list(session, "board", "Board only", public=False, now=clock())
    with pytest.raises(UnknownList), newsletter.store.session() as session:
        consent.subscribe(session, "ana@example.org", "Ana", "en", ["asp-daily", "board"], FORM, now=clock(),
                          languages=("en", "fr"), public_only=True)
    with newsletter.store.session() as session:
        assert consent.find_subscriber(session, "ana@example.org") is None
        due = consent.subscribe(session, "ana@example.org", "Ana", "en", ["alerts", "asp-daily"], FORM,
                                now=clock(), languages=("en", "fr"), public_only=True)
    assert due.list_slugs == ("alerts", "asp-daily")
    assert due.list_names == ("Campaign alerts", "ASP daily summaries")


def test_a_new_address_is_written_whole_and_the_resend_limit_reads_it(newsletter, clock):
    """A first sign-up (the straight-INSERT path): the person, a pending subscription per list,
    a SIGNUP event per list and one CONFIRMATION_SENT event, all with the request's context."""
    with newsletter.store.session() as session:
        due = consent.subscribe(session, "Bea@Example.org", "Bea", None, ["asp-daily", "alerts"], FORM,
                                now=clock(), languages=("fr", "en"))
    assert (due.email, due.name, due.language, due.list_slugs) == ("bea@example.org", "Bea", "fr",
                                                                   ("asp-daily", "alerts"))
    data = subscriptions.person(newsletter, "bea@example.org").as_json()
    assert sorted((s["list"], s["status"]) for s in data["subscriptions"]) == [
        ("alerts", "pending"), ("asp-daily", "pending")]
    events = sorted(e["event"] for e in data["consent_log"])
    assert events == ["confirmation_sent", "signup", "signup"]
    assert all((e["ip"], e["user_agent"], e["source"]) == ("203.0.113.7", "Mozilla/5.0 test", "website-footer")
               for e in data["consent_log"])
    with newsletter.store.session() as session:  # at once again: known, pending, within the re-send interval
        assert consent.subscribe(session, "bea@example.org", "Bea", None, ["asp-daily"], FORM, now=clock(),
                                 languages=("fr", "en")) is None
        assert consent.find_subscriber(session, "bea@example.org").key == due.subscriber_key
