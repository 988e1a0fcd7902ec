"""`newsletter serve`: the service — the visitor pages, the senders, the scheduler, the
confirmation drainer and the bounce mailbox reader — or some of its parts (`--only`)."""

from __future__ import annotations

import asyncio
import gc

import click

from ..installation import Newsletter
from ..service import PART_NAMES as PARTS
from . import main, pass_newsletter


def _parts(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(n.strip() for v in value for n in v.split(",") if n.strip())
    wrong = [n for n in names if n not in PARTS]
    if wrong:
        raise click.BadParameter(f"{', '.join(wrong)}: choose from {', '.join(PARTS)}")
    return names or PARTS


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (keep loopback behind a reverse proxy).")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--root-path", default="", help="URL prefix when mounted under a path by the reverse proxy.")
@click.option("--only", "only", multiple=True, callback=_parts, metavar="PART[,PART]",
              help=f"Run only these parts ({', '.join(PARTS)}); default: all.")
@click.option("--concurrency", default=8, show_default=True, help="SMTP connections per campaign the senders use.")
@click.option("--poll", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds between two looks for work (campaigns, schedules).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="How much to log.")
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]),
              help="Log lines for people, or JSON lines for a log collector.")
@pass_newsletter
def serve(newsletter: Newsletter, host: str, port: int, root_path: str, only: tuple[str, ...], concurrency: int,
          poll: float, log_level: str, log_format: str) -> None:
    """Run the service: visitor pages, senders, scheduler, confirmations, bounces, welcomes.

    Every part runs unless --only names some: on PostgreSQL, run `--only sender` on more
    machines to send faster. /healthz and /readyz answer on --port whatever the parts. SIGTERM
    (or Ctrl-C) lets the messages in flight finish and leaves every campaign to be carried on
    by the next start. Links in mail are built on base_url; put the pages behind a reverse proxy
    that terminates TLS and list it in trusted_proxies so the consent log gets the visitor's IP.

    Example: newsletter serve --host 127.0.0.1 --port 8000 --log-format json
    """
    from ..sending.options import SendOptions
    from ..service import Service
    from ..service.logs import configure_logging

    newsletter.config.secret()  # fail now, not on the first visitor, if there is no key
    configure_logging(log_format, log_level)
    service = Service(newsletter, only=only, host=host, port=port, root_path=root_path, log_level=log_level,
                      options=SendOptions(concurrency=concurrency), poll=poll)
    if "web" in only:
        click.echo(f"Serving the visitor pages on http://{host}:{port}/subscribe (links use "
                   f"{newsletter.config.base_url})", err=True)
    click.echo(f"Running {', '.join(only)}; health on http://{host}:{port}/healthz", err=True)
    # What is built by now (modules, the app, its templates) lives as long as the process: keep it
    # out of the collector's full passes, which stalled sign-ups for tens of milliseconds (p99 at
    # 300 sign-ups/s: 112-124 ms without, 69-90 ms with; docs/benchmarks.md "Web").
    gc.collect()
    gc.freeze()
    asyncio.run(service.run())
