"""Moving an installation: `backup` and `restore` carry everything, SQLite → PostgreSQL → SQLite
leaves identical data, and a restore checks before it writes."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from conftest import Clock, _pg_store, _sqlite_store

from newsletter.cli import main
from newsletter.errors import ArchiveError, StoreNotEmpty
from newsletter.installation import Newsletter
from newsletter.people import consent, lists, moves, subscriptions
from newsletter.people.rules import ConsentContext
from newsletter.statuses import (
    BounceKind,
    CampaignStatus,
    Channel,
    OutboxStatus,
    SubscriberStatus,
    SuppressionReason,
)
from newsletter.store import BounceEvent, BounceScore, Campaign, OutboxRow
from newsletter.store import archive as archive_store

FORM = ConsentContext(channel=Channel.FORM, ip="203.0.113.9", user_agent="Firefox/140", source="website-footer",
                      consent_version="2026-11")


def populate(newsletter: Newsletter, clock: Clock) -> None:
    """An installation with a little of everything: every status, a consent log, suppressions,
    an erased person, bounces with a score, a finished campaign with its ledger."""
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", description="Un résumé chaque soir.",
                          languages=["en", "fr", "es", "ar"], now=clock())
        lists.create_list(session, "alerts", "Campaign alerts", languages=["en", "fr"], public=False, now=clock())
    people = [("ana.ruiz@example.org", "Ana Ruiz", "es"), ("amina.haddad@example.org", "أمينة حداد", "ar"),
              ("jean.martin@example.org", "Jean Martin", "fr"), ("kofi.mensah@example.net", "Kofi Mensah", "en"),
              ("priya.nair@example.org", "Priya Nair", "en"), ("pending.only@example.org", "", "en")]
    for email, name, language in people:
        subscriptions.record_signup(newsletter, email, name, language, ["asp-daily", "alerts"], FORM,
                                    public_only=False)
    clock.advance(minutes=5)
    with newsletter.store.session() as session:
        for email, _, _ in people[:5]:
            consent.confirm(session, consent.find_subscriber(session, email), FORM, now=clock())
    clock.advance(hours=1)
    subscriptions.unsubscribe_address(newsletter, "jean.martin@example.org",
                                      ConsentContext(channel=Channel.ONE_CLICK), "alerts")
    with newsletter.store.session() as session:
        consent.suppress(session, "kofi.mensah@example.net", SuppressionReason.HARD_BOUNCE, now=clock(),
                         ctx=ConsentContext(channel=Channel.BOUNCE), note="550 5.1.1 no such user")
        consent.block(session, consent.find_subscriber(session, "priya.nair@example.org"),
                      ConsentContext(channel=Channel.LINK), now=clock())
    subscriptions.erase(newsletter, "gone@example.org")
    with newsletter.store.session() as session:
        asp = lists.get_list(session, "asp-daily")
        campaign = Campaign(slug="asp23-day-3", list_id=asp.id, kind="daily", subject="Jour 3 : les débats",
                            status=CampaignStatus.FINISHED, source={"files": ["day-3.fr.md"], "rate": 100.0},
                            created_at=clock(), started_at=clock(), finished_at=clock() + timedelta(minutes=3))
        session.add(campaign)
        session.flush()
        ana = consent.find_subscriber(session, "ana.ruiz@example.org")
        amina = consent.find_subscriber(session, "amina.haddad@example.org")
        session.add_all([
            OutboxRow(campaign_id=campaign.id, subscriber_id=ana.id, status=OutboxStatus.SENT, language="es",
                      attempts=1, message_id="<c1.r1@news.example.org>", last_reply="250 2.0.0 Ok",
                      sent_at=clock(), updated_at=clock()),
            OutboxRow(campaign_id=campaign.id, subscriber_id=amina.id, status=OutboxStatus.DEFERRED, language="ar",
                      attempts=2, message_id="<c1.r2@news.example.org>", last_reply="451 4.7.1 greylisted",
                      next_attempt_at=clock() + timedelta(minutes=10), updated_at=clock()),
            OutboxRow(campaign_id=campaign.id, subscriber_id=None, status=OutboxStatus.SKIPPED,
                      last_reply="the person was erased", updated_at=clock()),
            BounceEvent(subscriber_id=amina.id, campaign_id=campaign.id, address_hash="ab" * 32,
                        kind=BounceKind.SOFT, source="dsn", status="4.2.2", reason="mailbox full",
                        outcome="scored 1/5", at=clock(), report_digest="cd" * 32),
            BounceScore(subscriber_id=amina.id, score=1, last_counted_on=date(2026, 11, 23), last_bounce_at=clock()),
        ])


def canonical(path) -> dict[str, bytes]:
    """The archive's data: every table's file (the manifest's date and database aside)."""
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist() if name != moves.MANIFEST}


@pytest.fixture
def sqlite_newsletter(config, sqlite_template, tmp_path, clock):
    folder = tmp_path / "first"
    folder.mkdir()
    return Newsletter(config, _sqlite_store(sqlite_template, folder), clock=clock)


def test_sqlite_to_postgresql_to_sqlite_leaves_identical_data(sqlite_newsletter, config, sqlite_template, pg_url,
                                                              tmp_path, clock):
    populate(sqlite_newsletter, clock)
    first = moves.backup(sqlite_newsletter, tmp_path / "one.zip")
    assert first.rows["subscribers"] == 6 and first.rows["outbox"] == 3 and first.rows["suppressions"] == 3

    on_pg = Newsletter(config, _pg_store(pg_url), clock=clock)
    restored = moves.restore(on_pg, tmp_path / "one.zip")
    assert restored.rows == first.rows and restored.database == "sqlite"
    moves.backup(on_pg, tmp_path / "two.zip")

    folder = tmp_path / "third"
    folder.mkdir()
    back = Newsletter(config, _sqlite_store(sqlite_template, folder), clock=clock)
    moves.restore(back, tmp_path / "two.zip")
    moves.backup(back, tmp_path / "three.zip")

    assert canonical(tmp_path / "one.zip") == canonical(tmp_path / "two.zip") == canonical(tmp_path / "three.zip")
    # What the data means came along: who left, who is suppressed, who was erased.
    assert subscriptions.person(back, "jean.martin@example.org").as_json()["subscriptions"][0]["status"] == \
        "unsubscribed"
    assert subscriptions.person(back, "kofi.mensah@example.net").status == SubscriberStatus.SUPPRESSED.value
    assert subscriptions.person(back, "priya.nair@example.org").status == SubscriberStatus.BLOCKED.value
    with back.store.session() as session:
        assert consent.is_suppressed(session, "gone@example.org")
        assert consent.is_suppressed(session, "kofi.mensah@example.net")
    log = subscriptions.person(back, "ana.ruiz@example.org").as_json()["consent_log"]
    assert [e["event"] for e in log] == ["signup", "signup", "confirmation_sent", "confirmed", "confirmed"]
    assert log[0]["ip"] == "203.0.113.9" and log[0]["user_agent"] == "Firefox/140"
    assert subscriptions.person(back, "amina.haddad@example.org").name == "أمينة حداد"
    for newsletter in (sqlite_newsletter, on_pg, back):
        newsletter.store.dispose()


def test_ids_continue_after_a_restore_into_postgresql(sqlite_newsletter, config, pg_url, tmp_path, clock):
    """New rows after a restore get fresh ids (the sequences moved past the restored ones)."""
    populate(sqlite_newsletter, clock)
    moves.backup(sqlite_newsletter, tmp_path / "one.zip")
    on_pg = Newsletter(config, _pg_store(pg_url), clock=clock)
    moves.restore(on_pg, tmp_path / "one.zip")
    clock.advance(hours=1)
    subscriptions.record_signup(on_pg, "new.person@example.org", "", "en", ["asp-daily"], FORM)
    assert subscriptions.person(on_pg, "new.person@example.org").subscriptions[0].status == "pending"
    on_pg.store.dispose()


def test_restore_refuses_a_store_that_holds_data_unless_told(newsletter, clock, tmp_path):
    populate(newsletter, clock)
    moves.backup(newsletter, tmp_path / "one.zip")
    with pytest.raises(StoreNotEmpty) as refused:
        moves.restore(newsletter, tmp_path / "one.zip")
    assert refused.value.counts["subscribers"] == 6
    subscriptions.record_signup(newsletter, "later@example.org", "", "en", ["asp-daily"], FORM)
    report = moves.restore(newsletter, tmp_path / "one.zip", replace=True)
    assert report.replaced["subscribers"] == 7 and report.rows["subscribers"] == 6
    assert subscriptions.subscription_lines(newsletter, list_slug="asp-daily")[0].email == "amina.haddad@example.org"
    assert "later@example.org" not in {line.email for line in subscriptions.subscription_lines(newsletter)}


def _rewrite(source, target, change) -> None:
    """Copy an archive, passing each member's (name, bytes) through `change`."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, change(name, zin.read(name)))


def _manifest_change(edit):
    def change(name, data):
        if name != moves.MANIFEST:
            return data
        manifest = json.loads(data)
        edit(manifest)
        return json.dumps(manifest)
    return change


@pytest.mark.parametrize("change, message", [
    (_manifest_change(lambda m: m.update(version=2)), "version 2 of the format"),
    (_manifest_change(lambda m: m.update(format="something-else")), "not a newsletter-backup archive"),
    (_manifest_change(lambda m: m["tables"].append({"name": "webhooks", "columns": []})), "table 'webhooks'"),
    (_manifest_change(lambda m: next(t for t in m["tables"] if t["name"] == "lists")["columns"].append("colour")),
     "columns colour are not in this schema"),
    (lambda name, data: data[: data.rfind(b"\n", 0, -1) + 1] if name == "tables/consent_events.jsonl" else data,
     "tables/consent_events.jsonl is damaged"),
    (lambda name, data: data.replace(b"Ana Ruiz", b"Ana Ruix") if name == "tables/subscribers.jsonl" else data,
     "tables/subscribers.jsonl is damaged"),
])
def test_restore_checks_the_archive_and_writes_nothing_when_it_is_wrong(sqlite_newsletter, config, sqlite_template,
                                                                        tmp_path, clock, change, message):
    populate(sqlite_newsletter, clock)
    moves.backup(sqlite_newsletter, tmp_path / "one.zip")
    _rewrite(tmp_path / "one.zip", tmp_path / "bad.zip", change)
    folder = tmp_path / "target"
    folder.mkdir()
    target = Newsletter(config, _sqlite_store(sqlite_template, folder), clock=clock)
    with pytest.raises(ArchiveError) as refused:
        moves.restore(target, tmp_path / "bad.zip")
    assert message in str(refused.value)
    with target.store.session() as session:
        assert archive_store.nonempty_tables(session) == {}
    target.store.dispose()


def test_a_file_that_is_not_an_archive_is_said_so(newsletter, tmp_path):
    (tmp_path / "people.csv").write_text("email\nana@example.org\n")
    with pytest.raises(ArchiveError, match="not a backup archive"):
        moves.restore(newsletter, tmp_path / "people.csv")


def test_a_backup_never_leaves_a_half_written_archive(newsletter, clock, tmp_path):
    populate(newsletter, clock)
    with pytest.raises(ArchiveError, match="cannot write"):
        moves.backup(newsletter, tmp_path / "no-such-folder" / "one.zip")
    assert list(tmp_path.glob("**/*.partial")) == []


def test_every_table_of_the_schema_is_in_the_archive(newsletter, clock, tmp_path):
    populate(newsletter, clock)
    moves.backup(newsletter, tmp_path / "one.zip")
    manifest = moves.read_manifest(tmp_path / "one.zip")
    assert {t["name"] for t in manifest["tables"]} == set(archive_store.TABLES)
    assert manifest["format"] == "newsletter-backup" and manifest["version"] == 1


def test_cli_backup_and_restore_say_what_they_did(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    runner.invoke(main, ["lists", "create", "asp-daily", "ASP daily summaries"])
    runner.invoke(main, ["subscribe", "ana@example.org", "--list", "asp-daily"])
    done = runner.invoke(main, ["backup", "move.zip"])
    assert done.exit_code == 0, done.output
    assert "wrote move.zip" in done.output and "1 subscribers" in done.output and "1 lists" in done.output
    refused = runner.invoke(main, ["restore", "move.zip"])
    assert refused.exit_code == 1 and "the store is not empty" in refused.output and "--replace" in refused.output
    assert "Traceback" not in refused.output
    shutil.move("subscribers", "old-subscribers")
    assert runner.invoke(main, ["init"]).exit_code == 0
    restored = runner.invoke(main, ["restore", "move.zip"])
    assert restored.exit_code == 0, restored.output
    assert "restored move.zip" in restored.output and "1 subscribers" in restored.output
    assert "ana@example.org" in runner.invoke(main, ["subscribers"]).output


def test_an_audit_trail_travels_and_is_never_deleted_by_a_replace(sqlite_newsletter, config, pg_url, tmp_path,
                                                                 clock):
    from newsletter.store import AuditEvent

    populate(sqlite_newsletter, clock)
    with sqlite_newsletter.store.session() as session:
        session.add(AuditEvent(at=clock(), actor="cli", action="list.create", target="asp-daily", detail="é"))
    moves.backup(sqlite_newsletter, tmp_path / "one.zip")
    on_pg = Newsletter(config, _pg_store(pg_url), clock=clock)
    assert moves.restore(on_pg, tmp_path / "one.zip").rows["audit_events"] == 1
    with pytest.raises(StoreNotEmpty) as refused:
        moves.restore(on_pg, tmp_path / "one.zip", replace=True)
    assert refused.value.undeletable == ("audit_events",) and "can never be deleted" in str(refused.value)
    on_pg.store.dispose()
