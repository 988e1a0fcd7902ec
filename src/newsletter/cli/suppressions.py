"""`newsletter suppressions …`: list the suppression list, lift a suppression, import one."""

from __future__ import annotations

import click

from ..installation import Newsletter
from ..people import suppressions
from ..statuses import SuppressionReason
from . import main, pass_newsletter
from .importing import printable

_REASON = click.Choice([r.value for r in SuppressionReason])


@main.group(name="suppressions", invoke_without_command=True)
@click.pass_context
def suppressions_group(ctx: click.Context) -> None:
    """Addresses never mailed or imported again: list them, lift one, import a list.

    Example: newsletter suppressions list --reason hard_bounce
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_suppressions)


@suppressions_group.command(name="list")
@click.option("--reason", type=_REASON, default=None, help="Only this reason.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many, newest first.")
@pass_newsletter
def list_suppressions(newsletter: Newsletter, reason: str | None, limit: int | None) -> None:
    """Every suppression, newest first, with its reason and date.

    An erased address is shown by its hash only: nothing else of it is kept.

    Example: newsletter suppressions list --reason complaint --limit 50
    """
    counts = suppressions.count_suppressions(newsletter)
    if not counts:
        click.echo("no suppressions")
        return
    click.echo(f"{sum(counts.values())} suppressed: " + ", ".join(f"{n} {r}" for r, n in counts.items()))
    for line in suppressions.list_suppressions(newsletter, reason=SuppressionReason(reason) if reason else None,
                                               limit=limit):
        who = printable(line.address) if line.address else f"(hash {line.address_hash[:16]}…)"
        note = f"  {printable(line.note)}" if line.note else ""
        click.echo(f"  {line.at:%Y-%m-%d %H:%M}  {line.reason:<13} {who}{note}")


@suppressions_group.command(name="lift")
@click.argument("address")
@click.option("--reason", "why", required=True, metavar="TEXT",
              help="Why the suppression is lifted; kept with the record and in the person's consent log.")
@pass_newsletter
def lift(newsletter: Newsletter, address: str, why: str) -> None:
    """Lift the suppression of an address suppressed or erased by mistake.

    Nothing is mailed: the address may sign up again, and is mailed only once it confirms.

    Example: newsletter suppressions lift ana@example.org --reason "the bounce was the relay's fault"
    """
    lifted = suppressions.lift(newsletter, address, why)
    click.echo(f"{address}: the suppression ({lifted.reason}, since {lifted.suppressed_at:%Y-%m-%d}) is lifted; "
               + ("their subscriptions stay ended until they sign up again and confirm" if lifted.person_kept
                  else "they may sign up again (and are mailed once they confirm)"))


@suppressions_group.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--reason", type=_REASON, default=SuppressionReason.ADMIN.value, show_default=True,
              help="The reason recorded (a row's own status column, when it names one, wins).")
@click.option("--note", default=None, metavar="TEXT", help="A note kept with each suppression (default: the file's name).")
@click.option("--dry-run", is_flag=True, help="Count; write nothing.")
@pass_newsletter
def import_(newsletter: Newsletter, file: str, reason: str, note: str | None, dry_run: bool) -> None:
    """Suppress every address of a CSV file with an email column (e.g. another tool's unsubscribed export).

    A person already in the store with such an address leaves every list.

    Example: newsletter suppressions import mailchimp-unsubscribed.csv --reason unsubscribed
    """
    report = suppressions.import_suppressions(newsletter, file, reason=SuppressionReason(reason), note=note,
                                              dry_run=dry_run)
    mode = "dry run, nothing written: " if dry_run else ""
    click.echo(f"{printable(report.path)}: {mode}{report.rows} rows")
    for label, n in (("suppressed", report.added), ("already suppressed", report.already),
                     ("rejected", len(report.rejected))):
        click.echo(f"  {label:<20}{n:>9}")
    if report.people:
        click.echo(f"  of whom {report.people} were subscribed here and have left every list")
    for row in report.rejected[:100]:
        click.echo(f"  line {row.line}: {printable(row.email) or '(no address)'}: {row.reason.value}: "
                   f"{printable(row.detail)}")
