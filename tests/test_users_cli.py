"""`newsletter users …`: the first owner from the command line, the list, a way back in, revoking."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from staffing import PASSWORD, client_for, csrf_of, log_in

from newsletter.cli import main
from newsletter.config import load_config
from newsletter.installation import Newsletter
from newsletter.staff import audit, sessions


@pytest.fixture
def workdir(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    assert CliRunner().invoke(main, ["init"]).exit_code == 0
    return tmp_path


def run(*args):
    return CliRunner().invoke(main, list(args))


def _link(output: str) -> str:
    return re.search(r"https?://\S+/admin/(?:invite|reset)/\S+", output).group(0)


def test_add_the_first_owner_set_a_password_and_list(workdir):
    added = run("users", "add", "Coordinator@Example.org", "--role", "owner", "--name", "Amina Diallo")
    assert added.exit_code == 0, added.output
    assert "added coordinator@example.org (owner)" in added.output
    link = _link(added.output)
    newsletter = Newsletter(load_config())
    client = client_for(newsletter)
    path = link.split("://", 1)[1].split("/", 1)[1]
    form = {"csrf": csrf_of(client, f"/{path}"), "password": PASSWORD, "password_again": PASSWORD}
    assert client.post(f"/{path}", data=form).status_code == 303
    assert log_in(client, "coordinator@example.org").status_code == 303
    listed = run("users")
    assert listed.exit_code == 0 and re.search(r"coordinator@example.org\s+owner\s+active\s+off\s+Amina Diallo",
                                               listed.output)
    assert audit.lines(newsletter, action="accounts.invite").lines[0].actor == "cli"


def test_errors_are_one_line_with_what_to_do(workdir):
    assert run("users", "add", "a@example.org", "--role", "owner").exit_code == 0
    again = run("users", "add", "a@example.org", "--role", "viewer")
    assert again.exit_code == 1 and "already exists" in again.output and "newsletter users list" in again.output
    translator = run("users", "add", "t@example.org", "--role", "translator")
    assert translator.exit_code == 1 and "at least one language" in translator.output
    unknown = run("users", "revoke", "nobody@example.org")
    assert unknown.exit_code == 1 and "newsletter users list" in unknown.output
    assert "Traceback" not in again.output + translator.output + unknown.output
    assert run("users", "add", "t@example.org", "--role", "translator", "--languages", "fr,ar").exit_code == 0
    assert "translator (fr,ar)" in run("users", "list").output


def test_a_locked_out_owner_gets_back_in_and_revoking_ends_sessions(workdir):
    newsletter = Newsletter(load_config())
    for email, role in (("owner@example.org", "owner"), ("sender@example.org", "sender")):
        path = "/" + _link(run("users", "add", email, "--role", role).output).split("://", 1)[1].split("/", 1)[1]
        client = client_for(newsletter)
        client.post(path, data={"csrf": csrf_of(client, path), "password": PASSWORD, "password_again": PASSWORD})
    login = sessions.login(newsletter, "sender@example.org", PASSWORD)
    assert run("users", "reset", "nobody@example.org").exit_code == 1
    reset = run("users", "reset", "owner@example.org", "--remove-totp")
    assert reset.exit_code == 0 and "removed the second factor" in reset.output
    path = "/" + _link(reset.output).split("://", 1)[1].split("/", 1)[1]
    client = client_for(newsletter)
    new = "another long night at the venue"
    assert client.post(path, data={"csrf": csrf_of(client, path), "password": new, "password_again": new}
                       ).status_code == 303
    assert log_in(client, "owner@example.org", new).status_code == 303
    revoked = run("users", "revoke", "sender@example.org")
    assert revoked.exit_code == 0 and sessions.current(newsletter, login.cookie) is None
    last = run("users", "revoke", "owner@example.org")
    assert last.exit_code == 1 and "last active owner" in last.output
