"""Content files: one issue (a single mailing) as Markdown files with YAML front matter.

An issue is a set of files, one per language, named `<name>.<lang>.md` (`day-3.en.md`,
`day-3.ar.md`). Each starts with a YAML front matter block between `---` lines, followed by
an optional Markdown body. Two kinds exist, each with a checked schema (see
docs/content-format.md): a *daily summary* of a session day and a *campaign alert*.

Every text an editor writes is Markdown without raw HTML; the few placeholders an editor may
use (`{{ name }}`, `{{ email }}`, `{{ unsubscribe_url }}`, `{{ preferences_url }}`) are
replaced (`frontmatter`) by the personalisation markers the sender fills per recipient; no
other template syntax is allowed. The typed values are in `issue`.

Errors raise `ContentError` naming the file, the line and the field, and what was expected.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..config import LANGUAGES
from ..errors import ContentError
from ..texts import N_, Text
from .frontmatter import (
    PLACEHOLDERS,
    FieldReader,
    parse_yaml,
    split_front_matter,
)
from .issue import (
    CampaignAlert,
    DailySummary,
    Document,
    Image,
    Issue,
    Kind,
    Link,
    NewsItem,
    Statement,
    Variant,
)

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
    "parse_variant",
    "issue_of",
    "load_issue",
    "load_issues",
    "expand_sources",
    "PLACEHOLDERS",
]


_FILE_NAME = re.compile(r"^(?P<stem>.+)\.(?P<lang>[a-z]{2})\.md$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
_GLOB_CHARS = re.compile(r"[*?\[]")


_COMMON = ("kind", "list", "slug", "language", "subject", "preheader", "list_name", "image")
_DAILY = ("session", "day", "total_days", "date", "venue", "lead", "highlights", "news", "statements",
          "documents", "tomorrow")
_ALERT = ("headline", "call", "points", "cta", "deadline")


def _read_daily(r: FieldReader, data: Mapping) -> DailySummary:
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
        raise r.fail(("day",), Text.of(N_("day %(day)s is after the last day (total_days is %(total)s)"), day=day,
                                       total=total))
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


def _read_alert(r: FieldReader, data: Mapping) -> CampaignAlert:
    cta = data.get("cta")
    if cta is None:
        raise r.fail((), Text(N_("missing: expected a call-to-action with a label and a link")), field=("cta",))
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
        raise ContentError(name, Text(N_("no such file"))) from None
    except UnicodeDecodeError as exc:
        raise ContentError(name, Text.of(N_("not UTF-8 text (%(reason)s at byte %(byte)s)"), reason=exc.reason,
                                         byte=exc.start)) from None
    return parse_variant(name, raw)


def parse_variant(name: str, raw: str) -> Variant:
    """Check one content file's text, as if read from the file `name` (`<name>.<lang>.md`
    tells the language when the front matter does not). Raises ContentError like `load_variant`.
    """
    path = Path(name)
    front, front_line, body, body_line = split_front_matter(name, raw)
    data, lines = parse_yaml(name, front, front_line)
    r = FieldReader(name, lines, front_line)
    data = r.mapping(data if data is not None else {}, ())

    kind_raw = data.get("kind")
    try:
        kind = Kind(kind_raw)
    except ValueError:
        where = ("kind",) if "kind" in data else ()
        raise r.fail(where, Text.of(N_("expected kind: daily-summary or kind: campaign-alert, got %(value)s"),
                                    value=repr(kind_raw))) from None
    r.known(data, _COMMON + (_DAILY if kind is Kind.DAILY_SUMMARY else _ALERT))

    match = _FILE_NAME.match(path.name)
    language = data.get("language") or (match.group("lang") if match else None)
    if not language:
        raise ContentError(name, Text(N_("cannot tell the language: name the file <name>.<lang>.md (day-3.fr.md) "
                                         "or set language: in the front matter")), line=1)
    if match and data.get("language") and data["language"] != match.group("lang"):
        raise r.fail(("language",), Text.of(N_("says %(said)s but the file name says %(named)s"),
                                            said=repr(data["language"]), named=repr(match.group("lang"))))
    if language not in LANGUAGES:
        raise r.fail(("language",), Text.of(N_("%(value)s is not a language we publish in (%(languages)s)"),
                                            value=repr(language), languages=", ".join(LANGUAGES)))

    slug = r.text(data, "slug")
    if not _SLUG.match(slug):
        raise r.fail(("slug",), Text.of(N_("expected lower-case letters, digits and hyphens (asp23-day-3), got "
                                           "%(value)s"), value=repr(slug)))
    list_slug = r.text(data, "list")
    if not _SLUG.match(list_slug):
        raise r.fail(("list",), Text.of(N_("expected a list slug such as asp-daily, got %(value)s"),
                                        value=repr(list_slug)))

    image = None
    if data.get("image") is not None:
        img = r.mapping(data["image"], ("image",))
        r.known(img, ("src", "alt", "width"), ("image",))
        width = img.get("width", 552)
        if isinstance(width, bool) or not isinstance(width, int) or not 16 <= width <= 552:
            raise r.fail(("image", "width"), Text.of(N_("expected a width in pixels from 16 to 552, got %(value)s"),
                                                     value=repr(width)))
        image = Image(src=r.url(img, "src", ("image",)), alt=r.text(img, "alt", ("image",)), width=width)

    fields = _read_daily(r, data) if kind is Kind.DAILY_SUMMARY else _read_alert(r, data)
    body_where_reader = FieldReader(name, {(): 0}, body_line)
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
            raise ContentError(text, Text(N_("no such file or folder")))
        if not matches:
            raise ContentError(text, Text(N_("no content files (*.md) here")))
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
                raise ContentError(v.path, Text.of(N_("%(field)s is %(here)s here but %(there)s in %(first)s; the "
                                                      "languages of one issue must agree"), field=attr,
                                                   here=repr(getattr(v, attr).__str__()),
                                                   there=repr(getattr(first, attr)), first=first.path), field=attr)
        if v.language in by_language:
            raise ContentError(v.path, Text.of(N_("a second %(language)s variant of %(slug)s (the first is "
                                                  "%(first)s)"), language=v.language, slug=v.slug,
                                               first=by_language[v.language].path), field="language")
        by_language[v.language] = v
    ordered = {lang: by_language[lang] for lang in sorted(by_language, key=_language_order)}
    return Issue(slug=first.slug, kind=first.kind, list=first.list, variants=ordered)


def issue_of(variants: Iterable[Variant]) -> Issue:
    """The issue these variants (of one slug) make, languages in the published order.

    Raises ContentError when their kinds or lists disagree, or a language comes twice.
    """
    variants = list(variants)
    if not variants:
        raise ContentError("(no files)", Text(N_("an issue needs at least one language")))
    return _issue_of(variants)


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
                           Text.of(N_("expected the files of one issue, found %(n)s: %(slugs)s"), n=len(issues),
                                   slugs=slugs))
    return issues[0]
