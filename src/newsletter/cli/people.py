"""Commands about people: subscribe, unsubscribe, subscribers, show, erase, export."""

from __future__ import annotations

import json
import sys

import click

from ..installation import Newsletter
from ..people import profiles, subscriptions
from ..people.confirmation_queue import Delivery
from ..people.records import write_csv
from ..people.rules import ConsentContext
from ..statuses import Channel, SubscriptionStatus
from . import main, pass_newsletter, shown

_STATUS = click.Choice([s.value for s in SubscriptionStatus])


@main.command()
@click.argument("email")
@click.option("--list", "lists", multiple=True, required=True, help="List slug (repeat for several).")
@click.option("--name", default="", help="The person's name.")
@click.option("--language", default=None, help="Their language (default: as before, or default_language).")
@click.option("--attribute", "attributes", multiple=True, metavar="NAME=VALUE",
              help="A declared attribute the person does not have yet (repeat for several).")
@pass_newsletter
def subscribe(newsletter: Newsletter, email: str, lists: tuple[str, ...], name: str, language: str | None,
              attributes: tuple[str, ...]) -> None:
    """Sign someone up; they get a confirmation mail and are pending until they confirm.

    Example: newsletter subscribe ana@example.org --list asp-daily --name "Ana Ruiz" --language es --attribute country=ES
    """
    result = subscriptions.subscribe(newsletter, email, name, language, list(lists),
                                     ConsentContext(channel=Channel.CLI, source="cli"),
                                     attributes=parse_assignments(attributes))
    mail = result.confirmation
    if mail is None:
        click.echo(f"{email}: nothing to do (already active, suppressed, or a confirmation was sent recently)")
    elif mail.delivery is Delivery.SENT:
        click.echo(f"{email}: pending; confirmation mail sent")
    elif mail.delivery is Delivery.WAITING:
        raise click.ClickException(
            f"{email}: pending, but the confirmation mail could not be sent yet: {mail.reason}. It stays queued; "
            "`newsletter serve` sends it, retrying with back-off.")
    else:
        raise click.ClickException(f"{email}: pending, but the confirmation mail was not sent: {mail.reason}")


@main.command()
@click.argument("email")
@click.option("--list", "list_slug", default=None, help="Only this list (default: every list).")
@pass_newsletter
def unsubscribe(newsletter: Newsletter, email: str, list_slug: str | None) -> None:
    """Unsubscribe an address from one list or from all, at once. Recorded as an admin action.

    Example: newsletter unsubscribe ana@example.org --list asp-daily
    """
    changed = subscriptions.unsubscribe_address(newsletter, email, ConsentContext(channel=Channel.ADMIN, source="cli"),
                                                list_slug)
    who = shown(email)
    click.echo(f"{who}: unsubscribed from {', '.join(map(shown, changed))}" if changed else f"{who}: was not subscribed")


@main.command()
@click.option("--list", "list_slug", default=None, help="Only this list.")
@click.option("--status", type=_STATUS, default=None, help="Only this status.")
@click.option("--count", is_flag=True, help="Print only how many people match.")
@click.option("--limit", type=int, default=None, help="At most this many rows.")
@pass_newsletter
def subscribers(newsletter: Newsletter, list_slug: str | None, status: str | None, count: bool, limit: int | None) -> None:
    """List subscriptions, filtered by list and status.

    Example: newsletter subscribers --list asp-daily --status active --count
    """
    wanted = SubscriptionStatus(status) if status else None
    if count:
        click.echo(subscriptions.count_subscribers(newsletter, list_slug=list_slug, status=wanted))
        return
    for email, name, language, slug, st in subscriptions.subscription_lines(newsletter, list_slug=list_slug,
                                                                             status=wanted, limit=limit):
        click.echo(f"{shown(email):<40} {shown(language):<3} {shown(slug):<20} {shown(st):<13} {shown(name)}")


@main.command()
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print the person's data as JSON.")
@pass_newsletter
def show(newsletter: Newsletter, email: str, as_json: bool) -> None:
    """A person's data, subscriptions and consent log, bounces, and the campaigns mailed to them.

    Example: newsletter show ana@example.org
    """
    data = subscriptions.person(newsletter, email, with_bounces=True).as_json(with_bounces=True)
    if as_json:
        click.echo(shown(json.dumps(data, ensure_ascii=False, indent=2), json=True))
        return
    v = {k: shown(data[k]) for k in ("email", "name", "language", "status")}
    click.echo(f"{v['email']}  {v['name'] or '(no name)'}  language {v['language']}  status {v['status']}")
    click.echo("subscriptions:")
    for sub in data["subscriptions"]:
        click.echo(f"  {shown(sub['list']):<20} {shown(sub['status']):<13} since {shown(sub['since'])}"
                   + (f", confirmed {shown(sub['confirmed_at'])}" if sub["confirmed_at"] else ""))
    click.echo("consent log:")
    for ev in data["consent_log"]:
        extra = ", ".join(f"{k} {shown(ev[k])}" for k in ("list", "ip", "source", "consent_version", "note") if ev[k])
        click.echo(f"  {shown(ev['at'])}  {shown(ev['event']):<18} via {shown(ev['channel']):<9} {extra}")
    if data["bounces"]:
        click.echo("bounces and complaints:")
    for b in data["bounces"]:
        click.echo(f"  {shown(b['at'])}  {shown(b['kind']):<9} {shown(b['status']):<6} {shown(b['campaign']):<20} "
                   f"{shown(b['outcome'])} (via {shown(b['provider'] or b['source'])})")
        click.echo(f"      {shown(b['reason'])}")
    if data["campaigns"]:
        click.echo("campaigns (the relay that took each, and its reply):")
    for r in data["campaigns"]:
        click.echo(f"  {shown(r['campaign']):<24} {shown(r['status']):<9} {shown(r['sent_at'] or ''):<26} "
                   f"{shown(r['relay'] or '-')}  {shown(r['reply'] or '')}")


def parse_assignments(items: tuple[str, ...]) -> dict[str, str]:
    """NAME=VALUE arguments as a dict; raises click.BadParameter for one without '='."""
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r}: write NAME=VALUE, e.g. country=FR", param_hint="NAME=VALUE")
        values[name.strip()] = value
    return values


@main.command()
@click.argument("email")
@click.argument("assignments", nargs=-1, metavar="[NAME=VALUE]...")
@pass_newsletter
def attributes(newsletter: Newsletter, email: str, assignments: tuple[str, ...]) -> None:
    """Show a person's attributes, or set them (NAME= with no value removes one).

    Example: newsletter attributes ana@example.org country=AR organisation="Red de Abogadas"
    """
    values = parse_assignments(assignments)
    held = (subscriptions.change_attributes(newsletter, email, values, ConsentContext(channel=Channel.ADMIN,
                                                                                    source="cli"))
            if values else profiles.attributes_of(newsletter, email))
    if not held:
        click.echo(f"{email}: no attributes")
    for name in sorted(held):
        click.echo(f"{name:<20} {held[name]}")


@main.command()
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_newsletter
def erase(newsletter: Newsletter, email: str, yes: bool) -> None:
    """Delete a person's data and consent log; keep a hash so they are never mailed or re-imported.

    Example: newsletter erase ana@example.org --yes
    """
    if not yes:
        click.confirm(f"Erase everything about {email}? This cannot be undone", abort=True)
    found = subscriptions.erase(newsletter, email)
    click.echo(f"{email}: erased; the address is suppressed" if found
               else f"{email}: nobody had that address; it is suppressed so it is never imported")


@main.command()
@click.option("--list", "list_slug", default=None, help="Only this list.")
@click.option("--status", type=_STATUS, default=None, help="Only this status.")
@click.option("--person", default=None, metavar="EMAIL", help="Export one person's data and consent log as JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to this file (default: standard output).")
@pass_newsletter
def export(newsletter: Newsletter, list_slug: str | None, status: str | None, person: str | None, output: str | None) -> None:
    """Export subscriptions as CSV (email,name,language,list,status and each attribute), or one person as JSON.

    Cells that a spreadsheet would run as formulas are escaped.

    Example: newsletter export --list asp-daily --status active -o active.csv
    """
    out = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if person:
            record = subscriptions.person(newsletter, person).as_json()
            out.write(json.dumps(record, ensure_ascii=False, indent=2) + "\n")
            return
        rows = profiles.export_lines(newsletter, list_slug=list_slug,
                                     status=SubscriptionStatus(status) if status else None)
        write_csv(out, profiles.export_header(newsletter), rows)
    finally:
        if output:
            out.close()
    if output:
        click.echo(f"wrote {output}", err=True)
