"""Reach in member organisations: who a send reaches, counted by organisation and country.

Before a send (`reach_of`, part of the send's plan): how many member organisations and
countries it reaches, and how many of them in a language they read — a contact reads the issue
in their language when the issue has a variant of its own for it (not a fallback). After it
(`organisations_left`): the organisations with no reachable contact left, every one of their
contacts on the campaign's ledger having unsubscribed, been suppressed (a hard bounce, a
complaint, blocked) or failed. From the ledger and the people's standing (which bounces set);
no tracking pixel.

The organisation and the country are declared attributes (`organisation = true`, `type =
"country"`); without them there is nothing to count and these return None or [].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy.orm import Session

from ..attributes import AttributeType
from ..config import Config
from ..segment_language import Filter
from ..store import reach as stored
from ..store.reach import AudienceGroup, OrganisationStanding
from . import campaigns
from .actions import CampaignReport, report

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["Reach", "OrganisationStanding", "CampaignOutcome", "reach_of", "reach_from_groups", "attributes_of",
           "organisations_left", "campaign_reach",
           "campaign_outcome"]


class Reach(NamedTuple):
    """Member organisations and countries a send reaches (people without the attribute aside)."""

    organisations: int
    organisations_in_their_language: int
    countries: int
    countries_in_their_language: int
    #: Organisations every contact of which gets another language's variant, by name.
    only_in_another_language: tuple[str, ...]


def _attributes(config: Config) -> tuple[str | None, str | None]:
    organisation = next((a.name for a in config.attributes if a.organisation), None)
    country = next((a.name for a in config.attributes if a.type is AttributeType.COUNTRY), None)
    return organisation, country


def reach_of(session: Session, config: Config, *, list_id: int, segment: Filter | None,
             variant_of: Mapping[str, str]) -> Reach | None:
    """What a send to the list (to those `segment` names) reaches, given which variant each
    language gets; None when neither an organisation nor a country attribute is declared."""
    organisation, country = _attributes(config)
    if organisation is None and country is None:
        return None
    own = [lang for lang, variant in variant_of.items() if lang == variant]
    orgs = stored.audience_by(session, list_id=list_id, segment=segment, attribute=organisation,
                              own_languages=own) if organisation else []
    places = stored.audience_by(session, list_id=list_id, segment=segment, attribute=country,
                                own_languages=own) if country else []
    return Reach(len(orgs), sum(1 for g in orgs if g.in_their_language), len(places),
                 sum(1 for g in places if g.in_their_language),
                 tuple(g.key for g in orgs if not g.in_their_language))


def reach_from_groups(config: Config, groups: Iterable[AudienceGroup], *,
                      variant_of: Mapping[str, str]) -> Reach | None:
    """`reach_of`, counted from the send's audience grouped once (`store.reach.audience_groups`,
    with the organisation and country attributes `attributes_of` names): the same answer, no
    statement of its own."""
    organisation, country = _attributes(config)
    if organisation is None and country is None:
        return None
    own = {lang for lang, variant in variant_of.items() if lang == variant}
    orgs: dict[str, int] = {}
    places: dict[str, int] = {}
    for g in groups:
        if not g.active:
            continue
        reads = g.active if g.language in own else 0
        if organisation and g.organisation is not None:
            orgs[g.organisation] = orgs.get(g.organisation, 0) + reads
        if country and g.country is not None:
            places[g.country] = places.get(g.country, 0) + reads
    return Reach(len(orgs), sum(1 for n in orgs.values() if n), len(places), sum(1 for n in places.values() if n),
                 tuple(sorted(k for k, n in orgs.items() if not n)))


def attributes_of(config: Config) -> tuple[str | None, str | None]:
    """The names of the declared organisation and country attributes (None: not declared)."""
    return _attributes(config)


def organisations_left(session: Session, config: Config, slug: str) -> list[OrganisationStanding]:
    """The member organisations on the campaign's ledger with no reachable contact left, by
    name. Raises UnknownCampaign."""
    return [o for o in campaign_standing(session, config, slug) if not o.reachable]


def campaign_standing(session: Session, config: Config, slug: str) -> list[OrganisationStanding]:
    """Every member organisation on the campaign's ledger, with its contacts' standing now."""
    campaign = campaigns.get_campaign(session, slug)
    organisation, country = _attributes(config)
    if organisation is None:
        return []
    return stored.organisations_after(session, campaign_id=campaign.id, list_id=campaign.list_id,
                                      organisation=organisation, country=country)


def campaign_reach(newsletter: Newsletter, slug: str) -> tuple[list[OrganisationStanding], int]:
    """The organisations of a campaign left with no reachable contact, and how many
    organisations its ledger names in all. Raises UnknownCampaign."""
    with newsletter.store.reading() as session:
        standing = campaign_standing(session, newsletter.config, slug)
        return [o for o in standing if not o.reachable], len(standing)


class CampaignOutcome(NamedTuple):
    """A campaign's report with its reach: who did not get it, and the organisations left."""

    report: CampaignReport
    organisations: int
    organisations_left: list[OrganisationStanding]


def campaign_outcome(newsletter: Newsletter, slug: str) -> CampaignOutcome:
    """`actions.report` and `campaign_reach` together. Raises UnknownCampaign."""
    lost, total = campaign_reach(newsletter, slug)
    return CampaignOutcome(report(newsletter, slug), total, lost)
