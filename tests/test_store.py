"""The store: migrations on SQLite and PostgreSQL, SQLite settings, out-of-date detection."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select, text

from newsletter.errors import SchemaOutOfDate, StoreError
from newsletter.store import open_store

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)


def test_fresh_database_is_out_of_date_until_upgraded(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/new/folder/db.sqlite")
    with pytest.raises(SchemaOutOfDate, match="has no schema yet") as info:
        store.check_schema()
    assert (info.value.current, info.value.head) == (None, store.head_revision())
    before, after = store.upgrade()
    assert before is None and after == store.head_revision()
    store.check_schema()
    assert store.upgrade() == (after, after)  # idempotent


def test_head_revision_is_the_newest_migration():
    """HEAD_REVISION is written out so commands need not load Alembic; it must follow the migrations."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from newsletter import store

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(store._MIGRATIONS))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert heads == [store.HEAD_REVISION], f"set newsletter.store.HEAD_REVISION to the new migration's revision {heads}"


def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_store):
    with sqlite_store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_both_backends_are_at_head(store):
    store.check_schema()
    assert store.dialect in ("sqlite", "postgresql")


def test_older_schema_is_reported(sqlite_store):
    with sqlite_store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    with pytest.raises(SchemaOutOfDate) as info:
        sqlite_store.check_schema()
    assert info.value.current == "old"


def test_unusable_url_is_a_clear_error():
    with pytest.raises(StoreError, match="database_url"):
        open_store("mysql://nope/db")
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("::::")


def test_times_come_back_aware_utc_whatever_zone_they_were_written_in(store):
    """One column type makes every stored time an aware UTC datetime on both databases."""
    from datetime import datetime, timedelta, timezone

    from newsletter.store import MailingList

    amsterdam = timezone(timedelta(hours=1))
    written = datetime(2026, 12, 1, 19, 0, tzinfo=amsterdam)
    with store.session() as session:
        session.add(MailingList(slug="tz", name="Time zones", created_at=written))
    with store.session() as session:
        back = session.query(MailingList).filter_by(slug="tz").one().created_at
    assert back.tzinfo is not None and back.utcoffset() == timedelta(0)
    assert back == written and back.hour == 18


def test_the_security_migration_fills_the_mailbox_of_people_already_there(store):
    """0310_security: people stored before it get the mailbox their address reaches (NULL when
    it is the address itself), so the re-send limits count them by mailbox at once."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from newsletter import store as store_package

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(store_package._MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0200_confirmation_queue")
    with store.engine.begin() as conn:
        for i, email in enumerate(["ana@example.org", "ana+x@example.org", "b.o@gmail.com", "c.d@example.org"]):
            conn.execute(text("INSERT INTO subscribers (key, email, name, language, status, created_at, updated_at) "
                              "VALUES (:k, :e, '', 'en', 'active', :t, :t)"),
                         {"k": f"key{i}", "e": email, "t": "2026-01-01 00:00:00"})
    store.upgrade()
    with store.engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT email, mailbox FROM subscribers")).fetchall())
    assert rows == {"ana@example.org": None, "ana+x@example.org": "ana@example.org", "b.o@gmail.com": "bo@gmail.com",
                    "c.d@example.org": None}


def test_a_unit_of_work_waits_for_the_write_lock_and_goes_in_when_it_is_released(sqlite_template, tmp_path):
    """A writer that finds the lock taken tries again (store.begin_immediate) until it is free,
    rather than failing: its change lands after the holder's."""
    import shutil
    import sqlite3
    import threading

    from newsletter.store import MailingList

    path = tmp_path / "held.db"
    shutil.copy(sqlite_template, path)
    store = open_store(f"sqlite:///{path}")
    with store.session() as session:
        session.add(MailingList(slug="held", name="Before", created_at=NOW))
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE lists SET name = name || ' holder' WHERE slug = 'held'")
        releasing = threading.Timer(0.3, holder.execute, ("COMMIT",))
        releasing.start()
        with store.session() as session:
            session.execute(text("UPDATE lists SET name = name || ' waiter' WHERE slug = 'held'"))
        releasing.join()
        with store.reading() as session:
            assert session.scalar(select(MailingList.name).where(MailingList.slug == "held")) == "Before holder waiter"
    finally:
        holder.close()
        store.dispose()


def test_a_reading_unit_proceeds_while_another_connection_holds_the_write_lock(sqlite_template, tmp_path,
                                                                               monkeypatch):
    """Store.reading() begins deferred on SQLite: it reads its snapshot while a writer holds the
    lock, where a unit of work (BEGIN IMMEDIATE) has to wait (here: fails at once, no busy wait)."""
    import shutil
    import sqlite3

    from sqlalchemy.exc import OperationalError

    import newsletter.store as store_module
    from newsletter.store import MailingList

    path = tmp_path / "locked.db"
    shutil.copy(sqlite_template, path)
    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT_MS", 0)
    store = open_store(f"sqlite:///{path}")
    with store.session() as session:
        session.add(MailingList(slug="before", name="Before the lock", created_at=NOW))
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE lists SET name = 'Held' WHERE slug = 'before'")
        with store.reading() as session:
            seen = session.scalar(select(MailingList.name).where(MailingList.slug == "before"))
        assert seen == "Before the lock"  # the committed snapshot, not the writer's change
        with pytest.raises(OperationalError, match="locked"), store.session() as session:
            session.scalars(select(MailingList.slug)).all()
        writer.execute("COMMIT")
    finally:
        writer.close()
        store.dispose()


def test_a_write_inside_a_reading_unit_raises_and_writes_nothing(store):
    from newsletter.store import MailingList

    with pytest.raises(StoreError, match="read-only unit of work"), store.reading() as session:
        session.add(MailingList(slug="sneaked", name="Sneaked in", created_at=NOW))
        session.flush()
    with pytest.raises(StoreError, match="read-only unit of work"), store.reading() as session:
        session.execute(text("DELETE FROM lists"))
    for _ in range(3):  # the pooled connections write again after a reading unit
        with store.reading() as session:
            assert session.scalar(select(MailingList.id).where(MailingList.slug == "sneaked")) is None
        with store.session() as session:
            session.add(MailingList(slug=f"written{_}", name="Written", created_at=NOW))
    with store.reading() as session:
        assert sorted(session.scalars(select(MailingList.slug).where(MailingList.slug.like("written%")))) == [
            "written0", "written1", "written2"]


def test_the_readings_inside_a_shared_reading_are_one_transaction_that_sees_what_was_written(store):
    from newsletter.store import MailingList

    slugs = select(MailingList.slug).order_by(MailingList.slug)
    begun: list[object] = []
    event.listen(store.engine, "begin", lambda conn: begun.append(conn))
    with store.shared_reading() as shared:
        for _ in range(3):
            with store.reading() as session:
                assert session.scalars(slugs).all() == []
        assert shared.open and len(begun) == 1
        with store.session() as session:  # a write: the next reading begins anew and sees it
            session.add(MailingList(slug="written", name="Written", created_at=NOW))
        assert not shared.open
        with store.reading() as session:
            assert session.scalars(slugs).all() == ["written"]
        with pytest.raises(StoreError, match="read-only unit of work"), store.reading() as session:
            session.execute(text("DELETE FROM lists"))
        assert not shared.open  # a reading that failed ended it: the next one works
        with store.reading() as session:
            assert session.scalars(slugs).all() == ["written"]
        shared.end()
    assert not shared.open and len(begun) == 4 and store.engine.pool.checkedout() == 0
    with store.reading() as session:  # outside, each reading is its own again
        assert session.scalars(slugs).all() == ["written"]
    assert len(begun) == 5


def test_a_shared_reading_closed_is_shared_no_more(store):
    begun: list[object] = []
    event.listen(store.engine, "begin", lambda conn: begun.append(conn))
    with store.shared_reading() as shared:
        with store.reading() as session:
            session.execute(text("SELECT 1"))
        assert shared.open and store.engine.pool.checkedout() == 1
        shared.close()
        assert not shared.open and store.engine.pool.checkedout() == 0
        for _ in range(2):  # each its own unit of work, its connection given back at its end
            with store.reading() as session:
                session.execute(text("SELECT 1"))
            assert not shared.open and store.engine.pool.checkedout() == 0
    assert len(begun) == 3
