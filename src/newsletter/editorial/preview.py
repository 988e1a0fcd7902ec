"""Previews for the workspace: each language as its readers get it, from the message the send
would put on the wire (the one builder, signed alike), for a saved issue or a version being
typed; with the lint report and each language's direction."""

from __future__ import annotations

import email
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from email import policy
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import ContentError, InvalidField

from ..i18n import text_direction
from ..mail.compose import RenderedMail, render_variant, variant_for
from ..mail.lint import LintReport, Problem, lint_mail
from ..mail.message import ListInfo, MailSkeleton
from ..mail.postmark import Postmark
from ..mail.preview import SampleRecipient, preview_message
from ..texts import N_, Text
from .files import check_version
from .issues import show_issue
from .versions import IssueView, Version

if TYPE_CHECKING:
    from ..installation import Newsletter
    from .sends import IssueSend

__all__ = ["LanguagePreview", "Editor", "IssuePreview", "wire_parts", "preview_send", "preview_draft",
           "preview_issue", "preview_language", "preview_form", "editor"]


@dataclass(frozen=True)
class LanguagePreview:
    """One reader language: the variant they get (another one along the fallback chain when
    theirs is missing), the subject, the HTML and text parts as a sample reader receives them,
    the direction to show it in, and lint's problems with it."""

    language: str
    variant: str
    subject: str
    html: str
    text: str
    direction: str
    problems: tuple[Problem, ...] = ()

    @property
    def fallback(self) -> bool:
        return self.variant != self.language


def wire_parts(message: bytes) -> tuple[str, str, str]:
    """(subject, HTML part, text part) of a message's bytes, decoded."""
    parsed = email.message_from_bytes(message, policy=policy.default)
    html = parsed.get_body(("html",))
    text = parsed.get_body(("plain",))
    return (str(parsed["Subject"] or ""), html.get_content() if html is not None else "",
            text.get_content() if text is not None else "")


def _preview(newsletter: Newsletter, mail: RenderedMail, language: str, info: ListInfo,
             postmark: Postmark, problems: tuple[Problem, ...]) -> LanguagePreview:
    wire = preview_message(newsletter.config, MailSkeleton(newsletter.config, mail, info), SampleRecipient(),
                           now=newsletter.clock(), postmark=postmark)
    subject, html, text = wire_parts(wire)
    return LanguagePreview(language, mail.language, subject, html, text, text_direction(mail.language), problems)


def preview_send(newsletter: Newsletter, send: IssueSend, *, languages: tuple[str, ...] | None = None
                 ) -> tuple[list[LanguagePreview], LintReport]:
    """Every reader language of a prepared send (default: the installation's languages), as
    that reader gets it, and the send's lint report. Raises DkimError (the key cannot be read)."""
    prepared = send.prepared
    postmark = Postmark.from_config(newsletter.config, newsletter.secret())
    info = ListInfo(prepared.plan.list_slug, prepared.plan.list_name or prepared.plan.list_slug, prepared.slug)
    out = []
    for language in languages or newsletter.config.languages:
        variant = variant_for(language, prepared.rendered, prepared.plan.fallback_chain or ("en",))
        problems = tuple(p for p in prepared.lint.problems if p.language in (variant, language))
        out.append(_preview(newsletter, prepared.rendered[variant], language, info, postmark, problems))
    return out, prepared.lint


def preview_draft(newsletter: Newsletter, slug: str, language: str, *, front_matter: Mapping[str, Any],
                  body: str) -> LanguagePreview:
    """A version being typed (not saved), as its readers would get it, with lint's problems.

    Raises UnknownDraft; ContentError naming the field that is wrong.
    """
    view = show_issue(newsletter, slug)
    variant = check_version(kind=view.kind, list_slug=view.list_slug, slug=slug, language=language,
                            front_matter=front_matter, body=body)
    mail = render_variant(newsletter.config, variant)
    postmark = Postmark.from_config(newsletter.config, newsletter.secret())
    info = ListInfo(view.list_slug, variant.list_name or view.list_slug, slug)
    return _preview(newsletter, mail, language, info, postmark, tuple(lint_mail(mail)))


@dataclass(frozen=True)
class Editor:
    """What the editor of one language shows: the issue, the version edited (None: not written
    yet; the form then starts from the source language's text), the source's newest version
    (what a translation is made from), and how the saved version reads."""

    view: IssueView
    language: str
    version: Version | None
    source: Version | None
    front_matter: Mapping[str, Any]
    body: str
    preview: LanguagePreview | None


class IssuePreview(NamedTuple):
    """Every reader language of an issue's newest revisions as readers get them, with the lint
    report and the revision set shown."""

    send: IssueSend
    languages: list[LanguagePreview]
    lint: LintReport


_SENDS: OrderedDict[tuple[int, str, str], IssueSend] = OrderedDict()
_SENDS_LOCK = threading.Lock()


def _prepared(newsletter: Newsletter, slug: str) -> IssueSend:
    """The prepared send of the issue's newest revisions, kept for the few frames that show it."""
    from .sends import prepare_issue_send

    view = show_issue(newsletter, slug)
    key = (id(newsletter), slug, view.revision_set.digest)
    with _SENDS_LOCK:
        if key in _SENDS:
            _SENDS.move_to_end(key)
            return _SENDS[key]
    send = prepare_issue_send(newsletter, slug)
    with _SENDS_LOCK:
        _SENDS[key] = send
        while len(_SENDS) > 16:
            _SENDS.popitem(last=False)
    return send


def preview_issue(newsletter: Newsletter, slug: str) -> IssuePreview:
    """Every reader language of the issue as readers get it now. Raises UnknownDraft;
    ContentError (nothing written yet); UnknownList; MissingVariant."""
    send = _prepared(newsletter, slug)
    languages, lint = preview_send(newsletter, send)
    return IssuePreview(send, languages, lint)


def preview_language(newsletter: Newsletter, slug: str, language: str) -> LanguagePreview:
    """One reader language of the issue as its readers get it now (see `preview_issue`)."""
    send = _prepared(newsletter, slug)
    return preview_send(newsletter, send, languages=(language,))[0][0]


def editor(newsletter: Newsletter, slug: str, language: str) -> Editor:
    """The editor of one language. Raises UnknownDraft; InvalidField (not a language we publish)."""
    if language not in newsletter.config.languages:
        raise InvalidField("language", Text.of(N_("%(value)s is not one of %(languages)s"), value=repr(language),
                                               languages=", ".join(newsletter.config.languages)))
    view = show_issue(newsletter, slug)
    version = view.versions.get(language)
    source = view.versions.get(view.source_language)
    start = version or source
    shown = None
    if version is not None:
        try:
            shown = preview_draft(newsletter, slug, language, front_matter=version.front_matter, body=version.body)
        except ContentError:
            shown = None
    return Editor(view, language, version, source, dict(start.front_matter) if start else {},
                  start.body if start else "", shown)


def preview_form(newsletter: Newsletter, slug: str, language: str, form: Mapping[str, str]) -> LanguagePreview:
    """`preview_draft` of the editor's form as typed. Raises UnknownDraft; ContentError."""
    from .forms import front_matter_from_form

    view = show_issue(newsletter, slug)
    return preview_draft(newsletter, slug, language, front_matter=front_matter_from_form(view.kind, form),
                         body=str(form.get("body", "")))
