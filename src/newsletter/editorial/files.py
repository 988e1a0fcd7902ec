"""An issue's language version as the content file the CLI reads, and back: pure.

A version is its front matter as the editor wrote it (a mapping of plain values: text,
numbers, lists, mappings; dates as ISO text, placeholders as typed) and its Markdown body. The
issue-wide fields (`kind`, `list`, `slug`) and the language are the issue's, not the version's:
`content_text` adds them, `read_content_text` takes them off. A version is checked by the one
loader of content files (`mail.content.parse_variant`), so the workspace and the CLI accept
and refuse the same things.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import yaml

from ..errors import ContentError
from ..mail.content import parse_variant
from ..mail.frontmatter import parse_yaml, split_front_matter
from ..mail.issue import Variant
from ..texts import N_, Text

__all__ = ["ISSUE_FIELDS", "DATE_FIELDS", "file_name", "content_text", "read_content_text", "check_version",
           "plain_values"]

#: Fields of the issue as a whole, written into every language's file.
ISSUE_FIELDS = ("kind", "list", "slug", "language")
#: Fields whose values are dates (kept as ISO text in the store, written as YAML dates).
DATE_FIELDS = frozenset({"date", "deadline"})
#: The order fields are written in (the rest follow in the order the editor gave them).
_FIRST = ("kind", "list", "list_name", "slug", "subject", "preheader")


def file_name(slug: str, language: str) -> str:
    """The content file's name for one language: `asp23-day-4.fr.md`."""
    return f"{slug}.{language}.md"


def plain_values(value: Any) -> Any:
    """`value` with dates as ISO text and every mapping's keys as text: what a JSON column keeps."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_values(v) for v in value]
    return value


def _yaml_values(value: Any, key: str | None = None) -> Any:
    if isinstance(value, str) and key in DATE_FIELDS:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, Mapping):
        return {k: _yaml_values(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_yaml_values(v) for v in value]
    return value


class _Dumper(yaml.SafeDumper):
    """Safe YAML, with text of several lines written as a literal block (`|`)."""


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value.strip("\n") or value.endswith("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_text)


def content_text(*, kind: str, list_slug: str, slug: str, language: str, front_matter: Mapping[str, Any],
                 body: str) -> str:
    """The content file of one version: front matter between `---` lines, then the body."""
    fields = {"kind": kind, "list": list_slug, "slug": slug}
    given = {k: v for k, v in front_matter.items() if k not in ISSUE_FIELDS}
    for key in _FIRST:
        if key in given:
            fields[key] = given.pop(key)
    fields.update(given)
    front = yaml.dump(_yaml_values(fields), Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1 << 30)
    body = body.strip("\n")
    return f"---\n{front}---\n{body}\n" if body else f"---\n{front}---\n"


def read_content_text(name: str, text: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(issue-wide fields, the version's own front matter, body) of a content file's text.

    Raises ContentError (file, line) for a file that is not front matter and Markdown.
    """
    front, front_line, body, _ = split_front_matter(name, text)
    data, _lines = parse_yaml(name, front, front_line)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ContentError(name, Text(N_("expected a mapping of fields (key: value) in the front matter")),
                           line=front_line)
    data = plain_values(data)
    issue = {k: data[k] for k in ISSUE_FIELDS if k in data}
    own = {k: v for k, v in data.items() if k not in ISSUE_FIELDS}
    return issue, own, body.strip("\n")


def check_version(*, kind: str, list_slug: str, slug: str, language: str, front_matter: Mapping[str, Any],
                  body: str) -> Variant:
    """The typed variant this version makes, checked by the content loader.

    Raises ContentError naming the field that is wrong (and a line of the generated file).
    """
    text = content_text(kind=kind, list_slug=list_slug, slug=slug, language=language,
                        front_matter=front_matter, body=body)
    return parse_variant(file_name(slug, language), text)
