"""Per-recipient values in a rendered mail: the markers compose leaves and the sender fills.

An issue is rendered and its CSS inlined once per language, with a marker such as
`[[nl:unsubscribe_url]]` wherever a per-recipient value belongs. The sender then fills the
markers for each recipient — escaping for HTML in the HTML part — instead of re-rendering.
Markers are plain ASCII without `<>&"'`, so autoescaping and CSS inlining leave them intact.
"""

from __future__ import annotations

import enum
import html
import re
from collections.abc import Mapping, Sequence

__all__ = ["Field", "ISSUE_FIELDS", "marker", "split_markers", "join_filled", "fill", "MARKER_PATTERN"]


class Field(str, enum.Enum):
    """The values that differ from one recipient to the next (`message.Recipient` has each)."""

    NAME = "name"
    EMAIL = "email"
    UNSUBSCRIBE_URL = "unsubscribe_url"
    PREFERENCES_URL = "preferences_url"
    #: Only in the confirmation mail: its confirm and "this wasn't me" links.
    CONFIRM_URL = "confirm_url"
    BLOCK_URL = "block_url"


#: The fields an issue (campaign mail) may hold; the others belong to one-off mails.
ISSUE_FIELDS = (Field.NAME, Field.EMAIL, Field.UNSUBSCRIBE_URL, Field.PREFERENCES_URL)


MARKER_PATTERN = re.compile(r"\[\[nl:([a-z_]+)\]\]")


def marker(field: Field) -> str:
    """The text compose puts where `field` belongs."""
    return f"[[nl:{field.value}]]"


def split_markers(template: str) -> tuple[list[str], list[Field]]:
    """Split a rendered part into literal pieces and the fields between them.

    `pieces` has one more item than `fields`: pieces[0] field[0] pieces[1] … pieces[-1].
    Raises ValueError for a marker naming no known field.
    """
    pieces: list[str] = []
    fields: list[Field] = []
    last = 0
    for match in MARKER_PATTERN.finditer(template):
        try:
            fields.append(Field(match.group(1)))
        except ValueError:
            raise ValueError(f"the marker {match.group(0)} names no per-recipient field") from None
        pieces.append(template[last:match.start()])
        last = match.end()
    pieces.append(template[last:])
    return pieces, fields


def join_filled(pieces: Sequence[str], fields: Sequence[Field], values: Mapping[Field, str], *,
                html_part: bool) -> str:
    """`split_markers`' output joined again with each field's value (HTML-escaped in an HTML
    part); a field with no value becomes the empty string."""
    out = [pieces[0]]
    for field, piece in zip(fields, pieces[1:]):
        value = values.get(field, "")
        out.append(html.escape(value, quote=True) if html_part else value)
        out.append(piece)
    return "".join(out)


def fill(template: str, values: Mapping[Field, str], *, html_part: bool) -> str:
    """`template` with every marker replaced by its value (HTML-escaped in an HTML part).

    A field with no value becomes the empty string.
    """
    pieces, fields = split_markers(template)
    return join_filled(pieces, fields, values, html_part=html_part)
