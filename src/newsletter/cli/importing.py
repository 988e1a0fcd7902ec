"""`newsletter import FILE.csv`: a progress bar over `importer.import_csv`, then a summary."""

from __future__ import annotations

import sys

import click

from ..installation import Newsletter
from ..people.importer import ImportOptions, ImportProgress, ImportReport, import_csv
from . import main, pass_newsletter, shown


def printable(text: str) -> str:
    """Text safe to print on a terminal: control characters shown as escapes, never obeyed."""
    return shown(text)


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--list", "lists", multiple=True, metavar="SLUG",
              help="Add every row to this list (repeat for several), besides the lists its `lists` column names.")
@click.option("--language", default=None, help="Language of new people whose row names none (default: default_language).")
@click.option("--confirmed", is_flag=True,
              help="The people have already consented elsewhere: subscribe them as active, with no confirmation mail. "
                   "Needs --consent-note.")
@click.option("--consent-note", default=None, metavar="TEXT",
              help="Where the consent comes from; recorded in each imported person's consent log.")
@click.option("--dry-run", is_flag=True, help="Check and count everything; write nothing to the store, send nothing.")
@click.option("--rejects", type=click.Path(dir_okay=False, writable=True), default=None, metavar="FILE",
              help="Write the rejected rows to this CSV file (the original columns plus line and reason).")
@click.option("--delimiter", type=click.Choice([",", ";", "tab"]), default=None,
              help="The column delimiter (default: detected from the header line).")
@click.option("--encoding", default=None, metavar="NAME",
              help="The file's encoding, e.g. cp1252 or latin-1 (default: UTF-8, or cp1252 for a file that is "
                   "plainly not UTF-8, as Excel on Windows saves it).")
@click.option("--status", default=None, metavar="STATUS",
              help="The status of every row whose own status column says nothing: e.g. unsubscribed for another "
                   "tool's export of the people who left (their addresses become suppressions).")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Extra processes that validate rows while this one writes (0: validate here).")
@pass_newsletter
def import_(newsletter: Newsletter, file: str, lists: tuple[str, ...], language: str | None, confirmed: bool,
            consent_note: str | None, dry_run: bool, rejects: str | None, delimiter: str | None,
            encoding: str | None, status: str | None, workers: int) -> None:
    """Import people from a CSV file with a header (email, and optionally name, language, lists).

    Imported people are pending and get a confirmation mail, unless --confirmed. Suppressed and
    unsubscribed addresses are never subscribed again. A `status` column saying unsubscribed,
    bounced (cleaned), complained or blocklisted makes the row's address a suppression, never a
    person, --confirmed or not; one saying pending keeps the row pending. Every bad row is
    reported with its line number. Importing the same file again changes nothing. subscribers/README.md describes the format.

    Example: newsletter import subscribers/sample.csv --list asp-daily --rejects rejects.csv
    """
    if confirmed and not consent_note:
        raise click.UsageError("--confirmed needs --consent-note saying where the people's consent comes from")
    options = ImportOptions(list_slugs=lists, language=language, confirmed=confirmed, consent_note=consent_note,
                            dry_run=dry_run, delimiter=delimiter, rejects_path=rejects, workers=workers,
                            encoding=encoding, status=status)
    label = "Checking" if dry_run else "Importing"
    with click.progressbar(length=1, label=label, file=sys.stderr,
                           show_pos=False, show_percent=True) as bar:
        done = 0

        def on_progress(p: ImportProgress) -> None:
            nonlocal done
            bar.length = max(p.total_bytes, 1)
            bar.update(p.bytes_read - done)
            done = p.bytes_read

        report = import_csv(newsletter, file, options, progress=on_progress)
    print_report(report, rejects)


def print_report(report: ImportReport, rejects: str | None) -> None:
    delimiter = {"\t": "tab"}.get(report.delimiter, report.delimiter)
    mode = "dry run, nothing written: " if report.dry_run else ""
    encoding = f"encoding {report.encoding}" + (", detected" if report.encoding_detected else "")
    click.echo(f"{printable(report.path)}: {mode}{report.rows} rows ({report.columns.source.name}, delimiter "
               f"{delimiter!r}, {encoding})")
    for label, n in (
        ("imported", report.imported),
        ("already there", report.already_there),
        ("merged duplicates", report.merged_duplicates),
        ("suppressed", report.suppressed),
        ("unsubscribed", report.unsubscribed),
        ("rejected", report.rejected),
    ):
        click.echo(f"  {label:<20}{n:>9}")
    if report.status_suppressions:
        reasons = ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in sorted(report.status_suppressions.items()))
        click.echo(f"  {'made suppressions':<20}{sum(report.status_suppressions.values()):>9} (their status column "
                   f"says: {reasons}; never imported as people)")
    if report.kept_pending:
        click.echo(f"  {'kept pending':<20}{report.kept_pending:>9} (their status column says they never confirmed: "
                   "they get a confirmation mail, --confirmed or not)")
    if report.confirmations_due or report.confirmations_sent or report.confirmations_failed or \
            report.confirmations_queued:
        if report.dry_run:
            click.echo(f"  {'confirmations due':<20}{report.confirmations_due:>9}")
        else:
            failed = f" ({report.confirmations_failed} refused by the relay)" if report.confirmations_failed else ""
            click.echo(f"  {'confirmations sent':<20}{report.confirmations_sent:>9}{failed}")
            if report.confirmations_queued:
                click.echo(f"  {'confirmations queued':<20}{report.confirmations_queued:>9} (not sent yet: the relay "
                           "said 'try later' or could not be reached; `newsletter serve` sends them, retrying with "
                           "back-off)")
    if report.columns.attributes:
        click.echo(f"  attribute columns: {', '.join(name for name, _ in report.columns.attributes)}")
    if report.columns.ignored:
        click.echo(f"  ignored columns: {', '.join(printable(c) for c in report.columns.ignored)}")
    if report.rejected_rows:
        click.echo("Rejected rows:")
        for row in report.rejected_rows:
            email = printable(row.email) or "(no address)"
            click.echo(f"  line {row.line}: {email}: {row.reason.value}: {printable(row.detail)}")
        more = report.rejected - len(report.rejected_rows)
        if more:
            click.echo(f"  … and {more} more" + (f"; all are in {rejects}" if rejects else "; use --rejects FILE to get them all"))
    if rejects and report.rejected:
        click.echo(f"Rejected rows written to {rejects}")
