"""Writing issues: create one (from a form's values or from content files), save a language
version (every save a revision), read an issue's state, export it back to files.

Each function is one unit of work over the installation's store; the workspace and the CLI
call them. Every version saved is checked by the content loader (`files.check_version`), so
what is stored can always be previewed and sent.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ..errors import ContentError, DraftExists, EditConflict, InvalidField, UnknownDraft, UnknownList
from ..mail.content import expand_sources, issue_of, load_issue, parse_variant
from ..mail.issue import Issue, Kind
from ..people.lists import get_list
from ..store import EditorialIssue, IssueRevision
from ..store import editorial as stored
from ..texts import N_, Text
from .files import check_version, file_name, read_content_text
from .translation import language_states
from .versions import Approval, IssueView, RevisionSet, Version

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["create_issue", "create_from_form", "import_files", "import_uploads", "export_zip", "save_version", "save_form",
           "show_issue", "list_issues", "history",
           "export_files", "mail_issue", "version_of"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")


def version_of(issue: EditorialIssue, revision: IssueRevision, based_on_number: int | None = None) -> Version:
    """The typed value of a stored revision."""
    return Version(revision.id, issue.slug, issue.kind, issue.list_slug, revision.language, revision.number,
                   dict(revision.front_matter), revision.body, revision.based_on_id, based_on_number,
                   revision.author, revision.created_at)


def _get(session: Session, slug: str) -> EditorialIssue:
    issue = stored.find_issue(session, slug)
    if issue is None:
        raise UnknownDraft(slug)
    return issue


def _view(newsletter: Newsletter, session: Session, issue: EditorialIssue) -> IssueView:
    current = stored.current_revisions(session, issue.id)
    based_ids = {r.based_on_id for r in current.values() if r.based_on_id is not None}
    based = {i: stored.revision_by_id(session, i) for i in based_ids}
    based_versions = {i: version_of(issue, r) for i, r in based.items() if r is not None}
    versions = {lang: version_of(issue, r, based[r.based_on_id].number if r.based_on_id in based and
                                 based[r.based_on_id] is not None else None) for lang, r in current.items()}
    languages = [issue.source_language, *(lang for lang in newsletter.config.languages
                                          if lang != issue.source_language)]
    languages += [lang for lang in versions if lang not in languages]
    revision_set = RevisionSet.of({lang: v.id for lang, v in versions.items()})
    approvals = tuple(Approval(a.approved_by, a.approved_at, a.digest)
                      for a in stored.approvals_of(session, issue.id, digest=revision_set.digest))
    return IssueView(
        slug=issue.slug, kind=issue.kind, list_slug=issue.list_slug, source_language=issue.source_language,
        languages=language_states(languages, issue.source_language, versions, based_versions),
        revision_set=revision_set, approvals=approvals,
        sent_revisions=RevisionSet.of(issue.sent_revisions) if issue.sent_revisions is not None else None,
        sent_at=issue.sent_at, created_by=issue.created_by,
        needs_second_approval=newsletter.config.needs_second_approval(issue.list_slug), versions=versions)


def _check_new(newsletter: Newsletter, session: Session, *, slug: str, kind: str, list_slug: str,
               source_language: str) -> None:
    if not _SLUG.match(slug):
        raise InvalidField("slug", Text.of(N_("expected lower-case letters, digits and hyphens (asp23-day-4), got "
                                               "%(value)s"), value=repr(slug)))
    try:
        Kind(kind)
    except ValueError:
        raise InvalidField("kind", Text.of(N_("expected %(daily)s or %(alert)s, got %(value)s"),
                                           daily=Kind.DAILY_SUMMARY.value, alert=Kind.CAMPAIGN_ALERT.value,
                                           value=repr(kind))) from None
    if source_language not in newsletter.config.languages:
        raise InvalidField("language", Text.of(N_("%(value)s is not one of %(languages)s"), value=repr(source_language),
                                               languages=", ".join(newsletter.config.languages)))
    get_list(session, list_slug)  # raises UnknownList
    if stored.find_issue(session, slug) is not None:
        raise DraftExists(slug)


def create_issue(newsletter: Newsletter, *, slug: str, kind: str, list_slug: str, language: str | None = None,
                 front_matter: Mapping[str, Any] | None = None, body: str = "",
                 author: str | None = None) -> IssueView:
    """A new issue whose source language is `language` (default: the default language), with
    its first version when `front_matter` is given.

    Raises InvalidField (slug, kind, language), UnknownList, DraftExists, ContentError (the
    first version, naming its field); nothing is written then.
    """
    language = language or newsletter.config.default_language
    with newsletter.store.session() as session:
        _check_new(newsletter, session, slug=slug, kind=kind, list_slug=list_slug, source_language=language)
        if front_matter is not None:
            check_version(kind=kind, list_slug=list_slug, slug=slug, language=language, front_matter=front_matter,
                          body=body)
        issue = stored.add_issue(session, slug=slug, kind=kind, list_slug=list_slug, source_language=language,
                                 created_by=author, now=newsletter.clock())
        if front_matter is not None:
            stored.add_revision(session, issue, language=language, front_matter=front_matter, body=body,
                                based_on_id=None, author=author, now=newsletter.clock())
        return _view(newsletter, session, issue)


def import_files(newsletter: Newsletter, sources: Iterable[str | Path], *, author: str | None = None) -> IssueView:
    """Take an issue's content files (paths, folders, patterns) in: a new issue, or new
    revisions of the issue of that slug for each language whose text differs. Files taken in
    together count as translated from the source language's version among them.

    Raises ContentError (as `newsletter preview` would), UnknownList, InvalidField (kind or list
    differ from the existing issue's).
    """
    paths = expand_sources(sources)
    loaded = load_issue(paths)  # every check the CLI makes, naming the files
    texts = {}
    for path in paths:
        _, own, body = read_content_text(str(path), Path(path).read_text(encoding="utf-8"))
        texts[next(v.language for v in loaded.variants.values() if v.path == str(path))] = (own, body)
    return _take_in(newsletter, loaded, texts, author)


def import_uploads(newsletter: Newsletter, files: Mapping[str, bytes], *, author: str | None = None) -> IssueView:
    """`import_files` for files sent by a browser: file name (`day-4.fr.md`) -> its bytes.

    Raises ContentError naming the file (not UTF-8, not a content file, no file at all), and
    what `import_files` raises.
    """
    if not files:
        raise ContentError("(no files)", Text(N_("choose the content files of one issue (<name>.<lang>.md)")))
    variants, texts = [], {}
    for name, data in files.items():
        name = Path(name).name  # a browser's path says nothing we need
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContentError(name, Text.of(N_("not UTF-8 text (%(reason)s at byte %(byte)s)"), reason=exc.reason,
                                             byte=exc.start)) from None
        variant = parse_variant(name, text)
        _, own, body = read_content_text(name, text)
        variants.append(variant)
        texts[variant.language] = (own, body)
    return _take_in(newsletter, issue_of(variants), texts, author)


def _take_in(newsletter: Newsletter, loaded: Issue, texts: Mapping[str, tuple[dict, str]],
             author: str | None) -> IssueView:
    now = newsletter.clock()
    with newsletter.store.session() as session:
        issue = stored.find_issue(session, loaded.slug)
        if issue is None:
            source = newsletter.config.default_language
            source = source if source in texts else next(iter(loaded.variants))
            try:
                _check_new(newsletter, session, slug=loaded.slug, kind=loaded.kind.value,
                           list_slug=loaded.list, source_language=source)
            except UnknownList as exc:  # the files' `list:` named it
                raise exc.named_in(tuple(v.path for v in loaded.variants.values())) from None
            issue = stored.add_issue(session, slug=loaded.slug, kind=loaded.kind.value,
                                     list_slug=loaded.list, source_language=source, created_by=author, now=now)
        else:
            for what, mine, theirs in (("kind", issue.kind, loaded.kind.value), ("list", issue.list_slug, loaded.list)):
                if mine != theirs:
                    raise InvalidField(what, Text.of(N_("the files say %(theirs)s but the issue %(slug)s has "
                                                        "%(mine)s"), theirs=repr(theirs), slug=issue.slug,
                                                     mine=repr(mine)))
        current = stored.current_revisions(session, issue.id)
        for language in sorted(texts, key=lambda lang: lang != issue.source_language):
            own, body = texts[language]
            previous = current.get(language)
            if previous is not None and dict(previous.front_matter) == own and previous.body == body:
                continue
            source = current.get(issue.source_language)
            based = None if language == issue.source_language else (source.id if source is not None else None)
            current[language] = stored.add_revision(session, issue, language=language, front_matter=own, body=body,
                                                    based_on_id=based, author=author, now=now)
        return _view(newsletter, session, issue)


def save_version(newsletter: Newsletter, slug: str, language: str, *, front_matter: Mapping[str, Any], body: str,
                 parent: int | None, based_on: int | None = None, author: str | None = None) -> Version:
    """Save a new revision of one language. `parent` is the revision number the editor started
    from (None for a language not written yet); `based_on`, for a translation, the id of the
    source revision the translator worked from (default: the source's newest).

    Raises UnknownDraft; InvalidField (a language not published); EditConflict (another
    revision was saved since `parent`); ContentError naming the field. Nothing is written then.
    """
    with newsletter.store.session() as session:
        issue = _get(session, slug)
        if language not in newsletter.config.languages:
            raise InvalidField("language", Text.of(N_("%(value)s is not one of %(languages)s"), value=repr(language),
                                                   languages=", ".join(newsletter.config.languages)))
        current = stored.current_revisions(session, issue.id)
        mine = current.get(language)
        if (mine.number if mine else None) != parent:
            raise EditConflict(slug, language, parent or 0, mine.number if mine else 0, mine.author if mine else None)
        check_version(kind=issue.kind, list_slug=issue.list_slug, slug=slug, language=language,
                      front_matter=front_matter, body=body)
        if language == issue.source_language:
            based = None
        elif based_on is not None:
            source = stored.revision_by_id(session, based_on)
            if source is None or source.issue_id != issue.id or source.language != issue.source_language:
                raise InvalidField("based_on", Text.of(N_("revision %(revision)s is not a %(language)s revision of "
                                                          "%(slug)s"), revision=based_on,
                                                       language=issue.source_language, slug=slug))
            based = based_on
        else:
            source = current.get(issue.source_language)
            based = source.id if source is not None else None
        revision = stored.add_revision(session, issue, language=language, front_matter=dict(front_matter),
                                       body=body, based_on_id=based, author=author, now=newsletter.clock())
        based_number = stored.revision_by_id(session, based).number if based is not None else None
        return version_of(issue, revision, based_number)


def show_issue(newsletter: Newsletter, slug: str) -> IssueView:
    """The issue with every language's state and the approvals of what would be sent. Raises UnknownDraft."""
    with newsletter.store.reading() as session:
        return _view(newsletter, session, _get(session, slug))


def list_issues(newsletter: Newsletter) -> list[IssueView]:
    """Every issue, newest first."""
    with newsletter.store.reading() as session:
        return [_view(newsletter, session, issue) for issue in stored.all_issues(session)]


def history(newsletter: Newsletter, slug: str, language: str) -> list[Version]:
    """Every revision of one language, newest first. Raises UnknownDraft."""
    with newsletter.store.reading() as session:
        issue = _get(session, slug)
        return [version_of(issue, r) for r in stored.revisions_of(session, issue.id, language)]


def mail_issue(view: IssueView) -> Issue:
    """The typed issue (`mail.issue.Issue`) the view's newest versions make.

    Raises ContentError when it has no version yet.
    """
    if not view.versions:
        raise ContentError(view.slug, Text(N_("the issue has no language written yet")))
    return issue_of(check_version(kind=v.kind, list_slug=v.list_slug, slug=v.slug, language=v.language,
                                  front_matter=v.front_matter, body=v.body) for v in view.versions.values())


def export_zip(newsletter: Newsletter, slug: str) -> bytes:
    """The issue's newest version of each language as content files in a zip archive
    (`<slug>.<lang>.md`), for a browser to download. Raises UnknownDraft."""
    with newsletter.store.reading() as session:
        issue = _get(session, slug)
        versions = [version_of(issue, r) for r in stored.current_revisions(session, issue.id).values()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for version in sorted(versions, key=lambda v: v.language):
            archive.writestr(file_name(slug, version.language), version.text())
    return buffer.getvalue()


def export_files(newsletter: Newsletter, slug: str, folder: str | Path, *,
                 revisions: RevisionSet | None = None) -> list[Path]:
    """Write the issue's content files (`<slug>.<lang>.md`, one per language written) into
    `folder`, from its newest versions or from `revisions`. Returns the files written.

    Raises UnknownDraft.
    """
    folder = Path(folder)
    with newsletter.store.reading() as session:
        issue = _get(session, slug)
        if revisions is None:
            chosen = stored.current_revisions(session, issue.id)
        else:
            chosen = {lang: stored.revision_by_id(session, rev) for lang, rev in revisions.revisions}
        versions = [version_of(issue, r) for r in chosen.values() if r is not None]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for version in versions:
        path = folder / file_name(slug, version.language)
        path.write_text(version.text(), encoding="utf-8")
        written.append(path)
    return written


def _number(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


def create_from_form(newsletter: Newsletter, form: Mapping[str, str], *, author: str | None = None) -> IssueView:
    """`create_issue` from the new-issue form's values (slug, kind, list, language, the front
    matter's fields, body). Raises what `create_issue` raises."""
    from .forms import front_matter_from_form

    kind = str(form.get("kind", ""))
    return create_issue(newsletter, slug=str(form.get("slug", "")).strip(), kind=kind,
                        list_slug=str(form.get("list", "")).strip(), language=form.get("language") or None,
                        front_matter=front_matter_from_form(kind, form), body=str(form.get("body", "")),
                        author=author)


def save_form(newsletter: Newsletter, slug: str, language: str, form: Mapping[str, str], *,
              author: str | None = None) -> Version:
    """`save_version` from the editor's form (the front matter's fields, body, and the hidden
    `parent` and `based_on`). Raises what `save_version` raises."""
    from .forms import front_matter_from_form

    with newsletter.store.session() as session:
        kind = _get(session, slug).kind
    return save_version(newsletter, slug, language, front_matter=front_matter_from_form(kind, form),
                        body=str(form.get("body", "")), parent=_number(form.get("parent")),
                        based_on=_number(form.get("based_on")), author=author)
