"""The optional attribute fields of the sign-up form and the preferences page.

Which attributes appear is the configuration's (`signup = true`, `preferences = true`); each is
posted as `attr_<name>` (or, in a JSON sign-up, inside an `"attributes"` object) and checked by
the library like any other value. Countries are offered by name in the page's language (Babel's
territory names), their ISO codes as values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from babel import Locale

from ..attributes import AttributeSpec, AttributeType, country_codes, country_name

__all__ = ["AttributeField", "attribute_fields", "posted_attributes", "PREFIX"]

PREFIX = "attr_"


class AttributeField(NamedTuple):
    """One field as a template draws it."""

    name: str
    label: str
    #: "text", "number", "date", "select" or "yesno"
    widget: str
    #: (value, label) pairs for a select
    options: tuple[tuple[str, str], ...]
    value: str


@lru_cache(maxsize=8)
def _countries(language: str) -> tuple[tuple[str, str], ...]:
    names = Locale.parse(language).territories
    return tuple(sorted(((code, names.get(code, country_name(code))) for code in country_codes()),
                        key=lambda pair: pair[1].casefold()))


def _widget(spec: AttributeSpec, language: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    if spec.type is AttributeType.COUNTRY:
        return "select", _countries(language)
    if spec.type is AttributeType.CHOICE:
        return "select", tuple((c, c) for c in spec.choices)
    if spec.type is AttributeType.BOOLEAN:
        return "yesno", ()
    return {AttributeType.INTEGER: "number", AttributeType.DATE: "date"}.get(spec.type, "text"), ()


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def attribute_fields(specs: Iterable[AttributeSpec], language: str,
                     values: Mapping[str, Any] | None = None) -> list[AttributeField]:
    """The fields for `specs`, filled with `values` (stored or posted)."""
    values = values or {}
    return [AttributeField(s.name, s.label, *_widget(s, language), _shown(values.get(s.name))) for s in specs]


def posted_attributes(specs: Iterable[AttributeSpec], fields: Mapping[str, Any]) -> dict[str, str]:
    """The `attr_<name>` values posted for `specs` (a field not posted is left out)."""
    return {s.name: fields[PREFIX + s.name] for s in specs
            if isinstance(fields.get(PREFIX + s.name), str)}
