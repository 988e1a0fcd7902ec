"""The importer's set-based statements on SQLite and PostgreSQL: look-ups and inserts across
statement-size boundaries, ids, and the SQLite settings it changes only for a while."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from newsletter.people import lists
from newsletter.people.consent import new_subscriber_key
from newsletter.people.signups import new_keys
from newsletter.statuses import (
    Channel,
    ConsentKind,
    SubscriberStatus,
    SubscriptionStatus,
)
from newsletter.store import bulk as bulkstore
from newsletter.store.bulk import BulkStore, EventHead, EventRow, Origin, _sizes

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("n, most, pad, expected", [
    (0, 8, False, []),
    (8, 8, False, [8]),
    (21, 8, False, [8, 8, 4, 1]),
    (21, 8, True, [8, 8, 8]),
    (3, 1024, True, [4]),
    (1, 1024, True, [1]),
])
def test_statement_sizes_are_few_powers_of_two_that_cover_every_row(n, most, pad, expected):
    assert list(_sizes(n, most, pad=pad)) == expected


def test_new_keys_look_like_consents_own():
    keys = new_keys(1000)
    assert len(set(keys)) == 1000
    sample = new_subscriber_key()
    assert {len(k) for k in keys} == {len(sample)}
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert all(set(k) <= alphabet for k in keys)


def test_many_rows_in_and_out_across_statement_boundaries(store, monkeypatch):
    monkeypatch.setattr(bulkstore, "_MAX_ROWS", 64)  # many statements of every size
    with store.session() as session:
        list_id = lists.create_list(session, "alerts", "Alerts", now=NOW).id
    n = 1000
    with store.engine.connect() as connection, connection.begin():
        bulk = BulkStore(connection)
        emails = [f"p{i}@example.org" for i in range(n)]
        with bulk.own_values():
            ids = bulk.insert_people([(key, e, f"P {i}", "fr") for i, (key, e) in enumerate(zip(new_keys(n), emails))],
                                     status=SubscriberStatus.ACTIVE, at=NOW)
            assert len(set(ids)) == n
            bulk.insert_subscriptions([(sid, list_id) for sid in ids[::2]], status=SubscriptionStatus.PENDING,
                                      at=NOW, confirmed_at=None)
            origin = Origin(Channel.IMPORT, source="import:t.csv")
            heads = [EventHead(ConsentKind.SIGNUP, origin), EventHead(ConsentKind.CONFIRMATION_SENT, origin)]
            bulk.insert_events([EventRow(sid, list_id, 0) for sid in ids[::2]], heads, at=NOW)
            bulk.insert_events([EventRow(sid, None, 1, f"note {sid}") for sid in ids[:3]], heads, at=NOW)
            bulk.activate([(ids[0], list_id)], NOW)
        known = bulk.people([*emails[::3], "nobody@example.org"])
        assert sorted(known) == sorted(emails[::3])
        assert known[emails[3]].id == ids[3] and known[emails[3]].language == "fr"
        assert known[emails[3]].status is SubscriberStatus.ACTIVE
        current = bulk.subscriptions(ids)
        assert len(current) == n // 2 and current[ids[0]] == {list_id: SubscriptionStatus.ACTIVE}
        assert current[ids[2]] == {list_id: SubscriptionStatus.PENDING}
        assert set(bulk.confirmations_since(ids, NOW.replace(year=2025))) == set(ids[:3])
        notes = connection.execute(text("SELECT note FROM consent_events WHERE kind = 'confirmation_sent' "
                                        "ORDER BY subscriber_id")).scalars().all()
        assert notes == [f"note {sid}" for sid in ids[:3]]
        assert bulk.new_person_ids(2)[0] > max(ids)
        few = bulk.insert_people([(k, f"q{i}@example.org", "", "en") for i, k in enumerate(new_keys(3))],
                                 status=SubscriberStatus.ACTIVE, at=NOW)  # a few: INSERT … RETURNING
        assert len(set(few)) == 3 and min(few) > max(ids)
        assert [bulk.people([f"q{i}@example.org"])[f"q{i}@example.org"].id for i in range(3)] == few


def test_suppressed_hashes_are_found(store):
    with store.engine.begin() as connection:
        connection.execute(text("INSERT INTO suppressions (address_hash, reason, at) VALUES ('h1', 'erased', :at)"),
                           {"at": NOW})
        assert BulkStore(connection).suppressed(["h0", "h1", "h2"]) == {"h1"}
        assert BulkStore(connection).suppressed([]) == set()


def test_sqlite_checks_are_back_on_after_own_values_and_the_cache_restored(sqlite_store):
    with sqlite_store.engine.connect() as connection:
        bulk = BulkStore(connection)
        before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        bulk.widen_cache()
        assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == -bulkstore.IMPORT_CACHE_KIB
        bulk.restore_cache()
        assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == before
        connection.commit()
        with connection.begin():
            with bulk.own_values():
                assert connection.exec_driver_sql("PRAGMA ignore_check_constraints").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA ignore_check_constraints").scalar() == 0
        with pytest.raises(IntegrityError), connection.begin():  # the schema's CHECK refuses a bad status again
            connection.exec_driver_sql("INSERT INTO subscribers (key, email, name, language, status, created_at, "
                                       "updated_at) VALUES ('k', 'a@example.org', '', 'en', 'bogus', 'x', 'x')")


@pytest.mark.parametrize("n", [1, 3, 100, 300])
def test_consent_lines_of_many_origins_keep_their_order_and_their_own_columns(store, n):
    """A group commit's lines (each request its own IP, the kinds mixed) go in request order,
    by INSERT for a few and by the set-based form (COPY on PostgreSQL) for many."""
    with store.session() as session:
        list_id = lists.create_list(session, "alerts", "Alerts", now=NOW).id
    with store.engine.connect() as connection, connection.begin():
        bulk = BulkStore(connection)
        ids = bulk.insert_people([(k, f"p{i}@example.org", "", "en") for i, k in enumerate(new_keys(n))],
                                 status=SubscriberStatus.ACTIVE, at=NOW)
        heads = [EventHead(kind, Origin(Channel.FORM, ip=f"203.0.113.{i % 250}", source="footer"))
                 for i in range(n) for kind in (ConsentKind.SIGNUP, ConsentKind.CONFIRMATION_SENT)]
        rows = [row for i, sid in enumerate(ids)
                for row in (EventRow(sid, list_id, 2 * i), EventRow(sid, None, 2 * i + 1, "alerts"))]
        bulk.insert_events(rows, heads, at=NOW)
        got = connection.execute(text("SELECT subscriber_id, list_id, kind, ip, note FROM consent_events "
                                      "ORDER BY id")).all()
    assert [tuple(r) for r in got] == [
        (sid, lid, heads[h].kind.value, heads[h].origin.ip, note) for sid, lid, h, note in rows]


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_an_import_into_postgresql_leaves_the_planner_knowing_the_tables(store, config, clock, tmp_path):
    """BatchWriter.close ANALYZEs what an import wrote: a table grown from nothing is not left
    with the planner's picture of an empty one (reltuples counts its rows)."""
    from newsletter.installation import Newsletter
    from newsletter.people.importer import import_csv

    newsletter = Newsletter(config, store, clock=clock)
    with store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr"], now=clock())
    path = tmp_path / "people.csv"
    path.write_text("email,name,language,lists\n" + "".join(
        f"planner{i}@example.org,Planner {i},en,asp-daily\n" for i in range(40)), encoding="utf-8")
    report = import_csv(newsletter, path)
    assert report.imported == 40
    with store.engine.connect() as conn:
        known = dict(conn.execute(text(
            "SELECT relname, reltuples FROM pg_class WHERE relname IN ('subscribers', 'subscriptions')")).all())
    assert known == {"subscribers": 40, "subscriptions": 40}
