"""`newsletter demo`: run the whole product once, on this machine, for real."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from ..demo import EXAMPLES, run_demo
from . import main


@main.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False), default="newsletter-demo", show_default=True,
              help="The demo's own folder (made anew on each run; any other folder is left alone).")
def demo(folder: str) -> None:
    """Sign people up, confirm them, send a daily summary and unsubscribe one, all on loopback.

    Uses the embedded store, the local SMTP catcher and the visitor pages on free ports, in a
    folder of its own; your own newsletter.toml and data are not touched.

    Example: newsletter demo --dir /tmp/newsletter-demo
    """
    click.echo(f"newsletter demo in {Path(folder).resolve()}")
    result = run_demo(Path(folder), say=lambda line: click.echo(f"  {line}"))
    click.echo("")
    click.echo(f"Who got what (campaign {result.campaign}):")
    for language, count in sorted(result.sent_by_language.items()):
        click.echo(f"  {language}: {count:>3} subscribers   {result.subjects.get(language, '(fallback variant)')}")
    click.echo(f"  unsubscribed with one click afterwards: {result.unsubscribed}")
    click.echo("")
    click.echo("Look at it:")
    click.echo(f"  every caught mail as .eml:   {result.eml_dir}/")
    click.echo(f"  the rendered issue (.html):  {result.html_dir}/")
    click.echo("")
    nl = _command_name()
    click.echo("Try next:")
    click.echo(f"  cd {result.folder}")
    click.echo(f"  {nl} sink             # in another terminal: the catcher that mail goes to")
    click.echo(f"  {nl} serve            # the sign-up, confirm and unsubscribe pages")
    click.echo(f"  {nl} show grace.mensah@example.org   # one person's consent log")
    click.echo(f"  {nl} preview {EXAMPLES}/asp23/day-4.*.md --out preview")
    click.echo(f"  {nl} send {EXAMPLES}/asp23/day-4.*.md --list asp-daily   # Day 4, with the sink running")


def _command_name() -> str:
    """`newsletter` when that is what the shell finds, else the full path of this one."""
    this = Path(sys.argv[0]).resolve()
    found = shutil.which("newsletter")
    if this.name == "newsletter" and (found is None or Path(found).resolve() != this):
        return str(this)
    return "newsletter"
