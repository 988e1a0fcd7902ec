"""A CSV import that carries a `status` column: the unsubscribed, bounced and complained become
suppressions, never active people, whatever --confirmed says; the pending stay pending."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import _sqlite_store

from newsletter.cli import main
from newsletter.installation import Newsletter
from newsletter.people import consent, lists, subscriptions
from newsletter.people.csvrows import RejectReason
from newsletter.people.importer import ImportOptions, import_csv
from newsletter.people.records import write_csv
from newsletter.people.rules import ConsentContext
from newsletter.statuses import Channel

CONFIRMED = ImportOptions(confirmed=True, consent_note="moved from the old installation")

EXPORTED = """\
email,name,language,list,status
ana.ruiz@example.org,Ana Ruiz,es,asp-daily,active
amina.haddad@example.org,Amina Haddad,ar,asp-daily,unsubscribed
jean.martin@example.org,Jean Martin,fr,asp-daily,pending
kofi.mensah@example.net,Kofi Mensah,en,alerts,Cleaned
priya.nair@example.org,Priya Nair,en,alerts,complained
tomas.novak@example.net,Tomas Novak,en,alerts,blocklisted
sara.lind@example.org,Sara Lind,en,alerts,on holiday
"""


@pytest.fixture
def newsletter(newsletter, clock):
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"], now=clock())
        lists.create_list(session, "alerts", "Campaign alerts", languages=["en", "fr"], now=clock())
    return newsletter


def write(tmp_path: Path, text: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def standing(newsletter) -> dict[str, str]:
    return {line.email: line.status for line in subscriptions.subscription_lines(newsletter)}


def suppressed(newsletter, email: str) -> bool:
    with newsletter.store.session() as session:
        return consent.is_suppressed(session, email)


def test_a_confirmed_import_of_statuses_never_makes_the_departed_active(newsletter, tmp_path, smtp_server):
    report = import_csv(newsletter, write(tmp_path, EXPORTED), CONFIRMED)
    assert report.status_suppressions == {"unsubscribed": 1, "hard_bounce": 1, "complaint": 1, "blocked": 1}
    assert (report.imported, report.kept_pending, report.rejected) == (2, 1, 1)
    assert report.rows == report.imported + sum(report.status_suppressions.values()) + report.rejected
    assert report.rejected_rows[0].reason is RejectReason.UNKNOWN_STATUS and report.rejected_rows[0].line == 8
    assert standing(newsletter) == {"ana.ruiz@example.org": "active", "jean.martin@example.org": "pending"}
    for email in ("amina.haddad@example.org", "kofi.mensah@example.net", "priya.nair@example.org",
                  "tomas.novak@example.net"):
        assert suppressed(newsletter, email)
    # The pending one never confirmed in the old system: a confirmation mail, no activation.
    assert len(smtp_server.to("jean.martin@example.org")) == 1 and smtp_server.to("ana.ruiz@example.org") == []
    # Importing again changes nothing, and the suppressed stay out of any later import.
    again = import_csv(newsletter, write(tmp_path, EXPORTED), CONFIRMED)
    assert again.imported == 0 and standing(newsletter) == {"ana.ruiz@example.org": "active",
                                                            "jean.martin@example.org": "pending"}
    plain = import_csv(newsletter, write(tmp_path, "email,lists\namina.haddad@example.org,alerts\n", "plain.csv"),
                       CONFIRMED)
    assert (plain.imported, plain.suppressed) == (0, 1)


def test_a_person_already_here_whose_row_says_unsubscribed_leaves_every_list(newsletter, tmp_path):
    import_csv(newsletter, write(tmp_path, "email,lists\nana.ruiz@example.org,asp-daily|alerts\n"), CONFIRMED)
    report = import_csv(newsletter, write(tmp_path, "email,status\nAna.Ruiz@example.org,unsubscribed\n", "left.csv"))
    assert report.status_suppressions == {"unsubscribed": 1}
    record = subscriptions.person(newsletter, "ana.ruiz@example.org")
    assert record.status == "suppressed" and {s.status for s in record.subscriptions} == {"unsubscribed"}
    assert [e.event for e in record.consent_log][-3:] == ["unsubscribed", "unsubscribed", "suppressed"]
    assert record.consent_log[-1].source == "import:left.csv"


def test_a_suppressing_row_wins_over_another_row_of_the_same_address(newsletter, tmp_path):
    text = "email,list,status\nana.ruiz@example.org,asp-daily,active\nana.ruiz@example.org,alerts,unsubscribed\n"
    report = import_csv(newsletter, write(tmp_path, text), CONFIRMED)
    assert (report.imported, report.merged_duplicates, report.status_suppressions) == (0, 1, {"unsubscribed": 1})
    assert standing(newsletter) == {} and suppressed(newsletter, "ana.ruiz@example.org")


def test_a_dry_run_counts_the_suppressions_and_writes_none(newsletter, tmp_path):
    report = import_csv(newsletter, write(tmp_path, EXPORTED), ImportOptions(dry_run=True))
    assert sum(report.status_suppressions.values()) == 4
    assert not suppressed(newsletter, "amina.haddad@example.org") and standing(newsletter) == {}


def test_an_export_imported_elsewhere_keeps_who_left(newsletter, tmp_path, clock, sqlite_template):
    """The issue's case: `newsletter export` then `import --confirmed` no longer brings anyone back."""
    for email in ("ana.ruiz@example.org", "kofi.mensah@example.net"):
        subscriptions.record_signup(newsletter, email, "", "en", ["asp-daily"], ConsentContext(channel=Channel.FORM))
    with newsletter.store.session() as session:
        consent.confirm(session, consent.find_subscriber(session, "ana.ruiz@example.org"),
                        ConsentContext(channel=Channel.LINK), now=clock())
        consent.confirm(session, consent.find_subscriber(session, "kofi.mensah@example.net"),
                        ConsentContext(channel=Channel.LINK), now=clock())
    subscriptions.unsubscribe_address(newsletter, "kofi.mensah@example.net", ConsentContext(channel=Channel.LINK))
    path = tmp_path / "export.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        write_csv(out, ("email", "name", "language", "list", "status"), subscriptions.subscription_lines(newsletter))
    (tmp_path / "new").mkdir()
    elsewhere = Newsletter(newsletter.config, _sqlite_store(sqlite_template, tmp_path / "new"), clock=clock)
    with elsewhere.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", now=clock())
    report = import_csv(elsewhere, path, CONFIRMED)
    assert report.status_suppressions == {"unsubscribed": 1} and report.imported == 1
    assert standing(elsewhere) == {"ana.ruiz@example.org": "active"} and suppressed(elsewhere, "kofi.mensah@example.net")
    elsewhere.store.dispose()


def test_cli_import_says_which_rows_became_suppressions(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner()
    runner.invoke(main, ["init"])
    runner.invoke(main, ["lists", "create", "asp-daily", "ASP daily summaries"])
    runner.invoke(main, ["lists", "create", "alerts", "Campaign alerts"])
    path = write(tmp_path, EXPORTED)
    result = runner.invoke(main, ["import", str(path), "--confirmed", "--consent-note", "moved"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "made suppressions           4" in result.output
    assert "complaint 1" in result.output and "unsubscribed 1" in result.output and "hard bounce 1" in result.output
    assert "kept pending                1" in result.output
    assert "ignored columns" not in result.output
    assert "line 8: sara.lind@example.org: unknown status" in result.output
