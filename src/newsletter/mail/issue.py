"""An issue as typed values: one mailing in one or more languages, and what each kind holds."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

__all__ = ["Kind", "Link", "NewsItem", "Statement", "Document", "Image", "DailySummary", "CampaignAlert",
           "Variant", "Issue"]


class Kind(str, enum.Enum):
    """What an issue is; decides its schema and its template."""

    DAILY_SUMMARY = "daily-summary"
    CAMPAIGN_ALERT = "campaign-alert"


@dataclass(frozen=True)
class Link:
    """A call-to-action: a label and an absolute URL."""

    label: str
    url: str


@dataclass(frozen=True)
class NewsItem:
    date: date
    title: str
    url: str
    #: One paragraph of Markdown.
    summary: str


@dataclass(frozen=True)
class Statement:
    speaker: str
    organisation: str
    plenary: str
    url: str


@dataclass(frozen=True)
class Document:
    title: str
    url: str


@dataclass(frozen=True)
class Image:
    """An optional picture at the top of the mail; `alt` is required by the schema."""

    src: str
    alt: str
    width: int = 552


@dataclass(frozen=True)
class DailySummary:
    """The fields of a daily summary of a session day."""

    session: str
    day: int
    total_days: int
    date: date
    venue: str
    #: A short paragraph of Markdown.
    lead: str
    highlights: tuple[str, ...] = ()
    news: tuple[NewsItem, ...] = ()
    statements: tuple[Statement, ...] = ()
    documents: tuple[Document, ...] = ()
    #: Agenda items of the next day (Markdown, one line each).
    tomorrow: tuple[str, ...] = ()


@dataclass(frozen=True)
class CampaignAlert:
    """The fields of a campaign alert."""

    headline: str
    #: The call: a paragraph of Markdown.
    call: str
    points: tuple[str, ...]
    cta: Link
    deadline: date | None = None


@dataclass(frozen=True)
class Variant:
    """One language of an issue, as read from one file."""

    language: str
    path: str
    kind: Kind
    list: str
    slug: str
    subject: str
    preheader: str
    #: The list's name in this language, for the footer ("why you get this").
    list_name: str
    fields: DailySummary | CampaignAlert
    #: Free Markdown after the front matter ("" when there is none).
    body: str = ""
    image: Image | None = None


@dataclass(frozen=True)
class Issue:
    """A mailing: the same slug, kind and list in one or more languages."""

    slug: str
    kind: Kind
    list: str
    variants: Mapping[str, Variant] = field(default_factory=dict)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.variants)


#: The placeholders an editor may write in any text, and the markers they become.
