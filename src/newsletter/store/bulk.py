"""The one writer of new people: set-based reads and writes of people, subscriptions and
consent events, for one sign-up, a group commit of the web form, or a batch of an import.

`people.signups` plans each batch in Python (`people.rules`) and calls a `BulkStore` a few
times per batch, with plain tuples: one statement (or one COPY) per table and batch, its SQL
text fixed, so the driver prepares it once. Each dialect uses its fastest means:

    ====================  ==============================  ================================
                          SQLite                          PostgreSQL
    ====================  ==============================  ================================
    look-up by keys       IN (?, …), up to 32,766 keys    = ANY(%s): one array parameter
    new people's ids      max(id) + 1, … (under the       nextval() of the id sequence
                          write lock BEGIN IMMEDIATE took)
    inserts               multi-row INSERT … VALUES,      COPY … FROM STDIN
                          CHECK constraints off meanwhile
    ====================  ==============================  ================================

Why multi-row statements and no CHECKs on SQLite: each statement execution has a fixed cost
(opening a statement transaction), and SQLite 3.40 evaluates an enum column's
`CHECK (status IN ('pending', 'active', …))` by building and clearing a temporary b-tree for
every row; together they were three quarters of the instructions an import spent in SQLite
(callgrind, docs/benchmarks.md). The enum values we insert are our own constants, converted by
the column's own type, so the checks are switched off (`PRAGMA ignore_check_constraints`) only
around these inserts, on this connection, and on again before anything else runs on it.

Every method runs in the caller's transaction (the `Connection` given); nothing commits here.
Table and column names are ours; values always travel as parameters, never in SQL text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import chain
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..statuses import Channel, ConsentKind, SubscriberStatus, SubscriptionStatus
from . import ConsentEvent, Store, Subscriber, Subscription

T = TypeVar("T")

__all__ = ["CHECKS_OFF_FROM", "BatchWriter", "BulkStore", "EventHead", "EventRow", "Known", "KnownPerson", "Origin"]

#: Parameters per SQLite statement at most (SQLite's default limit since 3.32; older builds say
#: less, and we ask).
_SQLITE_VARIABLES = 32766
#: Rows (or keys) per SQLite statement at most: a power of two. Fewer, larger statements hand
#: the GIL to the reading thread less often (each time, getting it back can wait for a switch
#: interval), but each compiled statement stays in the driver's cache.
_MAX_ROWS = 1024
#: Rows an insert block needs before SQLite's CHECK constraints are switched off for it: toggling
#: the pragma makes SQLite prepare the statements again, which costs more than a few checks.
CHECKS_OFF_FROM = 256
#: SQLite page cache of an importing connection, in KiB (SQLite's default is 2 MiB).
IMPORT_CACHE_KIB = 32 * 1024


class KnownPerson(NamedTuple):
    """A person already in the store, as the importer needs them."""

    id: int
    key: str
    email: str
    name: str
    language: str
    status: SubscriberStatus


class Origin(NamedTuple):
    """Where a consent event comes from: the columns a request's context fills."""

    channel: Channel
    ip: str | None = None
    user_agent: str | None = None
    source: str | None = None
    consent_version: str | None = None


class EventHead(NamedTuple):
    """What the consent-log lines of a request share: their kind and where they come from."""

    kind: ConsentKind
    origin: Origin


class EventRow(NamedTuple):
    """One consent-log line: whose, about which list, its head (an index into the heads given
    with the rows) and its note. Plain values only, so that the garbage collector soon stops
    tracking it (an import writes hundreds of thousands)."""

    subscriber_id: int
    list_id: int | None
    head: int
    note: str | None = None


class Known(NamedTuple):
    """What the store knows of a batch's addresses (`BulkStore.look_up`)."""

    #: The address hashes on the suppression list.
    suppressed: set[str]
    #: The people with these addresses, by address.
    people: dict[str, KnownPerson]
    #: Their subscriptions: {subscriber id: {list id: status}}.
    subscriptions: dict[int, dict[int, SubscriptionStatus]]
    #: The confirmation mails sent to the mailboxes asked since the time asked, by mailbox
    #: (`confirmations_to_mailboxes`); None: not asked.
    sent: dict[str, list[datetime]] | None


#: Bind processors by (dialect, table, column).
_PROCESSORS: dict[tuple[str, str, str], Any] = {}
_UNKNOWN = object()
#: PostgreSQL's INSERTs from arrays, by (table, columns, constants).
_UNNEST_INSERTS: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}
#: PostgreSQL: the confirmation mails sent to these mailboxes since a time, in one round trip.
#: It starts from the addresses (a unique index, a partial one), then each person's consent
#: log (its subscriber index): LATERAL … OFFSET 0 keeps the planner from turning it into a
#: join that scans the log, which it did for a log it has no statistics of (a fresh or just
#: imported table: 42 ms against 0.04 ms, growing with the log; docs/benchmarks.md, #17).
_EVENTS_OF_PERSON = ("CROSS JOIN LATERAL (SELECT c.at FROM consent_events c WHERE c.subscriber_id = s.id "
                     "AND c.kind = %s AND c.at > %s OFFSET 0) e")
_MAILBOX_CONFIRMATIONS = (
    f"SELECT s.email, e.at FROM subscribers s {_EVENTS_OF_PERSON} WHERE s.email = ANY(%s) AND s.mailbox IS NULL "
    f"UNION ALL SELECT s.mailbox, e.at FROM subscribers s {_EVENTS_OF_PERSON} WHERE s.mailbox = ANY(%s)")
_SUPPRESSED = "SELECT address_hash FROM suppressions WHERE address_hash"
_PEOPLE = "SELECT id, key, email, name, language, status FROM subscribers WHERE email"
#: PostgreSQL: the subscriptions of the people with these addresses (from the address, as above).
_SUBSCRIPTIONS_OF_ADDRESSES = (
    "SELECT s.id, l.list_id, l.status FROM subscribers s CROSS JOIN LATERAL (SELECT l.list_id, l.status "
    "FROM subscriptions l WHERE l.subscriber_id = s.id OFFSET 0) l WHERE s.email = ANY(%s)")
_INSERT_PEOPLE = insert(Subscriber.__table__).returning(Subscriber.id, sort_by_parameter_order=True)


class BulkStore:
    """Bulk statements over one connection (in its current transaction)."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.dialect = connection.dialect
        self.postgres = self.dialect.name == "postgresql"
        self._saved_cache: int | None = None
        if not self.postgres:
            driver = connection.connection.driver_connection
            self._variables = min(_SQLITE_VARIABLES, driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))

    def db_value(self, column, value: Any) -> Any:
        """`value` as the driver must receive it for `column` (what SQLAlchemy would bind)."""
        key = (self.dialect.name, column.table.name, column.name)
        process = _PROCESSORS.get(key, _UNKNOWN)
        if process is _UNKNOWN:  # asked once per column and dialect: a sign-up would ask a dozen times
            process = _PROCESSORS[key] = column.type.dialect_impl(self.dialect).bind_processor(self.dialect)
        return process(value) if process else value

    # -- look-ups -----------------------------------------------------------------------------

    def suppressed(self, hashes: Sequence[str]) -> set[str]:
        """Which of these address hashes are on the suppression list."""
        return {h for (h,) in self._where_in(_SUPPRESSED, hashes)}

    def people(self, emails: Sequence[str]) -> dict[str, KnownPerson]:
        """The people with these (normalised) addresses, by address."""
        return _people(self._where_in(_PEOPLE, emails))

    def subscriptions(self, subscriber_ids: Sequence[int]) -> dict[int, dict[int, SubscriptionStatus]]:
        """Each of these people's subscriptions: {subscriber id: {list id: status}}."""
        current: dict[int, dict[int, SubscriptionStatus]] = {}
        for sid, lid, status in self._where_in(
                "SELECT subscriber_id, list_id, status FROM subscriptions WHERE subscriber_id", subscriber_ids):
            current.setdefault(sid, {})[lid] = SubscriptionStatus(status)
        return current

    def look_up(self, hashes: Sequence[str], emails: Sequence[str], mailboxes: Sequence[str] | None = None,
                since: datetime | None = None) -> Known:
        """`suppressed(hashes)`, `people(emails)`, their `subscriptions`, and when `mailboxes` are
        given `confirmations_to_mailboxes(mailboxes, since)`.

        On PostgreSQL the four statements go in one pipeline: one round trip, where one after
        the other they took four, each a wait for the server while a campaign keeps it busy (#17).
        """
        if self.postgres:  # imported here: SQLite's commands need not import the driver
            from psycopg import Pipeline
        if not self.postgres or not Pipeline.is_supported():
            people = self.people(emails)
            return Known(self.suppressed(hashes), people,
                         self.subscriptions([p.id for p in people.values()]) if people else {},
                         None if mailboxes is None else self.confirmations_to_mailboxes(mailboxes, since))
        statements = [(f"{_SUPPRESSED} = ANY(%s)", (list(hashes),)), (f"{_PEOPLE} = ANY(%s)", (list(emails),)),
                      (_SUBSCRIPTIONS_OF_ADDRESSES, (list(emails),))]
        if mailboxes is not None:
            E = ConsentEvent.__table__
            kind, after = self.db_value(E.c.kind, ConsentKind.CONFIRMATION_SENT), self.db_value(E.c.at, since)
            statements.append((_MAILBOX_CONFIRMATIONS, (kind, after, list(mailboxes), kind, after, list(mailboxes))))
        driver = self.connection.connection.driver_connection
        cursors = [driver.cursor() for _ in statements]
        try:
            with driver.pipeline():
                for cursor, (statement, parameters) in zip(cursors, statements):
                    cursor.execute(statement, parameters)
            results = [cursor.fetchall() for cursor in cursors]
        finally:
            for cursor in cursors:
                cursor.close()
        current: dict[int, dict[int, SubscriptionStatus]] = {}
        for sid, lid, status in results[2]:
            current.setdefault(sid, {})[lid] = SubscriptionStatus(status)
        sent: dict[str, list[datetime]] | None = None
        if mailboxes is not None:
            sent = {}
            for mailbox, at in results[3]:
                sent.setdefault(mailbox, []).append(at)
        return Known({h for (h,) in results[0]}, _people(results[1]), current, sent)

    def confirmations_since(self, subscriber_ids: Sequence[int], since: datetime) -> dict[int, list[datetime]]:
        """When each of these people was sent a confirmation mail after `since` (aware datetimes)."""
        if not subscriber_ids:
            return {}
        E = ConsentEvent.__table__
        statement = select(E.c.subscriber_id, E.c.at).where(
            E.c.subscriber_id.in_(bindparam("ids", expanding=True)),
            E.c.kind == ConsentKind.CONFIRMATION_SENT, E.c.at > since)
        sent: dict[int, list[datetime]] = {}
        chunk = 10_000 if self.postgres else self._variables
        for start in range(0, len(subscriber_ids), chunk):
            for sid, at in self.connection.execute(statement, {"ids": list(subscriber_ids[start:start + chunk])}):
                sent.setdefault(sid, []).append(at if at.tzinfo else at.replace(tzinfo=since.tzinfo))
        return sent

    def confirmations_to_mailboxes(self, mailboxes: Sequence[str], since: datetime) -> dict[str, list[datetime]]:
        """When a confirmation mail went to each of these mailboxes after `since`, whichever of
        its addresses it went to (a person's mailbox is their `mailbox`, else their `email`)."""
        if not mailboxes:
            return {}
        S, E = Subscriber.__table__, ConsentEvent.__table__
        sent: dict[str, list[datetime]] = {}
        if self.postgres:
            kind, after = self.db_value(E.c.kind, ConsentKind.CONFIRMATION_SENT), self.db_value(E.c.at, since)
            for mailbox, at in self.connection.exec_driver_sql(
                    _MAILBOX_CONFIRMATIONS, (kind, after, list(mailboxes), kind, after, list(mailboxes))):
                sent.setdefault(mailbox, []).append(at)
            return sent
        chunk = self._variables
        for by_email in (True, False):
            column = S.c.email if by_email else S.c.mailbox
            statement = (select(column, E.c.at).join(E, E.c.subscriber_id == S.c.id)
                         .where(column.in_(bindparam("keys", expanding=True)),
                                E.c.kind == ConsentKind.CONFIRMATION_SENT, E.c.at > since))
            if by_email:
                statement = statement.where(S.c.mailbox.is_(None))
            else:
                statement = statement.where(S.c.mailbox.is_not(None))
            for start in range(0, len(mailboxes), chunk):
                for mailbox, at in self.connection.execute(statement, {"keys": list(mailboxes[start:start + chunk])}):
                    sent.setdefault(mailbox, []).append(at if at.tzinfo else at.replace(tzinfo=since.tzinfo))
        return sent

    def _where_in(self, head: str, keys: Sequence[Any]) -> Iterable[tuple]:
        """Rows of `head IN keys` (head ends with the column compared)."""
        if not keys:
            return []
        if self.postgres:
            return self.connection.exec_driver_sql(f"{head} = ANY(%s)", (list(keys),)).fetchall()
        rows: list[tuple] = []
        start = 0
        for size in _sizes(len(keys), _largest_power_of_two(min(_MAX_ROWS, self._variables)), pad=True):
            part = tuple(keys[start:start + size])
            part += (part[-1],) * (size - len(part))  # padded with a repeat: the same answer, a cached statement
            rows += self.connection.exec_driver_sql(f"{head} IN ({', '.join('?' * size)})", part).fetchall()
            start += size
        return rows

    # -- writes -------------------------------------------------------------------------------

    def new_person_ids(self, n: int) -> list[int]:
        """`n` ids for new people, not used by anyone else.

        SQLite: the ids after the largest one, which nobody else can take before we commit
        (the store's transactions begin IMMEDIATE, holding the write lock); a clash would still
        be refused by the primary key. PostgreSQL: values of the table's id sequence.
        """
        if n == 0:
            return []
        if self.postgres:
            return [i for (i,) in self.connection.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('subscribers', 'id')) FROM generate_series(1, %s)", (n,))]
        (last,) = self.connection.exec_driver_sql("SELECT coalesce(max(id), 0) FROM subscribers").one()
        return list(range(last + 1, last + 1 + n))

    def insert_people(self, rows: Sequence[tuple[str, str, str, str]], *, status: SubscriberStatus,
                      at: datetime, mailboxes: Sequence[str | None] | None = None) -> list[int]:
        """New subscribers: rows of (key, email, name, language), all with `status`, created `at`,
        each with its `mailboxes` entry (None, or no list: NULL); returns their ids, in order.

        A few (a sign-up, a group commit) go in one INSERT … RETURNING; many (an import's batch)
        get their ids first (`new_person_ids`) and go in the set-based form.
        """
        if not rows:
            return []
        if len(rows) < CHECKS_OFF_FROM:
            result = self.connection.execute(_INSERT_PEOPLE, [
                {"key": key, "email": email, "name": name, "language": language, "mailbox": mailbox, "status": status,
                 "created_at": at, "updated_at": at}
                for (key, email, name, language), mailbox in zip(rows, mailboxes or [None] * len(rows))])
            return [person_id for (person_id,) in result]
        ids = self.new_person_ids(len(rows))
        if mailboxes is None or not any(mailboxes):
            self._insert(Subscriber.__table__, ("id", "key", "email", "name", "language"),
                         [(i, *row) for i, row in zip(ids, rows)],
                         {"status": status, "created_at": at, "updated_at": at})
        else:
            self._insert(Subscriber.__table__, ("id", "key", "email", "name", "language", "mailbox"),
                         [(i, *row, m) for i, row, m in zip(ids, rows, mailboxes)],
                         {"status": status, "created_at": at, "updated_at": at})
        return ids

    def insert_subscriptions(self, rows: list[tuple[int, int]], *, status: SubscriptionStatus, at: datetime,
                             confirmed_at: datetime | None) -> None:
        """New subscriptions: rows of (subscriber id, list id), all alike otherwise."""
        self._insert(Subscription.__table__, ("subscriber_id", "list_id"), rows,
                     {"status": status, "created_at": at, "confirmed_at": confirmed_at})

    def insert_events(self, rows: Sequence[EventRow], heads: Sequence[EventHead], *, at: datetime) -> None:
        """Consent-log lines, in this order, all `at`; each row's kind and origin are `heads[row.head]`.

        A column whose value is the same in every row (an import's origin, a batch's kind, a
        note) is bound once per statement rather than once per row.
        """
        if not rows:
            return
        E = ConsentEvent.__table__
        used = sorted({r[2] for r in rows})
        names = ("kind", *Origin._fields)
        values_of = {h: (self.db_value(E.c.kind, heads[h].kind), self.db_value(E.c.channel, heads[h].origin.channel),
                         *heads[h].origin[1:]) for h in used}
        varying = [i for i in range(len(names)) if len({values_of[h][i] for h in used}) > 1]
        first = (heads[used[0]].kind, *heads[used[0]].origin)
        constants: dict[str, Any] = {"at": at, **{names[i]: first[i] for i in range(len(names)) if i not in varying}}
        note = rows[0][3]
        same_note = all(r[3] == note for r in rows)
        if same_note:
            constants["note"] = note
        columns = ("subscriber_id", "list_id", *(names[i] for i in varying), *(() if same_note else ("note",)))
        if not varying:
            values = [(r[0], r[1]) for r in rows] if same_note else [(r[0], r[1], r[3]) for r in rows]
        else:
            per_head = {h: tuple(values_of[h][i] for i in varying) for h in used}
            values = ([(r[0], r[1], *per_head[r[2]]) for r in rows] if same_note
                      else [(r[0], r[1], *per_head[r[2]], r[3]) for r in rows])
        self._insert(E, columns, values, constants)

    def activate(self, pairs: list[tuple[int, int]], at: datetime) -> None:
        """Make these (subscriber id, list id) subscriptions active, confirmed `at`."""
        if not pairs:
            return
        L = Subscription.__table__
        status = self.db_value(L.c.status, SubscriptionStatus.ACTIVE)
        at = self.db_value(L.c.confirmed_at, at)
        mark = "%s" if self.postgres else "?"
        self.connection.exec_driver_sql(
            f"UPDATE subscriptions SET status = {mark}, confirmed_at = {mark} "
            f"WHERE subscriber_id = {mark} AND list_id = {mark}",
            [(status, at, sid, lid) for sid, lid in pairs])

    def widen_cache(self) -> None:
        """SQLite: let this connection keep IMPORT_CACHE_KIB of pages (until `restore_cache`).

        An import's inserts land all over the address and key indexes; with SQLite's default
        2 MiB they are read, evicted, spilled to the WAL and read again. Memory stays bounded.
        """
        if not self.postgres and self._saved_cache is None:
            (self._saved_cache,) = self.connection.exec_driver_sql("PRAGMA cache_size").one()
            self.connection.exec_driver_sql(f"PRAGMA cache_size = -{int(IMPORT_CACHE_KIB)}")

    def restore_cache(self) -> None:
        """Undo `widen_cache` (the connection goes back to its pool as it came)."""
        if self._saved_cache is not None:
            self.connection.exec_driver_sql(f"PRAGMA cache_size = {int(self._saved_cache)}")
            self._saved_cache = None

    @contextmanager
    def own_values(self, rows: int | None = None) -> Iterator[None]:
        """A block whose INSERTs carry only values we made (SQLite: CHECK constraints off in it,
        when it writes `rows` >= CHECKS_OFF_FROM rows or `rows` is None).

        See the module docstring for why. PostgreSQL checks its native enums at no such cost,
        so nothing changes there.
        """
        if self.postgres or (rows is not None and rows < CHECKS_OFF_FROM):
            yield
            return
        # A flag pragma: SQLite re-prepares statements compiled under the other setting.
        self.connection.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
        try:
            yield
        finally:
            self.connection.exec_driver_sql("PRAGMA ignore_check_constraints = OFF")

    def _unnest_insert(self, table: Table, columns: tuple[str, ...], constants: tuple[str, ...]) -> str:
        """PostgreSQL: INSERT of `columns` from one array parameter each, `constants` one value each."""
        key = (table.name, columns, constants)
        statement = _UNNEST_INSERTS.get(key)
        if statement is None:
            type_of = {name: table.c[name].type.compile(dialect=self.dialect) for name in (*columns, *constants)}
            statement = _UNNEST_INSERTS[key] = (
                f"INSERT INTO {table.name} ({', '.join((*columns, *constants))}) "
                f"SELECT {', '.join((*(f'r.{c}' for c in columns), *(f'%s::{type_of[c]}' for c in constants)))} "
                f"FROM unnest({', '.join(f'%s::{type_of[c]}[]' for c in columns)}) AS r({', '.join(columns)})")
        return statement

    def _insert(self, table: Table, columns: tuple[str, ...], rows: list[tuple], constants: dict[str, Any]) -> None:
        """Insert `rows` (values for `columns`, in the database's form) with `constants` in every row.

        The constants are converted to the database's form here, once.
        """
        if not rows:
            return
        names = (*columns, *constants)
        fixed = tuple(self.db_value(table.c[name], value) for name, value in constants.items())
        if self.postgres and len(rows) < CHECKS_OFF_FROM:
            # A few rows (a sign-up, a group commit): one INSERT of arrays, one round trip
            # whatever their number (COPY takes three), one statement text per table and columns.
            self.connection.exec_driver_sql(self._unnest_insert(table, columns, tuple(constants)),
                                            (*fixed, *(list(values) for values in zip(*rows))))
            return
        if self.postgres:
            cursor = self.connection.connection.driver_connection.cursor()
            statement = f"COPY {table.name} ({', '.join(names)}) FROM STDIN"
            try:
                with cursor.copy(statement) as copy:
                    for row in rows:
                        copy.write_row(row + fixed)
            except self.dialect.dbapi.IntegrityError as exc:
                # What SQLAlchemy raises for the same refusal of an INSERT (callers retry on it).
                raise IntegrityError(statement, None, exc) from exc
            finally:
                cursor.close()
            return
        # Many rows per statement, the constants bound once per statement.
        head = (f"INSERT INTO {table.name} ({', '.join(names)}) "
                f"SELECT {', '.join([f'column{i + 1}' for i in range(len(columns))] + ['?'] * len(fixed))} FROM (VALUES ")
        group = f"({', '.join('?' * len(columns))})"
        most = _largest_power_of_two(min(_MAX_ROWS, (self._variables - len(fixed)) // len(columns)))
        start = 0
        for size in _sizes(len(rows), most):
            self.connection.exec_driver_sql(head + ", ".join([group] * size) + ")",
                                            fixed + tuple(chain.from_iterable(rows[start:start + size])))
            start += size


class BatchWriter:
    """One connection for a long run of batches (an import), each batch one transaction.

    The connection is opened at the first batch and closed by `close()`, both in the caller's
    one thread; SQLite's page cache is widened for it meanwhile (`BulkStore.widen_cache`), so
    that it stays warm from batch to batch.
    """

    #: The tables an import writes, analysed when it ends on PostgreSQL (`close`).
    ANALYSED = ("subscribers", "subscriptions", "consent_events")

    def __init__(self, store: Store):
        self.store = store
        self._connection: Connection | None = None
        self._bulk: BulkStore | None = None
        self._wrote = False

    def run(self, write: Callable[[Session, BulkStore], T], *, dry_run: bool = False, attempts: int = 3) -> T:
        """`write(session, bulk)` in one transaction, committed (rolled back for a `dry_run`);
        run again, up to `attempts` times, when a concurrent writer inserted one of its rows
        first (IntegrityError: then raised)."""
        if self._connection is None:
            self._connection = self.store.engine.connect()
            self._bulk = BulkStore(self._connection)
            self._bulk.widen_cache()
            self._connection.commit()  # the PRAGMA began a transaction; batches begin their own
        for attempt in range(attempts):
            try:
                with self._connection.begin() as transaction, Session(bind=self._connection) as session:
                    result = write(session, self._bulk)
                    session.flush()
                    if dry_run:
                        transaction.rollback()
                    else:
                        self._wrote = True
                    return result
            except IntegrityError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Restore the connection's settings and close it. On PostgreSQL, after batches that
        wrote, ANALYZE the tables an import writes: the planner's picture of a table that has
        just grown from nothing is wrong until autovacuum comes by (a people search then sorted
        the whole table instead of walking the address index: 1 ms became 19 ms at 20,000 people)."""
        if self._connection is not None:
            try:
                self._bulk.restore_cache()
                self._connection.commit()
                if self._wrote and self._connection.dialect.name == "postgresql":
                    self._connection.exec_driver_sql("ANALYZE " + ", ".join(self.ANALYSED))
                    self._connection.commit()
            finally:
                self._connection.close()
                self._connection = None


def _people(rows: Iterable[tuple]) -> dict[str, KnownPerson]:
    return {r[2]: KnownPerson(r[0], r[1], r[2], r[3], r[4], SubscriberStatus(r[5])) for r in rows}


def _largest_power_of_two(n: int) -> int:
    return 1 << (n.bit_length() - 1)


def _sizes(n: int, most: int, *, pad: bool = False) -> Iterator[int]:
    """Statement sizes for `n` rows: `most` (a power of two) while they last, then the powers of
    two that add up to the rest (or, with `pad`, the one power of two just above it).

    So a statement text has one of a few sizes and the driver's statement cache (which keeps
    the compiled statements, some of them large) holds a bounded number of them.
    """
    whole, rest = divmod(n, most)
    yield from [most] * whole
    if rest and pad:
        yield 1 << (rest - 1).bit_length()
        return
    while rest:
        size = _largest_power_of_two(rest)
        yield size
        rest -= size
