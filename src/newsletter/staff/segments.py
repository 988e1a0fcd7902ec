"""Segments as staff see and change them in the workspace, each change audited.

The page lists every saved segment with how many active people it names now (or why it names
nobody: a list or attribute it names is gone), shows one's audience per language and per
country, and saves (`people.segments.create_segment`: checked first) or deletes one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidField, SegmentError
from ..installation import Newsletter
from ..people import segments
from ..people.segments import Audience, SegmentInfo
from ..segment_language import write_condition
from ..texts import N_, Text
from . import audit
from .audit import Actor
from .roles import Action

__all__ = ["SegmentLine", "delete_segment", "save_segment", "segments_page", "show_segment"]


@dataclass(frozen=True)
class SegmentLine:
    """A saved segment and how many active people it names now (None, with `problem`, when its
    expression no longer holds)."""

    info: SegmentInfo
    total: int | None
    problem: str = ""


def segments_page(newsletter: Newsletter) -> list[SegmentLine]:
    """Every segment, by name, with its audience now."""
    lines = []
    for info in segments.list_segments(newsletter):
        try:
            _, audience = segments.show_segment(newsletter, info.name, sample=0)
        except SegmentError as exc:
            lines.append(SegmentLine(info, None, str(exc)))
        else:
            lines.append(SegmentLine(info, audience.total))
    return lines


def show_segment(newsletter: Newsletter, name: str) -> tuple[SegmentInfo, Audience]:
    """One segment and who it names now, per language and country, with a sample of addresses.
    Raises UnknownSegment, SegmentError."""
    return segments.show_segment(newsletter, name, sample=10)


def save_segment(newsletter: Newsletter, actor: Actor, name: str, expression: str, *, description: str = "",
                 replace: bool = False, conditions: Sequence[tuple[str, str, str]] = ()) -> SegmentInfo:
    """Save a segment (checked first), audited. Without an `expression`, it is written from
    `conditions` (field, operator, value; all must hold: `segment_language.write_condition`).
    Raises InvalidField, SegmentError (nothing saved)."""
    if not expression.strip():
        written = [write_condition(field, op, value) for field, op, value in conditions if field]
        if not written:
            raise InvalidField("expression", Text(N_("write an expression, or choose a field for at least one "
                                                     "condition")))
        expression = " and ".join(written)
    saved = segments.create_segment(newsletter, name.strip(), expression, description=description.strip(),
                                    replace=replace)
    with newsletter.store.session() as session:
        audit.record(session, actor, Action.MANAGE_SEGMENTS, saved.name,
                     f"saved: {saved.expression}",
                     now=newsletter.clock())
    return saved


def delete_segment(newsletter: Newsletter, actor: Actor, name: str) -> None:
    """Delete a segment, audited (a schedule naming it then fails at its time). Raises UnknownSegment."""
    segments.delete_segment(newsletter, name)
    with newsletter.store.session() as session:
        audit.record(session, actor, Action.MANAGE_SEGMENTS, name, "deleted", now=newsletter.clock())
