"""The workspace and the CLI make identical campaigns from the same issue: `newsletter send`
on the content files in one installation, the issue taken into the workspace and sent there in
another; the campaigns, their ledgers and what each reader received are compared."""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime
from email import policy

from click.testing import CliRunner
from conftest import REPO
from population import populate

from newsletter.cli import main
from newsletter.config import load_config
from newsletter.editorial import issues, sends
from newsletter.installation import Newsletter
from newsletter.sending.options import SendOptions
from newsletter.store import Campaign, OutboxRow, open_store

DAY_4 = [str(p) for p in sorted((REPO / "examples" / "asp23").glob("day-4.*.md"))]
SECRET = "parity-secret-0123456789abcdefghij"
#: What differs between two sends of the same message: the moment, and the tokens' time stamps
#: and signatures (their payloads, which name the reader, list and language, are compared).
_VARYING_HEADERS = {"date", "message-id"}
_TOKEN_TIME = re.compile(r"\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27}\b")


def run(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def install(folder, monkeypatch, smtp_server):
    folder.mkdir()
    monkeypatch.chdir(folder)
    run("init")
    run("lists", "create", "asp-daily", "ASP daily summaries", "--languages", "fr,en")
    store = open_store(f"sqlite:///{folder}/subscribers/newsletter.db")
    populate(store, 12, now=datetime.now(UTC))
    store.dispose()


def mail_of(records) -> dict[str, tuple]:
    """recipient -> (headers, decoded parts) of what they got, token times masked."""
    out = {}
    for r in records:
        message = email.message_from_bytes(r.data, policy=policy.default)
        headers = tuple((k, _TOKEN_TIME.sub(".T.S", str(v))) for k, v in message.items()
                        if k.lower() not in _VARYING_HEADERS and k.lower() != "content-type")
        parts = tuple((p.get_content_type(), _TOKEN_TIME.sub(".T.S", p.get_content()))
                      for p in message.walk() if not p.is_multipart())
        out[r.rcpt_tos[0]] = (headers, parts)
    return out


def campaign_of(newsletter):
    """The campaign as the store holds it (what varies with the moment left out) and its ledger."""
    with newsletter.store.session() as session:
        campaign = session.query(Campaign).one()
        source = {k: v for k, v in campaign.source.items() if k not in ("files", "expires_at")}
        ledger = sorted((row.subscriber_id, row.language, row.status.value, row.attempts, row.last_reply)
                        for row in session.query(OutboxRow))
        return (campaign.slug, campaign.kind, campaign.subject, campaign.status, campaign.mailing_list.slug,
                source), ledger


def test_the_workspace_and_the_cli_make_the_same_campaign(tmp_path, monkeypatch, smtp_server):
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)

    install(tmp_path / "cli", monkeypatch, smtp_server)
    run("send", *DAY_4, "--yes")
    by_cli = Newsletter(load_config(tmp_path / "cli" / "newsletter.toml"))
    cli_mail = mail_of(smtp_server.received)
    smtp_server.received.clear()

    install(tmp_path / "ws", monkeypatch, smtp_server)
    by_workspace = Newsletter(load_config(tmp_path / "ws" / "newsletter.toml"))
    issues.import_files(by_workspace, DAY_4, author="editor@example.org")
    send = sends.prepare_issue_send(by_workspace, "asp23-day-4")
    sends.send_issue(by_workspace, send, SendOptions(concurrency=2, idle_poll=3600.0), sender="sender@example.org")

    assert campaign_of(by_cli) == campaign_of(by_workspace)
    workspace_mail = mail_of(smtp_server.received)
    assert len(cli_mail) == len(workspace_mail) == 12
    assert cli_mail == workspace_mail
    languages = {dict(headers)["Content-Language"] for headers, _ in cli_mail.values()}
    assert languages == {"en", "fr", "ar"}


def test_the_workspace_and_the_cli_make_the_same_campaign_for_a_segment(tmp_path, monkeypatch, smtp_server):
    """`newsletter send --segment` and the workspace's send now to a segment (`BackgroundSends.send`,
    what the send page's form calls): the same campaign, the same ledger, the same mail, to the
    segment's members only."""
    from newsletter.editorial.background import BackgroundSends
    from newsletter.people import segments

    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)
    expression = "language in (fr, ar)"

    install(tmp_path / "cli", monkeypatch, smtp_server)
    run("segments", "create", "fr-ar", expression)
    run("send", *DAY_4, "--segment", "fr-ar", "--yes")
    by_cli = Newsletter(load_config(tmp_path / "cli" / "newsletter.toml"))
    cli_mail = mail_of(smtp_server.received)
    smtp_server.received.clear()

    install(tmp_path / "ws", monkeypatch, smtp_server)
    by_workspace = Newsletter(load_config(tmp_path / "ws" / "newsletter.toml"))
    segments.create_segment(by_workspace, "fr-ar", expression)
    issues.import_files(by_workspace, DAY_4, author="editor@example.org")
    runner = BackgroundSends(by_workspace, options=SendOptions(concurrency=2, idle_poll=3600.0))
    digest = sends.review_send(by_workspace, "asp23-day-4", segment="fr-ar").send.revisions.digest
    runner.send("asp23-day-4", digest, sender="sender@example.org", segment="fr-ar")
    assert runner.wait("asp23-day-4", timeout=60).counts.sent == 6

    cli_campaign, workspace_campaign = campaign_of(by_cli), campaign_of(by_workspace)
    assert cli_campaign == workspace_campaign
    assert cli_campaign[0][5]["segment"] == "fr-ar" and cli_campaign[0][5]["expression"] == expression
    workspace_mail = mail_of(smtp_server.received)
    assert len(cli_mail) == len(workspace_mail) == 6  # of 12 on the list: the readers of fr and ar
    assert cli_mail == workspace_mail
    languages = {dict(headers)["Content-Language"] for headers, _ in cli_mail.values()}
    assert languages == {"fr", "ar"}  # nobody who reads en or es
