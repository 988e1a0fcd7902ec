"""Mailing lists: create, find, describe."""

from __future__ import annotations

import re
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..addresses import clean_text
from ..config import LANGUAGES
from ..errors import InvalidField, UnknownList
from ..statuses import SubscriptionStatus
from ..store import MailingList, Subscriber, Subscription

__all__ = ["ListSummary", "create_list", "get_list", "get_lists", "all_lists", "summarise_lists", "languages_in_use"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class ListSummary(NamedTuple):
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
    if session.scalar(select(MailingList).where(MailingList.slug == slug)):
        raise InvalidField("slug", f"a list {slug!r} exists already")
    mailing_list = MailingList(
        slug=slug,
        name=name,
        description=clean_text("description", description, max_length=2000),
        languages=langs,
        public=public,
        created_at=now,
    )
    session.add(mailing_list)
    session.flush()
    return mailing_list


def get_list(session: Session, slug: str) -> MailingList:
    """The list with this slug; raises UnknownList."""
    found = session.scalar(select(MailingList).where(MailingList.slug == slug))
    if found is None:
        raise UnknownList(slug)
    return found


def get_lists(session: Session, slugs: list[str]) -> list[MailingList]:
    """The lists with these slugs, in the order given, in one query; raises UnknownList."""
    found = {m.slug: m for m in session.scalars(select(MailingList).where(MailingList.slug.in_(slugs)))}
    for slug in slugs:
        if slug not in found:
            raise UnknownList(slug)
    return [found[slug] for slug in slugs]


def all_lists(session: Session, *, public_only: bool = False) -> list[MailingList]:
    query = select(MailingList).order_by(MailingList.slug)
    if public_only:
        query = query.where(MailingList.public.is_(True))
    return list(session.scalars(query))


def summarise_lists(session: Session) -> list[ListSummary]:
    """Every list with its subscription counts per status."""
    rows = session.execute(
        select(Subscription.list_id, Subscription.status, func.count()).group_by(
            Subscription.list_id, Subscription.status
        )
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for list_id, status, n in rows:
        counts.setdefault(list_id, {})[status.value] = n
    return [
        ListSummary(
            m.slug,
            m.name,
            m.description,
            list(m.languages),
            m.public,
            {s.value: counts.get(m.id, {}).get(s.value, 0) for s in SubscriptionStatus},
        )
        for m in all_lists(session)
    ]


def languages_in_use(session: Session, slug: str) -> dict[str, int]:
    """How many active subscribers of the list read each language, most readers first.

    Raises UnknownList.
    """
    mailing_list = get_list(session, slug)
    rows = session.execute(
        select(Subscriber.language, func.count())
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(Subscription.list_id == mailing_list.id, Subscription.status == SubscriptionStatus.ACTIVE)
        .group_by(Subscriber.language)
    ).all()
    return dict(sorted(((language, n) for language, n in rows), key=lambda item: -item[1]))
