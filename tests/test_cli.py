"""The command line: every command documented, errors without tracebacks, the foundation commands."""

from __future__ import annotations

import asyncio
import mailbox
import subprocess
import sys
from email.message import EmailMessage

import aiosmtplib
import click
import pytest
from click.testing import CliRunner
from conftest import free_port

from newsletter.cli import main
from newsletter.transport.sink import Sink


def all_commands(group: click.Group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from all_commands(command, prefix + (name,))


def test_every_registered_command_is_in_the_lazy_map():
    import importlib

    from newsletter.cli import COMMAND_MODULES

    for module, _ in COMMAND_MODULES.values():
        importlib.import_module(f"newsletter.cli.{module}")
    assert set(main.commands) == set(COMMAND_MODULES)


def test_help_lists_commands_without_loading_them_and_as_they_describe_themselves():
    """`newsletter --help` in a fresh interpreter loads no command module, and prints what the
    commands' own help would give."""
    script = (
        "import sys; from click.testing import CliRunner; from newsletter.cli import main, COMMAND_MODULES\n"
        "lazy = CliRunner().invoke(main, ['--help']).output\n"
        "loaded = [m for m in sys.modules if m.startswith('newsletter.cli.')]\n"
        "import importlib\n"
        "for module, _ in COMMAND_MODULES.values(): importlib.import_module('newsletter.cli.' + module)\n"
        "full = CliRunner().invoke(main, ['--help']).output\n"
        "print(repr(loaded)); print(lazy == full); print(lazy); print(full)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    loaded, same = out.splitlines()[:2]
    assert loaded == "[]", out
    assert same == "True", out


@pytest.mark.parametrize("path, command", list(all_commands(main)), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_has_help_with_an_example(path, command):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in (command.help or ""), f"`newsletter {' '.join(path)}` has no Example: in its help"


@pytest.fixture
def workdir(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_commands_on_a_missing_schema_say_to_run_init(workdir):
    result = CliRunner().invoke(main, ["lists"])
    assert result.exit_code == 1
    assert "Error:" in result.output and "newsletter init" in result.output
    assert "Traceback" not in result.output


def test_foundation_round_trip(workdir, smtp_server):
    first = run("init")
    assert first.exit_code == 0 and "created at revision" in first.output
    key = (workdir / "secret.key").read_text().strip()
    assert key not in first.output
    assert "up to date" in run("init").output
    assert run("lists", "create", "asp-daily", "ASP daily summaries", "--languages", "en,fr,ar").exit_code == 0
    result = run("subscribe", "ana@example.org", "--list", "asp-daily", "--name", "Ana", "--language", "fr")
    assert "pending" in result.output
    assert len(smtp_server.to("ana@example.org")) == 1
    assert run("subscribers", "--list", "asp-daily", "--status", "pending", "--count").output.strip() == "1"
    shown = run("show", "ana@example.org").output
    assert "signup" in shown and "confirmation_sent" in shown and "asp-daily" in shown
    assert "asp-daily" in run("lists").output
    assert "unsubscribed from asp-daily" in run("unsubscribe", "ana@example.org").output
    assert run("erase", "ana@example.org", "--yes").exit_code == 0
    assert run("subscribers", "--count").output.strip() == "0"


@pytest.mark.parametrize("args, message", [
    (["lists", "create", "Bad Slug", "x"], "slug"),
    (["subscribe", "not-an-address", "--list", "asp-daily"], "not a usable email address"),
    (["subscribe", "a@example.org", "--list", "nope"], "there is no list 'nope'; `newsletter lists` shows the lists"),
    (["show", "nobody@example.org"], "nobody with the address"),
    (["unsubscribe", "a@example.org", "--list", "nope"], "there is no list"),
])
def test_errors_are_one_clear_line(workdir, args, message):
    run("init")
    run("lists", "create", "asp-daily", "ASP daily summaries")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_the_cli_words_what_to_run(workdir):
    """The library's errors say what is missing; the command line adds what to run about it."""
    result = CliRunner().invoke(main, ["--config", "elsewhere.toml", "lists"])
    assert result.exit_code == 1
    assert "elsewhere.toml does not exist (run `newsletter init` to write one)" in result.output
    run("init")
    (workdir / "secret.key").unlink()
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1 and "no secret key" in result.output
    assert "Run `newsletter init` to generate one." in result.output and "Traceback" not in result.output


def test_a_database_failure_is_one_line_with_what_to_check(workdir):
    import sqlite3

    run("init")
    run("lists", "create", "asp-daily", "ASP daily summaries")
    with sqlite3.connect(workdir / "subscribers" / "newsletter.db") as db:
        db.execute("DROP TABLE confirmation_queue")  # a damaged database, at the right revision
    result = CliRunner().invoke(main, ["subscribe", "a@example.org", "--list", "asp-daily"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "the database failed: " in result.output and "Check database_url" in result.output


def test_subscribe_queues_its_mail_and_the_one_drainer_sends_it(workdir, smtp_server):
    """`newsletter subscribe` queues the confirmation in the sign-up's transaction and drains it
    in-process; a relay that says "later" leaves it queued (and says so) for the server's
    drainer, which sends it after the back-off."""
    from datetime import timedelta

    from test_confirmation_queue import drain

    from newsletter.config import load_config
    from newsletter.installation import Newsletter, utc_now
    from newsletter.store import QueuedConfirmation

    run("init")
    run("lists", "create", "asp-daily", "ASP daily summaries")
    smtp_server.fail_rcpt["ana@example.org"] = ["451 4.7.1 greylisted, try again later"]
    result = CliRunner().invoke(main, ["subscribe", "ana@example.org", "--list", "asp-daily"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "pending, but the confirmation mail could not be sent yet: 451 4.7.1 greylisted" in result.output
    assert "stays queued" in result.output and smtp_server.received == []
    newsletter = Newsletter(load_config("newsletter.toml"), clock=lambda: utc_now() + timedelta(minutes=2))
    with newsletter.store.session() as session:
        [row] = session.query(QueuedConfirmation).all()
        assert (row.attempts, row.list_slugs) == (1, "asp-daily") and "451" in row.last_error
    assert drain(newsletter).sent == 1
    [mail] = smtp_server.to("ana@example.org")
    assert "/confirm/" in mail.get_body(("plain",)).get_content()
    with newsletter.store.session() as session:
        assert session.query(QueuedConfirmation).count() == 0
    newsletter.store.dispose()


def test_bad_config_file_is_named(workdir, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_SMTP_URL")
    (workdir / "newsletter.toml").write_text('smtp_url = "ftp://x"\n')
    result = CliRunner().invoke(main, ["lists"])
    assert result.exit_code == 1 and "smtp_url" in result.output


def test_unreachable_relay_is_a_clear_error(workdir, monkeypatch, refused_port):
    run("init")
    run("lists", "create", "asp-daily", "ASP daily summaries")
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{refused_port}?starttls=off")
    result = CliRunner().invoke(main, ["subscribe", "a@example.org", "--list", "asp-daily"])
    assert result.exit_code == 1 and "cannot reach the relay" in result.output


def test_starttls_required_but_not_offered(workdir, monkeypatch, smtp_server):
    run("init")
    run("lists", "create", "asp-daily", "ASP daily summaries")
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}")
    result = CliRunner().invoke(main, ["subscribe", "a@example.org", "--list", "asp-daily"])
    assert result.exit_code == 1 and "STARTTLS" in result.output
    assert smtp_server.received == []


def test_sink_stores_what_it_receives(tmp_path):
    caught = []
    # (port 0 does not start: aiosmtpd's controller pokes the port it was given, 0, to wake its server)
    with Sink(tmp_path / "mail", port=free_port(), on_message=caught.append) as sink:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "a@example.org", "b@example.org", "Jour 3"
        msg.set_content("bonjour")
        asyncio.run(aiosmtplib.send(msg, hostname="127.0.0.1", port=sink.port))
    [stored] = list(mailbox.Maildir(str(tmp_path / "mail")))
    assert stored["Subject"] == "Jour 3" and stored["X-Original-To"] == "b@example.org"
    assert caught[0].subject == "Jour 3" and caught[0].recipients == ("b@example.org",)


def test_python_dash_m_works(workdir):
    out = subprocess.run([sys.executable, "-m", "newsletter", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "Usage: newsletter" in out.stdout
