"""The people pages' use cases: find people, see one, and act on them as a staff member.

Each function is one unit of work. Reading takes the installation; acting takes the staff
`Actor` too, and then writes the consent log (channel ADMIN, source "staff:<address>", the
staff member's IP) and the audit trail in the same transaction. People are named by their
random key (the URL's reference), never their row id. Erasing keeps no address anywhere: its
audit line names the address's hash, as the suppression list does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from ..addresses import address_hash
from ..attributes import check_value
from ..errors import InvalidField, UnknownList, UnknownSubscriber
from ..installation import Newsletter
from ..people import consent, lists, profiles, signups
from ..people.export import PersonRecord, record_of
from ..people.rules import ConsentContext
from ..statuses import Channel, SubscriptionStatus
from ..store import directory as directory_store
from ..store import people as people_store
from ..texts import N_, Text
from . import audit
from .audit import Actor
from .roles import Action

__all__ = ["PersonLine", "SearchPage", "PersonPage", "ListOption", "search", "person_page", "edit_person",
           "AttributeEdit", "edit_attributes",
           "add_to_lists", "unsubscribe", "erase", "export", "staff_context", "list_options", "PAGE_SIZE"]

PAGE_SIZE = 50


class PersonLine(NamedTuple):
    """A person in the search results."""

    key: str
    email: str
    name: str
    language: str
    status: str
    created_at: datetime
    #: (list slug, subscription status) pairs.
    lists: tuple[tuple[str, str], ...]


class ListOption(NamedTuple):
    slug: str
    name: str
    #: The person's standing on it ("" when they have none, or for no one person).
    status: str = ""


@dataclass(frozen=True)
class SearchPage:
    people: tuple[PersonLine, ...]
    #: How many match, counted up to `store.directory.COUNT_CAP` (or through this page).
    total: int
    offset: int
    limit: int
    #: Every list, for the search form.
    lists: tuple[ListOption, ...] = ()
    #: More than `total` match (the count stopped there).
    more: bool = False


@dataclass(frozen=True)
class PersonPage:
    """One person: everything held about them (the issues they received too), the lists there are."""

    key: str
    record: PersonRecord
    lists: tuple[ListOption, ...]


def staff_context(actor: Actor, user_agent: str | None = None) -> ConsentContext:
    """How a staff member's change is written in the consent log: who, from where."""
    return ConsentContext(channel=Channel.ADMIN, ip=actor.ip, user_agent=user_agent, source=actor.consent_source)


def _subscriber(session: Session, key: str):
    subscriber = people_store.subscriber_by_key(session, key) if key else None
    if subscriber is None:
        raise UnknownSubscriber(key)
    return subscriber


def search(newsletter: Newsletter, text: str = "", *, list_slug: str | None = None,
           status: SubscriptionStatus | None = None, offset: int = 0, limit: int = PAGE_SIZE) -> SearchPage:
    """People whose address or name contains `text` (text with an "@": whose address begins
    with it), on a list in a status when given, by address; the matches counted up to
    `store.directory.COUNT_CAP` (`more` says there are more).

    Raises UnknownList."""
    offset, limit = max(0, offset), max(1, min(limit, 200))
    with newsletter.store.reading() as session:
        list_id = lists.get_list(session, list_slug).id if list_slug else None
        rows, total, more = directory_store.search_people(session, text[:320], list_id=list_id, status=status,
                                                          limit=limit, offset=offset)
        subs = directory_store.subscriptions_of(session, [r.id for r in rows])
        people = tuple(PersonLine(r.key, r.email, r.name, r.language, r.status.value, r.created_at,
                                  tuple((slug, s.value) for slug, s in subs[r.id])) for r in rows)
        options = tuple(ListOption(slug, name) for slug, name in people_store.list_names(session))
        return SearchPage(people, total, offset, limit, options, more)


def list_options(newsletter: Newsletter) -> tuple[ListOption, ...]:
    """Every list (for a form that picks some)."""
    with newsletter.store.reading() as session:
        return tuple(ListOption(slug, name) for slug, name in people_store.list_names(session))


def person_page(newsletter: Newsletter, key: str) -> PersonPage:
    """Everything about the person with this key. Raises UnknownSubscriber."""
    with newsletter.store.reading() as session:
        subscriber = _subscriber(session, key)
        record = record_of(session, subscriber, with_bounces=True)
        theirs = {s.list: s.status for s in record.subscriptions}
        options = tuple(ListOption(slug, name, theirs.get(slug, "")) for slug, name in people_store.list_names(session))
        return PersonPage(key, record, options)


def edit_person(newsletter: Newsletter, actor: Actor, key: str, *, name: str, language: str) -> list[str]:
    """Change a person's name and language; returns what changed ("name", "language").

    Raises UnknownSubscriber, InvalidField (nothing changed then)."""
    now = newsletter.clock()
    with newsletter.store.session() as session:
        subscriber = _subscriber(session, key)
        changes = consent.set_preferences(session, subscriber, staff_context(actor), now=now,
                                          languages=newsletter.config.languages, language=language, name=name)
        changed = [what for what, value in (("name", changes.name), ("language", changes.language)) if value]
        if changed:
            audit.record(session, actor, Action.EDIT_PERSON, subscriber.email,
                         ", ".join(f"{k}={v}" for k, v in (("language", changes.language),) if v)
                         or "name", now=now)
        return changed


@dataclass(frozen=True)
class AttributeEdit:
    """What an attribute form did: the attributes changed, or — when a value was refused — the
    reason per refused field (a Text, shown translated), with nothing written (`values` holds
    what was posted, to show again)."""

    changed: tuple[str, ...] = ()
    problems: Mapping[str, Text] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)


def edit_attributes(newsletter: Newsletter, actor: Actor, key: str, values: Mapping[str, Any]) -> AttributeEdit:
    """Set the declared attributes posted in `values` (an empty value removes one), each checked
    as `attributes.check_value` checks it. Every refused value is reported, by attribute, and
    then nothing is changed. A change is written to the person's consent log (who, from
    where, what was and is) and to the audit trail. Raises UnknownSubscriber, InvalidField (an
    attribute that is not declared)."""
    specs = {s.name: s for s in newsletter.config.attributes}
    checked: dict[str, Any] = {}
    problems: dict[str, Text] = {}
    for name, raw in values.items():
        spec = specs.get(name)
        if spec is None:
            raise InvalidField(name, Text.of(N_("there is no attribute %(name)s (known: %(known)s)"), name=repr(name),
                                             known=", ".join(specs) or Text(N_("none are declared"))))
        try:
            checked[name] = check_value(spec, raw)
        except InvalidField as exc:
            problems[name] = exc.reason_said
    if problems:
        return AttributeEdit((), problems, dict(values))
    now = newsletter.clock()
    with newsletter.store.session() as session:
        subscriber = _subscriber(session, key)
        before = dict(subscriber.attributes or {})
        profiles.merge_attributes(session, [(subscriber.id, checked)], overwrite=True, now=now)
        after = profiles.merged(before, checked, overwrite=True)
        changed = tuple(n for n in dict.fromkeys([*specs, *before, *after]) if before.get(n) != after.get(n))
        note = profiles.change_note(before, after, list(specs))
        if changed and note is not None:
            consent.log_attribute_change(session, subscriber, staff_context(actor), now=now, note=note)
            audit.record(session, actor, Action.EDIT_PERSON, subscriber.email, "attributes: " + ", ".join(changed),
                         now=now)
        return AttributeEdit(changed, {}, {})


def add_to_lists(newsletter: Newsletter, actor: Actor, key: str, list_slugs: list[str]) -> list[str]:
    """Sign a person up for more lists, as a sign-up: pending, with a confirmation mail queued,
    until they confirm (staff cannot subscribe anybody). Returns the slugs asked for.

    Raises UnknownSubscriber, UnknownList."""
    now = newsletter.clock()
    slugs = [s for s in dict.fromkeys(list_slugs) if s]
    if not slugs:
        return []
    with newsletter.store.session() as session:
        subscriber = _subscriber(session, key)
        found = people_store.lists_by_slug(session, slugs)
        for slug in slugs:
            if slug not in found:
                raise UnknownList(slug)
        request = signups.SignupRequest(subscriber.email, subscriber.name, subscriber.language, tuple(slugs),
                                        staff_context(actor))
        [outcome] = signups.sign_up_many(session, [request], now=now,
                                         languages=newsletter.config.languages_by_preference,
                                         check_deliverability=newsletter.config.check_deliverability)
        if isinstance(outcome, Exception):
            raise outcome
        audit.record(session, actor, Action.EDIT_PERSON, subscriber.email, "asked to confirm: " + ", ".join(slugs),
                     now=now)
        return slugs


def unsubscribe(newsletter: Newsletter, actor: Actor, key: str, list_slug: str | None = None) -> list[str]:
    """Unsubscribe a person from one list or every list, at once; returns the slugs left.

    Raises UnknownSubscriber, UnknownList."""
    now = newsletter.clock()
    with newsletter.store.session() as session:
        subscriber = _subscriber(session, key)
        if list_slug:
            lists.get_list(session, list_slug)
        left = consent.unsubscribe(session, subscriber, staff_context(actor), now=now, list_slug=list_slug or None)
        audit.record(session, actor, Action.UNSUBSCRIBE_PERSON, subscriber.email,
                     "lists=" + (",".join(left) or "none"), now=now)
        return left


def erase(newsletter: Newsletter, actor: Actor, key: str, *, confirmation: str) -> str:
    """Erase a person: their data and consent log go, their address stays suppressed as a hash.
    `confirmation` must be the person's address, typed again. Returns the hash (the audit
    line's target). Raises UnknownSubscriber; InvalidField when the confirmation differs."""
    now = newsletter.clock()
    with newsletter.store.session() as session:
        subscriber = _subscriber(session, key)
        if confirmation.strip().lower() != subscriber.email.lower():
            raise InvalidField("confirmation", Text(N_("type the person's address to erase them")))
        digest = "sha256:" + address_hash(subscriber.email)
        consent.erase(session, subscriber.email, now=now)
        audit.record(session, actor, Action.ERASE_PERSON, digest, "data and consent log erased; address suppressed",
                     now=now)
        return digest


def export(newsletter: Newsletter, actor: Actor, key: str) -> PersonRecord:
    """Everything held about a person (with bounces), for a download; the export is audited.

    Raises UnknownSubscriber."""
    now = newsletter.clock()
    with newsletter.store.session() as session:
        subscriber = _subscriber(session, key)
        record = record_of(session, subscriber, with_bounces=True)
        audit.record(session, actor, Action.EXPORT_PERSON, subscriber.email, now=now)
        return record
