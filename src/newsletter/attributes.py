"""Typed subscriber attributes: what the configuration declares, and the one check of a value.

An installation declares its attributes in `newsletter.toml`::

    [attributes.country]
    type = "country"            # text, choice, integer, boolean, date, country
    label = "Country"
    signup = true               # an optional field on the sign-up form
    preferences = true          # editable on the preferences page

    [attributes.role]
    type = "choice"
    choices = ["focal-point", "press", "staff"]

`parse_attribute_specs(table)` turns that table into `AttributeSpec`s (raising ConfigError);
`check_value(spec, raw)` turns what a person, a CSV cell or an API client gave into the stored
value (raising InvalidField naming the attribute). Stored values are JSON scalars: text and
choice as strings, integer as int, boolean as bool, date as "YYYY-MM-DD", country as the ISO 3166-1
alpha-2 code ("FR"), accepted as alpha-2, alpha-3 or the English name. Pure: no store, no I/O.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from .addresses import has_control
from .errors import ConfigError, InvalidField
from .texts import N_, Text

__all__ = [
    "AttributeType",
    "AttributeSpec",
    "parse_attribute_specs",
    "check_value",
    "check_attributes",
    "country_codes",
    "country_name",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: Names a subscriber already has as columns: an attribute may not take them.
RESERVED = frozenset({"email", "name", "language", "lists", "list", "status", "key", "id", "created_at",
                      "updated_at", "attributes"})
_TRUE = {"1", "true", "yes", "on", "y", "oui", "sí", "si"}
_FALSE = {"0", "false", "no", "off", "n", "non"}


class AttributeType(str, enum.Enum):
    TEXT = "text"
    CHOICE = "choice"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    DATE = "date"
    COUNTRY = "country"


@dataclass(frozen=True)
class AttributeSpec:
    """One declared attribute. Frozen and picklable (import workers check with it)."""

    name: str
    type: AttributeType
    label: str
    choices: tuple[str, ...] = ()
    #: integer bounds (inclusive), when given
    minimum: int | None = None
    maximum: int | None = None
    #: longest text accepted
    max_length: int = 200
    #: shown (optional) on the sign-up form / the preferences page
    signup: bool = False
    preferences: bool = False
    #: other CSV header spellings of this column ("organisation" besides "organization")
    columns: tuple[str, ...] = ()
    #: the member organisation a contact belongs to (what "reach" counts); at most one
    organisation: bool = False


_KEYS = {"type", "label", "choices", "min", "max", "max_length", "signup", "preferences", "columns", "organisation"}


def parse_attribute_specs(table: Mapping[str, Any]) -> tuple[AttributeSpec, ...]:
    """The `[attributes.*]` tables as specs, in the order written. Raises ConfigError."""
    if not isinstance(table, Mapping):
        raise ConfigError("attributes must be a table of tables, e.g. [attributes.country]", key="attributes")
    specs = []
    for name, body in table.items():
        where = f"attributes.{name}"
        if not _NAME.match(name) or name in RESERVED:
            raise ConfigError(f"{where}: an attribute name is lower-case letters, digits and _ "
                              f"(and not one of {', '.join(sorted(RESERVED))})", key="attributes")
        if not isinstance(body, Mapping):
            raise ConfigError(f"{where} must be a table with at least a type", key="attributes")
        unknown = set(body) - _KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                              f"(known: {', '.join(sorted(_KEYS))})", key="attributes")
        try:
            kind = AttributeType(body.get("type", ""))
        except ValueError:
            raise ConfigError(f"{where}: type must be one of {', '.join(t.value for t in AttributeType)}",
                              key="attributes") from None
        choices = body.get("choices", [])
        if not isinstance(choices, list) or not all(isinstance(c, str) and c.strip() for c in choices):
            raise ConfigError(f"{where}: choices must be a list of words", key="attributes")
        if kind is AttributeType.CHOICE and not choices:
            raise ConfigError(f"{where}: a choice attribute needs choices = [...]", key="attributes")
        columns = body.get("columns", [])
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise ConfigError(f"{where}: columns must be a list of header names", key="attributes")
        for key in ("min", "max", "max_length"):
            if key in body and (not isinstance(body[key], int) or isinstance(body[key], bool)):
                raise ConfigError(f"{where}: {key} must be a whole number", key="attributes")
        for key in ("signup", "preferences", "organisation"):
            if key in body and not isinstance(body[key], bool):
                raise ConfigError(f"{where}: {key} must be true or false", key="attributes")
        specs.append(AttributeSpec(
            name=name, type=kind, label=str(body.get("label") or name.replace("_", " ").capitalize()),
            choices=tuple(c.strip() for c in choices), minimum=body.get("min"), maximum=body.get("max"),
            max_length=body.get("max_length", 200), signup=body.get("signup", False),
            preferences=body.get("preferences", False), columns=tuple(columns),
            organisation=body.get("organisation", False)))
    if sum(s.organisation for s in specs) > 1:
        raise ConfigError("attributes: only one attribute can be the member organisation", key="attributes")
    return tuple(specs)


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    """Every ISO 3166-1 country: alpha-2 code -> English name."""
    import pycountry  # its tables take a moment to load: only when a country is checked

    return {c.alpha_2: c.name for c in pycountry.countries}


def country_codes() -> tuple[str, ...]:
    """Every ISO 3166-1 alpha-2 code, sorted."""
    return tuple(sorted(_countries()))


def country_name(code: str) -> str:
    """The English name of an alpha-2 code (the code itself when unknown)."""
    return _countries().get(code, code)


def _country(raw: str) -> str | None:
    text = raw.strip()
    if text.upper() in _countries():
        return text.upper()
    import pycountry

    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        return None


def check_value(spec: AttributeSpec, raw: Any) -> Any:
    """The stored form of `raw` for `spec`; None for an empty value (the attribute is removed).

    Accepts strings (a form, a CSV cell) and JSON values of the right kind (an API).
    Raises InvalidField(spec.name, reason).
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    kind = spec.type

    def refuse(reason: str | Text) -> InvalidField:
        return InvalidField(spec.name, reason)

    if kind is AttributeType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().casefold()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise refuse(Text.of(N_("%(value)s is not yes or no"), value=repr(raw)))
    if kind is AttributeType.INTEGER:
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise refuse(Text.of(N_("%(value)s is not a whole number"), value=repr(raw)))
        try:
            value = int(raw.strip()) if isinstance(raw, str) else raw
        except ValueError:
            raise refuse(Text.of(N_("%(value)s is not a whole number"), value=repr(raw))) from None
        if spec.minimum is not None and value < spec.minimum:
            raise refuse(Text.of(N_("%(value)s is less than %(minimum)s"), value=value, minimum=spec.minimum))
        if spec.maximum is not None and value > spec.maximum:
            raise refuse(Text.of(N_("%(value)s is more than %(maximum)s"), value=value, maximum=spec.maximum))
        return value
    if not isinstance(raw, str):
        raise refuse(Text.of(N_("%(value)s is not text"), value=repr(raw)))
    text = raw.strip()
    if kind is AttributeType.DATE:
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise refuse(Text.of(N_("%(value)s is not a date written YYYY-MM-DD"), value=repr(text))) from None
    if kind is AttributeType.COUNTRY:
        code = _country(text)
        if code is None:
            raise refuse(Text.of(N_("%(value)s is not an ISO 3166 country (write its two-letter code, e.g. FR)"),
                                 value=repr(text)))
        return code
    if kind is AttributeType.CHOICE:
        found = next((c for c in spec.choices if c.casefold() == text.casefold()), None)
        if found is None:
            raise refuse(Text.of(N_("%(value)s is not one of %(choices)s"), value=repr(text),
                                 choices=", ".join(spec.choices)))
        return found
    if len(text) > spec.max_length:
        raise refuse(Text.of(N_("longer than %(max)s characters"), max=spec.max_length))
    if has_control(text):  # C1, DEL and the line separators too: a terminal obeys them
        raise refuse(Text(N_("holds control characters")))
    return text


def check_attributes(specs: Iterable[AttributeSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """Every value of `values` checked against its spec: {name: stored value or None (remove)}.

    Raises InvalidField for an attribute that is not declared, or a value its spec refuses.
    """
    by_name = {s.name: s for s in specs}
    checked = {}
    for name, raw in values.items():
        spec = by_name.get(name)
        if spec is None:
            known = ", ".join(by_name) or Text(N_("none are declared"))
            raise InvalidField(name, Text.of(N_("there is no attribute %(name)s (known: %(known)s)"), name=repr(name),
                                             known=known))
        checked[name] = check_value(spec, raw)
    return checked
