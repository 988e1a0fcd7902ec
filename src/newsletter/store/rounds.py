"""The gate's rounds in driver-level statements: one held transaction per round, on a
connection the gate keeps from round to round.

A round runs many times a second, and most of what it cost was not the database's work but
the layers over it: a new session, a pool checkout and its reset, SQLAlchemy compiling and
binding each statement. Here a round is `BEGIN` (IMMEDIATE on SQLite: the write lock), the
outcomes in one executemany, the consent re-check in one SELECT, and `COMMIT`, on a
connection checked out once (`RoundConnections`), with the values converted once per round by
the columns' own bind processors. The statements write exactly what `ledger.record_outcomes`
and `ledger.recheck_consent` write (tests/test_rounds.py compares them).

On PostgreSQL the server planned the round's statement afresh every round (custom plans, ~1 ms
of its CPU a round, as much as running it; bench/pg_costs.py --gate-only, docs/benchmarks.md
"PostgreSQL gate rounds"). A round's connection therefore prepares its statements at once and
runs them with their generic plan (`plan_cache_mode`; the plan is
the primary-key look-ups whatever the arrays hold). The statements are prepared once per
connection (`PREPARE`), and a round's first one goes with its BEGIN in one simple query
(`BEGIN; EXECUTE name(literals)`) on a connection in autocommit mode: two round trips a round
(that query, then COMMIT) instead of three, and no parameters for psycopg to adapt. The
connections are closed, never pooled, so that no other use of the store gets their settings.
(Sending BEGIN in one pipeline with the first statement saved the round trip too, but cost
more of our CPU, in psycopg's pipeline machinery, than the round trip did.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..statuses import OutboxStatus
from . import OutboxRow, Store, begin_immediate
from .ledger import ClaimedRow, Outcome, Recheck, _sort_rechecked

__all__ = ["HeldRound", "RoundConnections", "recheck_rows", "write_and_recheck", "write_outcomes"]

_OUTBOX = OutboxRow.__table__
_SENDING = OutboxStatus.SENDING.value
#: libpq's PQTRANS_INERROR (`psycopg.pq.TransactionStatus.INERROR`): a statement of the open
#: transaction failed.
_INERROR = 3


class HeldRound:
    """A round's open transaction: its connection, a driver cursor, and (for a round begun with
    `orm=True`) an ORM session joined to the same transaction.

    On SQLite a round without the ORM begins and ends in the driver (`begin_immediate`, then
    the driver's COMMIT or ROLLBACK), not through SQLAlchemy's transaction and its events:
    ~20 µs less a round. The connection's SQLAlchemy side then holds no transaction, which is
    why a session needs `orm=True`. `kept`: the connection is one of `RoundConnections`' own
    (with their settings), not a plain one of the store's pool."""

    __slots__ = ("_begin", "_orm", "_session", "conn", "cursor", "kept", "postgres")

    def __init__(self, conn: Connection, *, orm: bool, kept: bool):
        self.conn = conn
        self.kept = kept
        self.postgres = conn.dialect.name == "postgresql"
        self._orm = orm
        driver = conn.connection.driver_connection
        #: PostgreSQL: the BEGIN that the round's first statement carries (`execute_prepared`).
        self._begin = ""
        if orm:
            if self.postgres:  # the round connection is in autocommit mode: the round begins itself
                driver.execute("BEGIN", prepare=False)
            conn.begin()  # SQLite: the store's BEGIN IMMEDIATE
        elif self.postgres:
            self._begin = "BEGIN; "
        else:
            begin_immediate(driver, polled=True)
        self.cursor = driver.cursor()
        self._session: Session | None = None

    def execute_prepared(self, name: str, args: Sequence[str]):
        """(PostgreSQL) Run the statement the connection prepared as `name` with `args` (SQL
        literals, `_literal`), after the round's BEGIN in the same query if it is not yet sent.
        Returns the cursor, on the statement's result."""
        begin, self._begin = self._begin, ""
        self.cursor.execute(f"{begin}EXECUTE {name}({', '.join(args)})", prepare=False)
        if begin:
            self.cursor.nextset()
        return self.cursor

    @property
    def session(self) -> Session:
        """An ORM session inside this round's transaction (it never commits it itself).
        Raises RuntimeError for a round begun without `orm=True`."""
        if not self._orm:
            raise RuntimeError("this round was begun without the ORM: begin it with orm=True for a session")
        if self._session is None:
            self._session = Session(bind=self.conn, join_transaction_mode="conditional_savepoint")
        return self._session

    def end(self, *, commit: bool) -> None:
        """Commit (or roll back) the round's transaction; the connection stays open. Raises
        InFailedSqlTransaction, having rolled back, for a PostgreSQL round a statement of which
        failed: the server would answer its COMMIT with a rollback, which the driver reports
        as a commit."""
        if commit and self.postgres and self.conn.connection.driver_connection.pgconn.transaction_status == _INERROR:
            from psycopg.errors import InFailedSqlTransaction  # here: a SQLite send never loads psycopg (~10 MB)

            self.end(commit=False)
            raise InFailedSqlTransaction("a statement of the round failed: its transaction was rolled back, "
                                         "not committed")
        try:
            if self._session is not None:
                if commit:
                    self._session.flush()
                self._session.close()
            self.cursor.close()
        finally:
            if not self._orm:
                driver = self.conn.connection.driver_connection
                if commit:
                    driver.commit()
                else:
                    driver.rollback()
            elif commit:
                self.conn.commit()
            else:
                self.conn.rollback()


class RoundConnections:
    """The connections a gate's rounds use, kept open between rounds (one per round open at once).

    Their settings are their own, so they are closed, never handed back to the store's pool.
    PostgreSQL: autocommit, the statements prepared at once, on their generic plan (see the
    module docstring). SQLite: a busy timeout of 0, for `begin_immediate` polls for the write
    lock itself; and the CHECK constraints off (`PRAGMA ignore_check_constraints`), for the
    round's statements write only our own constants (the outbox statuses, as the column's type
    converts them) and SQLite 3.40 checks the status column's `IN (…)` by building and dropping
    a temporary b-tree for every row it writes: a third of an outcome's UPDATE. A SQLite round
    with the ORM (a hard bounce's rules write other tables) runs on a plain connection of the
    store's pool instead, with the store's own settings."""

    def __init__(self, store: Store):
        self.store = store
        self.idle: list[Connection] = []

    def begin(self, *, orm: bool = False) -> HeldRound:
        """A round on an idle connection (a new one if none is idle); `orm`: one that may use
        `HeldRound.session`."""
        kept = not orm or self.store.dialect == "postgresql"
        if kept:
            conn = self.idle.pop() if self.idle else self._connect()
        else:
            conn = self.store.engine.connect()
        try:
            return HeldRound(conn, orm=orm, kept=kept)
        except BaseException:
            _discard(conn, kept=kept)
            raise

    def _connect(self) -> Connection:
        conn = self.store.engine.connect()
        if conn.dialect.name == "postgresql":
            try:
                driver = conn.connection.driver_connection
                # Prepared at once, and planned once: the round's statements have one good plan
                # (primary-key look-ups), which custom planning found again every round.
                driver.prepare_threshold = 0
                driver.autocommit = True  # each round sends its own BEGIN, with its first statement
                driver.execute("SET plan_cache_mode = force_generic_plan; " + "; ".join(
                    f"PREPARE {name}({types}) AS {sql}" for name, (types, sql) in _PG_PREPARED.items()),
                    prepare=False)
            except BaseException:
                _discard(conn, kept=True)
                raise
        else:
            try:
                driver = conn.connection.driver_connection
                driver.execute("PRAGMA busy_timeout = 0")
                driver.execute("PRAGMA ignore_check_constraints = ON")
            except BaseException:
                _discard(conn, kept=True)
                raise
        return conn

    def end(self, held: HeldRound, *, commit: bool) -> None:
        """End the round; its connection is kept for the next one unless something failed."""
        try:
            held.end(commit=commit)
        except BaseException:
            held.conn.invalidate()
            held.conn.close()
            raise
        if commit and held.kept:
            self.idle.append(held.conn)
        else:
            _discard(held.conn, kept=held.kept)

    def close(self) -> None:
        """Close the kept connections for good: their settings stay with the gate."""
        for conn in self.idle:
            _discard(conn, kept=True)
        self.idle.clear()


def _discard(conn: Connection, *, kept: bool) -> None:
    """Close a round connection; one of the rounds' own (`kept`) for good, so that its settings
    (PostgreSQL: autocommit, the generic plans, the prepared statements; SQLite: the busy
    timeout, the CHECKs off) never reach the store's pool."""
    if kept:
        conn.invalidate()
    conn.close()


def _binder(dialect, column_name: str):
    process = _OUTBOX.c[column_name].type.dialect_impl(dialect).bind_processor(dialect)
    return process or (lambda value: value)


_CACHE: dict[str, tuple[str, str, str, Any, Any]] = {}

#: PostgreSQL: the re-check's locks, held until the round ends. The subscriber and subscription
#: rows share-locked: an unsubscribe waits. The outbox rows key-share-locked: another worker's
#: claim (FOR UPDATE SKIP LOCKED) passes them by, so none is taken over between the re-check
#: and the MAIL FROM, while this worker's renewal of its claims (an UPDATE) does not wait.
_PG_LOCKING = " FOR SHARE OF s, sub FOR KEY SHARE OF o"


def _held(worker_param: str) -> str:
    """The re-check's column: whether the worker (bound at `worker_param`) still holds the row."""
    return f"o.claimed_by = {worker_param} AND o.status = '{_SENDING}'"


def _statements(conn: Connection) -> tuple[str, str, str, Any, Any]:
    """(outcome UPDATE, re-check SELECT with {ids}, skip UPDATE, status binder, time binder)."""
    name = conn.dialect.name
    found = _CACHE.get(name)
    if found is None:
        if name == "postgresql":
            p, status, stamp, locking = "%s", "%s::outbox_status", "%s", _PG_LOCKING
            ids = "o.id = ANY(%s)"
        else:
            p, status, stamp, locking, ids = "?", "?", "?", "", "o.id IN ({ids})"
        record = (f"UPDATE outbox SET status = {status}, last_reply = coalesce({p}, last_reply), "
                  f"message_id = coalesce({p}, message_id), relay = coalesce({p}, relay), "
                  f"reply_code = coalesce({p}, reply_code), next_attempt_at = {stamp}, "
                  f"sent_at = coalesce({stamp}, sent_at), attempts = attempts + {p}, claimed_by = NULL, "
                  f"updated_at = {stamp} WHERE id = {p} AND claimed_by = {p} AND status = '{_SENDING}'")
        recheck = (f"SELECT o.id, s.status, sub.status, s.email, {_held(p)} FROM outbox o "
                   "JOIN subscribers s ON s.id = o.subscriber_id "
                   f"JOIN subscriptions sub ON sub.subscriber_id = o.subscriber_id AND sub.list_id = {p} "
                   f"WHERE {ids}{locking}")
        skip = (f"UPDATE outbox SET status = '{OutboxStatus.SKIPPED.value}', last_reply = {p}, claimed_by = NULL, "
                f"updated_at = {stamp} WHERE id = {p} AND claimed_by = {p} AND status = '{_SENDING}'")
        found = _CACHE[name] = (record, recheck, skip, _binder(conn.dialect, "status"),
                                _binder(conn.dialect, "updated_at"))
    return found


#: PostgreSQL: a round's outcomes in one statement of fixed text, the rows as arrays, whatever
#: their number. Parameters: now, worker, then the nine arrays.
_PG_OUTCOMES = (
    "UPDATE outbox o SET status = v.status::outbox_status, last_reply = coalesce(v.reply, o.last_reply), "
    "message_id = coalesce(v.mid, o.message_id), relay = coalesce(v.relay, o.relay), "
    "reply_code = coalesce(v.code, o.reply_code), next_attempt_at = v.next, sent_at = coalesce(v.sent, o.sent_at), "
    "attempts = o.attempts + v.inc, claimed_by = NULL, updated_at = $1 "
    "FROM unnest($3, $4, $5, $6, $7, $8, $9, $10, $11) AS v(id, status, reply, mid, relay, code, next, sent, inc) "
    f"WHERE o.id = v.id AND o.claimed_by = $2 AND o.status = '{_SENDING}' RETURNING o.id"
)
_PG_OUTCOME_TYPES = "timestamptz, text, bigint[], text[], text[], text[], text[], int[], timestamptz[], timestamptz[], int[]"

#: PostgreSQL: the re-check of the rows `$3` (of the list `$2`) for the worker `$1`.
_PG_RECHECK = (f"SELECT o.id, s.status, sub.status, s.email, {_held('$1')} FROM outbox o "
               "JOIN subscribers s ON s.id = o.subscriber_id "
               "JOIN subscriptions sub ON sub.subscriber_id = o.subscriber_id AND sub.list_id = $2 "
               f"WHERE o.id = ANY($3){_PG_LOCKING}")

#: PostgreSQL: the outcomes written and the re-check read in one statement (one round trip);
#: the outcomes' parameters, then the list (`$12`) and the rows to re-check (`$13`). After the
#: re-check's rows come those of the outcomes it did not write (id, then NULLs): none, nearly
#: always.
_PG_BOTH = (f"WITH written AS ({_PG_OUTCOMES}) "
            f"SELECT * FROM (SELECT o.id, s.status, sub.status, s.email, {_held('$2')} FROM outbox o "
            "JOIN subscribers s ON s.id = o.subscriber_id "
            "JOIN subscriptions sub ON sub.subscriber_id = o.subscriber_id AND sub.list_id = $12 "
            f"WHERE o.id = ANY($13){_PG_LOCKING}) AS rechecked "
            "UNION ALL SELECT v.id, NULL, NULL, NULL, NULL FROM unnest($3) AS v(id) "
            "WHERE v.id NOT IN (SELECT id FROM written)")

#: What each round connection prepares: name → (parameter types, statement).
_PG_PREPARED = {
    "newsletter_round_outcomes": (_PG_OUTCOME_TYPES, _PG_OUTCOMES),
    "newsletter_round_recheck": ("text, int, bigint[]", _PG_RECHECK),
    "newsletter_round_both": (f"{_PG_OUTCOME_TYPES}, int, bigint[]", _PG_BOTH),
}


def _literal(value: str) -> str:
    """A string constant holding `value`, whatever `standard_conforming_strings` says (E'…',
    backslashes and quotes doubled). Raises ValueError for a NUL, which no text may hold."""
    if "\x00" in value:
        raise ValueError("PostgreSQL text cannot contain NUL (0x00) characters")
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "'" in value:
        value = value.replace("'", "''")
    return f"E'{value}'"


def _text(value: str | None) -> str:
    """One element of an array literal: NULL, or the text quoted (backslash before \\ and \")."""
    if value is None:
        return "NULL"
    if "\\" in value or '"' in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{value}"'


def _array(values) -> str:
    """The SQL literal of PostgreSQL's array of `values` (text, numbers or datetimes; None is
    NULL), which the prepared statement's parameter type reads: one string for the round,
    where psycopg adapted each element of a list (half of the round statement's client CPU)."""
    return _literal("{" + ",".join(_text(v if v is None or isinstance(v, str) else
                                         v.isoformat() if isinstance(v, datetime) else str(v)) for v in values) + "}")


def _ids(values: Sequence[int]) -> str:
    return "'{" + ",".join(map(str, values)) + "}'"


def _pg_outcomes(worker: str, outcomes: Sequence[Outcome], now: datetime) -> list[str]:
    """The literals of `_PG_OUTCOMES`' parameters."""
    at = _text(now.isoformat())
    return [_literal(now.isoformat()), _literal(worker), _ids([oc.row_id for oc in outcomes]),
            _array([oc.status.value for oc in outcomes]), _array([oc.reply for oc in outcomes]),
            _array([oc.message_id for oc in outcomes]), _array([oc.relay for oc in outcomes]),
            _array([oc.reply_code for oc in outcomes]), _array([oc.next_attempt_at for oc in outcomes]),
            "'{" + ",".join(at if oc.status is OutboxStatus.SENT else "NULL" for oc in outcomes) + "}'",
            _ids([1 if oc.attempted else 0 for oc in outcomes])]


def write_outcomes(held: HeldRound, worker: str, outcomes: Sequence[Outcome], *, now: datetime) -> frozenset[int]:
    """What `ledger.record_outcomes` writes, in one statement: each row only while `worker`
    holds it (status `sending`); sent rows get `sent_at`; attempted rows one more attempt; the
    relay and its reply code where the outcome has them. Returns the outcomes' rows it did not
    write, those `worker` no longer holds (nearly always none): the statement's row count
    says whether there are any, and only then are they looked for."""
    if not outcomes:
        return frozenset()
    cursor = held.cursor
    if held.postgres:
        cursor = held.execute_prepared("newsletter_round_outcomes", _pg_outcomes(worker, outcomes, now))
        if cursor.rowcount == len(outcomes):
            return frozenset()
        return frozenset(oc.row_id for oc in outcomes) - {r[0] for r in cursor.fetchall()}
    record, _recheck, _skip, status, stamp = _statements(held.conn)
    at = stamp(now)
    params = [(status(oc.status), oc.reply, oc.message_id, oc.relay, oc.reply_code,
               stamp(oc.next_attempt_at) if oc.next_attempt_at is not None else None,
               at if oc.status is OutboxStatus.SENT else None, 1 if oc.attempted else 0, at, oc.row_id, worker)
              for oc in outcomes]
    # SQLite counts an executemany's rows in all: undone and written again row by row to find
    # which were not written. (The savepoint costs ~1 µs; COMMIT ends it.)
    cursor.execute("SAVEPOINT outcomes")
    cursor.executemany(record, params)
    if cursor.rowcount == len(params):
        return frozenset()
    cursor.execute("ROLLBACK TO outcomes")
    unwritten = set()
    for oc, one in zip(outcomes, params, strict=True):
        cursor.execute(record, one)
        if not cursor.rowcount:
            unwritten.add(oc.row_id)
    return frozenset(unwritten)


def write_and_recheck(held: HeldRound, list_id: int, worker: str, outcomes: Sequence[Outcome],
                      rows: Sequence[ClaimedRow], *, now: datetime) -> Recheck:
    """`write_outcomes`, then `recheck_rows`; on PostgreSQL in one statement. Returns the
    re-check's answer, its `not_held` with the outcomes' rows the write did not change."""
    if held.postgres and outcomes and rows:
        args = [*_pg_outcomes(worker, outcomes, now), str(list_id), _ids([r.id for r in rows])]
        found = held.execute_prepared("newsletter_round_both", args).fetchall()
        unwritten = frozenset(r[0] for r in found if r[1] is None)  # a subscriber's status is never NULL
        if unwritten:
            found = [r for r in found if r[1] is not None]
        recheck = _skip_failing(held, worker, rows, found, now)
    else:
        unwritten = write_outcomes(held, worker, outcomes, now=now)
        recheck = recheck_rows(held, list_id, worker, rows, now=now)
    return recheck._replace(not_held=recheck.not_held | unwritten) if unwritten else recheck


def recheck_rows(held: HeldRound, list_id: int, worker: str, rows: Sequence[ClaimedRow], *,
                 now: datetime) -> Recheck:
    """What `ledger.recheck_consent` does, in one SELECT: the rows that no longer may be
    mailed, now `skipped`, and those `worker` no longer holds (taken over by another worker,
    or finished), left as they are. On PostgreSQL the subscriber and subscription rows are
    share-locked and the outbox rows key-share-locked until the round ends (an unsubscribe
    waits for it; another worker's claim passes the rows by); on SQLite the round holds the
    write lock."""
    if not rows:
        return Recheck({}, frozenset())
    if held.postgres:
        found = held.execute_prepared("newsletter_round_recheck",
                                      [_literal(worker), str(list_id), _ids([r.id for r in rows])]).fetchall()
        return _skip_failing(held, worker, rows, found, now)
    _record, recheck, _skip, _status, _stamp = _statements(held.conn)
    ids = [r.id for r in rows]
    held.cursor.execute(recheck.format(ids=",".join("?" * len(ids))), (worker, list_id, *ids))
    return _skip_failing(held, worker, rows, held.cursor.fetchall(), now)


def _skip_failing(held: HeldRound, worker: str, rows: Sequence[ClaimedRow], found_rows: list,
                  now: datetime) -> Recheck:
    """Skip those of `worker`'s `rows` that fail their re-check (`found_rows`, sorted by
    `ledger._sort_rechecked`); name those not `worker`'s. A row not found (its subscriber
    erased, or no subscription) is `worker`'s if the skip wrote it."""
    _record, _recheck, skip, _status, stamp = _statements(held.conn)
    not_held, reasons = _sort_rechecked(rows, found_rows)
    skipped: dict[int, str] = {}
    at = stamp(now)
    for row_id, reason in reasons.items():
        held.cursor.execute(skip, (reason, at, row_id, worker))
        if held.cursor.rowcount:
            skipped[row_id] = reason
        else:
            not_held.add(row_id)
    return Recheck(skipped, frozenset(not_held))
