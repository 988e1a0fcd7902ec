"""`newsletter sessions` and `sessions add`: each parses, makes one call to `routine.series`
and prints."""

from __future__ import annotations

import click

from ..installation import Newsletter
from ..routine import series
from . import main, pass_newsletter


@main.group(name="sessions", invoke_without_command=True)
@click.option("--list", "list_slug", default=None, help="Only this list's sessions.")
@click.pass_context
def sessions_group(ctx: click.Context, list_slug: str | None) -> None:
    """Session series: each session's days ("Day N of M") and whether they went out.

    Example: newsletter sessions --list asp-daily
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_sessions, list_slug=list_slug)


@pass_newsletter
def _list(newsletter: Newsletter, list_slug: str | None) -> None:
    found = series.list_sessions(newsletter, list_slug)
    if not found:
        click.echo("no sessions; make one with: newsletter sessions add SLUG --name NAME --list LIST …")
    for s in found:
        click.echo(f"{s.slug}: {s.name} ({s.list_slug}) — {s.venue or 'no venue'}, {s.first_day} to {s.last_day}, "
                   f"{s.total_days} day(s), {s.zone}")
        for day in s.days:
            click.echo(f"  Day {day.number} of {day.total}: {day.slug} ({day.status.value})")


@sessions_group.command(name="list")
@click.option("--list", "list_slug", default=None, help="Only this list's sessions.")
def list_sessions(list_slug: str | None) -> None:
    """Every session, latest first, with its days.

    Example: newsletter sessions list --list asp-daily
    """
    _list(list_slug)


@sessions_group.command(name="add")
@click.argument("slug")
@click.option("--name", required=True, help="As the issues' `session` field spells it, e.g. \"ASP 23\".")
@click.option("--list", "list_slug", required=True, help="The list its daily summaries go to.")
@click.option("--venue", default="", help="Where it meets, e.g. \"World Forum, The Hague\".")
@click.option("--tz", "zone", required=True, metavar="ZONE", help="The venue's IANA time zone, e.g. Europe/Amsterdam.")
@click.option("--first", "first_day", required=True, metavar="YYYY-MM-DD", help="Its first day.")
@click.option("--last", "last_day", required=True, metavar="YYYY-MM-DD", help="Its last day.")
@pass_newsletter
def add_session(newsletter: Newsletter, slug: str, name: str, list_slug: str, venue: str, zone: str,
                first_day: str, last_day: str) -> None:
    """Make a session: the list's daily summaries whose `session` is NAME are its days.

    Example: newsletter sessions add asp23 --name "ASP 23" --list asp-daily --venue "World Forum, The Hague" --tz Europe/Amsterdam --first 2024-12-02 --last 2024-12-07
    """
    s = series.create_session(newsletter, slug, name, list_slug, venue=venue, zone=zone, first_day=first_day,
                              last_day=last_day)
    click.echo(f"session {s.slug}: {s.name} on {s.list_slug}, {s.first_day} to {s.last_day} ({s.total_days} days)")
