"""The front matter as form fields, so that nobody writes YAML: which fields each kind has, the
form's values for a version, and the front matter a submitted form makes. Pure.

Field names: a plain field is its key (`subject`, `day`); a list of lines is one text area,
one item a line (`highlights`); a repeated group is `<key>-<n>-<part>` (`news-0-title`), and a
group whose parts are all empty is dropped; a single group is `<key>-<part>` (`cta-label`).
Values are taken as given: the content loader checks them (a day of "four" is refused there,
naming the field), so the form and a content file are refused for the same reasons.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..i18n import N_
from ..mail.issue import Kind

__all__ = ["FormField", "fields_of", "front_matter_from_form", "form_values", "GROUP_ROWS"]

#: Empty rows a repeated group offers beyond those already filled.
GROUP_ROWS = 1


@dataclass(frozen=True)
class FormField:
    """One field of the form: `kind` is text, markdown, number, date, url, lines, group or one."""

    key: str
    label: str
    kind: str = "text"
    required: bool = False
    #: For groups: the parts (key, label, kind).
    parts: tuple[tuple[str, str, str], ...] = ()


_COMMON = (
    FormField("subject", N_("Subject"), required=True),
    FormField("preheader", N_("Preheader (the line inboxes show after the subject)")),
    FormField("list_name", N_("The list's name in this language")),
)
_DAILY = (
    FormField("session", N_("Session"), required=True),
    FormField("day", N_("Day"), "number", required=True),
    FormField("total_days", N_("Days in the session"), "number", required=True),
    FormField("date", N_("Date"), "date", required=True),
    FormField("venue", N_("Venue"), required=True),
    FormField("lead", N_("Lead"), "markdown", required=True),
    FormField("highlights", N_("Highlights (one a line)"), "lines"),
    FormField("news", N_("News"), "group", parts=(("date", N_("Date"), "date"), ("title", N_("Title"), "text"),
                                                 ("link", N_("Link"), "url"),
                                                 ("summary", N_("Summary"), "markdown"))),
    FormField("statements", N_("Statements"), "group", parts=(("speaker", N_("Speaker"), "text"),
                                                             ("organisation", N_("Organisation"), "text"),
                                                             ("plenary", N_("Plenary"), "text"),
                                                             ("link", N_("Link"), "url"))),
    FormField("documents", N_("Documents"), "group", parts=(("title", N_("Title"), "text"),
                                                           ("link", N_("Link"), "url"))),
    FormField("tomorrow", N_("Tomorrow (one item a line)"), "lines"),
)
_ALERT = (
    FormField("headline", N_("Headline"), required=True),
    FormField("call", N_("The call"), "markdown", required=True),
    FormField("points", N_("Points (one a line)"), "lines", required=True),
    FormField("cta", N_("Call to action"), "one", required=True, parts=(("label", N_("Button"), "text"),
                                                                       ("link", N_("Link"), "url"))),
    FormField("deadline", N_("Deadline"), "date"),
)
_IMAGE = FormField("image", N_("Image (optional)"), "one", parts=(("src", N_("Image address"), "url"),
                                                                  ("alt", N_("Image description"), "text")))
_NUMBER = re.compile(r"^\s*-?\d+\s*$")


def fields_of(kind: str) -> tuple[FormField, ...]:
    """The form's fields for an issue of `kind` (daily-summary or campaign-alert)."""
    own = _DAILY if kind == Kind.DAILY_SUMMARY.value else _ALERT
    return (*_COMMON, *own, _IMAGE)


def _clean(value: Any) -> str:
    return str(value or "").replace("\r\n", "\n").strip()


def front_matter_from_form(kind: str, form: Mapping[str, Any]) -> dict[str, Any]:
    """The front matter a submitted form makes (empty fields left out)."""
    out: dict[str, Any] = {}
    for f in fields_of(kind):
        if f.kind == "group":
            rows, n = [], 0
            while any(f"{f.key}-{n}-{part}" in form for part, _, _ in f.parts):
                row = {part: _clean(form.get(f"{f.key}-{n}-{part}")) for part, _, _ in f.parts}
                if any(row.values()):
                    rows.append({k: v for k, v in row.items() if v})
                n += 1
            if rows:
                out[f.key] = rows
        elif f.kind == "one":
            row = {part: _clean(form.get(f"{f.key}-{part}")) for part, _, _ in f.parts}
            if any(row.values()):
                out[f.key] = {k: v for k, v in row.items() if v}
        elif f.kind == "lines":
            lines = [line.strip() for line in _clean(form.get(f.key)).splitlines() if line.strip()]
            if lines:
                out[f.key] = lines
        else:
            value = _clean(form.get(f.key))
            if not value:
                continue
            out[f.key] = int(value) if f.kind == "number" and _NUMBER.match(value) else value
    return out


def form_values(kind: str, front_matter: Mapping[str, Any]) -> dict[str, str]:
    """The form's values for a version's front matter, with GROUP_ROWS empty rows per group."""
    out: dict[str, str] = {}
    for f in fields_of(kind):
        value = front_matter.get(f.key)
        if f.kind == "group":
            rows = value if isinstance(value, list) else []
            for n in range(len(rows) + GROUP_ROWS):
                row = rows[n] if n < len(rows) and isinstance(rows[n], Mapping) else {}
                for part, _, _ in f.parts:
                    out[f"{f.key}-{n}-{part}"] = _clean(row.get(part))
        elif f.kind == "one":
            row = value if isinstance(value, Mapping) else {}
            for part, _, _ in f.parts:
                out[f"{f.key}-{part}"] = _clean(row.get(part))
        elif f.kind == "lines":
            out[f.key] = "\n".join(_clean(v) for v in value) if isinstance(value, list) else _clean(value)
        else:
            out[f.key] = _clean(value)
    return out
