"""Content files: one issue (a single mailing) as Markdown files with YAML front matter.

An issue is a set of files, one per language, named `<name>.<lang>.md` (`day-3.en.md`,
`day-3.ar.md`). Each starts with a YAML front matter block between `---` lines, followed by
an optional Markdown body. Two kinds exist, each with a checked schema (see
docs/content-format.md): a *daily summary* of a session day and a *campaign alert*.

Every text an editor writes is Markdown without raw HTML; the few placeholders an editor may
use (`{{ name }}`, `{{ email }}`, `{{ unsubscribe_url }}`, `{{ preferences_url }}`) are
expanded here in a Jinja2 sandbox into the personalisation markers the sender fills per
recipient. An unknown placeholder is left as written, for lint to report.

Errors raise `ContentError` naming the file, the line and the field, and what was expected.
"""

from __future__ import annotations

import enum
import glob
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from ..config import LANGUAGES
from ..errors import ContentError
from .personalise import Field, marker

__all__ = [
    "Kind",
    "Link",
    "NewsItem",
    "Statement",
    "Document",
    "Image",
    "DailySummary",
    "CampaignAlert",
    "Variant",
    "Issue",
    "load_variant",
    "load_issue",
    "load_issues",
    "expand_sources",
    "PLACEHOLDERS",
]


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
PLACEHOLDERS = {
    "name": marker(Field.NAME),
    "email": marker(Field.EMAIL),
    "unsubscribe_url": marker(Field.UNSUBSCRIBE_URL),
    "preferences_url": marker(Field.PREFERENCES_URL),
}

_FILE_NAME = re.compile(r"^(?P<stem>.+)\.(?P<lang>[a-z]{2})\.md$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
_URL = re.compile(r"^(https?)://[^\s<>\"]+$")
_GLOB_CHARS = re.compile(r"[*?\[]")


#: `{{ name }}`: a placeholder (known ones become markers, unknown ones stay for lint to name).
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
#: Any other template syntax: content is data pasted from partners, never a program.
_TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#")
#: Front matter nested deeper than this is refused (no issue needs more than four levels).
MAX_DEPTH = 32


class _FrontMatterLoader(yaml.SafeLoader):
    """YAML for front matter: no aliases (a few lines of them can expand to gigabytes) and no
    nesting deeper than MAX_DEPTH (composing is recursive)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not allowed in content files",
                self.peek_event().start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"the front matter is nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# --------------------------------------------------------------------------------------- reading


class _Reader:
    """Checks values from one file's front matter, naming file, line and field on error."""

    def __init__(self, path: str, lines: dict[tuple, int], first_line: int):
        self.path = path
        self.lines = lines
        self.first_line = first_line

    def line(self, where: tuple) -> int:
        while where and where not in self.lines:
            where = where[:-1]
        return self.first_line + self.lines.get(where, 0)

    def fail(self, where: tuple, message: str, field: tuple | None = None) -> ContentError:
        """An error at the line of `where`, about `field` (default: `where` itself)."""
        return ContentError(self.path, message, line=self.line(where),
                            field=_dotted(where if field is None else field) or None)

    def placeholders(self, text: str, where: tuple) -> str:
        """Replace each `{{ name }}` placeholder by its marker (an unknown name stays as written, for
        lint to point at). Raises ContentError for any other template syntax: expressions,
        filters, `{% … %}` and `{# … #}` are not allowed in content."""
        if not _TEMPLATE_SYNTAX.search(text):
            return text
        stray = _TEMPLATE_SYNTAX.search(_PLACEHOLDER.sub(lambda m: " " * len(m.group(0)), text))
        if stray:
            allowed = ", ".join("{{ %s }}" % name for name in PLACEHOLDERS)
            raise ContentError(self.path, f"placeholder not allowed: {text[stray.start():stray.start() + 40]!r}; "
                                          f"only {allowed} may stand between double braces",
                               line=self.line(where) + text.count("\n", 0, stray.start()),
                               field=_dotted(where) or None)
        return _PLACEHOLDER.sub(lambda m: PLACEHOLDERS.get(m.group(1), m.group(0)), text)

    def text(self, data: Mapping, key: str, where: tuple = (), *, required: bool = True,
             max_length: int | None = None, markdown: bool = False, default: str = "") -> str:
        here = where + (key,)
        value = data.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                if key in data:
                    raise self.fail(here, "is empty: expected some text")
                raise self.fail(where, f"missing: expected {_describe(key)}", field=here)
            return default
        if isinstance(value, (int, float, date)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self.fail(here, f"expected text, got {_kind_of(value)}")
        value = value.strip()
        if max_length is not None and len(value) > max_length:
            raise self.fail(here, f"is {len(value)} characters long; at most {max_length} are allowed")
        if markdown:
            value = self.placeholders(value, here)
        return value

    def url(self, data: Mapping, key: str, where: tuple = ()) -> str:
        value = self.text(data, key, where)
        value = self.placeholders(value, where + (key,))
        if not _URL.match(value) and not value.startswith("[[nl:"):
            raise self.fail(where + (key,), f"expected an absolute https:// link, got {value!r}")
        return value

    def integer(self, data: Mapping, key: str, where: tuple = (), *, minimum: int = 1) -> int:
        here = where + (key,)
        value = data.get(key)
        if value is None:
            raise self.fail(where, "missing: expected a whole number", field=here)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(here, f"expected a whole number, got {value!r}")
        if value < minimum:
            raise self.fail(here, f"expected {minimum} or more, got {value}")
        return value

    def day(self, data: Mapping, key: str, where: tuple = (), *, required: bool = True) -> date | None:
        here = where + (key,)
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(where, "missing: expected a date like 2024-12-04", field=here)
            return None
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise self.fail(here, f"expected a date like 2024-12-04, got {value!r}") from None

    def mapping(self, data: Any, where: tuple) -> Mapping:
        if not isinstance(data, Mapping):
            raise self.fail(where, f"expected a mapping of fields (key: value), got {_kind_of(data)}")
        return data

    def sequence(self, data: Mapping, key: str, where: tuple = (), *, required: bool = False) -> list:
        here = where + (key,)
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(where, "missing: expected a list of items", field=here)
            return []
        if not isinstance(value, list):
            raise self.fail(here, f"expected a list of items (lines starting with '- '), got {_kind_of(value)}")
        return value

    def strings(self, data: Mapping, key: str, where: tuple = (), *, required: bool = False) -> tuple[str, ...]:
        items = self.sequence(data, key, where, required=required)
        if required and not items:
            raise self.fail(where + (key,), "expected at least one item")
        out = []
        for i, item in enumerate(items):
            here = where + (key, i)
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str) or not item.strip():
                raise self.fail(here, f"expected a line of text, got {_kind_of(item)}")
            out.append(self.placeholders(item.strip(), here))
        return tuple(out)

    def known(self, data: Mapping, allowed: Iterable[str], where: tuple = ()) -> None:
        allowed = set(allowed)
        for key in data:
            if key not in allowed:
                raise self.fail(where + (str(key),),
                                f"unknown field; expected one of {', '.join(sorted(allowed))}")


def _dotted(where: tuple) -> str:
    out = ""
    for part in where:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(key: str) -> str:
    return {"slug": "the campaign slug, e.g. asp23-day-3", "list": "the list slug, e.g. asp-daily",
            "link": "an https:// link", "title": "a title", "summary": "a paragraph of text",
            "speaker": "who spoke", "plenary": "the plenary or meeting", "label": "the button's text",
            "lead": "a short opening paragraph", "call": "a paragraph saying what to do",
            "headline": "a headline", "session": "the session's name, e.g. ASP 23",
            "venue": "where the session is held", "alt": "a description of the image",
            "src": "the image's https:// address"}.get(key, "a value")


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", int: "a number", float: "a number",
            bool: "true/false"}.get(type(value), type(value).__name__)


def _split_front_matter(path: str, text: str) -> tuple[str, int, str, int]:
    """(front matter, its first line, body, the body's first line), lines 1-based."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ContentError(path, "expected the file to start with a '---' line opening the front matter",
                           line=1)
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "".join(lines[1:i]), 2, "".join(lines[i + 1:]), i + 2
    raise ContentError(path, "the front matter is not closed: expected a second '---' line", line=1)


def _parse_yaml(path: str, text: str, first_line: int) -> tuple[Any, dict[tuple, int]]:
    """The front matter's value and the line (0-based, relative) of every field path."""
    loader = None
    try:
        loader = _FrontMatterLoader(text)  # refuses control characters at once
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.reader.ReaderError as exc:
        line = first_line + text.count("\n", 0, exc.position)
        raise ContentError(path, f"the front matter holds a character YAML refuses ({exc.reason}, "
                                 f"code {exc.character!r})", line=line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + mark.line if mark is not None else first_line
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError(path, f"the front matter is not valid YAML: {problem}", line=line) from None
    finally:
        if loader is not None:
            loader.dispose()
    lines: dict[tuple, int] = {}

    def walk(n: yaml.Node, where: tuple) -> None:
        lines.setdefault(where, n.start_mark.line)
        if isinstance(n, yaml.MappingNode):
            for key_node, value_node in n.value:
                here = where + (str(key_node.value),)
                lines.setdefault(here, key_node.start_mark.line)
                walk(value_node, here)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, where + (i,))

    if node is not None:
        walk(node, ())
    return data, lines


_COMMON = ("kind", "list", "slug", "language", "subject", "preheader", "list_name", "image")
_DAILY = ("session", "day", "total_days", "date", "venue", "lead", "highlights", "news", "statements",
          "documents", "tomorrow")
_ALERT = ("headline", "call", "points", "cta", "deadline")


def _read_daily(r: _Reader, data: Mapping) -> DailySummary:
    news = []
    for i, item in enumerate(r.sequence(data, "news")):
        where = ("news", i)
        item = r.mapping(item, where)
        r.known(item, ("date", "title", "link", "summary"), where)
        news.append(NewsItem(date=r.day(item, "date", where), title=r.text(item, "title", where, markdown=True),
                             url=r.url(item, "link", where), summary=r.text(item, "summary", where, markdown=True)))
    statements = []
    for i, item in enumerate(r.sequence(data, "statements")):
        where = ("statements", i)
        item = r.mapping(item, where)
        r.known(item, ("speaker", "organisation", "plenary", "link"), where)
        statements.append(Statement(speaker=r.text(item, "speaker", where),
                                    organisation=r.text(item, "organisation", where, required=False),
                                    plenary=r.text(item, "plenary", where), url=r.url(item, "link", where)))
    documents = []
    for i, item in enumerate(r.sequence(data, "documents")):
        where = ("documents", i)
        item = r.mapping(item, where)
        r.known(item, ("title", "link"), where)
        documents.append(Document(title=r.text(item, "title", where), url=r.url(item, "link", where)))
    day = r.integer(data, "day")
    total = r.integer(data, "total_days")
    if day > total:
        raise r.fail(("day",), f"day {day} is after the last day (total_days is {total})")
    return DailySummary(
        session=r.text(data, "session", max_length=100),
        day=day,
        total_days=total,
        date=r.day(data, "date"),
        venue=r.text(data, "venue", max_length=200),
        lead=r.text(data, "lead", markdown=True),
        highlights=r.strings(data, "highlights"),
        news=tuple(news),
        statements=tuple(statements),
        documents=tuple(documents),
        tomorrow=r.strings(data, "tomorrow"),
    )


def _read_alert(r: _Reader, data: Mapping) -> CampaignAlert:
    cta = data.get("cta")
    if cta is None:
        raise r.fail((), "missing: expected a call-to-action with a label and a link", field=("cta",))
    cta = r.mapping(cta, ("cta",))
    r.known(cta, ("label", "link"), ("cta",))
    return CampaignAlert(
        headline=r.text(data, "headline", max_length=200, markdown=True),
        call=r.text(data, "call", markdown=True),
        points=r.strings(data, "points", required=True),
        cta=Link(label=r.text(cta, "label", ("cta",), max_length=60), url=r.url(cta, "link", ("cta",))),
        deadline=r.day(data, "deadline", required=False),
    )


def load_variant(path: str | Path) -> Variant:
    """Read and check one content file.

    Raises ContentError (file, line, field, what was expected) for anything wrong.
    """
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContentError(name, "no such file") from None
    except UnicodeDecodeError as exc:
        raise ContentError(name, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    front, front_line, body, body_line = _split_front_matter(name, raw)
    data, lines = _parse_yaml(name, front, front_line)
    r = _Reader(name, lines, front_line)
    data = r.mapping(data if data is not None else {}, ())

    kind_raw = data.get("kind")
    try:
        kind = Kind(kind_raw)
    except ValueError:
        where = ("kind",) if "kind" in data else ()
        raise r.fail(where, f"expected kind: daily-summary or kind: campaign-alert, got {kind_raw!r}") from None
    r.known(data, _COMMON + (_DAILY if kind is Kind.DAILY_SUMMARY else _ALERT))

    match = _FILE_NAME.match(path.name)
    language = data.get("language") or (match.group("lang") if match else None)
    if not language:
        raise ContentError(name, "cannot tell the language: name the file <name>.<lang>.md (day-3.fr.md) "
                                 "or set language: in the front matter", line=1)
    if match and data.get("language") and data["language"] != match.group("lang"):
        raise r.fail(("language",), f"says {data['language']!r} but the file name says {match.group('lang')!r}")
    if language not in LANGUAGES:
        raise r.fail(("language",), f"{language!r} is not a language we publish in ({', '.join(LANGUAGES)})")

    slug = r.text(data, "slug")
    if not _SLUG.match(slug):
        raise r.fail(("slug",), f"expected lower-case letters, digits and hyphens (asp23-day-3), got {slug!r}")
    list_slug = r.text(data, "list")
    if not _SLUG.match(list_slug):
        raise r.fail(("list",), f"expected a list slug such as asp-daily, got {list_slug!r}")

    image = None
    if data.get("image") is not None:
        img = r.mapping(data["image"], ("image",))
        r.known(img, ("src", "alt", "width"), ("image",))
        width = img.get("width", 552)
        if isinstance(width, bool) or not isinstance(width, int) or not 16 <= width <= 552:
            raise r.fail(("image", "width"), f"expected a width in pixels from 16 to 552, got {width!r}")
        image = Image(src=r.url(img, "src", ("image",)), alt=r.text(img, "alt", ("image",)), width=width)

    fields = _read_daily(r, data) if kind is Kind.DAILY_SUMMARY else _read_alert(r, data)
    body_where_reader = _Reader(name, {(): 0}, body_line)
    return Variant(
        language=language,
        path=name,
        kind=kind,
        list=list_slug,
        slug=slug,
        # Subject and preheader are checked by lint (missing, too long), not refused here.
        subject=r.text(data, "subject", required=False, markdown=True),
        preheader=r.text(data, "preheader", required=False, markdown=True),
        list_name=r.text(data, "list_name", required=False, default=list_slug),
        fields=fields,
        body=body_where_reader.placeholders(body.strip("\n"), ()),
        image=image,
    )


# --------------------------------------------------------------------------------------- sets


def expand_sources(sources: Iterable[str | Path]) -> list[Path]:
    """The content files named by paths, folders (their `*.md`) and glob patterns, in order.

    Raises ContentError for a path or pattern that matches nothing.
    """
    found: list[Path] = []
    for source in sources:
        text = str(source)
        path = Path(text)
        if path.is_dir():
            matches = sorted(path.glob("*.md"))
        elif _GLOB_CHARS.search(text):
            matches = sorted(Path(p) for p in glob.glob(text) if p.endswith(".md"))
        elif path.exists():
            matches = [path]
        else:
            raise ContentError(text, "no such file or folder")
        if not matches:
            raise ContentError(text, "no content files (*.md) here")
        for match in matches:
            if match not in found:
                found.append(match)
    return found


def _issue_of(variants: list[Variant]) -> Issue:
    first = variants[0]
    by_language: dict[str, Variant] = {}
    for v in variants:
        for attr in ("kind", "list"):
            if getattr(v, attr) != getattr(first, attr):
                raise ContentError(v.path, f"{attr} is {getattr(v, attr).__str__()!r} here but "
                                           f"{getattr(first, attr)!r} in {first.path}; the languages of "
                                           "one issue must agree", field=attr)
        if v.language in by_language:
            raise ContentError(v.path, f"a second {v.language} variant of {v.slug} "
                                       f"(the first is {by_language[v.language].path})", field="language")
        by_language[v.language] = v
    ordered = {lang: by_language[lang] for lang in sorted(by_language, key=_language_order)}
    return Issue(slug=first.slug, kind=first.kind, list=first.list, variants=ordered)


def _language_order(language: str) -> tuple[int, str]:
    return (LANGUAGES.index(language) if language in LANGUAGES else len(LANGUAGES), language)


def load_issues(sources: Iterable[str | Path]) -> list[Issue]:
    """Every issue in the files named by `sources`, grouped by slug, in order of first appearance.

    Raises ContentError for the first wrong file, or for languages of one slug that disagree.
    """
    groups: dict[str, list[Variant]] = {}
    for path in expand_sources(sources):
        variant = load_variant(path)
        groups.setdefault(variant.slug, []).append(variant)
    return [_issue_of(variants) for variants in groups.values()]


def load_issue(sources: Iterable[str | Path] | str | Path) -> Issue:
    """The one issue in the files named by `sources` (paths, folders or glob patterns).

    Raises ContentError for a wrong file, or when the files hold more than one slug.
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    issues = load_issues(sources)
    if len(issues) != 1:
        slugs = ", ".join(issue.slug for issue in issues)
        raise ContentError(", ".join(str(s) for s in sources),
                           f"expected the files of one issue, found {len(issues)}: {slugs}")
    return issues[0]
