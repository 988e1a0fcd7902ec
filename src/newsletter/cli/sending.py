"""`newsletter send` and `newsletter campaigns` / `newsletter campaign …`: thin commands over
`send`, `campaigns` and `outbox`."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from ..errors import DeliveryError
from ..installation import Newsletter
from ..mail.compose import render_issue
from ..mail.content import load_issue
from ..mail.lint import lint_issue
from ..sending import campaigns as campaigns_lib
from ..sending.pacing import Pace
from ..sending.launch import plan_send
from ..sending.messages import send_test
from ..sending.sender import Progress, SendOptions, run_sending, sender_for
from ..statuses import CampaignStatus
from ..store import ledger as outbox
from . import main, pass_newsletter

#: Used for the duration estimate when no --rate is given (what one process sustains here).
TYPICAL_RATE = 1000.0


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


def _run_sender(newsletter: Newsletter, slug: str, files: list[str], options: SendOptions) -> None:
    """Send (or resume) the campaign `slug` from its content files, with Ctrl-C pausing it."""
    config = newsletter.config
    rendered = render_issue(config, load_issue(files))
    sender = sender_for(newsletter.store, config, slug, rendered, options=options, clock=newsletter.clock,
                        on_progress=_print_progress, secret=newsletter.secret())

    async def run():
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, sender.stop,
                                "interrupted (Ctrl-C); `newsletter send` with the same files resumes it")
        loop.add_signal_handler(signal.SIGTERM, sender.stop, "stopped (SIGTERM)")
        return await sender.run()

    result = run_sending(run())
    click.echo("", err=True)
    c = result.counts
    click.echo(f"campaign {slug}: {result.status.value}; sent {c.sent}, deferred {c.deferred}, failed {c.failed}, "
               f"skipped {c.skipped}, queued {c.queued} (this run sent {result.sent_now})")
    if result.status is CampaignStatus.PAUSED:
        raise click.ClickException(f"the campaign is paused: {result.reason}")


@main.command()
@click.argument("content", nargs=-1, required=True)
@click.option("--list", "list_slug", default=None, help="The list to send to (default: the one the content names).")
@click.option("--test-to", "test_to", multiple=True, metavar="ADDRESS",
              help="Send every language variant, subject prefixed [TEST], to this address only; records nothing.")
@click.option("--concurrency", default=8, show_default=True, help="SMTP connections used at once.")
@click.option("--rate", default=None, metavar="N/s", help="At most this many messages per second.")
@click.option("--hourly-cap", type=int, default=None, help="At most this many messages per hour.")
@click.option("--dry-run", is_flag=True, help="Lint and show the audience, send nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--worker", is_flag=True, help="Join a campaign another process started (PostgreSQL: several "
                                              "workers share one campaign).")
@pass_newsletter
def send(newsletter: Newsletter, content: tuple[str, ...], list_slug: str | None, test_to: tuple[str, ...],
         concurrency: int, rate: str | None, hourly_cap: int | None, dry_run: bool, yes: bool, worker: bool) -> None:
    """Send an issue to every confirmed subscriber of a list (running it again resumes it).

    CONTENT is the issue's content files (one per language). Lint errors stop the send. The
    campaign is named by the content's slug, so running the same command again resumes it and
    never mails anyone twice. Ctrl-C finishes the messages in flight and leaves it paused.

    Example: newsletter send examples/asp23/day-3.*.md --list asp-daily --rate 200/s
    """
    config = newsletter.config
    files = [str(Path(c)) for c in content]
    issue = load_issue(files)
    rendered = render_issue(config, issue)
    list_slug = list_slug or issue.list
    with newsletter.store.session() as session:
        plan = plan_send(session, config, issue.slug, list_slug, list(rendered))
    report = lint_issue(rendered, subscriber_languages=[lang for lang in plan.variant_of if lang in plan.audience
                                                        or lang in rendered], fallback_chain=plan.fallback_chain)
    for line in report.format().splitlines():
        click.echo(f"  {line}")
    report.raise_for_errors()
    if test_to:
        results = asyncio.run(send_test(config, rendered, list(test_to), list_slug=list_slug,
                                        list_name=plan.list_name, campaign_slug=issue.slug,
                                        secret=newsletter.secret()))
        for address, language, reply in results:
            click.echo(f"[TEST] {language} to {address}: {reply.describe()}")
        return
    per_second = _parse_rate(rate)
    estimate = plan.total / min(per_second or TYPICAL_RATE, TYPICAL_RATE)
    if hourly_cap:
        estimate = max(estimate, plan.total / hourly_cap * 3600)
    click.echo(f"{issue.slug} to list {list_slug} ({plan.list_name}):")
    for language, n in sorted(plan.audience.items()):
        click.echo(f"  {language}: {n} subscriber(s)")
    click.echo(f"  total {plan.total}; about {_duration(estimate)} at "
               f"{f'{per_second:g}/s' if per_second else 'full speed'}")
    if dry_run:
        return
    options = SendOptions(concurrency=concurrency, pace=Pace(rate=per_second, hourly_cap=hourly_cap))
    with newsletter.store.session() as session:
        if worker:
            campaigns_lib.join_campaign(session, issue.slug)
        else:
            existing = campaigns_lib.find_campaign(session, issue.slug)
            if existing is None and not yes and not click.confirm(f"Send to {plan.total} subscriber(s)?"):
                raise click.ClickException("nothing sent")
            campaign, created = campaigns_lib.start_campaign(
                session, issue.slug, list_slug, now=newsletter.clock(), subject=rendered[next(iter(rendered))].subject,
                kind=issue.kind.value, source={"files": [str(Path(f).resolve()) for f in files]},
                languages=plan.variant_of, default_language=plan.variant_of.get(config.default_language, "en"))
            if not created:
                click.echo(f"resuming campaign {issue.slug}")
    _run_sender(newsletter, issue.slug, files, options)


@main.command(name="campaigns")
@pass_newsletter
def list_campaigns(newsletter: Newsletter) -> None:
    """Every campaign with its counts (queued, sending, sent, deferred, failed, skipped).

    Example: newsletter campaigns
    """
    with newsletter.store.session() as session:
        summaries = campaigns_lib.summarise_campaigns(session)
    if not summaries:
        click.echo("no campaigns yet; send one with: newsletter send CONTENT... --list SLUG")
        return
    click.echo(f"{'campaign':<28} {'list':<16} {'status':<10} {'queued':>7} {'sending':>7} {'sent':>7} "
               f"{'deferred':>8} {'failed':>7} {'skipped':>7}")
    for s in summaries:
        c = s.counts
        click.echo(f"{s.slug:<28} {s.list_slug:<16} {s.status.value:<10} {c.queued:>7} {c.sending:>7} {c.sent:>7} "
                   f"{c.deferred:>8} {c.failed:>7} {c.skipped:>7}")


@main.group(name="campaign")
def campaign_group() -> None:
    """One campaign: show, pause, resume, cancel, report, retry.

    Example: newsletter campaign show asp23-day-3
    """


@campaign_group.command(name="show")
@click.argument("slug")
@pass_newsletter
def show_campaign(newsletter: Newsletter, slug: str) -> None:
    """A campaign's state, reason and counts.

    Example: newsletter campaign show asp23-day-3
    """
    with newsletter.store.session() as session:
        s = campaigns_lib.summarise_campaign(session, campaigns_lib.get_campaign(session, slug))
        holders = outbox.active_claims(session, campaigns_lib.get_campaign(session, slug).id)
    click.echo(f"{s.slug}: {s.status.value} (list {s.list_slug}) — {s.subject}")
    if s.status_reason:
        click.echo(f"  reason: {s.status_reason}")
    click.echo(f"  created {s.created_at:%Y-%m-%d %H:%M}"
               + (f", started {s.started_at:%Y-%m-%d %H:%M}" if s.started_at else "")
               + (f", finished {s.finished_at:%Y-%m-%d %H:%M}" if s.finished_at else ""))
    click.echo("  " + ", ".join(f"{k} {v}" for k, v in s.counts._asdict().items()) + f" (total {s.counts.total})")
    for worker, n in holders.items():
        click.echo(f"  held by {worker}: {n}")


@campaign_group.command(name="pause")
@click.argument("slug")
@pass_newsletter
def pause_campaign(newsletter: Newsletter, slug: str) -> None:
    """Pause: senders stop claiming, finish what is in flight and stop.

    Example: newsletter campaign pause asp23-day-3
    """
    with newsletter.store.session() as session:
        campaigns_lib.pause_campaign(session, slug, "paused by an administrator")
    click.echo(f"campaign {slug} paused; `newsletter campaign resume {slug}` continues it")


@campaign_group.command(name="resume")
@click.argument("slug")
@click.option("--concurrency", default=8, show_default=True, help="SMTP connections used at once.")
@click.option("--rate", default=None, metavar="N/s", help="At most this many messages per second.")
@click.option("--hourly-cap", type=int, default=None, help="At most this many messages per hour.")
@pass_newsletter
def resume_campaign(newsletter: Newsletter, slug: str, concurrency: int, rate: str | None,
                    hourly_cap: int | None) -> None:
    """Resume a paused campaign and send the rest, from the content files it was started with.

    Example: newsletter campaign resume asp23-day-3
    """
    with newsletter.store.session() as session:
        campaign = campaigns_lib.resume_campaign(session, slug)
        files = list((campaign.source or {}).get("files", []))
    missing = [f for f in files if not Path(f).exists()]
    if not files or missing:
        raise click.ClickException(f"the campaign is marked sending, but its content files are not there "
                                   f"({', '.join(missing) or 'none recorded'}); run `newsletter send FILES...`")
    options = SendOptions(concurrency=concurrency, pace=Pace(rate=_parse_rate(rate), hourly_cap=hourly_cap))
    try:
        _run_sender(newsletter, slug, files, options)
    except DeliveryError as exc:
        raise click.ClickException(str(exc)) from None


@campaign_group.command(name="cancel")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_newsletter
def cancel_campaign(newsletter: Newsletter, slug: str, yes: bool) -> None:
    """Cancel: nobody else is mailed; rows not yet sent become skipped.

    Example: newsletter campaign cancel asp23-day-3 --yes
    """
    if not yes:
        click.confirm(f"Cancel {slug} for good?", abort=True)
    with newsletter.store.session() as session:
        n = campaigns_lib.cancel_campaign(session, slug, now=newsletter.clock())
    click.echo(f"campaign {slug} cancelled; {n} recipient(s) will not be mailed")


@campaign_group.command(name="report")
@click.argument("slug")
@click.option("--failed", "failed_only", is_flag=True, help="Only who did not get it, and why.")
@pass_newsletter
def report_campaign(newsletter: Newsletter, slug: str, failed_only: bool) -> None:
    """Who did not get the campaign (failed, deferred, skipped) and the reason.

    Example: newsletter campaign report asp23-day-3 --failed
    """
    with newsletter.store.session() as session:
        campaign = campaigns_lib.get_campaign(session, slug)
        lines = outbox.list_failures(session, campaign.id)
        counts = outbox.count_rows(session, campaign.id)
    if not failed_only:
        click.echo(", ".join(f"{k} {v}" for k, v in counts._asdict().items()))
    if not lines:
        click.echo("everyone got it (or is still queued)")
        return
    for line in lines:
        click.echo(f"{line.email or '(erased)'}\t{line.status.value}\t{line.attempts}\t{line.reply or ''}")


@campaign_group.command(name="retry")
@click.argument("slug")
@pass_newsletter
def retry_campaign(newsletter: Newsletter, slug: str) -> None:
    """Queue failed and deferred recipients again (then `campaign resume` sends them).

    Example: newsletter campaign retry asp23-day-3
    """
    with newsletter.store.session() as session:
        n = campaigns_lib.retry_campaign(session, slug, now=newsletter.clock())
    click.echo(f"{n} recipient(s) queued again; `newsletter campaign resume {slug}` sends to them")
