"""Imports from the tools the coalition used before: Mailchimp's audience exports (its consent
proof kept; its unsubscribed and cleaned exports as suppressions), listmonk's export, and CSV
files saved by Excel on Windows (cp1252), detected or named."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.errors import ImportFileError, InvalidField
from newsletter.people import consent, lists, subscriptions
from newsletter.people.csvrows import RejectReason, detect_encoding
from newsletter.people.importer import ImportOptions, import_csv

FIXTURES = Path(__file__).parent / "fixtures"
MAILCHIMP = FIXTURES / "mailchimp"
CONFIRMED = dict(confirmed=True, consent_note="Mailchimp audience 'ASP updates', double opt-in")


@pytest.fixture
def newsletter(newsletter, clock):
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"], now=clock())
    return newsletter


def suppressed(newsletter, email: str) -> bool:
    with newsletter.store.session() as session:
        return consent.is_suppressed(session, email)


def test_a_mailchimp_audience_keeps_its_consent_proof(newsletter):
    report = import_csv(newsletter, MAILCHIMP / "subscribed_members_export_asp.csv",
                        ImportOptions(list_slugs=("asp-daily",), **CONFIRMED))
    assert report.columns.source.name == "Mailchimp export (subscribed)"
    assert (report.imported, report.rejected) == (3, 1)
    [bad] = report.rejected_rows
    assert (bad.line, bad.reason) == (5, RejectReason.INVALID_PROOF) and "OPTIN_TIME '2021-12-10 later'" in bad.detail
    ana = subscriptions.person(newsletter, "ana.ruiz@example.org")
    assert ana.name == "Ana Ruiz" and ana.subscriptions[0].status == "active"
    proof = [(e.event, e.at, e.ip, e.note) for e in ana.consent_log if e.event in ("signup", "confirmed")]
    assert proof == [
        ("signup", datetime(2024, 3, 12, 14, 5, 33, tzinfo=timezone.utc), "198.51.100.7",
         'opted in as recorded by the Mailchimp export (subscribed); tags: "ASP23","Press"'),
        ("confirmed", datetime(2024, 3, 12, 14, 9, 2, tzinfo=timezone.utc), "198.51.100.7",
         "confirmed as recorded by the Mailchimp export (subscribed)"),
    ]
    assert all(e.list == "asp-daily" and e.source == "import:subscribed_members_export_asp.csv (Mailchimp export "
               "(subscribed))" for e in ana.consent_log if e.event in ("signup", "confirmed"))
    jean = subscriptions.person(newsletter, "jean.martin@example.org")
    assert [e.ip for e in jean.consent_log if e.event == "confirmed" and e.ip] == ["203.0.113.46"]
    amina = subscriptions.person(newsletter, "amina.haddad@example.org")
    assert amina.name == "أمينة حداد"
    assert [(e.event, e.ip) for e in amina.consent_log if e.ip] == [("confirmed", "192.0.2.10")]
    # Importing again adds nothing, proof included.
    again = import_csv(newsletter, MAILCHIMP / "subscribed_members_export_asp.csv",
                       ImportOptions(list_slugs=("asp-daily",), **CONFIRMED))
    assert again.imported == 0 and len(subscriptions.person(newsletter, "ana.ruiz@example.org").consent_log) == \
        len(ana.consent_log)


def test_mailchimps_unsubscribed_and_cleaned_exports_are_suppressions(newsletter):
    import_csv(newsletter, MAILCHIMP / "subscribed_members_export_asp.csv",
               ImportOptions(list_slugs=("asp-daily",), **CONFIRMED))
    left = import_csv(newsletter, MAILCHIMP / "unsubscribed_members_export_asp.csv",
                      ImportOptions(list_slugs=("asp-daily",), **CONFIRMED))
    assert left.columns.source.name == "Mailchimp export (unsubscribed)"
    assert left.status_suppressions == {"unsubscribed": 2} and left.imported == 0
    cleaned = import_csv(newsletter, MAILCHIMP / "cleaned_members_export_asp.csv",
                         ImportOptions(list_slugs=("asp-daily",), **CONFIRMED))
    assert cleaned.status_suppressions == {"hard_bounce": 1}
    for email in ("priya.nair@example.org", "jean.martin@example.org", "tomas.novak@example.net"):
        assert suppressed(newsletter, email)
    # Jean had come in with the audience: he has left it now.
    assert subscriptions.person(newsletter, "jean.martin@example.org").subscriptions[0].status == "unsubscribed"
    active = {line.email for line in subscriptions.subscription_lines(newsletter) if line.status == "active"}
    assert active == {"ana.ruiz@example.org", "amina.haddad@example.org"}


def test_a_listmonk_export_brings_its_blocklist_along(newsletter):
    report = import_csv(newsletter, FIXTURES / "listmonk" / "subscribers.csv",
                        ImportOptions(list_slugs=("asp-daily",), **CONFIRMED))
    assert report.columns.source.name == "listmonk export"
    assert report.status_suppressions == {"blocked": 1, "admin": 1} and report.imported == 1
    assert [line.email for line in subscriptions.subscription_lines(newsletter)] == ["lucia.ferreira@example.org"]
    assert subscriptions.person(newsletter, "lucia.ferreira@example.org").name == "Lúcia Ferreira"
    assert suppressed(newsletter, "marc.dubois@example.org") and suppressed(newsletter, "sara.lind@example.org")


def test_a_status_option_makes_an_export_of_the_departed_a_suppression_list(newsletter, tmp_path):
    path = tmp_path / "listmonk-unsubscribed.csv"
    path.write_text("uuid,email,name,attributes,status,created_at,updated_at\n"
                    "1,kofi.mensah@example.net,Kofi,{},enabled,2023-01-01,2023-01-01\n", encoding="utf-8")
    report = import_csv(newsletter, path, ImportOptions(list_slugs=("asp-daily",), status="unsubscribed",
                                                        **CONFIRMED))
    assert report.status_suppressions == {"unsubscribed": 1} and report.imported == 0
    with pytest.raises(InvalidField, match="status"):
        import_csv(newsletter, path, ImportOptions(list_slugs=("asp-daily",), status="gone fishing"))


def test_a_file_saved_by_excel_on_windows_is_read_as_cp1252(newsletter):
    path = FIXTURES / "excel-cp1252.csv"
    assert detect_encoding(path) == "cp1252"
    report = import_csv(newsletter, path, ImportOptions(list_slugs=("asp-daily",), **CONFIRMED))
    assert (report.encoding, report.encoding_detected, report.imported, report.rejected) == ("cp1252", True, 4, 0)
    names = {line.email: line.name for line in subscriptions.subscription_lines(newsletter)}
    assert names["zoe.lefevre@example.org"] == "Zoé Lefèvre" and names["renee.cote@example.org"] == "Renée Côté – ONG"
    assert {line.language for line in subscriptions.subscription_lines(newsletter)} == {"fr", "es"}


def test_an_encoding_can_be_named_and_a_wrong_one_is_said(newsletter, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,name\nines@example.org,Inês\n".encode("latin-1"))
    report = import_csv(newsletter, path, ImportOptions(list_slugs=("asp-daily",), encoding="latin-1", **CONFIRMED))
    assert (report.encoding, report.encoding_detected) == ("iso8859-1", False)
    assert subscriptions.subscription_lines(newsletter)[0].name == "Inês"
    with pytest.raises(ImportFileError, match="no encoding 'klingon'"):
        import_csv(newsletter, path, ImportOptions(list_slugs=("asp-daily",), encoding="klingon"))


def test_a_utf8_file_with_one_stray_byte_stays_utf8(newsletter, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes("email,name\nzoe@example.org,Zoé\n".encode() + b"jose@example.org,Jos\xe9\n")
    report = import_csv(newsletter, path, ImportOptions(list_slugs=("asp-daily",), **CONFIRMED))
    assert report.encoding == "utf-8" and report.imported == 1
    assert [(r.line, r.reason) for r in report.rejected_rows] == [(3, RejectReason.NOT_UTF8)]
    assert "not utf-8" in report.rejected_rows[0].detail


def test_cli_import_says_the_format_and_the_encoding(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner()
    runner.invoke(main, ["init"])
    runner.invoke(main, ["lists", "create", "asp-daily", "ASP daily summaries", "--languages", "en,fr,es"])
    result = runner.invoke(main, ["import", str(FIXTURES / "excel-cp1252.csv"), "--list", "asp-daily", "--dry-run"],
                           catch_exceptions=False)
    assert "(CSV, delimiter ';', encoding cp1252, detected)" in result.output, result.output
    result = runner.invoke(main, ["import", str(MAILCHIMP / "cleaned_members_export_asp.csv"), "--list", "asp-daily"],
                           catch_exceptions=False)
    assert "Mailchimp export (cleaned)" in result.output and "hard bounce 1" in result.output
    result = runner.invoke(main, ["import", str(FIXTURES / "excel-cp1252.csv"), "--list", "asp-daily",
                                  "--encoding", "utf-8", "--dry-run"], catch_exceptions=False)
    assert "encoding utf-8)" in result.output and "rejected                    3" in result.output  # the accented rows
