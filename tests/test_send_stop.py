"""Every wait of a send wakes for a stop: SIGTERM, SIGINT and `campaign pause`, whether it waits
for the hourly cap, the rate limiter, deferred rows or a reconnect's back-off.

The signals go to a real `newsletter send` in a process of its own; the other waits are tried
in-process with real sleeps. The timeouts are generous: they only tell a stopped send from
one that would have waited an hour.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from conftest import REPO
from population import populate
from test_send import SLUG, rows, start, variants

from newsletter.cli import main
from newsletter.sending import campaigns
from newsletter.sending.messages import build_skeletons
from newsletter.sending.pacing import Pace
from newsletter.sending.sender import Sender, SendOptions
from newsletter.statuses import CampaignStatus, OutboxStatus
from newsletter.store import open_store

CONTENT = [str(p) for p in sorted((REPO / "examples" / "asp23").glob("day-3.*.md"))]
#: A guard against a hang, not a timing: a `newsletter send` subprocess starting on a loaded
#: two-core machine beside other xdist workers can take over a minute to send its first mail.
GENEROUS = 180.0


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def workdir(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    run("init")
    run("lists", "create", "asp-daily", "ASP daily summaries", "--languages", "en,fr,es,ar")
    store = open_store(f"sqlite:///{tmp_path}/subscribers/newsletter.db")
    populate(store, 12, now=datetime.now(timezone.utc))
    store.dispose()
    return tmp_path


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + GENEROUS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT", "campaign pause"])
def test_a_send_waiting_on_the_hourly_cap_stops_when_told(workdir, smtp_server, stop):
    process = subprocess.Popen([sys.executable, "-m", "newsletter", "send", *CONTENT, "--yes", "--hourly-cap", "2",
                                "--concurrency", "2"], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        wait_for(lambda: len(smtp_server.received) == 2 or process.poll() is not None, "the first two messages")
        time.sleep(0.3)  # the connections are now waiting for the next hour
        if stop == "campaign pause":
            assert run("campaign", "pause", "asp23-day-3").exit_code == 0
        else:
            process.send_signal(getattr(signal, stop))
        out, err = process.communicate(timeout=GENEROUS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reason = {"SIGTERM": "stopped (SIGTERM)", "SIGINT": "interrupted (Ctrl-C)",
              "campaign pause": "paused by an administrator"}[stop]
    assert process.returncode == 1 and f"the campaign is paused: {reason}" in err, (out, err)
    assert "sent 2, deferred 0, failed 0, skipped 0, queued 10" in out
    shown = run("campaign", "show", "asp23-day-3").output
    assert "asp23-day-3: paused" in shown and "sending 0" in shown
    assert len(smtp_server.received) == 2


async def until_stopped(sender: Sender, stop) -> object:
    """Run the sender; once `stop()` says it has stopped it, the run must end (generously) soon."""
    task = asyncio.ensure_future(sender.run())
    while not await stop():
        await asyncio.sleep(0.05)
    return await asyncio.wait_for(task, GENEROUS)


def sender_for(store, config, clock, **options) -> Sender:
    skeletons = build_skeletons(config, variants(), "asp-daily", "ASP daily summaries", SLUG)
    return Sender(store, config, SLUG, skeletons, options=SendOptions(**options), clock=clock)


async def test_a_slow_rate_stops_at_once(store, config, clock, smtp_server):
    start(store, clock, 5)
    sender = sender_for(store, config, clock, concurrency=2, pace=Pace(rate=0.001))

    async def stop():
        if smtp_server.received:
            sender.stop("stopped (SIGTERM)")
            return True
        return False

    result = await until_stopped(sender, stop)
    assert result.status is CampaignStatus.PAUSED and result.reason == "stopped (SIGTERM)"
    assert result.counts.sent == 1 and result.counts.queued == 4 and result.counts.sending == 0


async def test_waiting_for_deferred_rows_stops_for_a_pause(store, config, clock, smtp_server):
    emails = start(store, clock, 4)
    smtp_server.fail_rcpt[emails[2]] = "451 4.7.1 Greylisted"
    sender = sender_for(store, config, clock, concurrency=2, idle_poll=3600.0, wait_for_deferred=True)

    def pause() -> bool:  # in a thread of its own: the sender's transactions need the event loop
        if rows(store)[emails[2]].status is not OutboxStatus.DEFERRED or len(smtp_server.received) < 3:
            return False
        with store.session() as session:
            campaigns.pause_campaign(session, SLUG, "held by the editor")
        return True

    async def stop():
        return await asyncio.to_thread(pause)

    result = await until_stopped(sender, stop)
    assert result.status is CampaignStatus.PAUSED and result.reason == "held by the editor"
    assert result.counts.deferred == 1 and result.counts.sent == 3


async def test_a_reconnect_back_off_stops_at_once(store, config, clock, smtp_server, refused_port):
    start(store, clock, 3)
    nowhere = config.with_changes(smtp_url=f"smtp://127.0.0.1:{refused_port}?starttls=off&timeout=5")
    sender = sender_for(store, nowhere, clock, reconnect_attempts=3, reconnect_base=3600.0)
    began = time.monotonic()

    async def stop():
        if time.monotonic() - began > 0.5:
            sender.stop("interrupted (Ctrl-C)")
            return True
        return False

    result = await until_stopped(sender, stop)
    assert result.status is CampaignStatus.PAUSED and result.reason == "interrupted (Ctrl-C)"
    assert result.counts.queued == 3
