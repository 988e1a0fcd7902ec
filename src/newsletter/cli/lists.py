"""`newsletter lists …`: create, list, show, rename, describe, show or hide, archive and delete mailing lists."""

from __future__ import annotations

import click

from ..installation import Newsletter
from ..people import subscriptions
from ..people.rules import ConsentContext
from ..statuses import Channel
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
        state = "  (archived)" if s.archived_at else "" if s.public else "  (not public)"
        click.echo(f"{shown(s.slug):<24} {s.counts['pending']:>8} {s.counts['active']:>8} {s.counts['unsubscribed']:>8}  "
                   f"{shown(','.join(s.languages)):<9}  {shown(s.name)}{state}")


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
    _show(subscriptions.list_summary(newsletter, slug))


def _show(summary) -> None:  # noqa: ANN001  (a ListSummary)
    click.echo(f"{shown(summary.slug)}: {shown(summary.name)}")
    if summary.description:
        click.echo(f"  {shown(summary.description)}")
    click.echo(f"  languages: {', '.join(summary.languages)}; public: {'yes' if summary.public else 'no'}"
               + (f"; archived {summary.archived_at:%Y-%m-%d}" if summary.archived_at else ""))
    for language, t in sorted(summary.translations.items()):
        click.echo(f"  in {language}: {shown(t.get('name', '(the list name)'))}"
                   + (f" - {shown(t['description'])}" if t.get("description") else ""))
    click.echo("  " + ", ".join(f"{k}: {v}" for k, v in summary.counts.items()))


_LANGUAGE = click.option("--language", default=None, metavar="CODE",
                         help="Only the name readers of this language see (en, fr, es, ar); empty text takes it back.")


@lists_group.command(name="rename")
@click.argument("slug")
@click.argument("name")
@_LANGUAGE
@pass_newsletter
def rename(newsletter: Newsletter, slug: str, name: str, language: str | None) -> None:
    """Give a list a new name, or its name in one language.

    The slug stays: links, content files and the consent log name the list by it.

    Example: newsletter lists rename asp-daily "Résumés quotidiens de l'AEP" --language fr
    """
    _show(subscriptions.rename_list(newsletter, slug, name, language=language))


@lists_group.command(name="describe")
@click.argument("slug")
@click.argument("description")
@_LANGUAGE
@pass_newsletter
def describe(newsletter: Newsletter, slug: str, description: str, language: str | None) -> None:
    """Describe a list anew (shown on the sign-up form and preferences page), or in one language.

    Example: newsletter lists describe asp-daily "Un résumé de chaque journée de l'Assemblée." --language fr
    """
    _show(subscriptions.describe_list(newsletter, slug, description, language=language))


@lists_group.command(name="public")
@click.argument("slug")
@pass_newsletter
def make_public(newsletter: Newsletter, slug: str) -> None:
    """Offer a list on the public sign-up form.

    Example: newsletter lists public alerts
    """
    _show(subscriptions.set_list_public(newsletter, slug, True))


@lists_group.command(name="private")
@click.argument("slug")
@pass_newsletter
def make_private(newsletter: Newsletter, slug: str) -> None:
    """Take a list off the public sign-up form; its subscribers stay, and staff can still sign people up.

    Example: newsletter lists private board-only
    """
    _show(subscriptions.set_list_public(newsletter, slug, False))


@lists_group.command(name="archive")
@click.argument("slug")
@click.option("--undo", is_flag=True, help="Bring an archived list back.")
@pass_newsletter
def archive(newsletter: Newsletter, slug: str, undo: bool) -> None:
    """Archive a list: nobody is offered it or sent it any more; its subscriptions and campaigns are kept.

    Example: newsletter lists archive asp22-daily
    """
    summary = subscriptions.archive_list(newsletter, slug, archived=not undo)
    if undo:
        click.echo(f"{slug}: back; it is offered and sent to again as before")
    else:
        click.echo(f"{slug}: archived; its {summary.counts['active']} active and {summary.counts['pending']} pending "
                   "subscriptions are kept but nobody is sent it or can join it (--undo brings it back)")


@lists_group.command(name="delete")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_newsletter
def delete(newsletter: Newsletter, slug: str, yes: bool) -> None:
    """Delete a list and its subscriptions; the people stay, with their other lists.

    Each subscription deleted ends with a line in its person's consent log naming the list.
    Archiving keeps the subscriptions instead.

    Example: newsletter lists delete test-list --yes
    """
    summary = subscriptions.list_summary(newsletter, slug)
    if not yes:
        click.confirm(f"Delete the list {slug} and its {sum(summary.counts.values())} subscription(s)?", abort=True)
    deleted = subscriptions.delete_list(newsletter, slug, ConsentContext(channel=Channel.ADMIN, source="cli"))
    held = ", ".join(f"{n} {status}" for status, n in deleted.subscriptions.items() if n) or "none"
    click.echo(f"deleted the list {slug} ({shown(deleted.name)}); its subscriptions were deleted ({held}); the "
               "people stay, with their other lists, and each one's consent log says the list was deleted")
