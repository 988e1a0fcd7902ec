"""Segments in the store: the saved filters, and the one compiler of a segment tree into SQL.

`where_clause(tree, types)` turns a tree of `newsletter.segment_language` (checked by
`people.segments`: fields known, values in their stored form) into a SQLAlchemy condition on
`Subscriber`. Field names select columns from a fixed set (a declared attribute is a key of the
JSON column, passed as a bound JSON path); every value is a bound parameter. No text of an
expression is ever put into SQL.

Comparisons are two-valued: a person without the attribute does not match `country = "FR"`,
`staff_count > 3` or `country in (…)`, and does match `country != "FR"` and `country not in (…)`;
so `not` always means "everyone else".
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, false, func, not_, or_, select, true
from sqlalchemy.orm import Session

from ..segment_language import And, Condition, Filter, IsSet, Node, Not, Or
from ..statuses import SubscriberStatus, SubscriptionStatus
from .models import MailingList, Segment, Subscriber, Subscription

__all__ = ["where_clause", "filter_clause", "find_segment", "all_segments", "add_segment", "delete_segment", "audience_counts",
           "matching_addresses", "LIST_FIELD", "LANGUAGE_FIELD"]

LIST_FIELD = "list"
LANGUAGE_FIELD = "language"


def _attribute(name: str, kind: str) -> ColumnElement:
    element = Subscriber.attributes[name]
    if kind == "integer":
        return element.as_integer()
    if kind == "boolean":
        return element.as_boolean()
    return element.as_string()


_OPERATORS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
              ">=": operator.ge}


def _compare(column: ColumnElement, op: str, values: tuple[Any, ...], *, nullable: bool) -> ColumnElement:
    if op == "in":
        test = column.in_(values)
    elif op == "not in":
        test = column.not_in(values)
    else:
        test = _OPERATORS[op](column, bindparam(None, values[0], type_=column.type))
    if op in ("!=", "not in"):
        return or_(column.is_(None), test) if nullable else test
    return and_(column.is_not(None), test) if nullable else test


def _on_lists(slugs: tuple[Any, ...]) -> ColumnElement:
    return exists(
        select(Subscription.subscriber_id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.subscriber_id == Subscriber.id, Subscription.status == SubscriptionStatus.ACTIVE,
               MailingList.slug.in_(slugs)))


def filter_clause(segment: Filter | None) -> ColumnElement | None:
    """The condition a checked filter stands for (None: no filter)."""
    return None if segment is None else where_clause(segment.tree, dict(segment.types))


def where_clause(tree: Node, types: Mapping[str, str]) -> ColumnElement:
    """The condition on `Subscriber` that `tree` stands for. `types` maps each declared
    attribute to its type's value ("text", "integer", …). A field neither `list`, `language`
    nor in `types` raises KeyError (the domain checks fields before this is called)."""
    if isinstance(tree, And):
        return and_(*(where_clause(item, types) for item in tree.items))
    if isinstance(tree, Or):
        return or_(*(where_clause(item, types) for item in tree.items))
    if isinstance(tree, Not):
        return not_(where_clause(tree.item, types))
    if isinstance(tree, IsSet):
        if tree.field in (LIST_FIELD, LANGUAGE_FIELD):
            return false() if tree.negated else true()
        column = _attribute(tree.field, types[tree.field])
        return column.is_(None) if tree.negated else column.is_not(None)
    assert isinstance(tree, Condition)
    if tree.field == LIST_FIELD:
        on = _on_lists(tree.values)
        return not_(on) if tree.op in ("!=", "not in") else on
    if tree.field == LANGUAGE_FIELD:
        return _compare(Subscriber.language, tree.op, tree.values, nullable=False)
    return _compare(_attribute(tree.field, types[tree.field]), tree.op, tree.values, nullable=True)


# -- the saved segments -----------------------------------------------------------------------

def find_segment(session: Session, name: str) -> Segment | None:
    """The segment with this name, or None."""
    return session.scalar(select(Segment).where(Segment.name == name))


def all_segments(session: Session) -> list[Segment]:
    """Every segment, by name."""
    return list(session.scalars(select(Segment).order_by(Segment.name)))


def add_segment(session: Session, *, name: str, expression: str, description: str, now: datetime) -> Segment:
    """Insert a segment; returns it with its id."""
    segment = Segment(name=name, expression=expression, description=description, created_at=now, updated_at=now)
    session.add(segment)
    session.flush()
    return segment


def delete_segment(session: Session, segment: Segment) -> None:
    session.delete(segment)
    session.flush()


# -- who a segment names ----------------------------------------------------------------------

def _audience(list_id: int | None, where: ColumnElement | None):
    query = select(Subscriber.id).where(Subscriber.status == SubscriberStatus.ACTIVE)
    if list_id is not None:
        query = query.join(Subscription, Subscription.subscriber_id == Subscriber.id).where(
            Subscription.list_id == list_id, Subscription.status == SubscriptionStatus.ACTIVE)
    if where is not None:
        query = query.where(where)
    return query


def audience_counts(session: Session, *, list_id: int | None, segment: Filter | None,
                    by: str | None = None, attribute_type: str = "text") -> dict[Any, int]:
    """Active people (with an active subscription to `list_id`, when given) the filter names,
    counted by language (`by` None) or by the declared attribute `by` (None: not set)."""
    people = _audience(list_id, filter_clause(segment)).subquery()
    key = Subscriber.language if by is None else _attribute(by, attribute_type)
    query = (select(key, func.count()).select_from(Subscriber).join(people, people.c.id == Subscriber.id)
             .group_by(key))
    return {value: n for value, n in session.execute(query)}


def matching_addresses(session: Session, *, list_id: int | None, segment: Filter | None,
                       limit: int | None = None) -> list[str]:
    """The addresses of the active people the filter names (of `list_id`, when given), sorted."""
    ids = _audience(list_id, filter_clause(segment)).subquery()
    query = select(Subscriber.email).join(ids, ids.c.id == Subscriber.id).order_by(Subscriber.email)
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))
