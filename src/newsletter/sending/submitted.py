"""Content given over the REST API: the files of an issue, as text, kept where a campaign can
be sent and resumed from them (`issues_dir/api/<slug>/`).

The files are checked as `newsletter send` checks them (`sending.launch.prepare_send`): a file
named `<stem>.<language>.md`, Markdown with front matter, one slug for all; a broken one fails
before anything is kept. An issue whose campaign has started is never overwritten.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CampaignStateError, ContentError, InvalidField
from ..mail.content import load_issue
from . import campaigns
from .launch import Prepared, prepare_resume, prepare_send

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["submit_content", "submitted_files", "prepare_submitted", "MAX_FILE_BYTES"]

_FILE = re.compile(r"^[a-z0-9][a-z0-9-]{0,100}\.[a-z]{2}\.md$")
MAX_FILE_BYTES = 1_000_000


def _folder(newsletter: Newsletter) -> Path:
    return Path(newsletter.config.issues_dir) / "api"


def submitted_files(newsletter: Newsletter, slug: str) -> list[Path]:
    """The content files kept for `slug`, by name. Raises ContentError when there are none."""
    folder = _folder(newsletter) / slug
    files = sorted(folder.glob("*.md")) if re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", slug) else []
    if not files:
        raise ContentError(slug, "no content was submitted for this slug")
    return files


def submit_content(newsletter: Newsletter, files: Mapping[str, str], *, list_slug: str | None = None,
                   segment: str | None = None) -> Prepared:
    """Keep the issue in `files` (file name -> text) and prepare its send (to `list_slug`, or the
    list it names; to `segment`, when given). Returns what `prepare_send` returns; writes no
    campaign. Raises InvalidField (a file name or size), ContentError (the content),
    CampaignStateError (its campaign has started: give it another slug), and what
    `prepare_send` raises."""
    if not files:
        raise InvalidField("content", "give at least one file, e.g. {\"day-3.en.md\": \"---\\n…\"}")
    for name, text in files.items():
        if not _FILE.match(name):
            raise InvalidField("content", f"{name!r}: name each file <name>.<language>.md, e.g. day-3.fr.md")
        if not isinstance(text, str) or len(text.encode("utf-8")) > MAX_FILE_BYTES:
            raise InvalidField("content", f"{name!r}: the text must be a string of at most {MAX_FILE_BYTES} bytes")
    root = _folder(newsletter)
    incoming = root / f".incoming-{secrets.token_hex(8)}"
    incoming.mkdir(parents=True)
    try:
        for name, text in files.items():
            (incoming / name).write_text(text, encoding="utf-8")
        slug = load_issue(sorted(incoming.glob("*.md"))).slug
        with newsletter.store.session() as session:
            existing = campaigns.find_campaign(session, slug)
            if existing is not None:
                raise CampaignStateError(slug, existing.status.value,
                                         "its campaign has started; give the new content another slug")
        final = root / slug
        if final.exists():
            shutil.rmtree(final)
        incoming.rename(final)
    finally:
        if incoming.exists():
            shutil.rmtree(incoming)
    return prepare_send(newsletter, sorted(final.glob("*.md")), list_slug=list_slug, segment=segment)


def prepare_submitted(newsletter: Newsletter, slug: str, *, list_slug: str | None = None,
                      segment: str | None = None) -> Prepared:
    """The send of submitted content: a campaign that has started resumes from the files it
    recorded (its list and segment); else the content kept for `slug`, to `list_slug` and
    `segment`. Raises ContentError (nothing submitted), and what `prepare_send` and
    `prepare_resume` raise."""
    with newsletter.store.session() as session:
        started = campaigns.find_campaign(session, slug) is not None
    if started:
        return prepare_resume(newsletter, slug)
    return prepare_send(newsletter, submitted_files(newsletter, slug), list_slug=list_slug, segment=segment)
