"""Mailing lists: create, find, describe, rename, show or hide, archive, delete (domain functions
over a session; the statements are `store.people`'s).

A list has a name and a description of its own, and may have them in other languages
(`translations`: {"fr": {"name": …, "description": …}}); `name_in` gives what a reader of a
language sees, falling back to the list's own. An archived list keeps its subscriptions,
campaigns and consent log, but is offered to nobody, takes no new subscriber and is sent to
never (`get_list(…, open_only=True)` refuses it). Deleting a list deletes its subscriptions,
each ending with an UNSUBSCRIBED line in the person's consent log that names the list; the
list's row stays, archived and marked deleted, while its consent-log lines or campaigns name it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.orm import Session

from ..addresses import clean_text
from ..config import LANGUAGES
from ..errors import InvalidField, ListArchived, UnknownList
from ..statuses import Channel, ConsentKind, SubscriptionStatus
from ..store import MailingList
from ..store import people as people_store
from ..texts import N_, Text
from .names import name_in
from .rules import ConsentContext
from .signups import origin_of

__all__ = ["ListSummary", "ListDeleted", "name_in", "create_list", "get_list", "get_lists", "all_lists",
           "summarise_lists", "languages_in_use", "edit_list", "rename_list", "describe_list", "set_public", "archive_list",
           "delete_list"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class ListSummary(NamedTuple):
    """A list with its subscription counts per status (status value: count)."""

    slug: str
    name: str
    description: str
    languages: list[str]
    public: bool
    counts: dict[str, int]
    #: Names and descriptions in other languages: {language: {"name": …, "description": …}}.
    translations: dict[str, dict[str, str]] = {}
    archived_at: datetime | None = None


class ListDeleted(NamedTuple):
    """What deleting a list did: its subscriptions deleted, by status (status value: count)."""

    slug: str
    name: str
    subscriptions: dict[str, int]


def _language(language: str) -> str:
    language = language.strip().lower()
    if language not in LANGUAGES:
        raise InvalidField("language", Text.of(N_("choose one of %(choices)s"), choices=", ".join(LANGUAGES)))
    return language


def create_list(
    session: Session,
    slug: str,
    name: str,
    *,
    description: str = "",
    languages: list[str] | tuple[str, ...] = ("en",),
    public: bool = True,
    now: datetime,
) -> MailingList:
    """Create a list. Raises InvalidField for a bad slug, name or language, or a slug in use."""
    if not _SLUG.match(slug or ""):
        raise InvalidField("slug", Text(N_("use lower-case letters, digits and hyphens (e.g. asp-daily)")))
    name = clean_text("name", name)
    if not name:
        raise InvalidField("name", Text(N_("a list needs a name")))
    langs = [lang.strip() for lang in languages if lang.strip()]
    unknown = [lang for lang in langs if lang not in LANGUAGES]
    if unknown or not langs:
        raise InvalidField("languages", Text.of(N_("choose from %(choices)s"), choices=", ".join(LANGUAGES)))
    existing = people_store.find_list(session, slug)
    if existing is not None:
        if existing.deleted_at is None:
            raise InvalidField("slug", Text.of(N_("a list %(slug)s exists already"), slug=repr(slug)))
        raise InvalidField("slug", Text.of(N_("a list %(slug)s was deleted, and its consent log still names it: "
                                              "choose another slug"), slug=repr(slug)))
    return people_store.add_list(session, slug=slug, name=name,
                                 description=clean_text("description", description, max_length=2000),
                                 languages=langs, public=public, now=now)


def get_list(session: Session, slug: str, *, open_only: bool = False) -> MailingList:
    """The list with this slug; raises UnknownList (also for a deleted one) and, `open_only`,
    ListArchived for an archived one."""
    found = people_store.find_list(session, slug)
    if found is None or found.deleted_at is not None:
        raise UnknownList(slug, known=_known_slugs(session))
    if open_only and found.archived_at is not None:
        raise ListArchived(slug)
    return found


def get_lists(session: Session, slugs: list[str]) -> list[MailingList]:
    """The lists with these slugs, in the order given, in one query; raises UnknownList."""
    found = {m.slug: m for m in people_store.all_lists(session) if m.slug in set(slugs)}
    for slug in slugs:
        if slug not in found:
            raise UnknownList(slug, known=_known_slugs(session))
    return [found[slug] for slug in slugs]


def _known_slugs(session: Session) -> tuple[str, ...]:
    """The slugs of the lists there are (not deleted), for an UnknownList to name."""
    return tuple(m.slug for m in people_store.all_lists(session))


def all_lists(session: Session, *, public_only: bool = False, open_only: bool = False) -> list[MailingList]:
    """Every list (or every public one; or every one not archived), by slug."""
    found = people_store.all_lists(session, public_only=public_only)
    return [m for m in found if m.archived_at is None] if open_only or public_only else found


def summarise_lists(session: Session) -> list[ListSummary]:
    """Every list with its subscription counts per status."""
    counts = people_store.subscription_counts(session)
    return [
        ListSummary(
            m.slug,
            m.name,
            m.description,
            list(m.languages),
            m.public,
            {s.value: counts.get(m.id, {}).get(s, 0) for s in SubscriptionStatus},
            dict(m.translations or {}),
            m.archived_at,
        )
        for m in all_lists(session)
    ]


def languages_in_use(session: Session, slug: str) -> dict[str, int]:
    """How many active subscribers of the list read each language, most readers first.

    Raises UnknownList.
    """
    counts = people_store.reader_languages(session, get_list(session, slug).id)
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def edit_list(session: Session, slug: str, *, name: str, description: str, languages: list[str] | tuple[str, ...],
              public: bool, translations: dict[str, dict[str, str]] | None = None, now: datetime) -> MailingList:
    """Change a list's name, description, languages (in fallback order), whether the sign-up form
    offers it, and its name and description in other languages ({"fr": {"name", "description"}}).

    Raises UnknownList; InvalidField for a bad name, language or translation (nothing changes then).
    """
    found = get_list(session, slug)
    name = clean_text("name", name)
    if not name:
        raise InvalidField("name", Text(N_("a list needs a name")))
    langs = list(dict.fromkeys(lang.strip() for lang in languages if lang.strip()))
    if not langs or any(lang not in LANGUAGES for lang in langs):
        raise InvalidField("languages", Text.of(N_("choose from %(choices)s"), choices=", ".join(LANGUAGES)))
    cleaned: dict[str, dict[str, str]] = {}
    for lang, texts in (translations or {}).items():
        if lang not in LANGUAGES:
            raise InvalidField("translations", Text.of(N_("%(value)s is not one of %(languages)s"), value=repr(lang),
                                                       languages=", ".join(LANGUAGES)))
        entry = {"name": clean_text(f"name ({lang})", texts.get("name", "")),
                 "description": clean_text(f"description ({lang})", texts.get("description", ""), max_length=2000)}
        if entry["name"] or entry["description"]:
            cleaned[lang] = entry
    found.name, found.public, found.languages = name, bool(public), langs
    found.description = clean_text("description", description, max_length=2000)
    found.translations = cleaned
    session.flush()
    return found


def _translate(mailing_list: MailingList, language: str, field: str, value: str) -> None:
    translations = {lang: dict(t) for lang, t in (mailing_list.translations or {}).items()}
    entry = translations.setdefault(language, {})
    if value:
        entry[field] = value
    else:
        entry.pop(field, None)
    mailing_list.translations = {lang: t for lang, t in translations.items() if t}


def rename_list(session: Session, slug: str, name: str, *, language: str | None = None) -> MailingList:
    """Give the list a new name (in `language` only, when given). Raises UnknownList, InvalidField."""
    mailing_list = get_list(session, slug)
    name = clean_text("name", name)
    if language is None:
        if not name:
            raise InvalidField("name", Text(N_("a list needs a name")))
        mailing_list.name = name
    else:
        _translate(mailing_list, _language(language), "name", name)  # empty: the list's own name again
    session.flush()
    return mailing_list


def describe_list(session: Session, slug: str, description: str, *, language: str | None = None) -> MailingList:
    """Describe the list anew (in `language` only, when given). Raises UnknownList, InvalidField."""
    mailing_list = get_list(session, slug)
    description = clean_text("description", description, max_length=2000)
    if language is None:
        mailing_list.description = description
    else:
        _translate(mailing_list, _language(language), "description", description)
    session.flush()
    return mailing_list


def set_public(session: Session, slug: str, public: bool) -> MailingList:
    """Offer the list on the public sign-up form, or stop offering it. Raises UnknownList."""
    mailing_list = get_list(session, slug)
    mailing_list.public = public
    session.flush()
    return mailing_list


def archive_list(session: Session, slug: str, *, now: datetime | None) -> MailingList:
    """Archive the list `now` (None: bring it back). Its subscriptions stay as they are; an
    archived list is offered to nobody and sent to never. Raises UnknownList."""
    mailing_list = get_list(session, slug)
    mailing_list.archived_at = now
    session.flush()
    return mailing_list


def delete_list(session: Session, slug: str, ctx: ConsentContext | None = None, *, now: datetime) -> ListDeleted:
    """Delete the list's subscriptions and the list: each subscription not ended yet gets an
    UNSUBSCRIBED line in its person's consent log naming the list (the people stay, with their
    other lists). The list's row itself stays, archived and marked deleted, when consent-log
    lines or campaigns name it (the log is append-only); it is gone from every listing either way.
    Raises UnknownList."""
    mailing_list = get_list(session, slug)
    counts = {s.value: n for s, n in people_store.subscription_counts(session).get(mailing_list.id, {}).items()}
    ctx = ctx or ConsentContext(channel=Channel.ADMIN, source="cli")
    note = f"the list {slug} ({mailing_list.name}) was deleted"
    people_store.add_events(session, [
        dict(subscriber_id=sid, list_id=mailing_list.id, kind=ConsentKind.UNSUBSCRIBED, at=now, note=note,
             **origin_of(ctx)._asdict())
        for sid in people_store.subscribers_on(session, mailing_list.id, exclude=SubscriptionStatus.UNSUBSCRIBED)])
    people_store.delete_subscriptions(session, mailing_list.id)
    deleted = ListDeleted(slug, mailing_list.name, counts)
    if people_store.list_is_named(session, mailing_list.id):
        mailing_list.deleted_at = now
        mailing_list.archived_at = mailing_list.archived_at or now
        mailing_list.public = False
        session.flush()
    else:
        people_store.delete_list_row(session, mailing_list)
    return deleted
