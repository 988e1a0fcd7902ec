"""`newsletter lists …`: create, list and show mailing lists."""

from __future__ import annotations

import click

from ..installation import Newsletter
from ..people import subscriptions
from . import main, pass_newsletter, shown


@main.group(name="lists", invoke_without_command=True)
@click.pass_context
def lists_group(ctx: click.Context) -> None:
    """Mailing lists. With no subcommand, lists them with their counts.

    Example: newsletter lists
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_lists)


@lists_group.command(name="list")
@pass_newsletter
def list_lists(newsletter: Newsletter) -> None:
    """Every list with its pending / active / unsubscribed counts.

    Example: newsletter lists list
    """
    summaries = subscriptions.list_summaries(newsletter)
    if not summaries:
        click.echo('no lists yet; create one with: newsletter lists create asp-daily "ASP daily summaries"')
        return
    click.echo(f"{'slug':<24} {'pending':>8} {'active':>8} {'unsub.':>8}  languages  name")
    for s in summaries:
        click.echo(f"{shown(s.slug):<24} {s.counts['pending']:>8} {s.counts['active']:>8} {s.counts['unsubscribed']:>8}  "
                   f"{shown(','.join(s.languages)):<9}  {shown(s.name)}{'' if s.public else '  (not public)'}")


@lists_group.command(name="create")
@click.argument("slug")
@click.argument("name")
@click.option("--description", default="", help="One or two sentences shown on the sign-up form.")
@click.option("--languages", default="en", show_default=True,
              help="Languages the list is written in, in fallback order (comma-separated).")
@click.option("--private", is_flag=True, help="Leave the list off the public sign-up form.")
@pass_newsletter
def create_list(newsletter: Newsletter, slug: str, name: str, description: str, languages: str, private: bool) -> None:
    """Create a list.

    Example: newsletter lists create asp-daily "ASP daily summaries" --languages en,fr,es,ar
    """
    created = subscriptions.create_list(newsletter, slug, name, description=description,
                                        languages=languages.split(","), public=not private)
    click.echo(f"created list {shown(created.slug)} ({shown(created.name)}), "
               f"languages {shown(', '.join(created.languages))}")


@lists_group.command(name="show")
@click.argument("slug")
@pass_newsletter
def show_list(newsletter: Newsletter, slug: str) -> None:
    """One list's settings and counts.

    Example: newsletter lists show asp-daily
    """
    summary = subscriptions.list_summary(newsletter, slug)
    click.echo(f"{shown(summary.slug)}: {shown(summary.name)}")
    if summary.description:
        click.echo(f"  {shown(summary.description)}")
    click.echo(f"  languages: {shown(', '.join(summary.languages))}; public: {'yes' if summary.public else 'no'}")
    click.echo("  " + ", ".join(f"{k}: {v}" for k, v in summary.counts.items()))
