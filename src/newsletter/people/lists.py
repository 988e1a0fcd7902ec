"""Mailing lists: create, find, describe (domain functions over a session; the statements are `store.people`'s)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.orm import Session

from ..addresses import clean_text
from ..config import LANGUAGES
from ..errors import InvalidField, UnknownList
from ..statuses import SubscriptionStatus
from ..store import MailingList
from ..store import people as people_store

__all__ = ["ListSummary", "create_list", "get_list", "get_lists", "all_lists", "summarise_lists", "languages_in_use", "edit_list"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class ListSummary(NamedTuple):
    """A list with its subscription counts per status (status value: count)."""

    slug: str
    name: str
    description: str
    languages: list[str]
    public: bool
    counts: dict[str, int]


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
        raise InvalidField("slug", "use lower-case letters, digits and hyphens (e.g. asp-daily)")
    name = clean_text("name", name)
    if not name:
        raise InvalidField("name", "a list needs a name")
    langs = [lang.strip() for lang in languages if lang.strip()]
    unknown = [lang for lang in langs if lang not in LANGUAGES]
    if unknown or not langs:
        raise InvalidField("languages", f"choose from {', '.join(LANGUAGES)}")
    if people_store.find_list(session, slug) is not None:
        raise InvalidField("slug", f"a list {slug!r} exists already")
    return people_store.add_list(session, slug=slug, name=name,
                                 description=clean_text("description", description, max_length=2000),
                                 languages=langs, public=public, now=now)


def get_list(session: Session, slug: str) -> MailingList:
    """The list with this slug; raises UnknownList."""
    found = people_store.find_list(session, slug)
    if found is None:
        raise UnknownList(slug)
    return found


def get_lists(session: Session, slugs: list[str]) -> list[MailingList]:
    """The lists with these slugs, in the order given, in one query; raises UnknownList."""
    found = {m.slug: m for m in people_store.all_lists(session) if m.slug in set(slugs)}
    for slug in slugs:
        if slug not in found:
            raise UnknownList(slug)
    return [found[slug] for slug in slugs]


def all_lists(session: Session, *, public_only: bool = False) -> list[MailingList]:
    """Every list (or every public one), by slug."""
    return people_store.all_lists(session, public_only=public_only)


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
        raise InvalidField("name", "a list needs a name")
    langs = list(dict.fromkeys(lang.strip() for lang in languages if lang.strip()))
    if not langs or any(lang not in LANGUAGES for lang in langs):
        raise InvalidField("languages", f"choose from {', '.join(LANGUAGES)}")
    cleaned: dict[str, dict[str, str]] = {}
    for lang, texts in (translations or {}).items():
        if lang not in LANGUAGES:
            raise InvalidField("translations", f"{lang!r} is not one of {', '.join(LANGUAGES)}")
        entry = {"name": clean_text(f"name ({lang})", texts.get("name", "")),
                 "description": clean_text(f"description ({lang})", texts.get("description", ""), max_length=2000)}
        if entry["name"] or entry["description"]:
            cleaned[lang] = entry
    found.name, found.public, found.languages = name, bool(public), langs
    found.description = clean_text("description", description, max_length=2000)
    found.translations = cleaned
    session.flush()
    return found
