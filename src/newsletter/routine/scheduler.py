"""Firing scheduled sends: one pass over the store, which a service repeats every few seconds.

A pass looks at every waiting schedule whose time has come and, for each, in order:
outside its send window → it waits for the window; later than the overdue margin (the
service was down when its time passed) and not released → held, for a sender's go; in
"ready" mode with a language missing and its deadline not reached → it waits; else this
service claims it (a conditional UPDATE: of several services on one store, one wins) and
sends it through the one send path (`sending.launch.prepare_send` → `launch`; to the segment
it names, looked up now: one deleted meanwhile fails it, with nothing sent), in the
calling thread, until its first pass is over. Deferred rows are left for the senders that
retry them. A send still running when its window closes pauses (as it does when the service stops);
a later pass resumes it once the window opens again. Schedules whose campaign has finished become done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from ..errors import NewsletterError, UnknownSegment
from ..mail.content import expand_sources, load_issue
from ..sending import campaigns
from ..sending.launch import SendControl, launch, prepare_resume, prepare_send
from ..sending.options import Progress, SendOptions, SendResult
from ..sending.workers import new_worker_id
from ..statuses import CampaignStatus, ScheduleStatus
from ..store import Schedule
from ..store import schedules as stored
from ..people.lists import get_list
from ..texts import N_, Text
from .carry import SERVICE_STOPPED
from .schedules import window_of
from .timing import describe_delay

if TYPE_CHECKING:
    from ..installation import Newsletter
    from ..sending.sender import Connector

__all__ = ["Fired", "WINDOW_CLOSED", "fire_due"]

#: The reason a campaign paused at the end of its schedule's send window gives.
WINDOW_CLOSED = Text(N_("its send window closed"))


class Fired(NamedTuple):
    """What a pass did with one schedule: `outcome` is the schedule's status after it
    (`held`, `failed`, `sending`, `done`), with the send's result when it sent."""

    schedule_id: int
    slug: str
    outcome: ScheduleStatus
    reason: str | None = None
    result: SendResult | None = None


def _missing_languages(newsletter: Newsletter, schedule: Schedule) -> list[str]:
    """Languages of the schedule's list that have no variant in its content yet."""
    issue = load_issue(expand_sources(schedule.sources))
    with newsletter.store.session() as session:
        wanted = list(get_list(session, schedule.list_slug or issue.list).languages or ())
    return [lang for lang in wanted if lang not in issue.variants]


def _note(newsletter: Newsletter, schedule: Schedule, reason: str) -> None:
    if schedule.status_reason != reason:
        with newsletter.store.session() as session:
            stored.move_schedule(session, schedule.id, schedule.status, schedule.status, status_reason=reason)


def _send(newsletter: Newsletter, schedule: Schedule, prepared, options: SendOptions,
          connect: Connector | None, on_start: Callable[[SendControl], None] | None) -> SendResult:
    """Run the send, stopping it when the schedule's window closes."""
    window = window_of(schedule)
    held: list[SendControl] = []

    def started(control: SendControl) -> None:
        held.append(control)
        if on_start is not None:
            on_start(control)

    def watch(_: Progress) -> None:
        if window is not None and held and not window.contains(newsletter.clock()):
            held[0].stop(WINDOW_CLOSED)

    return launch(newsletter, prepared, options, on_start=started, on_progress=watch, connect=connect)


def _fire(newsletter: Newsletter, schedule: Schedule, worker: str, margin: timedelta, options: SendOptions,
          connect: Connector | None, on_start: Callable[[SendControl], None] | None) -> Fired | None:
    now = newsletter.clock()
    window = window_of(schedule)
    reference = schedule.deadline_at or schedule.due_at
    if window is not None:
        reference = window.next_open(reference)
        if not window.contains(now):
            _note(newsletter, schedule, f"waiting for its send window ({window}, {schedule.zone})")
            return None
    late = now - reference
    if schedule.released_at is None and late > margin:
        reason = (f"found {describe_delay(late)} after its time ({schedule.local_at} {schedule.zone}), more than "
                  f"the overdue margin of {describe_delay(margin)}; it waits for a sender's go")
        with newsletter.store.session() as session:
            if stored.move_schedule(session, schedule.id, ScheduleStatus.WAITING, ScheduleStatus.HELD,
                                    status_reason=reason):
                return Fired(schedule.id, schedule.slug, ScheduleStatus.HELD, reason)
        return None
    try:
        if schedule.deadline_at is not None and now < schedule.deadline_at:
            missing = _missing_languages(newsletter, schedule)
            if missing:
                _note(newsletter, schedule, f"waiting for {', '.join(missing)} until its deadline")
                return None
        prepared = prepare_send(newsletter, expand_sources(schedule.sources), list_slug=schedule.list_slug,
                                segment=schedule.segment)
        prepared.lint.raise_for_errors()
    except NewsletterError as exc:
        reason = str(exc)
        if isinstance(exc, UnknownSegment):
            reason = (f"its segment {exc.name!r} was deleted before its time; it was not sent to the whole list "
                      "either")
        with newsletter.store.session() as session:
            if stored.move_schedule(session, schedule.id, ScheduleStatus.WAITING, ScheduleStatus.FAILED,
                                    status_reason=f"nothing was sent: {reason}"):
                return Fired(schedule.id, schedule.slug, ScheduleStatus.FAILED, reason)
        return None
    with newsletter.store.session() as session:
        if not stored.move_schedule(session, schedule.id, ScheduleStatus.WAITING, ScheduleStatus.SENDING,
                                    claimed_by=worker, claimed_at=now, fired_at=now, status_reason=None):
            return None  # another service fired it
    return _launched(newsletter, schedule, lambda: _send(newsletter, schedule, prepared, options, connect, on_start))


def _launched(newsletter: Newsletter, schedule: Schedule, run: Callable[[], SendResult]) -> Fired:
    """Run a send the schedule claimed, and record what came of it."""
    try:
        result = run()
    except NewsletterError as exc:
        with newsletter.store.session() as session:
            stored.move_schedule(session, schedule.id, ScheduleStatus.SENDING, ScheduleStatus.FAILED,
                                 status_reason=str(exc))
        return Fired(schedule.id, schedule.slug, ScheduleStatus.FAILED, str(exc))
    done = result.status is CampaignStatus.FINISHED
    outcome = ScheduleStatus.DONE if done else ScheduleStatus.SENDING
    with newsletter.store.session() as session:
        stored.move_schedule(session, schedule.id, ScheduleStatus.SENDING, outcome, status_reason=result.reason)
    return Fired(schedule.id, schedule.slug, outcome, result.reason, result)


def _follow(newsletter: Newsletter, schedule: Schedule, worker: str, options: SendOptions,
            connect: Connector | None, on_start: Callable[[SendControl], None] | None) -> Fired | None:
    """A fired schedule: done once its campaign is over; resumed when its window opens again."""
    with newsletter.store.session() as session:
        campaign = campaigns.find_campaign(session, schedule.slug)
        status, reason, kept = ((campaign.status, campaign.status_reason, campaign.status_said) if campaign
                                else (None, None, None))
        if status in (CampaignStatus.FINISHED, CampaignStatus.CANCELLED, None):
            said = f"its campaign is {status.value}" if status else "its campaign is gone"
            if stored.move_schedule(session, schedule.id, ScheduleStatus.SENDING, ScheduleStatus.DONE,
                                    status_reason=said):
                return Fired(schedule.id, schedule.slug, ScheduleStatus.DONE, said)
            return None
    window = window_of(schedule)
    now = newsletter.clock()
    paused_here = any(campaigns.reason_is(kept, reason, text) for text in (WINDOW_CLOSED, SERVICE_STOPPED))
    if status is not CampaignStatus.PAUSED or not paused_here or window is None or not window.contains(now):
        return None
    with newsletter.store.session() as session:
        # Take the send over from whoever fired it: one of several services wins.
        if not stored.move_schedule(session, schedule.id, ScheduleStatus.SENDING, ScheduleStatus.SENDING,
                                    if_claimed_at=schedule.claimed_at, claimed_by=worker, claimed_at=now):
            return None
    try:
        prepared = prepare_resume(newsletter, schedule.slug)
    except NewsletterError as exc:
        return Fired(schedule.id, schedule.slug, ScheduleStatus.SENDING, str(exc))
    return _launched(newsletter, schedule, lambda: _send(newsletter, schedule, prepared, options, connect, on_start))


def fire_due(newsletter: Newsletter, *, worker: str | None = None, margin: timedelta | None = None,
             options: SendOptions | None = None, connect: Connector | None = None,
             on_start: Callable[[SendControl], None] | None = None) -> list[Fired]:
    """One pass of the scheduler (see the module's docstring); returns what it did, one
    `Fired` per schedule it moved. `margin` defaults to `schedule_overdue_minutes`; `options`
    to the defaults, never waiting for deferred rows (the senders retry them); `on_start`
    receives the `SendControl` of each send it starts (a stopping service stops them)."""
    worker = worker or new_worker_id()
    margin = timedelta(minutes=newsletter.config.schedule_overdue_minutes) if margin is None else margin
    options = replace(options or SendOptions(), wait_for_deferred=False)
    now: datetime = newsletter.clock()
    with newsletter.store.session() as session:
        due = stored.schedules_in(session, ScheduleStatus.WAITING, due_by=now)
        fired = stored.schedules_in(session, ScheduleStatus.SENDING)
    done = [_fire(newsletter, schedule, worker, margin, options, connect, on_start) for schedule in due]
    done += [_follow(newsletter, schedule, worker, options, connect, on_start) for schedule in fired]
    return [f for f in done if f is not None]
