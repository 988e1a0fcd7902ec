"""The subscribe rules: what a sign-up or an import row does, given what the store knows. Pure.

`plan_subscription` is the one planner of every way in (the public form, the API, `newsletter
subscribe`, an import): it takes the lists asked for, the person the store knows by that
address (or None), their subscriptions and whether the address is suppressed, and returns a
`Plan` — what to write, what to log, which lists a confirmation mail would ask for. It reads
and writes nothing; `signups.record_signups` looks up, plans and writes.

A sign-up (`SIGNUP_RULES`)::

    suppressed or blocked address        nothing changes, nothing is due
    new address                          the person, pending on every list asked for
    known person, list active            unchanged
    known person, list pending           pending still: signed up again, mailed again (re-send limits)
    known person, list left              pending again
    known person, list not theirs        pending
    nobody has confirmed the person yet  the newest sign-up's name and language win

An import (`import_rules`) differs only where its documentation says so, as options:

    store wins            a known person keeps their name and language
    no resubscribe        a person who has left any list is not signed up by an import
    no repeat             a list already pending is left as it is (a re-run changes nothing)
    confirmed + note      subscriptions are active at once (pending ones activated), logged as
                          IMPORTED with the consent note; no confirmation mail

A confirmation mail is due for the pending lists when the re-send limits allow
(`confirmation_allowed`: one per RESEND_INTERVAL, RESEND_MAX per RESEND_WINDOW).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from ..addresses import clean_text, has_control, normalise_address
from ..errors import InvalidField, UnknownList
from ..statuses import Channel, SubscriberStatus, SubscriptionStatus
from ..texts import N_, Text

__all__ = [
    "RESEND_INTERVAL",
    "RESEND_WINDOW",
    "RESEND_MAX",
    "ConsentContext",
    "ConfirmationDue",
    "Outcome",
    "SubscribeRules",
    "SIGNUP_RULES",
    "import_rules",
    "Plan",
    "validate_signup",
    "plan_subscription",
    "confirmation_allowed",
]

#: A pending person gets at most one confirmation mail per RESEND_INTERVAL and RESEND_MAX per RESEND_WINDOW.
RESEND_INTERVAL = timedelta(minutes=10)
RESEND_WINDOW = timedelta(days=7)
RESEND_MAX = 3


@dataclass(frozen=True)
class ConsentContext:
    """Who asked, how and where: stored with every consent event."""

    channel: Channel
    ip: str | None = None
    user_agent: str | None = None
    #: The form or source ("website-footer", "import:members.csv", "cli").
    source: str | None = None
    consent_version: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ConfirmationDue:
    """A confirmation mail should be sent to this person now."""

    subscriber_key: str
    email: str
    name: str
    language: str
    list_slugs: tuple[str, ...]
    #: The names of those lists, in the same order (for the mail; empty when not known).
    list_names: tuple[str, ...] = ()
    #: The person's row id, when the caller knows it (saves a look-up when queueing the mail).
    subscriber_id: int | None = None


class Outcome(str, enum.Enum):
    """What a request did to the store (an import counts its rows by these)."""

    #: A person or a subscription was added, made pending again or activated.
    CHANGED = "changed"
    #: The person already had every list asked for (or nothing could change).
    ALREADY_THERE = "already_there"
    #: The address is suppressed, or the person blocked: never subscribed.
    SUPPRESSED = "suppressed"
    #: The person has left a list, and these rules do not sign them up again.
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True)
class SubscribeRules:
    """How a request is applied; the defaults are a sign-up's (see the module docstring)."""

    #: Subscriptions are active at once, logged as IMPORTED with `consent_note`; no mail.
    confirmed: bool = False
    consent_note: str | None = None
    #: A person who has left any list may be signed up again.
    resubscribe: bool = True
    #: A list already pending is signed up again (logged, and mailed within the re-send limits).
    repeat_pending: bool = True
    #: Until the person has confirmed something, the newest request's name and language win.
    newest_details_win: bool = True
    #: Attribute values replace those stored (staff); else they only fill in missing ones (a form).
    overwrite_attributes: bool = False


SIGNUP_RULES = SubscribeRules()


def import_rules(*, confirmed: bool = False, consent_note: str | None = None) -> SubscribeRules:
    """The rules of an import: the store wins, no resubscription, no repeat; optionally confirmed."""
    return SubscribeRules(confirmed=confirmed, consent_note=consent_note, resubscribe=False, repeat_pending=False,
                          newest_details_win=False, overwrite_attributes=True)


class KnownPerson(Protocol):
    """What the planner reads of a person the store knows."""

    name: str
    language: str
    status: SubscriberStatus


class Plan(NamedTuple):
    """What one request does. List ids are in the order the request named the lists."""

    outcome: Outcome
    #: (name, language) to write: a new person's, or a known one's new details; None: unchanged.
    details: tuple[str, str] | None = None
    #: New subscriptions (pending, or active when confirmed).
    add: tuple[int, ...] = ()
    #: Subscriptions left earlier, pending again.
    repend: tuple[int, ...] = ()
    #: Pending subscriptions made active (confirmed rules).
    activate: tuple[int, ...] = ()
    #: Lists with a consent event: SIGNUP, or IMPORTED when confirmed.
    logged: tuple[int, ...] = ()
    #: The lists a confirmation mail asks for, before the re-send limits; () when no mail.
    mail: tuple[int, ...] = ()


_NOTHING = {outcome: Plan(outcome) for outcome in Outcome}


def validate_signup(email: str, name: str, language: str | None, list_slugs: Iterable[str], *,
                    languages: tuple[str, ...], check_deliverability: bool = False
                    ) -> tuple[str, str, str | None, list[str]]:
    """The fields of a sign-up, checked and normalised: (address, name, language, list slugs).

    Raises InvalidAddress or InvalidField (UnknownList for a slug with control characters, which
    no list has); looks nothing up (the lists are checked by the caller).
    """
    address = normalise_address(email, check_deliverability=check_deliverability)
    name = clean_text("name", name)
    if language is not None:
        language = language.strip().lower()
    if language is not None and language not in languages:
        raise InvalidField("language", Text.of(N_("choose one of %(choices)s"), choices=", ".join(languages)))
    slugs = list(dict.fromkeys(s.strip() for s in list_slugs if s and s.strip()))
    if not slugs:
        raise InvalidField("lists", Text(N_("choose at least one list")))
    for slug in slugs:
        if has_control(slug):  # no list has such a slug; the store is not even asked
            raise UnknownList(slug)
    return address, name, language, slugs


def plan_subscription(wanted: Sequence[int], person: KnownPerson | None,
                      subscriptions: Mapping[int, SubscriptionStatus], *, suppressed: bool, name: str,
                      language: str | None, default_language: str, rules: SubscribeRules = SIGNUP_RULES) -> Plan:
    """What a request for the lists `wanted` (ids) does; see the module docstring for the rules.

    `person` is who the store knows by the address (None: nobody), `subscriptions` their
    subscriptions by list id; `language` None means "not said" (a new person gets
    `default_language`). The re-send limits are the caller's (`confirmation_allowed`).
    """
    wanted = tuple(wanted)
    if suppressed or (person is not None and person.status is not SubscriberStatus.ACTIVE):
        return _NOTHING[Outcome.SUPPRESSED]
    if person is None:  # the common case of an import: positional, the cheapest call
        return Plan(Outcome.CHANGED, (name, language or default_language), wanted, (), (), wanted,
                    () if rules.confirmed else wanted)
    confirmed = rules.confirmed
    if not rules.resubscribe and SubscriptionStatus.UNSUBSCRIBED in subscriptions.values():
        would_change = any(subscriptions.get(lid) in (None, SubscriptionStatus.UNSUBSCRIBED)
                           or (confirmed and subscriptions[lid] is SubscriptionStatus.PENDING) for lid in wanted)
        return _NOTHING[Outcome.UNSUBSCRIBED if would_change else Outcome.ALREADY_THERE]
    add, repend, again = [], [], []
    for lid in wanted:
        status = subscriptions.get(lid)
        if status is None:
            add.append(lid)
        elif status is SubscriptionStatus.UNSUBSCRIBED:
            repend.append(lid)
        elif status is SubscriptionStatus.PENDING and (confirmed or rules.repeat_pending):
            again.append(lid)
    activate = tuple(again) if confirmed else ()
    if not (add or repend or again):
        return _NOTHING[Outcome.ALREADY_THERE]
    changed = set(add) | set(repend) | set(again)
    logged = tuple(lid for lid in wanted if lid in changed)
    details = None
    if rules.newest_details_win and SubscriptionStatus.ACTIVE not in subscriptions.values():
        details = (name or person.name, language or person.language)
    return Plan(Outcome.CHANGED, details, add=tuple(add), repend=tuple(repend), activate=activate, logged=logged,
                mail=() if confirmed else logged)


def confirmation_allowed(sent: Iterable[datetime], now: datetime) -> bool:
    """Whether one more confirmation mail may go out `now`, given when the earlier ones went
    (those within RESEND_WINDOW matter): at most one per RESEND_INTERVAL, RESEND_MAX per window."""
    recent = [at for at in sent if at > now - RESEND_WINDOW]
    return len(recent) < RESEND_MAX and not any(at > now - RESEND_INTERVAL for at in recent)
