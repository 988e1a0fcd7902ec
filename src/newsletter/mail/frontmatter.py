"""Reading one content file's front matter: safe YAML, and checked values that name file, line and field.

Content is data pasted from partners: YAML without aliases or deep nesting, and text whose only
template syntax is the four placeholders (`{{ name }}` …), replaced by the personalisation
markers the sender fills per recipient. An unknown placeholder is left as written, for lint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import yaml

from ..errors import ContentError
from ..texts import N_, Text
from .personalise import Field, marker

__all__ = ["PLACEHOLDERS", "MAX_DEPTH", "FieldReader", "split_front_matter", "parse_yaml", "kind_of"]

PLACEHOLDERS = {
    "name": marker(Field.NAME),
    "email": marker(Field.EMAIL),
    "unsubscribe_url": marker(Field.UNSUBSCRIBE_URL),
    "preferences_url": marker(Field.PREFERENCES_URL),
}

_URL = re.compile(r"^(https?)://[^\s<>\"]+$")



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


class FieldReader:
    """Checks values from one file's front matter, naming file, line and field on error."""

    def __init__(self, path: str, lines: dict[tuple, int], first_line: int):
        self.path = path
        self.lines = lines
        self.first_line = first_line

    def line(self, where: tuple) -> int:
        while where and where not in self.lines:
            where = where[:-1]
        return self.first_line + self.lines.get(where, 0)

    def fail(self, where: tuple, message: str | Text, field: tuple | None = None) -> ContentError:
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
            raise ContentError(self.path, Text.of(N_("placeholder not allowed: %(text)s; only %(allowed)s may stand "
                                                     "between double braces"),
                                                  text=repr(text[stray.start():stray.start() + 40]), allowed=allowed),
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
                    raise self.fail(here, Text(N_("is empty: expected some text")))
                raise self.fail(where, Text.of(N_("missing: expected %(what)s"), what=_describe(key)), field=here)
            return default
        if isinstance(value, (int, float, date)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self.fail(here, Text.of(N_("expected text, got %(kind)s"), kind=kind_of(value)))
        value = value.strip()
        if max_length is not None and len(value) > max_length:
            raise self.fail(here, Text.of(N_("is %(length)s characters long; at most %(max)s are allowed"),
                                          length=len(value), max=max_length))
        if markdown:
            value = self.placeholders(value, here)
        return value

    def url(self, data: Mapping, key: str, where: tuple = ()) -> str:
        value = self.text(data, key, where)
        value = self.placeholders(value, where + (key,))
        if not _URL.match(value) and not value.startswith("[[nl:"):
            raise self.fail(where + (key,), Text.of(N_("expected an absolute https:// link, got %(value)s"),
                                                     value=repr(value)))
        return value

    def integer(self, data: Mapping, key: str, where: tuple = (), *, minimum: int = 1) -> int:
        here = where + (key,)
        value = data.get(key)
        if value is None:
            raise self.fail(where, Text(N_("missing: expected a whole number")), field=here)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(here, Text.of(N_("expected a whole number, got %(value)s"), value=repr(value)))
        if value < minimum:
            raise self.fail(here, Text.of(N_("expected %(minimum)s or more, got %(value)s"), minimum=minimum, value=value))
        return value

    def day(self, data: Mapping, key: str, where: tuple = (), *, required: bool = True) -> date | None:
        here = where + (key,)
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(where, Text(N_("missing: expected a date like 2024-12-04")), field=here)
            return None
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise self.fail(here, Text.of(N_("expected a date like 2024-12-04, got %(value)s"),
                                          value=repr(value))) from None

    def mapping(self, data: Any, where: tuple) -> Mapping:
        if not isinstance(data, Mapping):
            raise self.fail(where, Text.of(N_("expected a mapping of fields (key: value), got %(kind)s"),
                                           kind=kind_of(data)))
        return data

    def sequence(self, data: Mapping, key: str, where: tuple = (), *, required: bool = False) -> list:
        here = where + (key,)
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(where, Text(N_("missing: expected a list of items")), field=here)
            return []
        if not isinstance(value, list):
            raise self.fail(here, Text.of(N_("expected a list of items (lines starting with '- '), got %(kind)s"),
                                          kind=kind_of(value)))
        return value

    def strings(self, data: Mapping, key: str, where: tuple = (), *, required: bool = False) -> tuple[str, ...]:
        items = self.sequence(data, key, where, required=required)
        if required and not items:
            raise self.fail(where + (key,), Text(N_("expected at least one item")))
        out = []
        for i, item in enumerate(items):
            here = where + (key, i)
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str) or not item.strip():
                raise self.fail(here, Text.of(N_("expected a line of text, got %(kind)s"), kind=kind_of(item)))
            out.append(self.placeholders(item.strip(), here))
        return tuple(out)

    def known(self, data: Mapping, allowed: Iterable[str], where: tuple = ()) -> None:
        allowed = set(allowed)
        for key in data:
            if key not in allowed:
                raise self.fail(where + (str(key),), Text.of(N_("unknown field; expected one of %(fields)s"),
                                                             fields=", ".join(sorted(allowed))))


def _dotted(where: tuple) -> str:
    out = ""
    for part in where:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_DESCRIBED = {
    "slug": N_("the campaign slug, e.g. asp23-day-3"), "list": N_("the list slug, e.g. asp-daily"),
    "link": N_("an https:// link"), "title": N_("a title"), "summary": N_("a paragraph of text"),
    "speaker": N_("who spoke"), "plenary": N_("the plenary or meeting"), "label": N_("the button's text"),
    "lead": N_("a short opening paragraph"), "call": N_("a paragraph saying what to do"),
    "headline": N_("a headline"), "session": N_("the session's name, e.g. ASP 23"),
    "venue": N_("where the session is held"), "alt": N_("a description of the image"),
    "src": N_("the image's https:// address"),
}
_KINDS = {dict: N_("a mapping"), list: N_("a list"), str: N_("text"), int: N_("a number"), float: N_("a number"),
          bool: N_("true/false")}


def _describe(key: str) -> Text:
    """What the field `key` expects, said to the writer of a content file."""
    return Text(_DESCRIBED.get(key, N_("a value")))


def kind_of(value: Any) -> Text:
    """What a YAML value is, as a content error names it ("a list", "nothing")."""
    if value is None:
        return Text(N_("nothing"))
    return Text(_KINDS.get(type(value), type(value).__name__))


def split_front_matter(path: str, text: str) -> tuple[str, int, str, int]:
    """(front matter, its first line, body, the body's first line), lines 1-based."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ContentError(path, Text(N_("expected the file to start with a '---' line opening the front matter")),
                           line=1)
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "".join(lines[1:i]), 2, "".join(lines[i + 1:]), i + 2
    raise ContentError(path, Text(N_("the front matter is not closed: expected a second '---' line")), line=1)


def parse_yaml(path: str, text: str, first_line: int) -> tuple[Any, dict[tuple, int]]:
    """The front matter's value and the line (0-based, relative) of every field path."""
    loader = None
    try:
        loader = _FrontMatterLoader(text)  # refuses control characters at once
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.reader.ReaderError as exc:
        line = first_line + text.count("\n", 0, exc.position)
        raise ContentError(path, Text.of(N_("the front matter holds a character YAML refuses (%(reason)s, code "
                                            "%(character)s)"), reason=exc.reason, character=repr(exc.character)),
                           line=line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = first_line + mark.line if mark is not None else first_line
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError(path, Text.of(N_("the front matter is not valid YAML: %(problem)s"), problem=problem),
                           line=line) from None
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
