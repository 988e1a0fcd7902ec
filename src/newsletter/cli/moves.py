"""`newsletter backup FILE` and `newsletter restore FILE`: moving an installation whole."""

from __future__ import annotations

import click

from ..installation import Newsletter
from ..people import moves
from . import main, pass_newsletter


def _counts(rows: dict[str, int]) -> str:
    return ", ".join(f"{n} {table}" for table, n in rows.items() if n) or "nothing (the store was empty)"


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@pass_newsletter
def backup(newsletter: Newsletter, file: str) -> None:
    """Write everything the store holds to one archive (to move the installation, or keep it).

    People with their statuses, subscriptions, the consent log, suppressions (hashes), bounces,
    lists, campaigns and their ledgers all go. The archive's format is documented in docs/operations.md ("Moving an installation"). Keep
    secret.key with it: the links already mailed need it.

    Example: newsletter backup newsletter-2026-12-02.zip
    """
    report = moves.backup(newsletter, file)
    click.echo(f"wrote {report.path} ({report.size:,} bytes, schema {report.schema_revision}): {_counts(report.rows)}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", is_flag=True, help="Delete everything the store holds first (it must be empty otherwise).")
@click.option("--yes", is_flag=True, help="With --replace: do not ask for confirmation.")
@pass_newsletter
def restore(newsletter: Newsletter, file: str, replace: bool, yes: bool) -> None:
    """Restore an archive written by `newsletter backup` into this installation's store.

    Run `newsletter init` first (an empty store at this version's schema). Nothing is written
    unless the whole archive is restored.

    Example: NEWSLETTER_DATABASE_URL=postgresql://newsletter@dbhost/newsletter newsletter restore newsletter-2026-12-02.zip
    """
    if replace and not yes:
        click.confirm("Delete everything this store holds and replace it with the archive?", abort=True)
    report = moves.restore(newsletter, file, replace=replace)
    if report.replaced:
        click.echo(f"deleted what the store held: {_counts(report.replaced)}")
    click.echo(f"restored {report.path} (taken {report.created_at:%Y-%m-%d %H:%M} UTC from {report.database}, "
               f"schema {report.schema_revision}): {_counts(report.rows)}")
