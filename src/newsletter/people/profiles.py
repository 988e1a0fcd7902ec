"""A person's attributes: the declared, typed facts about them (organisation, country, role…).

Values are checked by `newsletter.attributes` before they reach here. Two ways to write them:

- `overwrite=True` (staff: an import, the CLI, the API; the person on their preferences page):
  each value given replaces the one stored; None removes it.
- `overwrite=False` (a sign-up form, which anyone can post for any address): values fill in only
  attributes the person does not have yet; nothing stored is changed or removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ..attributes import check_attributes
from ..errors import UnknownList, UnknownSubscriber
from ..statuses import SubscriptionStatus
from ..store import people as people_store
from ..store import profiles as stored
from ..store.profiles import ExportLine, PersonLine

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["ExportLine", "PersonLine", "search_people", "merge_attributes", "merged", "attributes_of", "set_attributes", "change_note", "export_lines",
           "export_header"]


def merged(current: Mapping[str, Any], changes: Mapping[str, Any], *, overwrite: bool) -> dict[str, Any]:
    """`current` with `changes` applied under the rule of `overwrite` (see the module docstring)."""
    result = dict(current)
    for name, value in changes.items():
        if overwrite:
            if value is None:
                result.pop(name, None)
            else:
                result[name] = value
        elif value is not None and name not in result:
            result[name] = value
    return result


def merge_attributes(session: Session, changes: Sequence[tuple[int, Mapping[str, Any]]], *, overwrite: bool,
                     now: datetime) -> int:
    """Apply checked attribute values to people (subscriber id, {name: value}); a person named
    twice gets both, in order. Returns how many people changed."""
    changes = [(sid, values) for sid, values in changes if values]
    if not changes:
        return 0
    current = stored.attributes_by_id(session, [sid for sid, _ in changes])
    after = {sid: dict(attrs) for sid, attrs in current.items()}
    for sid, values in changes:
        if sid in after:
            after[sid] = merged(after[sid], values, overwrite=overwrite)
    changed = [(sid, attrs) for sid, attrs in after.items() if attrs != current[sid]]
    stored.write_attributes(session, changed, now=now)
    return len(changed)


# -- units of work for the faces --------------------------------------------------------------

def _person_id(session: Session, email: str) -> int:
    found = people_store.find_subscriber(session, email.strip().lower())
    if found is None:
        raise UnknownSubscriber(email)
    return found.id


def attributes_of(newsletter: Newsletter, email: str) -> dict[str, Any]:
    """The person's attributes. Raises UnknownSubscriber."""
    with newsletter.store.reading() as session:
        sid = _person_id(session, email)
        return stored.attributes_by_id(session, [sid]).get(sid, {})


def _shown(value: Any) -> str:
    return "yes" if value is True else "no" if value is False else str(value)


def change_note(before: Mapping[str, Any], after: Mapping[str, Any], order: Sequence[str] = ()) -> str | None:
    """What changed between two sets of attributes, as the consent log says it
    ("attributes: country=SN (was CI); role removed (was press)"), in the `order` of the
    declared attributes (others after), or None when nothing did."""
    said = []
    for name in dict.fromkeys([*order, *before, *after]):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name not in after:
            said.append(f"{name} removed (was {_shown(old)})")
        elif name in before:
            said.append(f"{name}={_shown(new)} (was {_shown(old)})")
        else:
            said.append(f"{name}={_shown(new)}")
    return "attributes: " + "; ".join(said) if said else None


def set_attributes(newsletter: Newsletter, email: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Set declared attributes of a person; an empty value removes one. Returns all of them
    after. Raises UnknownSubscriber, InvalidField (nothing changed). Writes no consent-log
    line: every face (CLI, API, workspace) changes attributes with
    `subscriptions.change_attributes`, which does; this is for data set up in bulk."""
    checked = check_attributes(newsletter.config.attributes, values)
    with newsletter.store.session() as session:
        sid = _person_id(session, email)
        merge_attributes(session, [(sid, checked)], overwrite=True, now=newsletter.clock())
        return stored.attributes_by_id(session, [sid]).get(sid, {})


def search_people(newsletter: Newsletter, text: str = "", *, limit: int = 50) -> list[PersonLine]:
    """People whose address or name holds `text` (any case; "" finds everyone), by address,
    at most `limit` (1 to 1000)."""
    with newsletter.store.reading() as session:
        return stored.search_people(session, text.strip(), limit=max(1, min(limit, 1000)))


def export_header(newsletter: Newsletter) -> tuple[str, ...]:
    """The CSV export's columns: email, name, language, list, status, then each declared attribute."""
    return ("email", "name", "language", "list", "status", *(a.name for a in newsletter.config.attributes))


def export_lines(newsletter: Newsletter, *, list_slug: str | None = None,
                 status: SubscriptionStatus | None = None) -> list[tuple]:
    """Subscriptions as rows of `export_header`'s columns (an attribute not set is "").
    Raises UnknownList."""
    names = [a.name for a in newsletter.config.attributes]
    with newsletter.store.reading() as session:
        list_id = None
        if list_slug:
            found = people_store.find_list(session, list_slug)
            if found is None:
                raise UnknownList(list_slug)
            list_id = found.id
        lines = stored.export_lines(session, list_id=list_id, status=status)
    return [(*line[:5], *(_cell(line.attributes.get(n)) for n in names)) for line in lines]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
