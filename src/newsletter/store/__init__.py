"""The store: engine, sessions and schema migrations over SQLite or PostgreSQL.

`open_store(url)` gives a `Store`; `Store.upgrade()` creates or upgrades the schema with Alembic,
`Store.check_schema()` raises `SchemaOutOfDate` when the database is behind the code, and
`Store.session()` is a unit of work that commits on success and rolls back on error, and
`Store.reading()` a read-only one, for use cases that only read: on SQLite it begins deferred
(`BEGIN`, no write lock: it reads its snapshot while a writer holds the lock) with
`PRAGMA query_only` on, on PostgreSQL it is `READ ONLY`; a write inside either raises
`StoreError`. Inside `Store.shared_reading()` (a workspace page's request) every `reading()`
joins one read-only unit of work instead of beginning its own.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout;
PostgreSQL is reached through psycopg 3. The same models and queries serve both.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..errors import SchemaOutOfDate, StoreError
from .models import *  # noqa: F401,F403  (re-exported: the models are the store's vocabulary)
from .models import __all__ as _models_all

__all__ = ["Store", "SharedReading", "open_store", "store_failure", *_models_all]

_MIGRATIONS = Path(__file__).with_name("migrations")
#: The newest migration's revision. Written out so that every command can check the schema
#: without loading Alembic; tests/test_store.py holds it to Alembic's own answer.
HEAD_REVISION = "0780_campaign_status_said"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: How often a writer that waits for SQLite's write lock tries again (seconds).
SQLITE_LOCK_POLL_S = 0.0005
#: The execution option that marks a connection's transactions read-only (`Store.reading`).
READ_ONLY = "newsletter_read_only"


def _normalise_url(url: str) -> str:
    """Accept postgres:// and postgresql:// and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def begin_immediate(dbapi_conn: sqlite3.Connection, *, polled: bool = False) -> None:
    """BEGIN IMMEDIATE on a pysqlite connection, waiting up to SQLITE_BUSY_TIMEOUT_MS for the
    write lock and trying again every SQLITE_LOCK_POLL_S; raises sqlite3.OperationalError
    ("database is locked") when the wait runs out.

    SQLite's own busy handler sleeps 25 to 100 ms between tries once a writer has waited 0.1 s,
    so a writer behind a stream of short transactions (the web app's grouped sign-ups) waits far
    longer than they hold the lock: docs/benchmarks.md, "SQLite's write lock". The connection's
    busy timeout is 0 while it tries, and set back after; `polled=True` says it is 0 already
    and stays so (a connection kept for this, `rounds.RoundConnections`): a PRAGMA with a value
    is compiled again each time it runs (~6,000 instructions), twice a gate round before."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    if not polled:
        dbapi_conn.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY) & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
                time.sleep(SQLITE_LOCK_POLL_S)
    finally:
        if not polled:
            dbapi_conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        # Let SQLAlchemy, not pysqlite, decide where transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        if conn.get_execution_options().get(READ_ONLY):
            # A reader takes no lock: in WAL mode it reads its snapshot while a writer writes.
            # query_only turns any write into an error instead of a wait for the write lock.
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql("PRAGMA query_only=ON")
        else:
            # BEGIN IMMEDIATE takes the write lock up front, so two writers queue for it instead
            # of failing with "database is locked" when a reader upgrades to a writer.
            try:
                begin_immediate(conn.connection.dbapi_connection)
            except sqlite3.Error as exc:
                raise OperationalError("BEGIN IMMEDIATE", (), exc) from exc

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn):
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("PRAGMA query_only=OFF")  # the pooled connection writes again


class Store:
    """A database with our schema. Create with `open_store()`."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # The same pool, with every transaction read-only (psycopg's own flag on PostgreSQL).
        options = {READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        self._readers = sessionmaker(engine.execution_options(**options), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """"sqlite" or "postgresql"."""
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends normally, rolls back on any error.
        Inside a `shared_reading()`, the reads after its commit see what it wrote."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
        shared = _SHARED.get()
        if shared is not None and shared.store is self:
            shared._renew()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only unit of work, for use cases that only read: it never waits for the write
        lock (SQLite) and sees one snapshot of the data. A write inside it raises StoreError
        (and writes nothing). Inside a `shared_reading()` of this store it joins that one."""
        shared = _SHARED.get()
        joined = shared is not None and shared.store is self and not shared.closed
        session = shared._join() if joined else self._readers()
        try:
            yield session
            if joined:
                shared._leave()
            else:
                session.commit()
        except BaseException as exc:
            if joined:
                shared._leave(failed=True)
            else:
                session.rollback()
            if _is_read_only_violation(exc):
                raise StoreError(f"a write inside a read-only unit of work (Store.reading): "
                                 f"{store_failure(exc).detail}", detail=store_failure(exc).detail) from exc
            raise
        finally:
            if not joined:
                session.close()

    def shared_reading(self) -> SharedReading:
        """One read-only unit of work for every `reading()` of this store while it is entered
        (`with`), in this context and in the worker threads started from it (anyio and asyncio
        copy the context): the first opens it, `end()` closes it. For the calls of one request,
        made one at a time, which then begin one transaction instead of one each (on SQLite,
        BEGIN and two PRAGMAs each)."""
        return SharedReading(self)

    def end_shared_reading(self) -> None:
        """End the `shared_reading()` of this store entered in this context, if one is open (a
        reading after opens it again)."""
        shared = _SHARED.get()
        if shared is not None and shared.store is self:
            shared.end()

    def head_revision(self) -> str:
        """The newest migration's revision: the schema this code expects."""
        return HEAD_REVISION

    def _missing_file(self) -> Path | None:
        """The SQLite file this store names, when it does not exist (yet); None otherwise."""
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        path = Path(url.database)
        return None if path.exists() else path

    def current_revision(self) -> str | None:
        """The schema's revision as Alembic recorded it, or None for an empty database (a SQLite
        file that does not exist is not created by asking)."""
        if self._missing_file() is not None:
            return None
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return None
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except OperationalError as exc:
            raise StoreError(f"cannot open the database {self.engine.url!r}: {exc.orig}") from None

    def check_schema(self) -> None:
        """Raise SchemaOutOfDate unless the schema is at the code's head revision."""
        current, head = self.current_revision(), self.head_revision()
        if current != head:
            raise SchemaOutOfDate(current, head)

    def upgrade(self) -> tuple[str | None, str]:
        """Create or upgrade the schema to head. Returns (revision before, revision after)."""
        # Alembic is imported here: it costs a quarter of a second, which only `init` should pay.
        from alembic import command
        from alembic.config import Config as AlembicConfig

        before = self.current_revision()
        missing = self._missing_file()
        if missing is not None:
            missing.parent.mkdir(parents=True, exist_ok=True)
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise StoreError(f"upgrading the schema failed: {exc}") from None
        return before, self.current_revision()

    def dispose(self) -> None:
        self.engine.dispose()


class SharedReading:
    """A read-only unit of work that the `Store.reading()`s of its store join while it is
    entered (`Store.shared_reading`). It opens at the first of them and stays open between
    them (holding a pooled connection) until `end()`; a reading that fails ends it, and so
    does a `Store.session()` that commits (once no reading is inside it), so the next reading
    begins anew and sees what was written. Its users take turns, never two at once. Once
    `close()`d it is shared no more: the readings after that begin their own."""

    def __init__(self, store: Store):
        self.store = store
        #: `close()` was called: readings no longer join it.
        self.closed = False
        self._session: Session | None = None
        self._inside = 0
        self._stale = False
        self._token: Token | None = None

    def __enter__(self) -> SharedReading:
        self._token = _SHARED.set(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop sharing (`end()` closes the unit of work: it may need a worker thread)."""
        _SHARED.reset(self._token)

    @property
    def open(self) -> bool:
        """A unit of work is open (and `end()` has something to end)."""
        return self._session is not None

    def _join(self) -> Session:
        if self._session is None:
            self._session = self.store._readers()
        self._inside += 1
        return self._session

    def _leave(self, *, failed: bool = False) -> None:
        self._inside -= 1
        try:
            if failed:
                self._session.rollback()  # a reading still inside goes on in a new transaction
        finally:
            if not self._inside and (failed or self._stale or self.closed):
                self.end()

    def _renew(self) -> None:
        """What was read may be out of date (a write committed): the next reading begins anew."""
        if self._inside:
            self._stale = True
        else:
            self.end()

    def close(self) -> None:
        """`end()` it and share it no more (a reading inside it goes on to its end)."""
        self.closed = True
        if not self._inside:
            self.end()

    def end(self) -> None:
        """Commit and close the unit of work, if open (it opens again at the next reading)."""
        if self._session is not None:
            session, self._session, self._stale = self._session, None, False
            try:
                session.commit()
            finally:
                session.close()


#: The shared reading entered in this context, if any.
_SHARED: ContextVar[SharedReading | None] = ContextVar("newsletter_shared_reading", default=None)


def open_store(url: str, *, echo: bool = False) -> Store:
    """Connect to the database at `url` (nothing is created until `upgrade()`, which also makes
    a SQLite file's folder). Raises StoreError for an unusable URL.
    """
    url = _normalise_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError for a malformed URL
        raise StoreError(f"database_url {url!r} is not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, echo=echo)
        _configure_sqlite(engine)
    elif parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, echo=echo, pool_pre_ping=True)
    else:
        raise StoreError(f"database_url: use sqlite:/// or postgresql://, not {parsed.get_backend_name()}")
    return Store(engine)


def _is_read_only_violation(exc: BaseException) -> bool:
    """SQLite's query_only refusal or PostgreSQL's read-only transaction refusal (SQLSTATE 25006)."""
    if not isinstance(exc, SQLAlchemyError):
        return False
    orig = getattr(exc, "orig", None)
    return ("readonly database" in str(orig) or getattr(orig, "sqlstate", None) == "25006")


def store_failure(exc: BaseException) -> StoreError | None:
    """A database driver's failure (an SQLAlchemyError raised through the store) as a StoreError
    carrying its first line as `detail`; None for any other exception. For the faces, which
    know no driver."""
    if not isinstance(exc, SQLAlchemyError):
        return None
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return StoreError(f"the database failed: {detail}", detail=detail)
