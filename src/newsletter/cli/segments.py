"""`newsletter segments …`: named, saved filters over lists, languages and attributes."""

from __future__ import annotations

import click

from ..attributes import country_name
from ..installation import Newsletter
from ..people import segments
from ..routine.schedules import list_schedules
from ..sending.launch import Prepared
from . import main, pass_newsletter, shown


@main.group(name="segments")
def segments_group() -> None:
    """Segments: saved filters over lists, languages and attributes (create, list, show, delete).

    Example: newsletter segments create francophone-africa 'list = asp-daily and country in (SN, CI, ML, CD)'
    """


@segments_group.command(name="create")
@click.argument("name")
@click.argument("expression")
@click.option("--description", default="", help="What the segment is for.")
@click.option("--replace", is_flag=True, help="Give an existing segment of that name this expression.")
@pass_newsletter
def create(newsletter: Newsletter, name: str, expression: str, description: str, replace: bool) -> None:
    """Save a segment; the expression is checked first (see docs/segments.md).

    Example: newsletter segments create press-fr 'role = press and language = fr'
    """
    saved = segments.create_segment(newsletter, name, expression, description=description, replace=replace)
    click.echo(f"segment {saved.name}: {saved.expression}")


@segments_group.command(name="list")
@pass_newsletter
def list_(newsletter: Newsletter) -> None:
    """Every segment with its expression.

    Example: newsletter segments list
    """
    found = segments.list_segments(newsletter)
    if not found:
        click.echo("no segments yet")
    for s in found:
        click.echo(f"{s.name:<28} {s.expression}" + (f"  ({s.description})" if s.description else ""))


@segments_group.command(name="show")
@click.argument("name")
@click.option("--list", "list_slug", default=None, help="Count only the subscribers of this list.")
@click.option("--sample", default=10, show_default=True, help="Show this many of the addresses it names.")
@pass_newsletter
def show(newsletter: Newsletter, name: str, list_slug: str | None, sample: int) -> None:
    """Who a segment names now: how many, per language and per country, and a few addresses.

    Example: newsletter segments show francophone-africa --list asp-daily
    """
    info, audience = segments.show_segment(newsletter, name, list_slug=list_slug, sample=sample)
    click.echo(f"segment {info.name}: {info.expression}")
    if info.description:
        click.echo(f"  {info.description}")
    click.echo(f"  {audience.total} active subscriber(s)" + (f" of {list_slug}" if list_slug else ""))
    print_audience(audience.by_language, audience.by_country)
    for address in audience.sample:
        click.echo(f"  {address}")


def print_audience(by_language: dict[str, int], by_country: dict[str, int]) -> None:
    """The audience per language and per country, as `send` and `segments show` print it."""
    if by_language:
        click.echo("  per language: " + ", ".join(f"{lang} {n}" for lang, n in by_language.items()))
    if by_country:
        click.echo("  per country: " + ", ".join(
            f"{code} ({country_name(code)}) {n}" if code else f"not known {n}" for code, n in by_country.items()))


def print_plan(prepared: Prepared) -> None:
    """The audience of a prepared send: per variant, per country, the reach in member organisations."""
    plan = prepared.plan
    click.echo(f"{shown(prepared.slug)} to list {shown(plan.list_slug)} ({shown(plan.list_name)})"
               + (f", segment {shown(plan.segment)} ({shown(plan.expression)})" if plan.segment else "") + ":")
    if prepared.issue.list != plan.list_slug:
        click.echo(f"  note: the content names the list {shown(prepared.issue.list)}, not {shown(plan.list_slug)}; "
                   f"this sends to {shown(plan.list_slug)}, as --list says")
    for language, n in sorted(plan.audience.items()):
        click.echo(f"  {language}: {n} subscriber(s)")
    if plan.countries:
        print_audience({}, dict(plan.countries))
    if plan.reach is not None:
        r = plan.reach
        click.echo(f"  reaches {r.organisations} member organisation(s), {r.organisations_in_their_language} in a "
                   f"language they read; {r.countries} countr(y/ies), {r.countries_in_their_language} in a language "
                   "they read")
        if r.only_in_another_language:
            click.echo("  only in another language: " + ", ".join(r.only_in_another_language[:20])
                       + (" …" if len(r.only_in_another_language) > 20 else ""))


@segments_group.command(name="delete")
@click.argument("name")
@pass_newsletter
def delete(newsletter: Newsletter, name: str) -> None:
    """Delete a segment (campaigns sent with it keep its expression).

    Example: newsletter segments delete press-fr
    """
    segments.delete_segment(newsletter, name)
    click.echo(f"segment {name} deleted")
    for s in list_schedules(newsletter):
        if s.segment == name:
            click.echo(f"  scheduled send {s.id} ({shown(s.slug)}, {s.local_at} {s.zone}) names it: at its time it "
                       f"fails and sends nothing (`newsletter schedule cancel {s.id}`, or save {name} again)")
