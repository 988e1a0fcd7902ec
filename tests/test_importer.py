"""CSV import on SQLite and PostgreSQL: the sample file, re-runs, suppression, dry runs, rejects,
formats, confirmation mail through real SMTP, and flat memory on 100,000 rows."""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from newsletter.cli import main
from newsletter.errors import DeliveryError, ImportFileError, InvalidField, UnknownList
from newsletter.people import consent, lists, subscriptions
from newsletter.people.consent import ConsentContext
from newsletter.people.csvrows import RejectReason
from newsletter.people.importer import ImportOptions, import_csv
from newsletter.statuses import Channel

SAMPLE = REPO / "subscribers" / "sample.csv"


@pytest.fixture
def newsletter(newsletter, clock):
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"], now=clock())
        lists.create_list(session, "alerts", "Campaign alerts", languages=["en", "fr"], now=clock())
    return newsletter


def write(tmp_path: Path, text: str, name: str = "people.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def table(newsletter) -> list[tuple[str, str, str, str, str]]:
    return subscriptions.subscription_lines(newsletter)


def event_count(newsletter) -> int:
    return sum(len(subscriptions.consent_events(newsletter, row[0])) for row in table(newsletter))


# -- the sample file ---------------------------------------------------------------------------


def test_sample_imports_the_good_rows_and_reports_each_bad_one_with_its_line(newsletter, smtp_server):
    report = import_csv(newsletter, SAMPLE)
    assert (report.rows, report.imported, report.merged_duplicates, report.rejected) == (11, 6, 1, 4)
    assert [(r.line, r.reason) for r in report.rejected_rows] == [
        (6, RejectReason.INVALID_ADDRESS),
        (7, RejectReason.INVALID_NAME),   # a line break in the name, spread over lines 7-8
        (9, RejectReason.UNKNOWN_LANGUAGE),
        (11, RejectReason.UNKNOWN_LIST),
    ]
    rows = table(newsletter)
    assert {r[0] for r in rows} == {"ana.ruiz@example.org", "jean.martin@example.org", "amina.haddad@example.org",
                                    "kofi.mensah@example.net", "priya.nair@example.org", "tomas.novak@example.net"}
    assert all(r[4] == "pending" for r in rows)
    # The duplicate " Ana.Ruiz@Example.ORG " was merged: one person, both lists, one mail.
    assert sorted(r[3] for r in rows if r[0] == "ana.ruiz@example.org") == ["alerts", "asp-daily"]
    assert report.confirmations_sent == 6 and len(smtp_server.messages()) == 6
    [mail] = smtp_server.to("ana.ruiz@example.org")
    assert mail["Subject"].startswith("Confirme")  # Spanish, as the row says
    assert "ASP daily summaries" in mail.get_body(("plain",)).get_content()
    # No language in the row: the default; "EN" is read as en.
    assert {r[0]: r[2] for r in rows}["priya.nair@example.org"] == "en"
    log = subscriptions.person(newsletter, "jean.martin@example.org").as_json()["consent_log"]
    assert [(e["event"], e["channel"], e["source"]) for e in log] == [
        ("signup", "import", "import:sample.csv"), ("signup", "import", "import:sample.csv"),
        ("confirmation_sent", "import", "import:sample.csv")]


def test_an_imported_person_confirms_through_the_mailed_link(newsletter, smtp_server):
    import_csv(newsletter, SAMPLE)
    text = smtp_server.to("kofi.mensah@example.net")[0].get_body(("plain",)).get_content()
    token = re.search(r"/confirm/(\S+)", text).group(1)
    assert subscriptions.confirm(newsletter, token, ConsentContext(channel=Channel.LINK)) == ["alerts"]


def test_importing_again_changes_nothing(newsletter, smtp_server, clock):
    first = import_csv(newsletter, SAMPLE)
    before, events = table(newsletter), event_count(newsletter)
    clock.advance(hours=2)  # past the re-send interval: still no second mail
    again = import_csv(newsletter, SAMPLE)
    assert (again.imported, again.already_there, again.merged_duplicates, again.rejected) == (0, 6, 1, 4)
    assert table(newsletter) == before and event_count(newsletter) == events
    assert len(smtp_server.messages()) == first.confirmations_sent == 6


def test_erased_people_are_never_imported_again(newsletter, smtp_server, tmp_path):
    import_csv(newsletter, SAMPLE)
    assert subscriptions.erase(newsletter, "amina.haddad@example.org")
    subscriptions.erase(newsletter, "never.here@example.org")  # suppressed without ever being subscribed
    path = write(tmp_path, "email,lists\nAmina.Haddad@example.org,alerts\nnever.here@example.org,alerts\n")
    report = import_csv(newsletter, path)
    assert (report.imported, report.suppressed) == (0, 2)
    assert all(r[0] not in ("amina.haddad@example.org", "never.here@example.org") for r in table(newsletter))
    assert smtp_server.to("never.here@example.org") == []
    again = import_csv(newsletter, SAMPLE)
    assert (again.imported, again.suppressed, again.already_there) == (0, 1, 5)


def test_unsubscribed_people_are_not_subscribed_again(newsletter, smtp_server, tmp_path):
    import_csv(newsletter, SAMPLE)
    subscriptions.unsubscribe_address(newsletter, "kofi.mensah@example.net", ConsentContext(channel=Channel.LINK))
    path = write(tmp_path, "email,lists\nkofi.mensah@example.net,alerts\nkofi.mensah@example.net,asp-daily\n")
    report = import_csv(newsletter, path)
    assert (report.unsubscribed, report.merged_duplicates, report.imported) == (1, 1, 0)
    assert [r[4] for r in table(newsletter) if r[0] == "kofi.mensah@example.net"] == ["unsubscribed"]


def test_blocked_people_count_as_suppressed(newsletter, tmp_path):
    import_csv(newsletter, SAMPLE, ImportOptions(confirmed=True, consent_note="paper forms"))
    with newsletter.store.session() as session:
        consent.block(session, consent.find_subscriber(session, "priya.nair@example.org"),
                      ConsentContext(channel=Channel.ADMIN), now=newsletter.clock())
    report = import_csv(newsletter, write(tmp_path, "email,lists\npriya.nair@example.org,alerts\n"))
    assert (report.suppressed, report.imported) == (1, 0)


# -- confirmed imports and confirmation limits --------------------------------------------------


def test_confirmed_import_activates_and_records_the_consent_note(newsletter, smtp_server):
    note = "Signed the Coalition's paper form at ASP 23, The Hague, December 2024"
    report = import_csv(newsletter, SAMPLE, ImportOptions(confirmed=True, consent_note=note))
    assert report.imported == 6 and report.confirmations_sent == 0
    assert smtp_server.messages() == []
    assert all(r[4] == "active" for r in table(newsletter))
    data = subscriptions.person(newsletter, "tomas.novak@example.net").as_json()
    assert all(s["confirmed_at"] for s in data["subscriptions"])
    assert [(e["event"], e["channel"], e["source"], e["note"]) for e in data["consent_log"]] == [
        ("imported", "import", "import:sample.csv", note)] * 2


def test_confirmed_import_needs_a_consent_note(newsletter):
    with pytest.raises(InvalidField, match="consent"):
        import_csv(newsletter, SAMPLE, ImportOptions(confirmed=True))


def test_confirmed_import_activates_people_who_were_pending(newsletter, tmp_path):
    import_csv(newsletter, SAMPLE)
    report = import_csv(newsletter, SAMPLE, ImportOptions(confirmed=True, consent_note="they wrote to us"))
    assert report.imported == 6
    assert all(r[4] == "active" for r in table(newsletter))
    assert import_csv(newsletter, SAMPLE, ImportOptions(confirmed=True, consent_note="x")).imported == 0


def test_an_import_respects_the_re_send_limits(newsletter, smtp_server, tmp_path, clock):
    subscriptions.subscribe(newsletter, "ana@example.org", "Ana", "es", ["asp-daily"], ConsentContext(channel=Channel.FORM))
    clock.advance(minutes=5)
    report = import_csv(newsletter, write(tmp_path, "email,lists\nana@example.org,alerts\n"))
    assert report.imported == 1 and report.confirmations_sent == 0  # mailed 5 minutes ago: not again
    assert sorted((r[3], r[4]) for r in table(newsletter)) == [("alerts", "pending"), ("asp-daily", "pending")]
    assert len(smtp_server.to("ana@example.org")) == 1
    clock.advance(minutes=10)
    report = import_csv(newsletter, write(tmp_path, "email,lists\nana@example.org,alerts\n", name="again.csv"))
    assert report.already_there == 1 and len(smtp_server.to("ana@example.org")) == 1


def test_a_sign_up_after_an_import_respects_the_re_send_limits(newsletter, smtp_server, clock):
    import_csv(newsletter, SAMPLE)
    clock.advance(minutes=3)
    result = subscriptions.subscribe(newsletter, "kofi.mensah@example.net", "Kofi", "en", ["alerts"],
                                              ConsentContext(channel=Channel.FORM))
    assert not result.confirmation_sent  # the import's mail went out 3 minutes ago
    clock.advance(minutes=10)
    result = subscriptions.subscribe(newsletter, "kofi.mensah@example.net", "Kofi", "en", ["alerts"],
                                              ConsentContext(channel=Channel.FORM))
    assert result.confirmation_sent and len(smtp_server.to("kofi.mensah@example.net")) == 2


def test_a_refused_confirmation_is_counted_not_fatal(newsletter, smtp_server, tmp_path):
    smtp_server.fail_rcpt["b@example.org"] = "550 5.1.1 No such user"
    report = import_csv(newsletter, write(tmp_path, "email\na@example.org\nb@example.org\nc@example.org\n"),
                        ImportOptions(list_slugs=("alerts",)))
    assert (report.imported, report.confirmations_sent, report.confirmations_failed) == (3, 2, 1)


def test_an_unusable_relay_stops_a_pending_import_before_anything_is_written(newsletter, tmp_path, refused_port):
    newsletter.config = newsletter.config.with_changes(smtp_url=f"smtp://127.0.0.1:{refused_port}?starttls=off&timeout=2")
    with pytest.raises(DeliveryError, match="cannot reach the relay"):
        import_csv(newsletter, SAMPLE)
    assert table(newsletter) == []
    # A confirmed import sends nothing, so it does not need the relay.
    assert import_csv(newsletter, SAMPLE, ImportOptions(confirmed=True, consent_note="paper forms")).imported == 6


# -- dry runs, rejects, formats ---------------------------------------------------------------


def test_a_dry_run_writes_nothing_and_counts_the_same(newsletter, smtp_server, tmp_path):
    dry = import_csv(newsletter, SAMPLE, ImportOptions(dry_run=True, rejects_path=str(tmp_path / "rejects.csv")))
    assert table(newsletter) == [] and smtp_server.messages() == []
    with newsletter.store.session() as session:
        assert consent.find_subscriber(session, "ana.ruiz@example.org") is None
    real = import_csv(newsletter, SAMPLE)
    assert (dry.imported, dry.merged_duplicates, dry.rejected, dry.confirmations_due) == (
        real.imported, real.merged_duplicates, real.rejected, real.confirmations_sent)
    assert dry.dry_run and not real.dry_run
    rejected = list(csv.reader((tmp_path / "rejects.csv").open(encoding="utf-8", newline="")))
    assert rejected[0] == ["email", "name", "language", "lists", "line", "reason"]
    assert [r[4] for r in rejected[1:]] == ["6", "7", "9", "11"]
    assert rejected[2][1] == "Marc Dubois\nBcc: everyone@example.net"


def test_every_reject_reason_with_its_line_number(newsletter, tmp_path):
    big = "x" * (csv.field_size_limit() + 10)
    text = (
        "email,name,language,lists\n"
        "good@example.org,Gööd,en,alerts\n"          # 2: UTF-8, so the file is read as UTF-8
        ",No Address,en,alerts\n"                    # 3
        "two@@example.org,Two,en,alerts\n"           # 4
        "ctl@example.org,Bell\x07Name,en,alerts\n"   # 5
        f"long@example.org,{'n' * 201},en,alerts\n"  # 6
        "lang@example.org,Lang,de,alerts\n"          # 7
        "list@example.org,List,en,nope\n"            # 8
        "nolist@example.org,No List,en,\n"           # 9
        "\n"                                         # 10: blank, skipped
    ).encode() + b"latin@example.org,Jos\xe9,en,alerts\n" + (  # 11
        f'huge@example.org,"{big}",en,alerts\n'      # 12
        "last@example.org,Last,fr,alerts\n"          # 13
    ).encode()
    report = import_csv(newsletter, write(tmp_path, text))
    assert [(r.line, r.reason) for r in report.rejected_rows] == [
        (3, RejectReason.MISSING_ADDRESS),
        (4, RejectReason.INVALID_ADDRESS),
        (5, RejectReason.INVALID_NAME),
        (6, RejectReason.INVALID_NAME),
        (7, RejectReason.UNKNOWN_LANGUAGE),
        (8, RejectReason.UNKNOWN_LIST),
        (9, RejectReason.NO_LIST),
        (11, RejectReason.NOT_UTF8),
        (12, RejectReason.MALFORMED),
    ]
    assert {r[0] for r in table(newsletter)} == {"good@example.org", "last@example.org"}
    assert report.rows == 11 and report.imported == 2


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_bom_and_delimiters_are_detected(sqlite_store, config, clock, tmp_path, delimiter):
    from newsletter.installation import Newsletter

    nl = Newsletter(config, sqlite_store, clock=clock)
    with nl.store.session() as session:
        lists.create_list(session, "alerts", "Campaign alerts", languages=["en", "fr"], now=clock())
    rows = [["Email", "Name", "Lists"], ["zoe@example.org", "Zoé, Martin", "alerts"], ["yan@example.org", "Yan", "alerts"]]
    text = "\n".join(delimiter.join(f'"{c}"' if delimiter in c else c for c in row) for row in rows) + "\n"
    path = write(tmp_path, "\ufeff" + text)
    report = import_csv(nl, path, ImportOptions(confirmed=True, consent_note="n"))
    assert report.delimiter == delimiter and report.imported == 2 and report.rejected == 0
    assert ("zoe@example.org", "Zoé, Martin") in [(r[0], r[1]) for r in subscriptions.subscription_lines(nl)]


def test_header_aliases_and_first_and_last_names(newsletter, tmp_path):
    path = write(tmp_path, "Courriel;Prénom;Nom de famille;Langue;Organisation\n"
                           "ines@example.org;Inès;Diallo;fr-SN;Avocats sans frontières\n")
    report = import_csv(newsletter, path, ImportOptions(list_slugs=("alerts",), confirmed=True, consent_note="n"))
    assert report.imported == 1 and report.columns.ignored == ("Organisation",)
    assert table(newsletter) == [("ines@example.org", "Inès Diallo", "fr", "alerts", "active")]


def test_an_explicit_delimiter_wins(newsletter, tmp_path):
    path = write(tmp_path, "email;name\nsam@example.org;Sam, Jr\n")
    with pytest.raises(ImportFileError, match="no email column"):
        import_csv(newsletter, path, ImportOptions(delimiter="tab", list_slugs=("alerts",)))


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("name,language\nAna,es\n", "no email column"),
    ("ana@example.org,Ana\n", "looks like data"),
])
def test_unusable_files_are_an_import_file_error(newsletter, tmp_path, text, message):
    with pytest.raises(ImportFileError, match=message):
        import_csv(newsletter, write(tmp_path, text), ImportOptions(list_slugs=("alerts",)))
    assert table(newsletter) == []


def test_an_unknown_list_option_stops_before_anything(newsletter):
    with pytest.raises(UnknownList):
        import_csv(newsletter, SAMPLE, ImportOptions(list_slugs=("asp-weekly",)))
    assert table(newsletter) == []


def test_duplicates_across_batches_are_merged(newsletter, tmp_path):
    lines = ["email,lists"] + [f"p{i}@example.org,alerts" for i in range(10)] + ["P3@EXAMPLE.ORG,asp-daily", "p9@example.org,alerts"]
    report = import_csv(newsletter, write(tmp_path, "\n".join(lines) + "\n"),
                        ImportOptions(batch_size=4, confirmed=True, consent_note="n"))
    assert (report.imported, report.merged_duplicates, report.rows) == (10, 2, 12)
    assert sorted(r[3] for r in table(newsletter) if r[0] == "p3@example.org") == ["alerts", "asp-daily"]


def test_worker_processes_give_the_same_result(sqlite_store, config, clock, tmp_path):
    from newsletter.installation import Newsletter

    nl = Newsletter(config, sqlite_store, clock=clock)
    with nl.store.session() as session:
        lists.create_list(session, "alerts", "Campaign alerts", now=clock())
    lines = ["email,name"] + [f"w{i}@example.org,W {i}" if i % 7 else f"bad{i}@,W {i}" for i in range(3000)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    options = ImportOptions(list_slugs=("alerts",), confirmed=True, consent_note="n", batch_size=500)
    dry = import_csv(nl, path, dataclasses.replace(options, dry_run=True, workers=0))
    report = import_csv(nl, path, dataclasses.replace(options, workers=2))
    assert (report.imported, report.rejected) == (dry.imported, dry.rejected) == (3000 - 429, 429)
    assert [r.line for r in report.rejected_rows] == [r.line for r in dry.rejected_rows]


# -- scale -----------------------------------------------------------------------------------------


def _rss_kib(field: str) -> int:
    """VmRSS or VmHWM (the high-water mark) of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _peak_growth_kib(run) -> int:  # noqa: ANN001
    """How far the resident set rose above where it started while `run()` ran."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux)
    before = _rss_kib("VmRSS")
    run()
    return _rss_kib("VmHWM") - before


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to read peak RSS")
def test_100000_rows_import_with_flat_memory(sqlite_store, config, clock, tmp_path, monkeypatch):
    """The resident set's peak during a 100,000-row import rises no more than during a 10,000-row one."""
    from newsletter.installation import Newsletter
    from newsletter.store import bulk as bulkstore

    # An import widens SQLite's page cache to a fixed bound (bulkstore.IMPORT_CACHE_KIB), which a
    # larger store fills further; bench/import.py measures that at a million rows. Here, with
    # SQLite's default cache, what is measured is everything else.
    monkeypatch.setattr(bulkstore, "IMPORT_CACHE_KIB", 2048)

    nl = Newsletter(config, sqlite_store, clock=clock)
    with nl.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", now=clock())
        lists.create_list(session, "alerts", "Campaign alerts", now=clock())

    def generate(path: Path, n: int, start: int) -> Path:
        with path.open("w", encoding="utf-8") as f:
            f.write("email,name,language,lists\n")
            for i in range(start, start + n):
                f.write(f"person.{i}@org{i % 997}.example.org,Person {i},{('en', 'fr', 'es', 'ar')[i % 4]},"
                        f"{'asp-daily|alerts' if i % 3 else 'alerts'}\n")
        return path

    # Batches smaller than both files, so that both hold a batch's worth of rows at a time
    # (a 10,000-row file in one 20,000-row batch would hold less than a batch).
    options = ImportOptions(confirmed=True, consent_note="generated for the memory test", batch_size=5_000)
    growth, reports = {}, {}
    for n, start in ((10_000, 0), (100_000, 10_000)):
        path = generate(tmp_path / f"{n}.csv", n, start)
        growth[n] = _peak_growth_kib(lambda: reports.__setitem__(n, import_csv(nl, path, options)))
        assert reports[n].imported == n and reports[n].rejected == 0
    assert subscriptions.count_subscribers(nl) == 110_000
    # Ten times the rows, about the same peak: nothing grows with the file. (Holding the rows
    # or the addresses in memory would add tens of megabytes here.)
    assert growth[100_000] < growth[10_000] + 12_000, growth


# -- the command line ----------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    for slug, name in (("asp-daily", "ASP daily summaries"), ("alerts", "Campaign alerts")):
        assert runner.invoke(main, ["lists", "create", slug, name, "--languages", "en,fr,es,ar"]).exit_code == 0
    return tmp_path


def test_cli_import_prints_the_summary_and_the_bad_lines(workdir, smtp_server):
    result = CliRunner().invoke(main, ["import", str(SAMPLE), "--rejects", "rejects.csv"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("imported                    6", "merged duplicates           1", "rejected                    4",
                 "line 6: not-an-address: invalid address", "line 7: marc.dubois@example.org: invalid name",
                 "line 9: lucia.ferreira@example.org: unknown language", "line 11: sara.lind@example.org: unknown list",
                 "Rejected rows written to rejects.csv"):
        assert text in out, out
    assert len(smtp_server.messages()) == 6
    again = CliRunner().invoke(main, ["import", str(SAMPLE)], catch_exceptions=False)
    assert "imported                    0" in again.output and "already there               6" in again.output
    assert len(smtp_server.messages()) == 6


def test_cli_import_refuses_confirmed_without_a_note_and_never_echoes_control_characters(workdir, tmp_path):
    result = CliRunner().invoke(main, ["import", str(SAMPLE), "--confirmed"])
    assert result.exit_code == 2 and "--consent-note" in result.output
    path = write(tmp_path, "email,lists\n\x1b[2Jevil@example.org,alerts\n", name="evil.csv")
    result = CliRunner().invoke(main, ["import", str(path), "--dry-run"], catch_exceptions=False)
    assert "\x1b" not in result.output and "\\x1b[2Jevil@example.org" in result.output
    assert "dry run" in result.output


def test_checking_many_rows_answers_as_checking_each_alone(monkeypatch):
    """check_rows memoises language and list cells (bounded); its answers are check_row's."""
    from newsletter.people import csvrows
    from newsletter.people.csvrows import (
        RawRow,
        RowRules,
        check_row,
        check_rows,
        map_columns,
    )

    monkeypatch.setattr(csvrows._RowChecker, "MEMO_SIZE", 3)  # forgets often
    rules = RowRules(columns=map_columns(["email", "name", "language", "lists"]), languages=("en", "fr"),
                     known_lists=frozenset({"alerts", "asp-daily"}), extra_lists=("alerts",))
    cells = [("a@example.org", "A", "fr", "asp-daily"), ("b@example.org", "B", "de", "alerts"),
             ("c@example.org", "C", "FR_ca", "nope"), ("d@example.org", "D", "", ""),
             ("e@example.org", "E", "en", "asp-daily|alerts"), ("f@example.org", "F", "fr", "asp-daily"),
             ("g@example.org", "G", "de", "alerts"), ("not-an-address", "H", "en", "alerts")]
    rows = [RawRow(i + 2, list(c)) for i, c in enumerate(cells * 3)]
    assert check_rows(rows, rules) == [check_row(r, rules) for r in rows]
    assert [type(r).__name__ for r in check_rows(rows[:8], rules)] == [
        "CheckedRow", "RejectedRow", "RejectedRow", "CheckedRow", "CheckedRow", "CheckedRow", "RejectedRow",
        "RejectedRow"]


@pytest.mark.parametrize("reply", ["451 4.3.0 Try again later", "421 4.7.0 Too many connections, closing"])
def test_a_confirmation_refused_for_now_is_queued_for_the_servers_sender(newsletter, smtp_server, tmp_path, reply,
                                                                          clock):
    """A 4xx during a pending import loses nobody's confirmation: it goes to the queue that
    `newsletter serve` drains (with back-off), and the import goes on with the others."""
    from test_confirmation_queue import drain

    smtp_server.fail_rcpt["b@example.org"] = [reply]
    path = write(tmp_path, "email\na@example.org\nb@example.org\nc@example.org\n")
    report = import_csv(newsletter, path, ImportOptions(list_slugs=("alerts",)))
    assert (report.confirmations_sent, report.confirmations_failed, report.confirmations_queued) == (2, 0, 1)
    assert [len(smtp_server.to(a)) for a in ("a@example.org", "b@example.org", "c@example.org")] == [1, 0, 1]

    assert drain(newsletter).sent == 0  # the queue's back-off
    clock.advance(minutes=2)
    assert drain(newsletter).sent == 1
    [mail] = smtp_server.to("b@example.org")
    assert "/confirm/" in mail.get_body(("plain",)).get_content()
    # The re-run of the file still changes nothing and sends nothing more.
    again = import_csv(newsletter, path, ImportOptions(list_slugs=("alerts",)))
    assert (again.imported, again.confirmations_sent, again.confirmations_queued) == (0, 0, 0)
    assert len(smtp_server.to("b@example.org")) == 1


def test_confirmations_wait_in_the_queue_when_the_relay_drops_the_connection(newsletter, smtp_server, tmp_path,
                                                                               clock):
    """An import queues its mails with its batch, then the one drainer sends them: a relay that
    passes the start-up check but then drops every connection loses nobody's mail — the import
    says they wait, and the drainer sends them once the relay is back."""
    from test_confirmation_queue import drain, queued

    smtp_server.drop_in_data = 2  # the first two messages' connections close in the middle
    path = write(tmp_path, "email\na@example.org\nb@example.org\nc@example.org\n")
    report = import_csv(newsletter, path, ImportOptions(list_slugs=("alerts",)))
    assert (report.imported, report.confirmations_due, report.confirmations_sent, report.confirmations_queued,
            report.confirmations_failed) == (3, 3, 0, 3, 0)
    assert queued(newsletter) == 3 and smtp_server.received == []
    clock.advance(minutes=2)
    assert drain(newsletter).sent == 3
    assert all(len(smtp_server.to(a)) == 1 for a in ("a@example.org", "b@example.org", "c@example.org"))


def test_cli_import_says_which_confirmations_wait_in_the_queue(workdir, smtp_server, tmp_path):
    smtp_server.fail_rcpt["b@example.org"] = "451 4.7.1 greylisted, try again later"
    path = write(tmp_path, "email,lists\na@example.org,alerts\nb@example.org,alerts\n", name="two.csv")
    result = CliRunner().invoke(main, ["import", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert re.search(r"confirmations sent +1\n", result.output)
    assert re.search(r"confirmations queued +1 \(not sent yet: .*`newsletter serve` sends them", result.output)
