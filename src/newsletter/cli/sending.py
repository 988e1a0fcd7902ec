"""`newsletter send` and `newsletter campaigns` / `newsletter campaign …`: each parses, makes
one library call (`sending.launch` to send, `sending.actions` for the rest) and prints.

The library says what happened; the hints that name commands are worded here."""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from typing import Any

import click

from ..errors import (
    CampaignContentChanged,
    CampaignContentMissing,
    CampaignStateError,
    NoAudience,
    UnknownCampaign,
)
from ..installation import Newsletter
from ..sending import actions
from ..sending.launch import (
    SendControl,
    launch,
    prepare_resume,
    prepare_send,
    send_test_mail,
)
from ..sending.options import Progress, SendOptions, SendResult
from ..sending.reach import campaign_reach
from ..sending.pacing import Pace, estimated_seconds
from ..statuses import CampaignStatus
from ..texts import N_, Text
from . import main, pass_newsletter, shown
from .segments import print_plan


def _hint(exc: Exception) -> str | None:
    """What to do next about a campaign error, in commands."""
    if isinstance(exc, UnknownCampaign):
        return "`newsletter campaigns` lists them"
    if isinstance(exc, CampaignContentMissing):
        return "send it again with `newsletter send FILES...`"
    if isinstance(exc, CampaignContentChanged):
        return ("put the content back as it was, or add --accept-changed-content to send the rest the content "
                "as it is now")
    return None


def with_hints(command: Callable) -> Callable:
    """Campaign errors become `Error: …` lines with the command that helps, where one does."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (UnknownCampaign, CampaignStateError) as exc:
            hint = _hint(exc)
            if hint is None:
                raise
            raise click.ClickException(f"{exc}; {hint}") from None

    return wrapper


def _resume_hint(result: SendResult) -> str:
    when = f" after {result.next_due:%Y-%m-%d %H:%M} UTC" if result.next_due else ""
    return f"resume it{when} with `newsletter campaign resume {result.slug}`"


def _parse_rate(value: str | None) -> float | None:
    if not value:
        return None
    text = value.strip().lower().removesuffix("/s")
    try:
        rate = float(text)
    except ValueError:
        raise click.BadParameter(f"expected messages per second such as 50 or 50/s, not {value!r}") from None
    if rate <= 0:
        raise click.BadParameter("the rate must be positive")
    return rate


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _print_progress(p: Progress) -> None:
    eta = f", about {_duration(p.eta)} left" if p.eta is not None else ""
    note = f"  {p.note}" if p.note else ""
    line = (f"\rsent {p.sent}  deferred {p.deferred}  failed {p.failed}  skipped {p.skipped}  "
            f"left {p.remaining}  {p.rate:.0f}/s{eta}{note}")
    click.echo(line.ljust(100), nl=False, err=True)


def _stop_on_signals(control: SendControl) -> None:
    """Ctrl-C and SIGTERM finish the messages in flight and leave the campaign paused."""
    control.stop_on_signal(signal.SIGINT, Text(N_("interrupted (Ctrl-C)")))
    control.stop_on_signal(signal.SIGTERM, Text(N_("stopped (SIGTERM)")))


def _print_result(result: SendResult) -> None:
    click.echo("", err=True)
    c = result.counts
    click.echo(f"campaign {result.slug}: {result.status.value}; sent {c.sent}, deferred {c.deferred}, "
               f"failed {c.failed}, skipped {c.skipped}, queued {c.queued} (this run sent {result.sent_now})")
    if result.paused and result.next_due is not None:  # only deferred rows are left: not a failure
        click.echo(f"{c.deferred} message(s) deferred by the relay; they are retried from "
                   f"{result.next_due:%Y-%m-%d %H:%M} UTC by a running `newsletter serve`, or by "
                   f"`newsletter campaign resume {result.slug}` then (`--wait` stays until they are done)")
        return
    if result.paused:
        raise click.ClickException(f"the campaign is paused: {result.reason}; {_resume_hint(result)}")


def _options(concurrency: int, rate: str | None, hourly_cap: int | None, wait: bool = False) -> SendOptions:
    return SendOptions(concurrency=concurrency, pace=Pace(rate=_parse_rate(rate), hourly_cap=hourly_cap),
                       wait_for_deferred=wait)


def speed_options(command: Callable) -> Callable:
    """--concurrency, --rate, --hourly-cap and --wait."""
    for option in reversed((
        click.option("--concurrency", default=8, show_default=True, help="SMTP connections used at once."),
        click.option("--rate", default=None, metavar="N/s", help="At most this many messages per second."),
        click.option("--hourly-cap", type=int, default=None, help="At most this many messages per hour."),
        click.option("--wait", is_flag=True, help="After the first pass, stay until the deferred messages are "
                                                  "retried (default: say when, and return)."),
    )):
        command = option(command)
    return command


@main.command()
@click.argument("content", nargs=-1, required=True)
@click.option("--list", "list_slug", default=None, help="The list to send to (default: the one the content names).")
@click.option("--segment", default=None, metavar="NAME",
              help="Only the list's subscribers this segment names (`newsletter segments`).")
@click.option("--test-to", "test_to", multiple=True, metavar="ADDRESS",
              help="Send every language variant, subject prefixed [TEST], to this address only; records nothing.")
@speed_options
@click.option("--dry-run", is_flag=True, help="Lint and show the audience, send nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--worker", is_flag=True, help="Join a campaign another process started (PostgreSQL: several "
                                              "workers share one campaign).")
@click.option("--accept-changed-content", "accept_changed", is_flag=True,
              help="Go on with a started campaign although its content files changed since it started.")
@click.option("--to-new", "to_new", is_flag=True,
              help="Send a finished issue on to those who joined the list since; nobody gets it twice.")
@pass_newsletter
@with_hints
def send(newsletter: Newsletter, content: tuple[str, ...], list_slug: str | None, segment: str | None,
         test_to: tuple[str, ...],
         concurrency: int, rate: str | None, hourly_cap: int | None, wait: bool, dry_run: bool, yes: bool,
         worker: bool, accept_changed: bool, to_new: bool) -> None:
    """Send an issue to every confirmed subscriber of a list (running it again resumes it).

    CONTENT is the issue's content files (one per language). Lint errors stop the send. The
    campaign is named by the content's slug, so running the same command again resumes it and
    never mails anyone twice. Ctrl-C finishes the messages in flight and leaves it paused. A
    send to a list with nobody on it is refused. Once an issue is finished, `--to-new` sends
    it on to the people who joined since (the ledger keeps anyone from getting it twice).

    Example: newsletter send examples/asp23/day-3.*.md --list asp-daily --rate 200/s
    """
    prepared = prepare_send(newsletter, content, list_slug=list_slug, segment=segment)
    for line in prepared.lint.format().splitlines():
        click.echo(f"  {line}")
    prepared.lint.raise_for_errors()
    if test_to:
        for address, language, reply in send_test_mail(newsletter, prepared, test_to):
            click.echo(f"[TEST] {language} to {shown(address)}: {shown(reply.describe())}")
        return
    options = _options(concurrency, rate, hourly_cap, wait)
    plan = prepared.plan
    print_plan(prepared)
    click.echo(f"  total {plan.total}; about {_duration(estimated_seconds(plan.total, options.pace))} at "
               f"{f'{options.pace.rate:g}/s' if options.pace.rate else 'full speed'}")
    if dry_run:
        return
    if to_new:
        if not yes and not click.confirm(f"Send {prepared.slug} to those of the {plan.total} subscriber(s) "
                                         "who have not had it?"):
            raise click.ClickException("nothing sent")
    elif not worker:
        if prepared.existing is None and plan.total and not yes and \
                not click.confirm(f"Send to {plan.total} subscriber(s)?"):
            raise click.ClickException("nothing sent")
        if prepared.resumes:
            click.echo(f"resuming campaign {prepared.slug}")
    try:
        result = launch(newsletter, prepared, options, join=worker, to_new=to_new,
                        accept_changed_content=accept_changed, on_progress=_print_progress,
                        on_start=_stop_on_signals)
    except NoAudience as exc:
        hint = ("" if exc.since else
                f"; `newsletter subscribers --list {exc.list_slug}` shows who is on it (confirmed people only are mailed)")
        raise click.ClickException(f"{exc}{hint}") from None
    except CampaignStateError as exc:
        if exc.status != CampaignStatus.FINISHED.value or to_new:
            raise
        raise click.ClickException(f"{exc}; `newsletter campaign retry {exc.slug}` re-sends to those it "
                                   "failed for, and `newsletter send FILES --to-new` sends it to those who joined "
                                   "since") from None
    _print_result(result)


@main.command(name="campaigns")
@pass_newsletter
def list_campaigns(newsletter: Newsletter) -> None:
    """Every campaign with its counts (queued, sending, sent, deferred, failed, skipped).

    Example: newsletter campaigns
    """
    summaries = actions.overview(newsletter)
    if not summaries:
        click.echo("no campaigns yet; send one with: newsletter send CONTENT... --list SLUG")
        return
    click.echo(f"{'campaign':<28} {'list':<16} {'status':<10} {'queued':>7} {'sending':>7} {'sent':>7} "
               f"{'deferred':>8} {'failed':>7} {'skipped':>7}")
    for s in summaries:
        c = s.counts
        click.echo(f"{shown(s.slug):<28} {shown(s.list_slug):<16} {s.status.value:<10} {c.queued:>7} {c.sending:>7} {c.sent:>7} "
                   f"{c.deferred:>8} {c.failed:>7} {c.skipped:>7}")


@main.group(name="campaign")
def campaign_group() -> None:
    """One campaign: show, pause, resume, cancel, report, reach, retry.

    Example: newsletter campaign show asp23-day-3
    """


@campaign_group.command(name="show")
@click.argument("slug")
@pass_newsletter
@with_hints
def show_campaign(newsletter: Newsletter, slug: str) -> None:
    """A campaign's state, reason and counts.

    Example: newsletter campaign show asp23-day-3
    """
    s, holders = actions.detail(newsletter, slug)
    click.echo(f"{shown(s.slug)}: {s.status.value} (list {shown(s.list_slug)}) — {shown(s.subject)}")
    if s.status_reason:
        click.echo(f"  reason: {shown(s.status_reason)}")
    click.echo(f"  created {s.created_at:%Y-%m-%d %H:%M}"
               + (f", started {s.started_at:%Y-%m-%d %H:%M}" if s.started_at else "")
               + (f", finished {s.finished_at:%Y-%m-%d %H:%M}" if s.finished_at else ""))
    click.echo("  " + ", ".join(f"{k} {v}" for k, v in s.counts._asdict().items()) + f" (total {s.counts.total})")
    for worker, n in holders.items():
        click.echo(f"  held by {shown(worker)}: {n}")
    if s.status is CampaignStatus.PAUSED:
        click.echo(f"  `newsletter campaign resume {s.slug}` sends the rest")


@campaign_group.command(name="pause")
@click.argument("slug")
@pass_newsletter
@with_hints
def pause_campaign(newsletter: Newsletter, slug: str) -> None:
    """Pause: senders stop claiming, finish what is in flight and stop.

    Example: newsletter campaign pause asp23-day-3
    """
    actions.pause(newsletter, slug)
    click.echo(f"campaign {slug} paused; `newsletter campaign resume {slug}` continues it")


@campaign_group.command(name="resume")
@click.argument("slug")
@speed_options
@click.option("--accept-changed-content", "accept_changed", is_flag=True,
              help="Go on although the campaign's content files changed since it started.")
@pass_newsletter
@with_hints
def resume_campaign(newsletter: Newsletter, slug: str, concurrency: int, rate: str | None,
                    hourly_cap: int | None, wait: bool, accept_changed: bool) -> None:
    """Resume a paused campaign and send the rest, from the content files it was started with.

    Example: newsletter campaign resume asp23-day-3
    """
    options = _options(concurrency, rate, hourly_cap, wait)
    _print_result(launch(newsletter, prepare_resume(newsletter, slug), options,
                         accept_changed_content=accept_changed, on_progress=_print_progress,
                         on_start=_stop_on_signals))


@campaign_group.command(name="cancel")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_newsletter
@with_hints
def cancel_campaign(newsletter: Newsletter, slug: str, yes: bool) -> None:
    """Cancel: nobody else is mailed; rows not yet sent become skipped.

    Example: newsletter campaign cancel asp23-day-3 --yes
    """
    if not yes:
        click.confirm(f"Cancel {slug} for good?", abort=True)
    done = actions.cancel(newsletter, slug)
    c = done.counts
    click.echo(f"campaign {slug} cancelled: {done.skipped_now} recipient(s) not yet mailed are now skipped")
    click.echo(f"  the ledger: sent {c.sent}, failed {c.failed}, skipped {c.skipped} "
               f"({c.skipped - done.skipped_now} before the cancel), sending {c.sending}")
    if c.sending:
        click.echo(f"  {c.sending} row(s) are held by a running sender: each finishes the message it is on, "
                   "and the rest become skipped")


@campaign_group.command(name="report")
@click.argument("slug")
@click.option("--failed", "failed_only", is_flag=True, help="Only who did not get it, and why.")
@pass_newsletter
@with_hints
def report_campaign(newsletter: Newsletter, slug: str, failed_only: bool) -> None:
    """Who did not get the campaign (failed, deferred, skipped), the reason and the relay that
    gave it, how many went through each relay, and the bounces and complaints that came back
    about it, by person.

    Example: newsletter campaign report asp23-day-3 --failed
    """
    report = actions.report(newsletter, slug)
    if not failed_only:
        click.echo(", ".join(f"{k} {v}" for k, v in report.counts._asdict().items()))
        for relay, counts in report.by_relay.items():
            click.echo(f"  through {shown(relay)}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if not report.failures and not report.bounces:
        click.echo("everyone got it (or is still queued), and no bounce or complaint came back")
        return
    for line in report.failures:
        via = f"\tvia {shown(line.relay)}" if line.relay else ""
        click.echo(f"{shown(line.email) or '(erased)'}\t{line.status.value}\t{line.attempts}\t{shown(line.reply)}{via}")
    if report.bounces:
        click.echo(f"bounces and complaints that came back ({len(report.bounces)}):")
    for b in report.bounces:
        click.echo(f"{shown(b.email) or '(erased)'}\t{b.kind.value}\t{b.at:%Y-%m-%d %H:%M}\t"
                   f"{shown(b.status or '')}\t{shown(b.reason)}\t{shown(b.outcome)}\tvia {shown(b.came_from)}")


@campaign_group.command(name="reach")
@click.argument("slug")
@pass_newsletter
@with_hints
def reach_campaign(newsletter: Newsletter, slug: str) -> None:
    """Member organisations the campaign left with no reachable contact (all unsubscribed, bounced or failed).

    Example: newsletter campaign reach asp23-day-3
    """
    lost, total = campaign_reach(newsletter, slug)
    if not total:
        click.echo("no member organisations on this campaign (declare an attribute with organisation = true)")
        return
    click.echo(f"{len(lost)} of {total} member organisation(s) have no reachable contact left")
    for o in lost:
        where = f" ({', '.join(o.countries)})" if o.countries else ""
        click.echo(f"  {o.organisation}{where}: {o.contacts} contact(s): {o.unsubscribed} unsubscribed, "
                   f"{o.suppressed} bounced, complained or blocked, {o.failed} failed")


@campaign_group.command(name="retry")
@click.argument("slug")
@pass_newsletter
@with_hints
def retry_campaign(newsletter: Newsletter, slug: str) -> None:
    """Queue failed and deferred recipients again (then `campaign resume` sends them).

    Example: newsletter campaign retry asp23-day-3
    """
    n = actions.retry(newsletter, slug)
    click.echo(f"{n} recipient(s) queued again; `newsletter campaign resume {slug}` sends to them")
