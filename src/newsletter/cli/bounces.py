"""Commands about deliverability: `newsletter bounces`, `newsletter dkim keygen`, `newsletter check`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..bounces.mailboxes import PASSWORD_ENV, UNPARSED
from ..bounces.rules import MailboxSummary, MessageResult, bounces_of_people, read_bounces, report_bounces
from ..config import Config
from ..installation import Newsletter
from ..mail.dkim import generate_key, zone_record
from ..sending.preflight import CheckResult, Fix, Status, dns_lookup, run_checks
from . import main, pass_config, pass_newsletter, shown

#: How each pre-flight fix is done, in commands.
FIX_HINTS = {
    Fix.MAKE_DKIM_KEY: "; run `newsletter dkim keygen --selector S`",
    Fix.PUBLISH_DKIM_KEY: "; publish the TXT record `newsletter dkim keygen` printed",
    Fix.START_WEB: "; start the web app (`newsletter serve`) and run the check again",
    Fix.GIVE_CONTENT: " (newsletter check FILE…)",
}


@main.group()
def dkim() -> None:
    """DKIM keys for signing outgoing mail.

    Example: newsletter dkim keygen --selector news2026 --domain example.org
    """


@dkim.command()
@click.option("--selector", required=True, help="The selector: the key's name in DNS (e.g. news2026).")
@click.option("--domain", default=None, help="The signing domain (default: dkim_domain, else from_address's domain).")
@click.option("--out", "out", type=click.Path(file_okay=False), default="dkim", show_default=True,
              help="Folder for SELECTOR.private (mode 0600) and SELECTOR.public.")
@pass_config
def keygen(config: Config, selector: str, domain: str | None, out: str) -> None:
    """Write an RSA 2048 key pair and print the DNS TXT record to publish.

    Then set dkim_selector, dkim_domain and dkim_key_file in newsletter.toml.

    Example: newsletter dkim keygen --selector news2026 --domain example.org --out dkim
    """
    domain = domain or config.dkim_domain or config.from_address.rpartition("@")[2]
    key = generate_key(selector, domain, Path(out))
    click.echo(f"wrote {key.private_key_path} (mode 0600; keep it secret) and {key.public_key_path}")
    click.echo("Publish this TXT record in DNS:")
    click.echo(zone_record(key.dns_name, key.dns_value))
    click.echo("Then add to newsletter.toml:")
    click.echo(f'  dkim_selector = "{selector}"\n  dkim_domain = "{domain}"\n  dkim_key_file = "{key.private_key_path}"')


def _print_result(result: MessageResult) -> None:
    kinds = ", ".join(k.value for k in result.kinds) or "-"
    click.echo(f"  {shown(result.folder):<9} {result.report_kind.value:<10} {kinds:<10} [{shown(result.key)}] "
               f"{shown(result.note)}")


def _print_summary(summary: MailboxSummary) -> None:
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.by_kind.items())) or "no events"
    click.echo(f"{shown(summary.source)}: {summary.processed} processed, {summary.unparsed} unparsed"
               f"{f', {summary.duplicates} seen before' if summary.duplicates else ''} ({counts})"
               f"{f'; {summary.unsubscribed} unsubscribe request(s) by mail' if summary.unsubscribed else ''}")
    for result in summary.unparsed_results:
        click.echo(f"  kept for a person to read in {UNPARSED}/: [{shown(result.key)}] {shown(result.note)}", err=True)


@main.command()
@click.argument("source", required=False)
@click.option("--report", is_flag=True, help="Print bounces counted per campaign instead of reading mail.")
@click.option("--campaign", "campaign_slug", default=None, help="With --report: only this campaign.")
@click.option("--watch", is_flag=True, help="Keep running, reading the mailbox every --interval seconds.")
@click.option("--interval", type=click.IntRange(min=1), default=60, show_default=True,
              help="Seconds between two reads with --watch.")
@click.option("--password-env", default=PASSWORD_ENV, show_default=True,
              help="Environment variable holding the IMAP password.")
@click.option("-v", "--verbose", is_flag=True, help="Print one line per message.")
@pass_newsletter
def bounces(newsletter: Newsletter, source: str | None, report: bool, campaign_slug: str | None, watch: bool,
            interval: int, password_env: str, verbose: bool) -> None:
    """Read bounce, complaint and unsubscribe mail and apply the rules; or report bounces per campaign.

    SOURCE is a Maildir folder, an mbox file, imaps://user@host/INBOX or imap://… with STARTTLS
    (password in NEWSLETTER_BOUNCE_PASSWORD); default: bounce_mailbox from the configuration. A hard bounce
    suppresses the address; soft bounces count (at most one a day) until soft_bounce_threshold;
    a complaint unsubscribes and suppresses; a delay notice changes nothing. A reader's mail to
    the mailto: of List-Unsubscribe ("unsubscribe TOKEN") unsubscribes them from that list once
    its token verifies. Each message is moved to processed/ once recorded, or to unparsed/ when
    a person should read it (a token that does not verify among them).

    Example: newsletter bounces /var/mail/bounces --watch --interval 120
    """
    if report:
        rows = report_bounces(newsletter, campaign_slug)
        click.echo(f"{'campaign':<32} {'sent':>8} {'hard':>6} {'soft':>6} {'delayed':>8} {'complaint':>10} "
                   f"{'unknown':>8}  complaint rate")
        for row in rows:
            name = shown(row.slug) or ("(no campaign)" if row.campaign_id is None else f"#{row.campaign_id}")
            # Gmail asks bulk senders to stay under 0.3 % spam complaints (0.1 % to be safe).
            rate = f"{100 * row.complaint / row.sent:.2f} %" if row.sent else "-"
            click.echo(f"{name:<32} {row.sent:>8} {row.hard:>6} {row.soft:>6} {row.delayed:>8} {row.complaint:>10} "
                       f"{row.unknown:>8}  {rate}")
        people = bounces_of_people(newsletter, campaign_slug)
        if people:
            click.echo("\nby person:")
        for b in people:
            click.echo(f"{shown(b.campaign_slug) or '(no campaign)'}\t{shown(b.email) or '(erased or unknown)'}\t"
                       f"{b.kind.value}\t{b.at:%Y-%m-%d %H:%M}\t{shown(b.status or '')}\t{shown(b.reason)}\t"
                       f"via {shown(b.came_from)}")
        return
    spec = source or newsletter.config.bounce_mailbox
    if not spec:
        raise click.UsageError("give SOURCE or set bounce_mailbox in newsletter.toml")
    while True:
        summary = read_bounces(newsletter, spec, password_env=password_env,
                               on_result=_print_result if verbose else None)
        if summary.results or not watch:
            _print_summary(summary)
        if not watch:
            return
        time.sleep(interval)


@main.command()
@click.argument("contents", nargs=-1)
@click.option("--nameserver", default=None, metavar="HOST[:PORT]",
              help="Ask this DNS server instead of the system's resolvers.")
@click.option("--dns-timeout", type=float, default=4.0, show_default=True, help="Seconds to wait for DNS.")
@click.option("--no-one-click", is_flag=True, help="Do not POST to the one-click endpoint.")
@click.option("--no-relay", is_flag=True, help="Do not connect to the relay.")
@pass_config
def check(config: Config, contents: tuple[str, ...], nameserver: str | None, dns_timeout: float,
          no_one_click: bool, no_relay: bool) -> None:
    """Pre-flight report: SPF, DKIM and DMARC, the one-click endpoint, the relay, lint.

    DNS records are those of the From domain (SPF: of the envelope-sender domain). CONTENT
    is content files (or folders, or globs) of the issue about to go out, linted as
    `newsletter preview` does. What could not be checked says so. Exits with status 1 when
    any check fails.

    Example: newsletter check examples/asp23/day-3.*.md
    """
    results: list[CheckResult] = run_checks(config, lookup=dns_lookup(nameserver, timeout=dns_timeout),
                                            contents=contents, one_click=not no_one_click, relay=not no_relay)
    for result in results:
        hint = FIX_HINTS.get(result.fix, "") if result.fix else ""
        click.echo(f"{result.status.value:<12} {result.name:<10} {shown(result.detail)}{hint}")
    failed = [r for r in results if r.status is Status.FAIL]
    if failed:
        raise click.ClickException(f"{len(failed)} check(s) failed")
