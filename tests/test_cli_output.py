"""The command line prints stored values escaped (issue #12.5): what a visitor typed, a bounce's
text or a file's column never reaches the staff terminal as escape sequences, forged lines or
right-to-left overrides; it is shown as escapes, and `--json` stays valid JSON."""

from __future__ import annotations

import json
import re
import sqlite3

from test_cli import run, workdir  # noqa: F401  (the fixture)

from newsletter.addresses import escape_controls

#: What a terminal would obey: C0/C1 controls but the line feeds we print, DEL, bidi controls.
OBEYED = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
FORGED = "  2026-11-23T09:00:00+00:00  confirmed          via link"
NAME = "\u202eAna\x1b[2J"
SOURCE = "web\x1b]0;pwned\x07\n" + FORGED
AGENT = "Mozilla\x9b31m"


def _plant(workdir) -> None:
    """Values with controls in the store (as an older version, or a direct write, left them)."""
    with sqlite3.connect(workdir / "subscribers" / "newsletter.db") as db:
        db.execute("UPDATE subscribers SET name = ?", (NAME,))
        db.execute("DELETE FROM consent_events")  # a log line cannot be changed; the test writes its own
        db.execute("INSERT INTO consent_events (subscriber_id, list_id, kind, channel, at, source, user_agent) "
                   "SELECT id, NULL, 'signup', 'form', created_at, ?, ? FROM subscribers", (SOURCE, AGENT))
        db.execute("UPDATE lists SET name = ?, description = ?", ("ASP\x1b[31m daily", "one\rtwo"))


def _prepared(workdir):
    run("init")
    run("lists", "create", "asp-daily", "ASP daily summaries")
    assert run("subscribe", "ana@example.org", "--list", "asp-daily").exit_code == 0
    _plant(workdir)


def test_show_prints_every_stored_value_escaped(workdir):
    _prepared(workdir)
    out = run("show", "ana@example.org").output
    assert not OBEYED.search(out)
    assert "\\u202eAna\\x1b[2J" in out and "web\\x1b]0;pwned\\x07\\x0a  2026-11-23T09:00:00+00:00  confirmed" in out
    assert not any(line.startswith(FORGED) for line in out.splitlines())  # no forged consent line


def test_show_json_is_valid_json_with_nothing_a_terminal_obeys(workdir):
    _prepared(workdir)
    out = run("show", "ana@example.org", "--json").output
    assert not OBEYED.search(out)
    data = json.loads(out)
    assert data["name"] == NAME and {e["source"] for e in data["consent_log"]} == {SOURCE}


def test_every_printer_of_stored_values_escapes(workdir):
    _prepared(workdir)
    for args in (["subscribers"], ["lists"], ["lists", "show", "asp-daily"], ["unsubscribe", "ana@example.org"]):
        result = run(*args)
        assert result.exit_code == 0 and not OBEYED.search(result.output), args
    assert "\\u202eAna\\x1b[2J" in run("subscribers").output
    assert "ASP\\x1b[31m daily" in run("lists").output and "one\\x0dtwo" in run("lists", "show", "asp-daily").output


def test_the_escape_is_unambiguous_and_leaves_ordinary_text_alone():
    assert escape_controls("Nadia Al-Fulan عربي Ruíz") == "Nadia Al-Fulan عربي Ruíz"
    assert escape_controls("a\\x1b") == "a\\\\x1b" and escape_controls("a\x1b") == "a\\x1b"
    assert json.loads(escape_controls(json.dumps({"v": "\u202e\x9b\\"}, ensure_ascii=False), json=True)) == {
        "v": "\u202e\x9b\\"}


def test_an_export_imported_back_gives_the_same_people(workdir):
    """The export escapes cells a spreadsheet would run (`'-ana@…`, `'=…`); the import takes the
    escape off again, so re-importing an export adds nobody and renames nobody (#12.12)."""
    run("init")
    run("lists", "create", "asp-daily", "ASP daily summaries")
    for email, name in (("-ana@example.org", "=Ana"), ("+bo@example.org", "@Bo"), ("cy@example.org", "'Cy")):
        assert run("subscribe", "--list", "asp-daily", "--name", name, "--", email).exit_code == 0
    assert run("export", "-o", "out.csv").exit_code == 0
    exported = (workdir / "out.csv").read_text()
    assert "'-ana@example.org" in exported and "'=Ana" in exported
    before = run("subscribers").output
    result = run("import", "out.csv")
    assert result.exit_code == 0, result.output
    assert run("subscribers").output == before
    assert run("subscribers", "--count").output.strip() == "3"
    assert "=Ana" in before and "'Cy" in before  # an apostrophe that was no escape stays


def test_the_spreadsheet_escape_is_undone_exactly():
    from newsletter.people.records import spreadsheet_safe, spreadsheet_unescape

    for text in ("-ana@example.org", "=SUM(A1)", "+1", "@x", "'Cy", "''=x", "plain", "", "'"):
        assert spreadsheet_unescape(spreadsheet_safe(text)) == text
