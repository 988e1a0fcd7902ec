"""Lint: what would make an issue fail in inboxes, checked before preview output and every send.

Errors block sending (`LintReport.raise_for_errors`); warnings are shown. The checks work on
the rendered variants alone — pure functions, no database: the caller passes the languages
the list's subscribers use and the list's fallback chain.

Rules (`Problem.rule`):

- `size`: the HTML part, encoded as sent (UTF-8, in the smaller of quoted-printable and base64,
  as the message builder chooses), over 100 KB is an error —
  Gmail clips messages at about 102 KB and hides the footer with the unsubscribe link; over
  90 KB is a warning.
- `unsubscribe`: no unsubscribe link (the sender's marker) in the HTML or the text part.
- `image-alt`: an image without alt text.
- `insecure-link`: a link or image that is not https:// (http:// to a loopback address, as in
  a test installation, is a warning), or a relative or script link.
- `unresolved`: a template variable left in the output (`{{ … }}`, `{% … %}`, `%(name)s`,
  or a marker naming no per-recipient field).
- `missing-variant`: a language the list's subscribers use has no variant; a warning when the
  fallback chain gives them another, an error when it gives them nothing.
- `subject`: the subject is missing or over 150 characters.
- `preheader`: no preheader (a warning: the client then shows the first words of the mail).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from ipaddress import ip_address
from urllib.parse import urlsplit

from ..errors import LintFailed, MissingVariant
from ..i18n import N_
from .compose import DEFAULT_FALLBACK, RenderedMail, variant_for
from .encoding import encoded_size
from .personalise import ISSUE_FIELDS, MARKER_PATTERN, Field, marker

__all__ = [
    "Severity",
    "Problem",
    "LintReport",
    "lint_mail",
    "lint_issue",
    "encoded_size",
    "SIZE_ERROR",
    "SIZE_WARNING",
    "SUBJECT_MAX",
]

#: Encoded HTML size (bytes) that is an error, and that is a warning.
SIZE_ERROR = 100 * 1024
SIZE_WARNING = 90 * 1024
SUBJECT_MAX = 150

_FIELDS = {f.value for f in ISSUE_FIELDS}
_TEMPLATE_LEFTOVER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|%\([A-Za-z_]+\)[sd]", re.S)
_TEXT_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>\"\])]+")


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding: how bad, which rule, in which language variant, and what to do."""

    severity: Severity
    rule: str
    message: str
    language: str | None = None
    #: The message before its values went in (a catalogue msgid, `%(name)s` placeholders), and
    #: the values, so that a face can show the message in its reader's language.
    text: str = ""
    values: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        where = f"[{self.language}] " if self.language else ""
        return f"{self.severity.value}: {where}{self.rule}: {self.message}"


@dataclass(frozen=True)
class LintReport:
    """Every problem found in an issue."""

    problems: tuple[Problem, ...] = ()

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        """True when nothing blocks sending (warnings may remain)."""
        return not self.errors

    def rules(self, severity: Severity | None = None) -> set[str]:
        return {p.rule for p in self.problems if severity is None or p.severity is severity}

    def raise_for_errors(self) -> None:
        """Raises LintFailed listing the errors, if there are any."""
        if self.errors:
            raise LintFailed(self.errors)

    def format(self) -> str:
        """The report for people: one line per problem, or a line saying all is well."""
        if not self.problems:
            return "lint: no problems"
        lines = [str(p) for p in self.errors + self.warnings]
        lines.append(f"lint: {len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        return "\n".join(lines)


class _Tags(HTMLParser):
    """Collects the links and images of an HTML part."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href") is not None:
            self.links.append(values["href"] or "")
        elif tag == "img":
            self.images.append(values)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _problem(severity: Severity, rule: str, text: str, variant: str | None, **values: object) -> Problem:
    """A finding in `variant` whose message is `text` (marked with `N_`) with `values` put in."""
    shown = {key: str(value) for key, value in values.items()}
    return Problem(severity, rule, text % shown, variant, text, tuple(shown.items()))


#: The insecure-link messages, by what holds the link: (loopback http, other http, not absolute).
_INSECURE = {
    "link": (N_("the link %(url)s is http:// to a loopback address: fine for a test, not for sending (set base_url "
                "to the public https:// address)"),
             N_("the link %(url)s is not https://; use the https:// address"),
             N_("the link %(url)s is not an absolute https:// address")),
    "image": (N_("the image %(url)s is http:// to a loopback address: fine for a test, not for sending (set "
                 "base_url to the public https:// address)"),
              N_("the image %(url)s is not https://; use the https:// address"),
              N_("the image %(url)s is not an absolute https:// address")),
    "text": (N_("the link in the text part %(url)s is http:// to a loopback address: fine for a test, not for "
                "sending (set base_url to the public https:// address)"),
             N_("the link in the text part %(url)s is not https://; use the https:// address"),
             N_("the link in the text part %(url)s is not an absolute https:// address")),
}
_UNRESOLVED = {
    "subject": N_("the subject holds the unresolved variable %(leftover)s; placeholders are {{ name }}, "
                  "{{ email }}, {{ unsubscribe_url }} and {{ preferences_url }}"),
    "text": N_("the text part holds the unresolved variable %(leftover)s; placeholders are {{ name }}, "
               "{{ email }}, {{ unsubscribe_url }} and {{ preferences_url }}"),
    "html": N_("the HTML part holds the unresolved variable %(leftover)s; placeholders are {{ name }}, "
               "{{ email }}, {{ unsubscribe_url }} and {{ preferences_url }}"),
}


def _check_url(url: str, what: str, language: str) -> Problem | None:
    if MARKER_PATTERN.fullmatch(url) or url.startswith(("mailto:", "#")):
        return None
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc:
        return None
    loopback, plain, relative = _INSECURE[what]
    if parts.scheme == "http" and parts.netloc:
        if _is_loopback(parts.hostname):
            return _problem(Severity.WARNING, "insecure-link", loopback, language, url=url)
        return _problem(Severity.ERROR, "insecure-link", plain, language, url=url)
    return _problem(Severity.ERROR, "insecure-link", relative, language, url=repr(url))


def lint_mail(mail: RenderedMail) -> list[Problem]:
    """The problems of one rendered language variant (markers not yet filled)."""
    lang = mail.language
    problems: list[Problem] = []

    subject = mail.subject.strip()
    if not subject:
        problems.append(_problem(Severity.ERROR, "subject", N_("the subject is missing; add subject: to the file"), lang))
    elif len(subject) > SUBJECT_MAX:
        problems.append(_problem(Severity.ERROR, "subject",
                                 N_("the subject is %(length)s characters long; keep it to %(max)s "
                                    "(phones show about 40)"), lang, length=len(subject), max=SUBJECT_MAX))
    if not mail.preheader.strip():
        problems.append(_problem(Severity.WARNING, "preheader",
                                 N_("no preheader: inboxes will show the first words of the mail instead"), lang))

    size = encoded_size(mail.html)
    if size > SIZE_ERROR:
        problems.append(_problem(Severity.ERROR, "size",
                                 N_("the HTML part is %(size)s KB encoded; Gmail clips mail over about "
                                    "102 KB, hiding the footer — keep it under %(limit)s KB"), lang,
                                 size=f"{size / 1024:.0f}", limit=SIZE_ERROR // 1024))
    elif size > SIZE_WARNING:
        problems.append(_problem(Severity.WARNING, "size",
                                 N_("the HTML part is %(size)s KB encoded, close to Gmail's clipping "
                                    "limit (about 102 KB); errors start at %(limit)s KB"), lang,
                                 size=f"{size / 1024:.0f}", limit=SIZE_ERROR // 1024))

    tags = _Tags()
    tags.feed(mail.html)
    tags.close()
    unsubscribe = marker(Field.UNSUBSCRIBE_URL)
    if unsubscribe not in tags.links:
        problems.append(_problem(Severity.ERROR, "unsubscribe",
                                 N_("the HTML part has no unsubscribe link (a link to %(marker)s)"), lang,
                                 marker=unsubscribe))
    if unsubscribe not in mail.text:
        problems.append(_problem(Severity.ERROR, "unsubscribe",
                                 N_("the text part has no unsubscribe link (%(marker)s)"), lang, marker=unsubscribe))

    for image in tags.images:
        alt = image.get("alt")
        if alt is None or not alt.strip():
            problems.append(_problem(Severity.ERROR, "image-alt",
                                     N_("the image %(src)s has no alt text; describe it for readers "
                                        "whose client blocks images"), lang, src=repr(image.get("src"))))

    seen: set[str] = set()
    candidates = [(url, "link") for url in tags.links]
    candidates += [(image.get("src") or "", "image") for image in tags.images]
    candidates += [(url, "text") for url in _TEXT_URL.findall(mail.text)]
    for url, what in candidates:
        if url in seen:
            continue
        seen.add(url)
        problem = _check_url(url, what, lang)
        if problem:
            problems.append(problem)

    for part, content in (("subject", mail.subject), ("text", mail.text), ("html", mail.html)):
        leftovers = set(_TEMPLATE_LEFTOVER.findall(content))
        leftovers |= {m.group(0) for m in MARKER_PATTERN.finditer(content) if m.group(1) not in _FIELDS}
        for leftover in sorted(leftovers):
            problems.append(_problem(Severity.ERROR, "unresolved", _UNRESOLVED[part], lang, leftover=leftover))
    return problems


def lint_issue(rendered: Mapping[str, RenderedMail], *, subscriber_languages: Iterable[str] = (),
               fallback_chain: Iterable[str] = DEFAULT_FALLBACK) -> LintReport:
    """Lint every variant of an issue, and check each subscriber language has something to read.

    `subscriber_languages` are the languages the list's subscribers use (ask the store);
    `fallback_chain` is the list's (English by default).
    """
    problems: list[Problem] = []
    for mail in rendered.values():
        problems.extend(lint_mail(mail))
    available = tuple(rendered)
    chain = tuple(fallback_chain) or DEFAULT_FALLBACK
    for language in dict.fromkeys(subscriber_languages):
        if language in available:
            continue
        try:
            got = variant_for(language, available, chain)
        except MissingVariant:
            problems.append(_problem(Severity.ERROR, "missing-variant",
                                     N_("subscribers who read %(language)s would get nothing: there is no "
                                        "%(language)s variant and the fallback chain %(chain)s reaches none of "
                                        "%(available)s"), language, language=language, chain=" > ".join(chain),
                                     available=", ".join(available) or "—"))
        else:
            problems.append(_problem(Severity.WARNING, "missing-variant",
                                     N_("no %(language)s variant: subscribers who read %(language)s will get the "
                                        "%(got)s one"), language, language=language, got=got))
    return LintReport(tuple(problems))
