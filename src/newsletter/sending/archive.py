"""The public archive of sent issues: finished campaigns of public lists, shown from their
content files through the same rendering as the mail (`compose.render_variant`).

A campaign records the content files it was sent from in its `source` JSON, under "files"
(a list of paths; "sources", "content" or "paths", or a single path, are read as well).
Relative paths are taken from the configuration file's folder. Nothing personal ever
appears: the personalisation markers are filled with neutral values (no name, no address,
and the sign-up page where a mail has its unsubscribe and preferences links).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ..config import Config
from ..errors import UnknownIssue
from ..installation import Newsletter
from ..mail.compose import render_variant, variant_for
from ..mail.content import load_issue
from ..mail.issue import Issue
from ..mail.personalise import Field
from ..people.names import name_in
from ..store.campaigns import finished_public_campaigns

__all__ = ["ArchivedIssue", "ArchivePage", "content_paths", "archived_issues", "find_archived_issue",
           "load_archived", "render_archived", "archive_of", "archived_issue"]

_SOURCE_KEYS = ("files", "sources", "content", "paths")


@dataclass(frozen=True)
class ArchivedIssue:
    """A finished campaign of a public list, as the archive lists it."""

    list_slug: str
    list_name: str
    list_languages: tuple[str, ...]
    slug: str
    kind: str
    subject: str
    sent_at: datetime | None
    paths: tuple[str, ...]
    #: The list's names and descriptions in other languages (`people.lists`).
    list_translations: Mapping[str, Mapping[str, str]] | None = None

    def list_name_in(self, language: str | None) -> str:
        """The list's name as a reader of `language` sees it."""
        return name_in(self.list_translations, self.list_name, "", language)[0]


@dataclass(frozen=True)
class ArchivePage:
    """One language of an archived issue, ready to serve."""

    language: str
    languages: tuple[str, ...]
    subject: str
    preheader: str
    html: str


def content_paths(source: Mapping[str, Any] | None, base: Path | None = None) -> tuple[str, ...]:
    """The content files a campaign's `source` names, made absolute against `base`."""
    for key in _SOURCE_KEYS:
        value = (source or {}).get(key)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            return tuple(str(base / v) if base and not Path(v).is_absolute() else v for v in value)
    return ()


def _base(config: Config) -> Path | None:
    return Path(config.source).resolve().parent if config.source else None


def archived_issues(session: Session, config: Config, *, list_slug: str | None = None) -> list[ArchivedIssue]:
    """Finished campaigns of public lists that name their content files, newest first."""
    found = []
    for campaign, mailing_list in finished_public_campaigns(session, list_slug=list_slug):
        paths = content_paths(campaign.source, _base(config))
        if paths:
            found.append(ArchivedIssue(mailing_list.slug, mailing_list.name, tuple(mailing_list.languages or ()),
                                       campaign.slug, campaign.kind, campaign.subject,
                                       campaign.finished_at, paths, dict(mailing_list.translations or {})))
    return found


def find_archived_issue(session: Session, config: Config, list_slug: str, slug: str) -> ArchivedIssue:
    """The archived issue `slug` of `list_slug`. Raises UnknownIssue."""
    for issue in archived_issues(session, config, list_slug=list_slug):
        if issue.slug == slug:
            return issue
    raise UnknownIssue(list_slug, slug)


@lru_cache(maxsize=256)
def load_archived(paths: tuple[str, ...]) -> Issue:
    """The issue in these content files (cached). Raises ContentError when they are gone or wrong."""
    return load_issue(list(paths))


@lru_cache(maxsize=256)
def _render(config: Config, paths: tuple[str, ...], language: str) -> ArchivePage:
    issue = load_archived(paths)
    mail = render_variant(config, issue.variants[language])
    subscribe = f"{config.base_url.rstrip('/')}/subscribe?lang={language}"
    _subject, _text, html = mail.personalised({
        Field.NAME: "", Field.EMAIL: "", Field.UNSUBSCRIBE_URL: subscribe, Field.PREFERENCES_URL: subscribe,
    })
    return ArchivePage(language, issue.languages, mail.subject, mail.preheader, html)


def render_archived(config: Config, archived: ArchivedIssue, language: str | None) -> ArchivePage:
    """The issue's web page in `language`, or along the list's fallback chain when it has none.

    Rendered once per (issue, language) and kept. Raises ContentError (files gone or wrong),
    MissingVariant.
    """
    issue = load_archived(archived.paths)
    chosen = variant_for(language, issue.languages, archived.list_languages)
    return _render(config, archived.paths, chosen)


def archive_of(newsletter: Newsletter, list_slug: str | None = None) -> list[ArchivedIssue]:
    """`archived_issues` as one unit of work over an installation (the web pages' call)."""
    with newsletter.store.reading() as session:
        return archived_issues(session, newsletter.config, list_slug=list_slug)


def archived_issue(newsletter: Newsletter, list_slug: str, slug: str) -> ArchivedIssue:
    """`find_archived_issue` as one unit of work over an installation. Raises UnknownIssue."""
    with newsletter.store.reading() as session:
        return find_archived_issue(session, newsletter.config, list_slug, slug)
