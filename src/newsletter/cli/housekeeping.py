"""`newsletter housekeeping`: one pass of the jobs `newsletter serve` runs every few minutes."""

from __future__ import annotations

import click

from ..installation import Newsletter
from ..routine.housekeeping import run_housekeeping
from . import main, pass_newsletter


@main.command()
@pass_newsletter
def housekeeping(newsletter: Newsletter) -> None:
    """Remind and expire pending sign-ups; blank old IPs and user agents in the consent log.

    The service does this every five minutes; run it from cron when the service does not run.
    reminder_days, pending_expiry_days and consent_origin_retention_days say what it does
    (0 turns a job off).

    Example: newsletter housekeeping
    """
    done = run_housekeeping(newsletter)
    click.echo(f"{done.reminded} person(s) reminded (their mail is queued), {done.expired} pending sign-up(s) "
               f"expired, {done.blanked} consent-log line(s) blanked")
