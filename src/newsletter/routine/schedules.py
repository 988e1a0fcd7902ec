"""Scheduled sends: an issue to go out at a moment in the venue's time zone. The units of
work the faces call (schedule, list, cancel, go); `scheduler` fires them.

    waiting ──(its time, in its window)──► sending ──(its campaign finished)──► done
      │  ▲                                   │
      │  └──── go ──── held ◄── (found later than the overdue margin)
      └── cancel ──► cancelled          failed ◄── (its content could not be sent; nothing was)

A schedule may name a segment of its list: the segment is looked up and its expression read
when the schedule fires (a segment changed meanwhile sends to whom it names then; the campaign
keeps the expression it was sent with). A segment deleted meanwhile fails the schedule, with
nothing sent: it never goes to the whole list instead. `list_schedules` says so before its time.

Options: `ready_by` (fire once every language of the list has a variant, at `at` at the
earliest, and at `ready_by` at the latest along the fallback chain) and `window` (local hours
in which its mail may go out: it starts only inside them, and pauses when they close).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..errors import CampaignStateError, InvalidField, ScheduleStateError, UnknownSchedule
from ..mail.content import expand_sources
from ..sending.launch import prepare_send
from ..statuses import CampaignStatus, ScheduleStatus
from ..store import Schedule
from ..store import schedules as stored
from ..store import segments as stored_segments
from ..texts import N_, Text
from .timing import LOCAL_FORMAT, Window, local_to_utc, parse_local, parse_window, zone_named

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["ScheduleView", "content_sources", "window_of", "schedule_send", "list_schedules", "show_schedule",
           "cancel_schedule", "release_schedule"]

_LANGUAGE_FILE = re.compile(r"^(?P<stem>.+)\.[a-z]{2}\.md$")


class ScheduleView(NamedTuple):
    """A scheduled send as the faces show it."""

    id: int
    slug: str
    list_slug: str | None
    local_at: str
    zone: str
    due_at: datetime
    ready_by: datetime | None
    window: str | None
    status: ScheduleStatus
    reason: str | None
    fired_at: datetime | None
    #: The segment of the list it sends to (None: the whole list)
    segment: str | None = None


def segment_gone(name: str) -> str:
    """The reason a schedule whose segment was deleted gives, before its time."""
    return (f"its segment {name!r} no longer exists: at its time it fails and sends nothing (save a segment "
            f"{name!r} again, or cancel it and schedule it anew)")


def view_of(schedule: Schedule, *, segment_exists: bool = True) -> ScheduleView:
    window = f"{schedule.window_start}-{schedule.window_end}" if schedule.window_start else None
    reason = schedule.status_reason
    if schedule.segment and not segment_exists and schedule.status in (ScheduleStatus.WAITING, ScheduleStatus.HELD):
        reason = segment_gone(schedule.segment)
    return ScheduleView(schedule.id, schedule.slug, schedule.list_slug, schedule.local_at, schedule.zone,
                        schedule.due_at, schedule.deadline_at, window, schedule.status, reason,
                        schedule.fired_at, schedule.segment)


def _views(session, found: Iterable[Schedule]) -> list[ScheduleView]:
    """The views of `found`, each saying whether its segment is still there."""
    names = {s.name for s in stored_segments.all_segments(session)}
    return [view_of(s, segment_exists=s.segment is None or s.segment in names) for s in found]


def window_of(schedule: Schedule) -> Window | None:
    """The schedule's send window, or None when it has none."""
    if not schedule.window_start:
        return None
    return parse_window(f"{schedule.window_start}-{schedule.window_end}", zone_named(schedule.zone))


def content_sources(sources: Iterable[str | Path]) -> list[str]:
    """What a schedule keeps of the content it was given: absolute, and each `<name>.<lang>.md`
    file widened to `<name>.*.md`, so that a language written after scheduling is sent too."""
    kept: list[str] = []
    for source in sources:
        path = Path(os.path.abspath(source))
        match = _LANGUAGE_FILE.match(path.name)
        text = str(path.with_name(f"{match['stem']}.*.md")) if match and path.is_file() else str(path)
        if text not in kept:
            kept.append(text)
    return kept


def _get(session, schedule_id: int) -> Schedule:
    schedule = stored.get_schedule(session, schedule_id)
    if schedule is None:
        raise UnknownSchedule(schedule_id)
    return schedule


def schedule_send(newsletter: Newsletter, sources: Iterable[str | Path], *, at: str, zone: str,
                  list_slug: str | None = None, segment: str | None = None, ready_by: str | None = None,
                  window: str | None = None) -> ScheduleView:
    """Schedule the issue in `sources` for wall time `at` ("2027-07-08 19:00") in `zone`.

    The content is loaded, rendered and linted now, so that what is broken fails here; it is
    read again when the schedule fires (a translation written meanwhile goes out). `ready_by`
    (same zone, after `at`) waits for every language of the list until then; `window`
    ("07:00-22:00", same zone) bounds the hours its mail goes out in. `segment` (a saved
    segment's name) sends only to those of the list it names when it fires.

    Raises InvalidField (time zone, at, ready by, window: unknown, malformed, skipped by the
    clocks, in the past); ContentError, LintFailed, UnknownList, MissingVariant (the content);
    UnknownSegment, SegmentError (the segment);
    CampaignStateError (its campaign is finished or cancelled); ScheduleStateError (it is
    scheduled already).
    """
    tz = zone_named(zone)
    local = parse_local(at, "at")
    due = local_to_utc(local, tz, "at")
    now = newsletter.clock()
    if due <= now:
        raise InvalidField("at", Text.of(N_("%(at)s in %(zone)s has passed (it is %(now)s there)"), at=at, zone=zone,
                                         now=f"{now.astimezone(tz):{LOCAL_FORMAT}}"))
    deadline = None
    if ready_by is not None:
        deadline = local_to_utc(parse_local(ready_by, "ready by"), tz, "ready by")
        if deadline <= due:
            raise InvalidField("ready by", Text.of(N_("%(ready_by)s must be after %(at)s"), ready_by=ready_by, at=at))
    span = parse_window(window, tz) if window else None
    kept = content_sources(sources)
    prepared = prepare_send(newsletter, expand_sources(kept), list_slug=list_slug, segment=segment or None)
    prepared.lint.raise_for_errors()
    if prepared.existing in (CampaignStatus.FINISHED, CampaignStatus.CANCELLED):
        raise CampaignStateError(prepared.slug, prepared.existing.value, Text(N_("it cannot be scheduled again")))
    with newsletter.store.session() as session:
        other = stored.open_schedule_for(session, prepared.slug)
        if other is not None:
            raise ScheduleStateError(other.id, other.status.value,
                                     Text.of(N_("it already sends %(slug)s (%(at)s %(zone)s); cancel it first to "
                                                "schedule it again"), slug=prepared.slug, at=other.local_at,
                                             zone=other.zone))
        schedule = stored.add_schedule(
            session, slug=prepared.slug, list_slug=list_slug or prepared.plan.list_slug, segment=segment or None,
            sources=kept,
            local_at=f"{local:{LOCAL_FORMAT}}", zone=tz.key, due_at=due, deadline_at=deadline,
            window_start=f"{span.start:%H:%M}" if span else None, window_end=f"{span.end:%H:%M}" if span else None,
            status=ScheduleStatus.WAITING, created_at=now)
        return view_of(schedule)


def list_schedules(newsletter: Newsletter, *, everything: bool = False, slug: str | None = None) -> list[ScheduleView]:
    """Scheduled sends soonest first: those not over (waiting, held, sending), or `everything`;
    only those of campaign `slug`, when given. One whose segment was deleted says so."""
    with newsletter.store.session() as session:
        statuses = None if everything else stored.OPEN
        found = stored.all_schedules(session, statuses=statuses)
        return _views(session, [s for s in found if slug is None or s.slug == slug])


def show_schedule(newsletter: Newsletter, schedule_id: int) -> ScheduleView:
    """One scheduled send. Raises UnknownSchedule."""
    with newsletter.store.session() as session:
        return _views(session, [_get(session, schedule_id)])[0]


def cancel_schedule(newsletter: Newsletter, schedule_id: int) -> ScheduleView:
    """Cancel a send that has not fired (waiting or held). Raises UnknownSchedule;
    ScheduleStateError once it has fired (its campaign is then paused or cancelled as a campaign)."""
    with newsletter.store.session() as session:
        schedule = _get(session, schedule_id)
        for status in (ScheduleStatus.WAITING, ScheduleStatus.HELD):
            if stored.move_schedule(session, schedule_id, status, ScheduleStatus.CANCELLED,
                                    status_reason="cancelled before it fired"):
                return view_of(_get(session, schedule_id))
        raise ScheduleStateError(schedule_id, schedule.status.value,
                                 Text.of(N_("only a send that has not fired can be cancelled; its campaign %(slug)s "
                                            "is paused or cancelled like any other"), slug=schedule.slug))


def release_schedule(newsletter: Newsletter, schedule_id: int) -> ScheduleView:
    """A sender's go for a send held as overdue: it fires on the scheduler's next pass, late as
    it is (within its window, if it has one). Raises UnknownSchedule; ScheduleStateError unless held."""
    with newsletter.store.session() as session:
        schedule = _get(session, schedule_id)
        if not stored.move_schedule(session, schedule_id, ScheduleStatus.HELD, ScheduleStatus.WAITING,
                                    released_at=newsletter.clock(), status_reason="released by a sender"):
            raise ScheduleStateError(schedule_id, schedule.status.value, Text(N_("only a held send waits for go")))
        return view_of(_get(session, schedule_id))
