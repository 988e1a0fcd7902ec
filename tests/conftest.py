"""Shared fixtures: a configuration in a temporary folder, the store on SQLite and on
PostgreSQL, and a real SMTP server (aiosmtpd on loopback) that records what it receives and
can be told to fail.

PostgreSQL: each test run creates its own database on 127.0.0.1:5432 (override with
NEWSLETTER_TEST_PG, a server URL without database) and drops it at the end; tests truncate the
tables they used. Tests that need PostgreSQL fail (not skip) when it is unreachable, unless
NEWSLETTER_TEST_PG=skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from smtp_server import RecordingSMTP
from sqlalchemy import text

from newsletter.config import Config
from newsletter.installation import Newsletter
from newsletter.store import Store, open_store
from newsletter.store.models import Base

PG_SERVER = os.environ.get("NEWSLETTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
REPO = Path(__file__).resolve().parents[1]
#: Every table of the schema (emptied between PostgreSQL tests; TRUNCATE … CASCADE needs no order).
TABLES = tuple(table.name for table in Base.metadata.sorted_tables)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def free_port() -> int:
    """A loopback port free a moment ago, for a server that must be told its port before it binds
    (a subprocess): between this and its bind another process may take the port, so prefer
    `listening_socket()` (or port 0) for a server in this process and `refused_port` for nothing."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_socket() -> socket.socket:
    """A TCP socket bound to a loopback port the kernel chose, held from now on: its port can go into
    a base URL before the server starts, and no other worker can be handed it (uvicorn takes it as
    `Server.run(sockets=[...])`). The server closes it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port where nothing listens for the whole test: a socket holds it bound but never
    listens, so a connection is refused at once and no other server (another xdist worker's) can
    take the port meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    store = open_store(f"sqlite:///{path}")
    store.upgrade()
    store.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated; dropped at the end."""
    if PG_SERVER == "skip":
        pytest.skip("NEWSLETTER_TEST_PG=skip")
    name = f"newsletter_test_{uuid.uuid4().hex[:10]}"
    admin = f"{PG_SERVER}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    store = open_store(url)
    store.upgrade()
    store.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sqlite_store(sqlite_template: Path, tmp_path: Path) -> Store:
    path = tmp_path / "store.db"
    shutil.copy(sqlite_template, path)
    return open_store(f"sqlite:///{path}")


#: A table with more rows than this is emptied by TRUNCATE (no dead rows left behind); a smaller one by DELETE.
_DELETE_AT_MOST = 2000
#: How many rows each table holds, counted up to one past _DELETE_AT_MOST, in one round trip.
_HELD = text(" UNION ALL ".join(f"SELECT '{name}', (SELECT count(*) FROM (SELECT 1 FROM {name} LIMIT "
                                f"{_DELETE_AT_MOST + 1}) held)" for name in TABLES))
#: Every sequence owned by a column of one of TABLES that has handed out a value, back to its start
#: (what TRUNCATE … RESTART IDENTITY did).
_RESTART_SEQUENCES = text(
    "SELECT setval(seq.oid, s.start_value, false) FROM pg_sequences s"
    " JOIN pg_class seq ON seq.relname = s.sequencename AND seq.relnamespace = s.schemaname::regnamespace"
    " JOIN pg_depend d ON d.objid = seq.oid AND d.classid = 'pg_class'::regclass AND d.deptype = 'a'"
    " JOIN pg_class owner ON owner.oid = d.refobjid"
    " WHERE s.last_value IS NOT NULL AND owner.relname = ANY(:tables)")


def empty_pg_tables(conn) -> None:
    """Empty every table of the schema and restart its ids, in the caller's transaction, as
    `TRUNCATE <every table> RESTART IDENTITY CASCADE` would, but cheaply: that TRUNCATE made new
    files for 29 tables and their indexes and synced them, over a second a test on a loaded
    machine, while most tests leave a few tables with a few rows. So only the tables holding rows
    are emptied (the large ones by TRUNCATE), with triggers and foreign-key checks off for the
    transaction (`session_replication_role = replica`: the append-only tables' triggers refuse a
    DELETE, and every table is emptied anyway). A server role that may not set that falls back to
    the full TRUNCATE."""
    if conn.execute(text("SELECT current_setting('is_superuser')")).scalar() != "on":
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        return
    held = dict(conn.execute(_HELD).all())
    large = [name for name in TABLES if held[name] > _DELETE_AT_MOST]
    small = [name for name in TABLES if 0 < held[name] <= _DELETE_AT_MOST]
    conn.execute(text("SET LOCAL session_replication_role = replica"))
    if large:
        conn.execute(text(f"TRUNCATE {', '.join(large)} CASCADE"))
    for name in small:
        conn.execute(text(f"DELETE FROM {name}"))
    conn.execute(_RESTART_SEQUENCES, {"tables": list(TABLES)})


def _pg_store(url: str) -> Store:
    """A store on the run's PostgreSQL database, every table empty and every id restarted."""
    store = open_store(url)
    with store.engine.begin() as conn:
        empty_pg_tables(conn)
    return store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path) -> Iterator[Store]:
    """The store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        s = _sqlite_store(sqlite_template, tmp_path)
    else:
        s = _pg_store(request.getfixturevalue("pg_url"))
    yield s
    s.dispose()


@pytest.fixture
def sqlite_store(sqlite_template: Path, tmp_path: Path) -> Iterator[Store]:
    s = _sqlite_store(sqlite_template, tmp_path)
    yield s
    s.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[RecordingSMTP]:
    """A real SMTP server on loopback that records messages; see smtp_server.py for faults."""
    server = RecordingSMTP()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def relays() -> Iterator[tuple[RecordingSMTP, RecordingSMTP]]:
    """Two real relays on loopback: `good` takes mail, `refusing` asks for a login (AUTH) and
    refuses every password but news/the-real-password (535). Yields (good, refusing)."""
    good, refusing = RecordingSMTP(), RecordingSMTP()
    refusing.auth = {"news": "the-real-password"}
    good.start()
    refusing.start()
    yield good, refusing
    good.stop()
    refusing.stop()


@pytest.fixture
def open_relays() -> Iterator[tuple[RecordingSMTP, RecordingSMTP]]:
    """Two real relays on loopback that both take mail, no login."""
    first, second = RecordingSMTP(), RecordingSMTP()
    first.start()
    second.start()
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture
def config(tmp_path: Path, smtp_server: RecordingSMTP) -> Config:
    return Config(
        database_url="sqlite:///unused",
        base_url="https://news.example.org",
        smtp_url=f"smtp://127.0.0.1:{smtp_server.port}?starttls=off&timeout=10",
        secret_key="test-secret-key-0123456789abcdef",
        templates_dir=str(REPO / "templates"),
        sink_maildir=str(tmp_path / "mail"),
        signup_answer_ms=0,  # the answer floor is tested on its own (test_web_security.py)
    )


@pytest.fixture
def newsletter(config: Config, store: Store, clock: Clock) -> Newsletter:
    """The library front door over the parametrised store, the recording SMTP server and a test clock."""
    return Newsletter(config, store, clock=clock)
