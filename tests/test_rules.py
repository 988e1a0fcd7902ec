"""The one set of subscribe rules (`people.rules`), pure: a sign-up and an import row, whatever
the store knows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from newsletter.people.rules import (
    RESEND_INTERVAL,
    RESEND_MAX,
    RESEND_WINDOW,
    SIGNUP_RULES,
    Outcome,
    confirmation_allowed,
    import_rules,
    plan_subscription,
)
from newsletter.statuses import SubscriberStatus, SubscriptionStatus

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
LISTS = (1, 2, 3, 4)


class Person(NamedTuple):
    name: str
    language: str
    status: SubscriberStatus


def plan(wanted, person=None, subscriptions=None, *, suppressed=False, name="New", language=None,
         rules=SIGNUP_RULES):
    return plan_subscription(wanted, person, subscriptions or {}, suppressed=suppressed, name=name,
                             language=language, default_language="en", rules=rules)


ANA = Person("Ana", "es", SubscriberStatus.ACTIVE)
P, A, U = SubscriptionStatus.PENDING, SubscriptionStatus.ACTIVE, SubscriptionStatus.UNSUBSCRIBED


def test_a_new_address_is_pending_on_every_list_and_mailed():
    p = plan((2, 1), language=None)
    assert (p.outcome, p.details, p.add, p.logged, p.mail) == (Outcome.CHANGED, ("New", "en"), (2, 1), (2, 1), (2, 1))


def test_a_sign_up_of_a_known_person():
    p = plan((1, 2, 3, 4), ANA, {1: A, 2: P, 3: U}, name="", language="fr")
    assert (p.add, p.repend, p.logged, p.mail) == ((4,), (3,), (2, 3, 4), (2, 3, 4))
    assert p.details is None  # they have confirmed something: their name and language stay
    unconfirmed = plan((2,), ANA, {2: P}, name="", language="fr")
    assert unconfirmed.details == ("Ana", "fr") and unconfirmed.mail == (2,)
    assert plan((1,), ANA, {1: A}).outcome is Outcome.ALREADY_THERE


def test_an_import_row_of_a_known_person():
    rules = import_rules()
    assert plan((1, 2), ANA, {1: P}, rules=rules)[:5] == (Outcome.CHANGED, None, (2,), (), ())
    assert plan((1,), ANA, {1: P}, rules=rules).outcome is Outcome.ALREADY_THERE  # a re-run changes nothing
    assert plan((2,), ANA, {1: U}, rules=rules).outcome is Outcome.UNSUBSCRIBED  # left a list: not again
    assert plan((1,), ANA, {1: A, 2: U}, rules=rules).outcome is Outcome.ALREADY_THERE
    confirmed = plan((1, 2), ANA, {1: P}, rules=import_rules(confirmed=True, consent_note="paper"))
    assert (confirmed.add, confirmed.activate, confirmed.logged, confirmed.mail) == ((2,), (1,), (1, 2), ())


statuses = st.dictionaries(st.sampled_from(LISTS), st.sampled_from(list(SubscriptionStatus)), max_size=4)
wanted_lists = st.lists(st.sampled_from(LISTS), min_size=1, max_size=4, unique=True).map(tuple)
people = st.none() | st.builds(Person, st.sampled_from(["", "Ana"]), st.sampled_from(["en", "fr"]),
                               st.sampled_from(list(SubscriberStatus)))
every_rules = st.sampled_from([SIGNUP_RULES, import_rules(), import_rules(confirmed=True, consent_note="n")])


@given(wanted_lists, people, statuses, st.booleans(), every_rules, st.sampled_from([None, "ar"]))
def test_what_any_plan_may_and_may_not_do(wanted, person, subscriptions, suppressed, rules, language):
    subscriptions = subscriptions if person is not None else {}
    p = plan(wanted, person, subscriptions, suppressed=suppressed, rules=rules, language=language)
    touched = set(p.add) | set(p.repend) | set(p.activate)
    if suppressed or (person is not None and person.status is not SubscriberStatus.ACTIVE):
        assert p.outcome is Outcome.SUPPRESSED and not touched and not p.logged and not p.mail
        return
    assert touched <= set(wanted) and set(p.logged) <= set(wanted)  # only what was asked for
    assert not set(p.add) & set(subscriptions)  # a subscription is added once
    assert all(subscriptions[lid] is U for lid in p.repend)
    assert all(subscriptions[lid] is P for lid in p.activate)
    assert not any(subscriptions.get(lid) is A for lid in p.logged)  # an active list is left alone
    assert set(p.mail) <= set(p.logged) and not (rules.confirmed and p.mail)
    assert (p.outcome is Outcome.CHANGED) == bool(touched or p.logged)
    if not rules.resubscribe:
        assert not p.repend
        if U in subscriptions.values():
            assert p.outcome in (Outcome.UNSUBSCRIBED, Outcome.ALREADY_THERE)
    if person is None:
        assert p.add == wanted and p.details == ("New", language or "en")
    elif not rules.newest_details_win:
        assert p.details is None  # the store wins over the file


@given(st.lists(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)), max_size=6))
def test_the_re_send_limits(ages):
    sent = [NOW - age for age in ages]
    recent = [at for at in sent if at > NOW - RESEND_WINDOW]
    expected = len(recent) < RESEND_MAX and all(at <= NOW - RESEND_INTERVAL for at in recent)
    assert confirmation_allowed(sent, NOW) is expected
