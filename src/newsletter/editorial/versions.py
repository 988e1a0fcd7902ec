"""The typed values of an issue being written: its versions, its revision set, its translation state."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from .files import content_text

__all__ = ["Version", "RevisionSet", "TranslationState", "DiffLine", "LanguageState", "Approval", "IssueView"]


@dataclass(frozen=True)
class Version:
    """One saved revision of one language: its front matter as written and its Markdown body.

    `based_on` is, for a translation, the id of the source language's revision it was
    translated from (`based_on_number` its number); None for the source language itself.
    """

    id: int
    slug: str
    kind: str
    list_slug: str
    language: str
    number: int
    front_matter: Mapping[str, Any]
    body: str
    based_on: int | None
    based_on_number: int | None
    author: str | None
    at: datetime

    def text(self) -> str:
        """The content file this version is (what the CLI reads, what a send is made from)."""
        return content_text(kind=self.kind, list_slug=self.list_slug, slug=self.slug, language=self.language,
                            front_matter=self.front_matter, body=self.body)


class RevisionSet(NamedTuple):
    """Which revision of each language: what is previewed, approved and sent together."""

    revisions: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, revisions: Mapping[str, int]) -> "RevisionSet":
        return cls(tuple(sorted(revisions.items())))

    @property
    def digest(self) -> str:
        """A short fingerprint of the set; equal sets have equal digests."""
        text = ",".join(f"{lang}:{rev}" for lang, rev in self.revisions)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, int]:
        return dict(self.revisions)


class TranslationState(str, enum.Enum):
    """Where a language stands against the source language."""

    SOURCE = "source"
    CURRENT = "current"
    STALE = "stale"
    MISSING = "missing"


class DiffLine(NamedTuple):
    """One line of what changed in the source: `sign` is "+" (added), "-" (removed), " " (kept)
    or "@" (where a hunk starts)."""

    sign: str
    text: str


@dataclass(frozen=True)
class LanguageState:
    """One language of an issue: its newest version (None when missing) and its state; for a
    stale translation, the source's change since the revision it was translated from."""

    language: str
    state: TranslationState
    version: Version | None
    #: The source fields (front-matter keys, and "body") that changed since.
    changed_fields: tuple[str, ...] = ()
    changes: tuple[DiffLine, ...] = ()


class Approval(NamedTuple):
    approved_by: str
    at: datetime
    digest: str


@dataclass(frozen=True)
class IssueView:
    """An issue as the workspace shows it: every language's state, what would be sent, who approved it."""

    slug: str
    kind: str
    list_slug: str
    source_language: str
    languages: tuple[LanguageState, ...]
    revision_set: RevisionSet
    #: Approvals of the current revision set.
    approvals: tuple[Approval, ...] = ()
    sent_revisions: RevisionSet | None = None
    sent_at: datetime | None = None
    created_by: str | None = None
    needs_second_approval: bool = False
    versions: Mapping[str, Version] = field(default_factory=dict)

    def state_of(self, language: str) -> LanguageState:
        for state in self.languages:
            if state.language == language:
                return state
        return LanguageState(language, TranslationState.MISSING, None)
