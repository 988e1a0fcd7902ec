"""`newsletter send`, `newsletter campaigns` and `newsletter campaign …` end to end."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

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
    relay = f"127.0.0.1:{smtp_server.port}"  # the one relay of smtp_url, by host and port
    assert f"person000003@example.org\tfailed\t1\t554 5.7.1 Rejected (at DATA)\tvia {relay}" in report
    assert f"  through {relay}: failed 1, sent 39" in run("campaign", "report", "asp23-day-3").output
    shown = run("show", "person000003@example.org").output
    assert "campaigns (the relay that took each, and its reply):" in shown
    assert "asp23-day-3" in shown and f"{relay}  554 5.7.1 Rejected (at DATA)" in shown
    assert f"{relay}  250 2.0.0 OK queued (at DATA)" in run("show", "person000004@example.org").output
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
    assert "40 recipient(s) not yet mailed are now skipped" in run("campaign", "cancel", "asp23-day-3", "--yes").output
    assert not smtp_server.received


@pytest.fixture
def render_calls(monkeypatch):
    """Counts the languages rendered (template + CSS inlining), whoever asks."""
    from newsletter.mail import compose

    calls = []
    plain = compose.render_variant

    def counting(config, variant):
        calls.append(variant.language)
        return plain(config, variant)

    monkeypatch.setattr(compose, "render_variant", counting)
    return calls


def test_a_send_renders_each_language_once(workdir, smtp_server, render_calls):
    sent = run("send", *CONTENT, "--yes")
    assert sent.exit_code == 0 and "finished; sent 40" in sent.output
    assert sorted(render_calls) == ["ar", "en", "es", "fr"]


def test_a_resume_renders_each_language_once_and_prints_how_to_resume(workdir, smtp_server, render_calls):
    smtp_server.fail_mail = "550 5.7.1 Sender address rejected"
    paused = run("send", *CONTENT, "--yes")
    assert paused.exit_code == 1 and "the relay refused the sender: 550 5.7.1" in paused.output
    assert "resume it with `newsletter campaign resume asp23-day-3`" in paused.output
    assert "`newsletter campaign resume asp23-day-3` sends the rest" in run("campaign", "show", "asp23-day-3").output
    smtp_server.fail_mail = None
    render_calls.clear()
    resumed = run("campaign", "resume", "asp23-day-3")
    assert resumed.exit_code == 0 and "finished; sent 40" in resumed.output
    assert sorted(render_calls) == ["ar", "en", "es", "fr"]


def test_a_resume_whose_content_is_gone_says_which_files_and_changes_nothing(workdir, smtp_server, tmp_path):
    import shutil

    copies = []
    for path in CONTENT:
        copies.append(str(tmp_path / path.rsplit("/", 1)[1]))
        shutil.copy(path, copies[-1])
    run("send", *copies, "--yes", "--dry-run")
    smtp_server.fail_mail = "550 5.7.1 Sender address rejected"
    assert run("send", *copies, "--yes").exit_code == 1
    (tmp_path / "day-3.fr.md").unlink()
    resumed = run("campaign", "resume", "asp23-day-3")
    assert resumed.exit_code == 1
    assert f"its content files are not there ({tmp_path / 'day-3.fr.md'})" in resumed.output
    assert "newsletter send FILES" in resumed.output
    assert "asp23-day-3: paused" in run("campaign", "show", "asp23-day-3").output


def test_a_worker_joins_only_a_campaign_that_is_sending(workdir, smtp_server):
    missing = run("send", *CONTENT, "--worker")
    assert missing.exit_code == 1 and "there is no campaign 'asp23-day-3'; `newsletter campaigns` lists them" \
        in missing.output
    from newsletter.sending import campaigns
    store = open_store(f"sqlite:///{workdir}/subscribers/newsletter.db")
    with store.session() as session:
        campaigns.start_campaign(session, "asp23-day-3", "asp-daily", now=datetime.now(timezone.utc))
        campaigns.pause_campaign(session, "asp23-day-3", "held")
    store.dispose()
    paused = run("send", *CONTENT, "--worker")
    assert paused.exit_code == 1 and "workers only join a campaign that is sending" in paused.output
    assert not smtp_server.received
    store = open_store(f"sqlite:///{workdir}/subscribers/newsletter.db")
    with store.session() as session:
        campaigns.resume_campaign(session, "asp23-day-3")
    store.dispose()
    joined = run("send", *CONTENT, "--worker")
    assert joined.exit_code == 0 and "finished; sent 40" in joined.output and len(smtp_server.received) == 40


def test_the_sending_commands_open_no_session_and_import_no_store():
    """The faces make library calls: no store, no SQLAlchemy, no session of their own."""
    import ast

    cli = REPO / "src" / "newsletter" / "cli"
    for name in ("sending.py", "bounces.py", "compose.py", "demo.py"):
        tree = ast.parse((cli / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert not module.startswith(("..store", "sqlalchemy", "newsletter.store")), (name, module)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith(("sqlalchemy", "newsletter.store")) for a in node.names), name
            elif isinstance(node, ast.Attribute):
                assert node.attr not in ("session", "store"), f"{name}:{node.lineno} uses .{node.attr}"


def test_a_send_to_a_list_with_nobody_on_it_is_refused_and_uses_nothing_up(workdir, smtp_server):
    run("lists", "create", "asp-alerts", "ASP alerts", "--languages", "en,fr,es,ar")
    refused = run("send", *CONTENT, "--list", "asp-alerts", "--yes")
    assert refused.exit_code == 1
    assert "the list 'asp-alerts' has no confirmed subscriber to send 'asp23-day-3' to; nothing was sent" \
        in refused.output
    assert "newsletter subscribers --list asp-alerts" in refused.output
    assert "no campaigns yet" in run("campaigns").output
    store = open_store(f"sqlite:///{workdir}/subscribers/newsletter.db")
    populate(store, 3, now=datetime.now(timezone.utc), list_slug="asp-alerts", domain="example.net")
    store.dispose()
    sent = run("send", *CONTENT, "--list", "asp-alerts", "--yes")
    assert sent.exit_code == 0 and "finished; sent 3" in sent.output


def test_a_finished_issue_goes_on_to_those_who_joined_since_and_to_nobody_twice(workdir, smtp_server):
    assert run("send", *CONTENT, "--yes").exit_code == 0
    again = run("send", *CONTENT, "--yes")
    assert again.exit_code == 1 and "--to-new` sends it to those who joined since" in again.output
    nobody = run("send", *CONTENT, "--to-new", "--yes")
    assert nobody.exit_code == 1 and "nobody has joined the list 'asp-daily' since 'asp23-day-3' was sent" \
        in nobody.output
    store = open_store(f"sqlite:///{workdir}/subscribers/newsletter.db")
    joined = populate(store, 5, now=datetime.now(timezone.utc), start=40)
    store.dispose()
    onward = run("send", *CONTENT, "--to-new", "--yes")
    assert onward.exit_code == 0, onward.output
    assert "finished; sent 45" in onward.output and "(this run sent 5)" in onward.output
    counts = Counter(r.rcpt_tos[0] for r in smtp_server.received)
    assert len(counts) == 45 and set(counts.values()) == {1}
    assert all(counts[e] == 1 for e in joined)


def test_after_the_first_pass_send_says_what_is_deferred_and_returns(workdir, smtp_server):
    smtp_server.fail_rcpt["person000005@example.org"] = ["451 4.7.1 Greylisted, try later"]
    sent = run("send", *CONTENT, "--yes")
    assert sent.exit_code == 0, sent.output
    assert "1 message(s) deferred by the relay; they are retried from " in sent.output
    assert "`newsletter campaign resume asp23-day-3` then" in sent.output
    assert "sent 39, deferred 1" in sent.output
    assert len(smtp_server.received) == 39


def test_send_wait_stays_until_the_deferred_are_retried(workdir, smtp_server, monkeypatch):
    """--wait: the same first pass, then the send stays for the retry (its back-off made short)."""
    from dataclasses import replace
    from datetime import timedelta

    from newsletter.cli import sending as cli_sending

    plain = cli_sending._options
    monkeypatch.setattr(cli_sending, "_options",
                        lambda *args: replace(plain(*args), defer_base=timedelta(seconds=0.2), idle_poll=0.1))
    smtp_server.fail_rcpt["person000005@example.org"] = ["451 4.7.1 Greylisted, try later"]
    sent = run("send", *CONTENT, "--yes", "--wait")
    assert sent.exit_code == 0 and "finished; sent 40" in sent.output
    assert len(smtp_server.to("person000005@example.org")) == 1


def test_cancel_prints_what_it_did_in_the_ledgers_counts(workdir, smtp_server):
    """Rows a sender holds are not skipped by the cancel itself: the output says so, and its
    numbers are the ledger's."""
    from newsletter.sending import campaigns
    from newsletter.statuses import OutboxStatus
    from newsletter.store import ledger

    now = datetime.now(timezone.utc)
    store = open_store(f"sqlite:///{workdir}/subscribers/newsletter.db")
    with store.session() as session:
        campaign, _ = campaigns.start_campaign(session, "asp23-day-3", "asp-daily", now=now)
        held, _ = ledger.claim_batch(session, campaign, "elsewhere:1:abcdef", limit=5, now=now, stale_before=now)
        ledger.record_outcomes(session, "elsewhere:1:abcdef",
                               [ledger.Outcome(r.id, OutboxStatus.SENT, "250 OK") for r in held[:2]], now=now)
    cancelled = run("campaign", "cancel", "asp23-day-3", "--yes").output
    assert "35 recipient(s) not yet mailed are now skipped" in cancelled
    assert "the ledger: sent 2, failed 0, skipped 35 (0 before the cancel), sending 3" in cancelled
    assert "3 row(s) are held by a running sender" in cancelled
    with store.session() as session:  # what that sender does with the rest once it sees the cancel
        campaigns.release_claims(session, "asp23-day-3", "elsewhere:1:abcdef", [r.id for r in held[2:]], now=now)
    store.dispose()
    assert "sending 0, sent 2, deferred 0, failed 0, skipped 38" in run("campaign", "show", "asp23-day-3").output


def test_a_paused_campaign_whose_content_changed_is_not_resumed_unless_told(workdir, smtp_server, tmp_path):
    import shutil

    copies = []
    for path in CONTENT:
        copies.append(str(tmp_path / path.rsplit("/", 1)[1]))
        shutil.copy(path, copies[-1])
    smtp_server.fail_mail = "550 5.7.1 Sender address rejected"
    assert run("send", *copies, "--yes").exit_code == 1
    smtp_server.fail_mail = None
    french = tmp_path / "day-3.fr.md"
    french.write_text(french.read_text(encoding="utf-8") + "\nUne phrase ajoutée pendant la pause.\n", encoding="utf-8")
    for again in (["campaign", "resume", "asp23-day-3"], ["send", *copies, "--yes"]):
        refused = run(*again)
        assert refused.exit_code == 1 and "its content files changed since it started" in refused.output
        assert "--accept-changed-content" in refused.output
    assert not smtp_server.received
    assert "asp23-day-3: paused" in run("campaign", "show", "asp23-day-3").output
    resumed = run("campaign", "resume", "asp23-day-3", "--accept-changed-content")
    assert resumed.exit_code == 0 and "finished; sent 40" in resumed.output


def test_a_list_other_than_the_contents_is_said_before_anything_happens(workdir, smtp_server):
    run("lists", "create", "asp-alerts", "ASP alerts", "--languages", "en,fr,es,ar")
    dry = run("send", *CONTENT, "--list", "asp-alerts", "--dry-run")
    assert dry.exit_code == 0
    assert "note: the content names the list asp-daily, not asp-alerts; this sends to asp-alerts" in dry.output
    assert "note:" not in run("send", *CONTENT, "--dry-run").output


def test_a_misspelt_list_in_the_content_or_in_list_is_said_plainly_and_alike(workdir, smtp_server, tmp_path):
    copies = []
    for path in CONTENT:
        copies.append(tmp_path / path.rsplit("/", 1)[1])
        copies[-1].write_text(Path(path).read_text(encoding="utf-8").replace("\nlist: asp-daily\n", "\nlist: asp-dialy\n"),
                              encoding="utf-8")
    assert "list: asp-dialy" in copies[0].read_text(encoding="utf-8")
    for args in ([*map(str, copies), "--dry-run"], [*map(str, copies), "--yes"], ["schedule", *map(str, copies),
                 "--at", "2099-07-08 19:00", "--tz", "Europe/Amsterdam"], ["issue", "import", *map(str, copies)]):
        refused = run(*(args if args[0] in ("schedule", "issue") else ["send", *args]))
        assert refused.exit_code == 1, (args, refused.output)
        assert "Traceback" not in refused.output
        assert f"Error: there is no list 'asp-dialy', which `list:` names in {tmp_path / 'day-3.en.md'}" \
            in refused.output
        assert "the lists there are: asp-daily; did you mean 'asp-daily'? Correct `list:` in the front matter, " \
               "or create the list with `newsletter lists create asp-dialy NAME`." in refused.output
    other = run("send", *CONTENT, "--list", "asp-dialy", "--dry-run")
    assert other.exit_code == 1 and "Traceback" not in other.output
    assert ("Error: there is no list 'asp-dialy'; `newsletter lists` shows the lists there are (asp-daily); "
            "did you mean 'asp-daily'?") in other.output
    assert not smtp_server.received
    assert "no campaigns" in run("campaigns").output.lower()
