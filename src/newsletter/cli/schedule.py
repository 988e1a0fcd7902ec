"""`newsletter schedule CONTENT… --at … --tz …` and `schedule list|show|cancel|go`: each
parses, makes one call to `routine.schedules` and prints. The service's scheduler fires them."""

from __future__ import annotations

import click

from ..errors import ScheduleStateError, UnknownSchedule
from ..installation import Newsletter
from ..routine import schedules
from ..routine.schedules import ScheduleView
from ..sending.launch import prepare_send
from ..statuses import ScheduleStatus
from . import main, pass_newsletter, shown
from .segments import print_plan


class ScheduleGroup(click.Group):
    """`schedule CONTENT…` means `schedule add CONTENT…`; `schedule list` and the rest are commands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["add", *args]
        return super().parse_args(ctx, args)


def _line(s: ScheduleView) -> str:
    extra = []
    if s.ready_by:
        extra.append(f"every language, or at {s.ready_by:%Y-%m-%d %H:%M} UTC")
    if s.window:
        extra.append(f"window {s.window}")
    if s.segment:
        extra.append(f"segment {shown(s.segment)}")
    options = f" ({'; '.join(extra)})" if extra else ""
    return (f"{s.id:>4}  {s.slug:<24} {s.list_slug or '':<14} {s.local_at} {s.zone:<18} "
            f"= {s.due_at:%Y-%m-%d %H:%M} UTC  {s.status.value}{options}")


def _hinted(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except UnknownSchedule as exc:
        raise click.ClickException(f"{exc}; `newsletter schedule list --all` shows them") from None


@main.group(cls=ScheduleGroup, name="schedule")
def schedule_group() -> None:
    """Schedule an issue for a time in a named zone; list, show, cancel, or say go for a held one.

    `newsletter serve` (its scheduler) sends each at its time. One found later than
    schedule_overdue_minutes after it (the service was down) waits for `schedule go ID`.

    Example: newsletter schedule examples/asp23/day-5.*.md --at "2027-07-08 19:00" --tz Europe/Amsterdam
    """


@schedule_group.command(name="add")
@click.argument("content", nargs=-1, required=True)
@click.option("--at", "at", required=True, metavar='"YYYY-MM-DD HH:MM"', help="When, as wall time in --tz.")
@click.option("--tz", "zone", required=True, metavar="ZONE", help="An IANA time zone: Europe/Amsterdam, America/New_York.")
@click.option("--list", "list_slug", default=None, help="The list to send to (default: the one the content names).")
@click.option("--segment", default=None, metavar="NAME",
              help="Only the list's subscribers this segment names when it fires (`newsletter segments`).")
@click.option("--ready-by", default=None, metavar='"YYYY-MM-DD HH:MM"',
              help="Wait for every language of the list until then (in --tz), then send along the fallback chain.")
@click.option("--window", default=None, metavar="HH:MM-HH:MM",
              help="Local hours (in --tz) the mail may go out in; the send pauses when they close.")
@click.option("--dry-run", is_flag=True, help="Show the audience it would have now (per language and country); "
                                              "schedule nothing.")
@pass_newsletter
def add_schedule(newsletter: Newsletter, content: tuple[str, ...], at: str, zone: str, list_slug: str | None,
                 segment: str | None, ready_by: str | None, window: str | None, dry_run: bool) -> None:
    """Schedule an issue (its content files, or a pattern such as 'day-5.*.md') for a time.

    The content is rendered and linted now; it is read again when the send fires, so a
    translation written in the meantime goes out with it. With --segment, the segment is looked
    up when it fires: changed meanwhile, it sends to whom it names then; deleted, the schedule
    fails and nothing is sent. The audience it has now is shown first.

    Example: newsletter schedule examples/asp23/day-5.*.md --at "2027-07-08 19:00" --tz Europe/Amsterdam --segment francophone-africa --dry-run

    Example: newsletter schedule examples/asp23/day-5.*.md --at "2027-07-08 19:00" --tz Europe/Amsterdam --ready-by "2027-07-08 21:00"
    """
    print_plan(prepare_send(newsletter, content, list_slug=list_slug, segment=segment))
    if dry_run:
        return
    try:
        s = schedules.schedule_send(newsletter, content, at=at, zone=zone, list_slug=list_slug, segment=segment,
                                    ready_by=ready_by, window=window)
    except ScheduleStateError as exc:
        raise click.ClickException(f"{exc} (`newsletter schedule cancel {exc.schedule_id}`)") from None
    to = f"{s.list_slug}, segment {shown(s.segment)}," if s.segment else s.list_slug
    click.echo(f"scheduled {s.id}: {s.slug} to {to} at {s.local_at} {s.zone} "
               f"({s.due_at:%Y-%m-%d %H:%M} UTC); `newsletter serve` sends it")


@schedule_group.command(name="list")
@click.option("--all", "everything", is_flag=True, help="Also those done, failed or cancelled.")
@pass_newsletter
def list_schedules(newsletter: Newsletter, everything: bool) -> None:
    """Scheduled sends, soonest first.

    Example: newsletter schedule list --all
    """
    found = schedules.list_schedules(newsletter, everything=everything)
    if not found:
        click.echo("nothing scheduled")
    for s in found:
        click.echo(_line(s))
        if s.reason:
            click.echo(f"      {s.reason}")


@schedule_group.command(name="show")
@click.argument("schedule_id", type=int)
@pass_newsletter
def show_schedule(newsletter: Newsletter, schedule_id: int) -> None:
    """One scheduled send.

    Example: newsletter schedule show 3
    """
    s = _hinted(schedules.show_schedule, newsletter, schedule_id)
    click.echo(_line(s))
    if s.reason:
        click.echo(f"  {s.reason}")
    if s.status is ScheduleStatus.HELD:
        click.echo(f"  `newsletter schedule go {s.id}` sends it now, late as it is")
    if s.status in (ScheduleStatus.SENDING, ScheduleStatus.DONE):
        click.echo(f"  `newsletter campaign show {s.slug}` shows its campaign")


@schedule_group.command(name="cancel")
@click.argument("schedule_id", type=int)
@pass_newsletter
def cancel_schedule(newsletter: Newsletter, schedule_id: int) -> None:
    """Cancel a scheduled send that has not fired.

    Example: newsletter schedule cancel 3
    """
    try:
        s = _hinted(schedules.cancel_schedule, newsletter, schedule_id)
    except ScheduleStateError as exc:
        raise click.ClickException(f"{exc}; `newsletter campaign pause` or `campaign cancel` stops it") from None
    click.echo(f"scheduled send {s.id} ({s.slug}) cancelled")


@schedule_group.command(name="go")
@click.argument("schedule_id", type=int)
@pass_newsletter
def release_schedule(newsletter: Newsletter, schedule_id: int) -> None:
    """Say go for a send held because the service found it late: it goes out on the next pass.

    Example: newsletter schedule go 3
    """
    s = _hinted(schedules.release_schedule, newsletter, schedule_id)
    click.echo(f"scheduled send {s.id} ({s.slug}) released; the running service sends it on its next pass")
