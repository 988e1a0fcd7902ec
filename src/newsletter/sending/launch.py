"""Sending an issue: what `newsletter send` is about to do, and to whom."""

from __future__ import annotations

from typing import NamedTuple

from ..config import Config

__all__ = ["SendPlan", "plan_send"]


class SendPlan(NamedTuple):
    """What `newsletter send` is about to do: which variant each reader language gets, and to how many."""

    slug: str
    list_slug: str
    list_name: str
    #: subscriber language -> variant language (along the list's fallback chain)
    variant_of: dict[str, str]
    #: variant language -> active subscribers who will get it
    audience: dict[str, int]
    fallback_chain: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(self.audience.values())


def plan_send(session, config: Config, slug: str, list_slug: str, available: list[str]) -> SendPlan:
    """Map every language to the variant its readers get and count the audience per variant.

    Raises UnknownList, MissingVariant (no variant along the fallback chain).
    """
    from ..mail.compose import variant_for
    from ..people.lists import get_list, languages_in_use

    mailing_list = get_list(session, list_slug)
    chain = tuple(mailing_list.languages or ())
    in_use = languages_in_use(session, list_slug)
    variant_of = {lang: variant_for(lang, available, chain) for lang in set(config.languages) | set(in_use)}
    audience: dict[str, int] = {}
    for lang, n in in_use.items():
        audience[variant_of[lang]] = audience.get(variant_of[lang], 0) + n
    return SendPlan(slug, list_slug, mailing_list.name, variant_of, audience, chain)
