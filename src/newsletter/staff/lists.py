"""Lists and suppressions as staff see and change them, each change audited.

Lists: their counts, names and descriptions per language; created and edited by owners
(`people.lists`). Suppressions: listed (with the address when a person still has it, else only
its hash) and lifted with a reason (`people.suppressions.lift`: the address may opt in again;
nothing is mailed until it confirms).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from ..installation import Newsletter
from ..people import lists as people_lists
from ..people import suppressions
from ..people.suppressions import Lifted, SuppressionLine
from ..statuses import SubscriptionStatus, SuppressionReason
from . import audit, dashboard
from .audit import Actor
from .directory import staff_context
from .roles import Action

__all__ = ["ListLine", "ListsPage", "SuppressionsPage", "lists_page", "create_list", "edit_list", "suppressions_page",
           "lift_suppression", "SUPPRESSIONS_SHOWN"]

SUPPRESSIONS_SHOWN = 500


@dataclass(frozen=True)
class ListLine:
    """A list as its page shows it."""

    slug: str
    name: str
    description: str
    languages: tuple[str, ...]
    public: bool
    #: Subscription status value: count.
    counts: dict[str, int]
    #: {"fr": {"name": …, "description": …}}
    translations: dict[str, dict[str, str]]
    created_at: datetime


class ListsPage(NamedTuple):
    lists: tuple[ListLine, ...]
    #: When the counts were read (they are the dashboard's: reused for `dashboard.FRESH_FOR`).
    counted_at: datetime


def lists_page(newsletter: Newsletter) -> ListsPage:
    """Every list with its counts and translations, by slug, and when the counts were read."""
    with newsletter.store.reading() as session:
        counts, counted_at = dashboard.list_counts(newsletter, session)
        return ListsPage(tuple(ListLine(m.slug, m.name, m.description, tuple(m.languages), m.public,
                                        {s.value: counts.get(m.id, {}).get(s, 0) for s in SubscriptionStatus},
                                        dict(m.translations or {}), m.created_at)
                               for m in people_lists.all_lists(session)), counted_at)


def create_list(newsletter: Newsletter, actor: Actor, slug: str, name: str, *, description: str = "",
                languages: list[str] | tuple[str, ...] = ("en",), public: bool = True) -> str:
    """Create a list; returns its slug. Raises InvalidField."""
    now = newsletter.clock()
    with newsletter.store.session() as session:
        created = people_lists.create_list(session, slug.strip().lower(), name, description=description,
                                           languages=languages, public=public, now=now)
        audit.record(session, actor, Action.MANAGE_LISTS, created.slug,
                     f"created: languages={','.join(created.languages)} public={created.public}", now=now)
        return created.slug


def edit_list(newsletter: Newsletter, actor: Actor, slug: str, *, name: str, description: str,
              languages: list[str] | tuple[str, ...], public: bool,
              translations: dict[str, dict[str, str]] | None = None) -> str:
    """Change a list (see `people.lists.edit_list`); returns its slug. Raises UnknownList, InvalidField."""
    now = newsletter.clock()
    with newsletter.store.session() as session:
        edited = people_lists.edit_list(session, slug, name=name, description=description, languages=languages,
                                        public=public, translations=translations, now=now)
        audit.record(session, actor, Action.MANAGE_LISTS, edited.slug,
                     f"edited: languages={','.join(edited.languages)} public={edited.public} "
                     f"translated={','.join(sorted(edited.translations or {})) or '-'}", now=now)
        return edited.slug


@dataclass(frozen=True)
class SuppressionsPage:
    lines: tuple[SuppressionLine, ...]
    #: Reason value: how many there are in all.
    counts: dict[str, int]


def suppressions_page(newsletter: Newsletter, reason: SuppressionReason | None = None) -> SuppressionsPage:
    """The newest SUPPRESSIONS_SHOWN suppressions (of this reason), and the counts by reason."""
    return SuppressionsPage(tuple(suppressions.list_suppressions(newsletter, reason=reason, limit=SUPPRESSIONS_SHOWN)),
                            suppressions.count_suppressions(newsletter))


def lift_suppression(newsletter: Newsletter, actor: Actor, email: str, why: str) -> Lifted:
    """Lift an address's suppression, saying why; the consent log and the audit trail name who.

    Raises InvalidField (no reason), NotSuppressed."""
    lifted = suppressions.lift(newsletter, email, why, staff_context(actor))
    audit.note(newsletter, actor, Action.LIFT_SUPPRESSION, lifted.address, f"reason was {lifted.reason}: {why}")
    return lifted
