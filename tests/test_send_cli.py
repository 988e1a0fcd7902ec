"""`newsletter send`, `newsletter campaigns` and `newsletter campaign …` end to end."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from conftest import REPO
from population import populate

from newsletter.cli import main
from newsletter.store import open_store

CONTENT = [str(p) for p in sorted((REPO / "examples" / "asp23").glob("day-3.*.md"))]


@pytest.fixture
def workdir(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    run("init")
    run("lists", "create", "asp-daily", "ASP daily summaries", "--languages", "en,fr,es,ar")
    store = open_store(f"sqlite:///{tmp_path}/subscribers/newsletter.db")
    populate(store, 40, now=datetime.now(timezone.utc))
    store.dispose()
    return tmp_path


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_send_dry_run_test_send_and_real_send(workdir, smtp_server):
    dry = run("send", *CONTENT, "--dry-run")
    assert dry.exit_code == 0 and "total 40" in dry.output and "ar: 10 subscriber(s)" in dry.output
    assert not smtp_server.received
    test = run("send", *CONTENT, "--test-to", "editor@example.net")
    assert test.exit_code == 0 and test.output.count("[TEST]") == 4
    assert all(m["Subject"].startswith("[TEST] ") for m in smtp_server.to("editor@example.net"))
    assert "no campaigns yet" in run("campaigns").output
    refused = run("send", *CONTENT, input="n\n")
    assert refused.exit_code == 1 and "nothing sent" in refused.output
    sent = run("send", *CONTENT, "--yes", "--rate", "500/s")
    assert sent.exit_code == 0, sent.output
    assert "finished; sent 40" in sent.output
    counts = Counter(r.rcpt_tos[0] for r in smtp_server.received if r.rcpt_tos[0] != "editor@example.net")
    assert len(counts) == 40 and set(counts.values()) == {1}
    listing = run("campaigns").output
    assert "asp23-day-3" in listing and "finished" in listing
    again = run("send", *CONTENT, "--yes")
    assert again.exit_code == 1 and "campaign retry" in again.output
    assert "everyone got it" in run("campaign", "report", "asp23-day-3", "--failed").output
    assert "sent 40" in run("campaign", "show", "asp23-day-3").output


def test_failures_are_reported_and_retried(workdir, smtp_server):
    smtp_server.fail_data["person000003@example.org"] = "554 5.7.1 Rejected"
    assert run("send", *CONTENT, "--yes").exit_code == 0
    report = run("campaign", "report", "asp23-day-3", "--failed").output
    assert "person000003@example.org\tfailed\t1\t554 5.7.1 Rejected" in report
    smtp_server.fail_data.clear()
    assert "1 recipient(s) queued again" in run("campaign", "retry", "asp23-day-3").output
    resumed = run("campaign", "resume", "asp23-day-3")
    assert resumed.exit_code == 0 and "finished; sent 40" in resumed.output
    assert len(smtp_server.to("person000003@example.org")) == 1


def test_pause_and_cancel(workdir, smtp_server):
    assert "there is no campaign" in CliRunner().invoke(main, ["campaign", "pause", "nope"]).output
    run("send", *CONTENT, "--yes", "--dry-run")
    from newsletter.sending import campaigns
    store = open_store(f"sqlite:///{workdir}/subscribers/newsletter.db")
    with store.session() as session:
        campaigns.start_campaign(session, "asp23-day-3", "asp-daily", now=datetime.now(timezone.utc))
    store.dispose()
    assert "paused" in run("campaign", "pause", "asp23-day-3").output
    assert "40 recipient(s) will not be mailed" in run("campaign", "cancel", "asp23-day-3", "--yes").output
    assert not smtp_server.received
