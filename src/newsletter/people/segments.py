"""Segments: named, saved filters over lists, languages and attributes.

A segment is an expression of `newsletter.segment_language` ("list = asp-daily and country in
(SN, CI)"). `check_expression` reads it and checks it against this installation: every field is
`list`, `language` or a declared attribute; every list exists; every language is offered;
every attribute value is one its type accepts (written as the store keeps it: "Senegal"
becomes "SN"); `<`, `>` only for integers and dates. The checked tree (`Filter`) is what the
store compiles (`store.segments`) and what a send takes (`sending.launch.prepare_send`).

The segment keeps the expression as written; it is checked again each time it is used, so a
list or attribute removed since makes it fail clearly rather than match nobody silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ..attributes import AttributeSpec, AttributeType, check_value
from ..config import Config
from ..errors import InvalidField, SegmentError, UnknownList, UnknownSegment
from ..segment_language import And, Condition, Filter, IsSet, Node, Not, Or, parse_expression
from ..store import people as people_store
from ..store import segments as stored
from ..store.segments import LANGUAGE_FIELD, LIST_FIELD
from ..texts import N_, Text

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["SegmentInfo", "Audience", "check_expression", "segment_filter", "audience_of", "country_counts",
           "language_counts", "create_segment",
           "list_segments", "show_segment", "delete_segment", "COUNTRY_TYPES"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
#: Orderings make sense for these attribute types only.
_ORDERED = {AttributeType.INTEGER, AttributeType.DATE}
COUNTRY_TYPES = {AttributeType.COUNTRY}


@dataclass(frozen=True)
class SegmentInfo:
    name: str
    expression: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Audience:
    """Who a segment (of a list, when given) names now: how many, by language and by country."""

    segment: str
    expression: str
    list_slug: str | None
    total: int
    by_language: Mapping[str, int]
    #: ISO code -> people ("" for those without one); empty when no country attribute is declared
    by_country: Mapping[str, int]
    #: The first addresses, sorted (a sample to check the expression by)
    sample: tuple[str, ...] = ()


def _spec(config: Config, text: str, node: Condition | IsSet) -> AttributeSpec:
    spec = config.attribute(node.field)
    if spec is None:
        fields = ", ".join([LIST_FIELD, LANGUAGE_FIELD, *(a.name for a in config.attributes)])
        raise SegmentError(text, node.column or 1, Text.of(N_("there is no field %(field)s (fields: %(fields)s)"),
                                                          field=repr(node.field), fields=fields))
    return spec


def _checked(session: Session, config: Config, text: str, node: Node) -> Node:
    if isinstance(node, (And, Or)):
        return type(node)(tuple(_checked(session, config, text, item) for item in node.items))
    if isinstance(node, Not):
        return Not(_checked(session, config, text, node.item))
    if isinstance(node, IsSet):
        if node.field in (LIST_FIELD, LANGUAGE_FIELD):
            raise SegmentError(text, node.column or 1, Text.of(N_("%(quoted)s is always set; compare it instead "
                                                                  "(%(field)s = …)"), quoted=repr(node.field),
                                                               field=node.field))
        _spec(config, text, node)
        return node
    op, values = node.op, node.values
    if node.field in (LIST_FIELD, LANGUAGE_FIELD):
        if op not in ("=", "!=", "in", "not in"):
            raise SegmentError(text, node.column or 1, Text.of(N_("%(field)s takes =, !=, in and not in, not %(op)s"),
                                                               field=node.field, op=op))
        words = tuple(str(v) for v in values)
        if node.field == LIST_FIELD:
            known = people_store.lists_by_slug(session, set(words))
            missing = [w for w in words if w not in known]
            if missing:
                raise SegmentError(text, node.column or 1, Text.of(N_("there is no list %(slug)s"), slug=repr(missing[0])))
        else:
            unknown = [w for w in words if w not in config.languages]
            if unknown:
                raise SegmentError(text, node.column or 1, Text.of(N_("%(value)s is not one of the languages "
                                                                      "%(languages)s"), value=repr(unknown[0]),
                                                                   languages=", ".join(config.languages)))
        return Condition(node.field, op, words, node.column)
    spec = _spec(config, text, node)
    if op in ("<", "<=", ">", ">=") and spec.type not in _ORDERED:
        raise SegmentError(text, node.column or 1, Text.of(N_("%(field)s is %(type)s: compare it with =, != or in, "
                                                              "not %(op)s"), field=spec.name, type=spec.type.value,
                                                           op=op))
    if spec.type is AttributeType.BOOLEAN and op not in ("=", "!="):
        raise SegmentError(text, node.column or 1, Text.of(N_("%(field)s is yes or no: compare it with = or !="),
                                                           field=spec.name))
    stored_values = []
    for value in values:
        try:
            raw = value if spec.type in (AttributeType.INTEGER, AttributeType.BOOLEAN) else str(value)
            checked = check_value(spec, raw)
        except InvalidField as exc:
            raise SegmentError(text, node.column or 1, exc.said) from None
        if checked is None:
            raise SegmentError(text, node.column or 1, Text.of(N_("%(field)s: compare with a value, or write "
                                                                  "%(field)s is not set"), field=spec.name))
        stored_values.append(checked)
    return Condition(node.field, op, tuple(stored_values), node.column)


def check_expression(session: Session, config: Config, text: str) -> Filter:
    """The checked filter of `text` (see the module docstring). Raises SegmentError."""
    tree = _checked(session, config, text, parse_expression(text))
    return Filter(tree, tuple((a.name, a.type.value) for a in config.attributes))


def segment_filter(session: Session, config: Config, name: str) -> tuple[str, Filter]:
    """The expression of the segment `name` and its checked filter. Raises UnknownSegment,
    SegmentError (it names something that no longer exists)."""
    segment = stored.find_segment(session, name)
    if segment is None:
        raise UnknownSegment(name)
    return segment.expression, check_expression(session, config, segment.expression)


def _country_attribute(config: Config) -> AttributeSpec | None:
    return next((a for a in config.attributes if a.type in COUNTRY_TYPES), None)


def country_counts(session: Session, config: Config, segment: Filter | None, *,
                   list_id: int | None) -> dict[str, int]:
    """Active people (of `list_id`, the filter names) by country code, most first ("" for those
    without one); empty when no country attribute is declared."""
    country = _country_attribute(config)
    if country is None:
        return {}
    counts = stored.audience_counts(session, list_id=list_id, segment=segment, by=country.name,
                                    attribute_type=country.type.value)
    return dict(sorted(((code or "", n) for code, n in counts.items()), key=lambda kv: (-kv[1], kv[0])))


def language_counts(session: Session, segment: Filter | None, *, list_id: int | None) -> dict[str, int]:
    """Active people (of `list_id`, the filter names) by language, most first."""
    counts = stored.audience_counts(session, list_id=list_id, segment=segment)
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def audience_of(session: Session, config: Config, segment: Filter | None, *, list_id: int | None,
                name: str = "", expression: str = "", list_slug: str | None = None,
                sample: int = 0) -> Audience:
    """How many active people `segment` names (with an active subscription to `list_id`, when
    given), by language and by country."""
    by_language = language_counts(session, segment, list_id=list_id)
    addresses = tuple(stored.matching_addresses(session, list_id=list_id, segment=segment, limit=sample)) \
        if sample else ()
    return Audience(name, expression, list_slug, sum(by_language.values()), by_language,
                    country_counts(session, config, segment, list_id=list_id), addresses)


def _info(segment: Any) -> SegmentInfo:
    return SegmentInfo(segment.name, segment.expression, segment.description, segment.created_at,
                       segment.updated_at)


# -- units of work for the faces --------------------------------------------------------------

def create_segment(newsletter: Newsletter, name: str, expression: str, *, description: str = "",
                   replace: bool = False) -> SegmentInfo:
    """Save a segment (checked first). With `replace`, a segment of that name gets the new
    expression. Raises InvalidField (a bad name, or the name in use), SegmentError."""
    if not _NAME.match(name or ""):
        raise InvalidField("name", Text(N_("use lower-case letters, digits and hyphens (e.g. francophone-africa)")))
    with newsletter.store.session() as session:
        check_expression(session, newsletter.config, expression)
        existing = stored.find_segment(session, name)
        if existing is not None:
            if not replace:
                raise InvalidField("name", Text.of(N_("a segment %(name)s exists already"), name=repr(name)))
            existing.expression, existing.description = expression, description or existing.description
            existing.updated_at = newsletter.clock()
            return _info(existing)
        return _info(stored.add_segment(session, name=name, expression=expression, description=description,
                                        now=newsletter.clock()))


def list_segments(newsletter: Newsletter) -> list[SegmentInfo]:
    """Every segment, by name."""
    with newsletter.store.reading() as session:
        return [_info(s) for s in stored.all_segments(session)]


def show_segment(newsletter: Newsletter, name: str, *, list_slug: str | None = None,
                 sample: int = 10) -> tuple[SegmentInfo, Audience]:
    """A segment and who it names now (of `list_slug`, when given), with a sample of addresses.
    Raises UnknownSegment, SegmentError, UnknownList."""
    with newsletter.store.reading() as session:
        segment = stored.find_segment(session, name)
        if segment is None:
            raise UnknownSegment(name)
        checked = check_expression(session, newsletter.config, segment.expression)
        list_id = None
        if list_slug:
            found = people_store.find_list(session, list_slug)
            if found is None:
                raise UnknownList(list_slug)
            list_id = found.id
        return _info(segment), audience_of(session, newsletter.config, checked, list_id=list_id, name=name,
                                           expression=segment.expression, list_slug=list_slug, sample=sample)


def delete_segment(newsletter: Newsletter, name: str) -> None:
    """Delete a segment (campaigns sent with it keep its expression). Raises UnknownSegment."""
    with newsletter.store.session() as session:
        segment = stored.find_segment(session, name)
        if segment is None:
            raise UnknownSegment(name)
        stored.delete_segment(session, segment)
