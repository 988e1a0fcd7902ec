"""The statements about reach: a campaign's recipients counted per member organisation and country.

Grouped in the database (one statement each), by the declared attributes `people.reach` names:
the organisation attribute and the country attribute (keys of the JSON column, bound paths).
Nothing here decides what "reached" means; the callers pass the languages that count.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from ..segment_language import Filter
from ..statuses import OutboxStatus, SubscriberStatus, SubscriptionStatus
from .models import OutboxRow, Subscriber, Subscription
from .segments import filter_clause

__all__ = ["AudienceGroup", "GroupCount", "OrganisationStanding", "audience_by", "audience_groups", "organisations_after"]


class GroupCount(NamedTuple):
    """One organisation's (or country's) recipients, and how many of them read a variant of their own language."""

    key: str
    contacts: int
    in_their_language: int


class OrganisationStanding(NamedTuple):
    """A member organisation after a campaign: its contacts on the campaign's ledger, and how
    many of each kind are no longer reachable."""

    organisation: str
    countries: tuple[str, ...]
    contacts: int
    reachable: int
    unsubscribed: int
    suppressed: int
    failed: int


def _text(name: str) -> ColumnElement:
    return Subscriber.attributes[name].as_string()


class AudienceGroup(NamedTuple):
    """The list's active subscriptions of one language, organisation and country (None: the
    attribute is not set, or not asked for)."""

    language: str | None
    organisation: str | None
    country: str | None
    #: Active subscriptions to the list, whatever the person's standing
    subscribed: int
    #: Of them, people who are active (not suppressed, blocked or erased): who a send mails
    active: int


def audience_groups(session: Session, *, list_id: int, segment: Filter | None, organisation: str | None,
                    country: str | None) -> list[AudienceGroup]:
    """The list's active subscriptions (of those `segment` names) counted in one grouped
    statement by language and by the texts of the attributes `organisation` and `country`
    (None: not grouped by it): what a send's plan counts, in one pass over the list."""
    keys = [Subscriber.language, *(_text(name) for name in (organisation, country) if name)]
    active = func.sum(case((Subscriber.status == SubscriberStatus.ACTIVE, 1), else_=0))
    query = (select(*keys, func.count(), active)
             .join(Subscription, Subscription.subscriber_id == Subscriber.id)
             .where(Subscription.list_id == list_id, Subscription.status == SubscriptionStatus.ACTIVE)
             .group_by(*keys))
    where = filter_clause(segment)
    if where is not None:
        query = query.where(where)
    groups = []
    for row in session.execute(query):
        values = iter(row[1:-2])
        org = next(values) if organisation else None
        place = next(values) if country else None
        groups.append(AudienceGroup(row[0], org, place, row[-2], int(row[-1] or 0)))
    return groups


def audience_by(session: Session, *, list_id: int, segment: Filter | None, attribute: str,
                own_languages: Collection[str]) -> list[GroupCount]:
    """The active subscribers of the list (those `segment` names), grouped by the text of the
    attribute `attribute` (people without it left out), with how many read one of `own_languages`."""
    key = _text(attribute)
    reads = case((Subscriber.language.in_(list(own_languages) or [""]), 1), else_=0)
    query = (select(key, func.count(), func.sum(reads))
             .join(Subscription, Subscription.subscriber_id == Subscriber.id)
             .where(Subscription.list_id == list_id, Subscription.status == SubscriptionStatus.ACTIVE,
                    Subscriber.status == SubscriberStatus.ACTIVE, key.is_not(None))
             .group_by(key).order_by(key))
    where = filter_clause(segment)
    if where is not None:
        query = query.where(where)
    return [GroupCount(k, n, int(r or 0)) for k, n, r in session.execute(query)]


def organisations_after(session: Session, *, campaign_id: int, list_id: int, organisation: str,
                        country: str | None) -> list[OrganisationStanding]:
    """Every organisation with a contact on the campaign's ledger, with its contacts' standing
    now: reachable (active, still on the list, the campaign's message not failed or skipped),
    unsubscribed from the list, suppressed or blocked, or failed in this campaign."""
    org = _text(organisation)
    suppressed = Subscriber.status != SubscriberStatus.ACTIVE
    left = and_(~suppressed, or_(Subscription.status.is_(None), Subscription.status != SubscriptionStatus.ACTIVE))
    failed = and_(~suppressed, ~left.self_group(),
                  OutboxRow.status.in_([OutboxStatus.FAILED, OutboxStatus.SKIPPED]))
    reachable = and_(~suppressed, Subscription.status == SubscriptionStatus.ACTIVE,
                     OutboxRow.status.not_in([OutboxStatus.FAILED, OutboxStatus.SKIPPED]))

    def count(condition: ColumnElement) -> ColumnElement:
        return func.sum(case((condition, 1), else_=0))

    query = (select(org, func.count(), count(reachable), count(left), count(suppressed), count(failed))
             .select_from(OutboxRow)
             .join(Subscriber, Subscriber.id == OutboxRow.subscriber_id)
             .outerjoin(Subscription, and_(Subscription.subscriber_id == Subscriber.id,
                                           Subscription.list_id == list_id))
             .where(OutboxRow.campaign_id == campaign_id, org.is_not(None))
             .group_by(org).order_by(org))
    rows = session.execute(query).all()
    places: dict[str, tuple[str, ...]] = {}
    if country and rows:
        pairs = session.execute(
            select(org, _text(country)).distinct().select_from(OutboxRow)
            .join(Subscriber, Subscriber.id == OutboxRow.subscriber_id)
            .where(OutboxRow.campaign_id == campaign_id, org.is_not(None), _text(country).is_not(None)))
        for name, code in pairs:
            places[name] = tuple(sorted((*places.get(name, ()), code)))
    return [OrganisationStanding(name, places.get(name, ()), n, int(r or 0), int(u or 0), int(s or 0), int(f or 0))
            for name, n, r, u, s, f in rows]
