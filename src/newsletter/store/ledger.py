"""The ledger of a campaign: one row per (campaign, subscriber), and the moves between states.

    queued ──claim──► sending ──record──► sent | failed | deferred | skipped
      ▲                  │  ▲                               │
      └──── release ─────┘  └── claim (when due) ───────────┘
                         └── reclaim (claim of a dead or stale worker's rows)

Every function takes the caller's session and runs in its transaction; the sender calls each
in a transaction of its own, one per batch. Set-based statements throughout: rows are created
with one INSERT … SELECT, claimed with one SELECT (`FOR UPDATE SKIP LOCKED` on PostgreSQL; on
SQLite the store's `BEGIN IMMEDIATE` serialises claimers) and two UPDATEs, and outcomes are
written with one executemany.

Consent is checked when a row is claimed, and again (`recheck_consent`) just before its
message goes out: a subscriber who is no longer active, whose subscription to the campaign's
list is no longer active, or whose address is suppressed is never sent to; their row becomes
`skipped` with the reason (the gate runs the same re-check in its rounds' own statements,
`store.rounds`). The re-check also finds the rows the worker no longer holds — taken over by
another worker that presumed it dead, or finished — which it must neither send nor write. The sender holds the recheck's transaction open until the relay has
the message's MAIL FROM (on PostgreSQL with the subscriber and subscription rows share-locked;
on SQLite with the database's one write lock), so an unsubscribe either committed before the
recheck — and the row is skipped — or commits after the message was begun.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import (
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..addresses import address_hash
from ..segment_language import Filter
from ..statuses import DeliveryMode, OutboxStatus, SubscriberStatus, SubscriptionStatus
from . import Campaign, DeliveryChoice, OutboxRow, Subscriber, Subscription

#: The content kind whose campaigns digest readers do not get (`mail.issue.Kind.DAILY_SUMMARY`).
DAILY_SUMMARY = "daily-summary"

__all__ = [
    "ClaimedRow",
    "Outcome",
    "Recheck",
    "Counts",
    "FailureLine",
    "LedgerMark",
    "create_rows",
    "begin_rows",
    "write_chunk",
    "ledger_mark",
    "skip_unwritten",
    "claim_batch",
    "recheck_consent",
    "record_outcomes",
    "counts_by_relay",
    "release_rows",
    "renew_claims",
    "count_rows",
    "next_due_at",
    "requeue_rows",
    "skip_remaining",
    "list_failures",
    "active_claims",
]

OUTBOX = OutboxRow.__table__
#: Statuses that mean "not done yet": a campaign with any of these is not finished.
OPEN_STATUSES = (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.DEFERRED)


class ClaimedRow(NamedTuple):
    """A row this worker now holds (status `sending`), with what is needed to mail it."""

    id: int
    subscriber_id: int
    email: str
    name: str
    key: str
    language: str
    attempts: int


class Outcome(NamedTuple):
    """What happened to one claimed row. `status` is sent, deferred, failed or queued (released)."""

    row_id: int
    status: OutboxStatus
    reply: str | None
    message_id: str | None = None
    next_attempt_at: datetime | None = None
    #: A permanent refusal of the address (5xx at RCPT): the caller suppresses it.
    hard_bounce_email: str | None = None
    #: Whether the relay was given the message (counts as an attempt).
    attempted: bool = True
    #: The relay that answered (its name, or host:port) and its final reply code (0: connection lost).
    relay: str | None = None
    reply_code: int | None = None


class Recheck(NamedTuple):
    """The consent re-check's answer for the rows a worker is about to send: every row not
    named here may go."""

    #: {row id: reason} for the rows that may no longer be mailed, now `skipped` by this worker.
    skipped: dict[int, str]
    #: The rows this worker no longer holds (another worker took them over as stale, or they
    #: are finished): not to be sent, and not written, for their new holder owns them. After a
    #: round that also wrote outcomes (`rounds.write_and_recheck`), with the outcomes' rows the
    #: write did not change: their messages went, but another worker's outcome counts.
    not_held: frozenset[int]


class Counts(NamedTuple):
    queued: int = 0
    sending: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return sum(self)

    @property
    def open(self) -> int:
        """Rows not yet in a final state."""
        return self.queued + self.sending + self.deferred


class FailureLine(NamedTuple):
    email: str | None
    status: OutboxStatus
    attempts: int
    reply: str | None
    updated_at: datetime | None
    #: The relay of the last attempt and its reply code (None: never attempted).
    relay: str | None = None
    reply_code: int | None = None


def _audience(campaign_id: int, list_id: int, kind: str, mapping: Mapping[str, str], default_language: str, *,
              now: datetime, segment: Filter | None, status: OutboxStatus = OutboxStatus.QUEUED,
              reply: str | None = None, ids: tuple[int, int] | None = None):
    """The SELECT of the ledger rows of a campaign's audience: every active, confirmed
    subscriber of its list (of those `segment` names), each with the variant they get; a daily
    summary leaves out those who take the list's daily summaries as one digest. `ids`: only
    subscribers with low < id <= high."""
    language = case(*[(Subscriber.language == reader, literal(variant)) for reader, variant in mapping.items()],
                    else_=literal(default_language)) if mapping else literal(default_language)
    # In the order the list's index gives them (no sort of every reader: a million rows took
    # seconds to sort); the rows are sent in the order they are written.
    source = (
        select(literal(campaign_id), Subscriber.id, cast(literal(status.value), OutboxRow.status.type),
               language, literal(0), literal(now, OutboxRow.updated_at.type), literal(reply, OutboxRow.last_reply.type))
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(_of_list(list_id, ids), Subscription.status == SubscriptionStatus.ACTIVE,
               Subscriber.status == SubscriberStatus.ACTIVE)
    )
    if ids is not None:
        low, high = ids
        source = source.where(Subscription.subscriber_id > low, Subscription.subscriber_id <= high,
                              Subscriber.id > low, Subscriber.id <= high)
    if kind == DAILY_SUMMARY:  # digest readers get the session's days in one mail instead
        source = source.where(~select(DeliveryChoice.subscriber_id).where(
            DeliveryChoice.subscriber_id == Subscriber.id, DeliveryChoice.list_id == list_id,
            DeliveryChoice.delivery == DeliveryMode.DIGEST).exists())
    if segment is not None:
        from .segments import filter_clause  # the one compiler of segment trees

        source = source.where(filter_clause(segment))
    return source


def _of_list(list_id: int, ids: tuple[int, int] | None):
    """Subscriptions to the list. For a range of subscriber ids, written `list_id + 0 = ?`: no
    index on the list then, so that the range is read from the primary key — else SQLite reads
    every subscription of the list (and sorts them, for a chunk's bound) for each chunk."""
    return Subscription.list_id == list_id if ids is None else (Subscription.list_id + 0) == list_id


_COLUMNS = ["campaign_id", "subscriber_id", "status", "language", "attempts", "updated_at", "last_reply"]


def _insert(session: Session, source) -> int:
    """INSERT … SELECT `source` into the ledger; returns rows added."""
    from .bulk import BulkStore  # the values are our constants: SQLite's CHECKs need not build a b-tree a row

    with BulkStore(session.connection()).own_values():
        # preserve_rowcount: else psycopg's rowcount of an INSERT … SELECT is not kept (-1)
        return session.execute(insert(OUTBOX).from_select(_COLUMNS, source)
                               .execution_options(preserve_rowcount=True)).rowcount


def _mapping(languages: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    return dict(languages) if isinstance(languages, Mapping) else {lang: lang for lang in languages}


def create_rows(session: Session, campaign: Campaign, *, languages: Sequence[str] | Mapping[str, str],
                default_language: str, now: datetime, segment: Filter | None = None) -> int:
    """Queue one row per active, confirmed subscriber of the campaign's list (one statement),
    of those `segment` names when it is given.

    Idempotent: subscribers who already have a row are left alone. A row's language is the
    variant the subscriber gets: `languages` maps a subscriber's language to it (a sequence
    maps each language to itself); anyone else gets `default_language`. Returns rows added.
    A daily summary leaves out those who take the list's daily summaries as one digest.
    """
    count = select(func.count()).select_from(OUTBOX).where(OUTBOX.c.campaign_id == campaign.id)
    before = session.scalar(count) or 0
    source = _audience(campaign.id, campaign.list_id, campaign.kind, _mapping(languages), default_language,
                       now=now, segment=segment)
    if before:  # resuming or adding: leave alone who has a row (a new campaign has none to look up)
        source = source.where(~select(OutboxRow.id).where(OutboxRow.campaign_id == campaign.id,
                                                          OutboxRow.subscriber_id == Subscriber.id).exists())
    added = _insert(session, source)
    if session.bind.dialect.name == "sqlite":
        return added
    # Counted rather than read from rowcount, which psycopg does not report for INSERT … SELECT.
    return (session.scalar(count) or 0) - before


# -- the ledger written in chunks ----------------------------------------------------------------
#
# A campaign's ledger is written in chunks of the list's subscribers, by subscriber id: the
# first when it starts, the rest while it sends (`write_chunk`, from each sender). The campaign
# keeps how far it got: rows are written for every subscriber id up to `ledger_through`, and
# are still to be written up to `ledger_until` (the highest subscriber id when it started:
# people who came later are not its audience, as they were not when the ledger was written in
# one statement). A chunk and the move of that mark are one transaction, taken in turn (the
# campaign's row locked on PostgreSQL, the write lock on SQLite): a crash loses no chunk and
# writes none twice, and two senders write different chunks. A subscription confirmed after
# the campaign started is left out of the later chunks, as it would have been of one statement.

_CAMPAIGNS = Campaign.__table__


class LedgerMark(NamedTuple):
    """How far a campaign's ledger is written (see above). `whole`: nothing is left to write."""

    through: int | None
    until: int | None

    @property
    def whole(self) -> bool:
        return self.until is None


def ledger_mark(session: Session, campaign_id: int, *, lock: bool = False) -> LedgerMark:
    """How far the campaign's ledger is written (read again from the database). `lock`: the
    campaign's row is locked (on PostgreSQL; SQLite's write lock serialises writers) until the
    caller's transaction ends, so that writers of chunks take their turn."""
    query = select(_CAMPAIGNS.c.ledger_through, _CAMPAIGNS.c.ledger_until).where(_CAMPAIGNS.c.id == campaign_id)
    if lock and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(key_share=True)  # FOR NO KEY UPDATE: the ledger's FK checks go on
    through, until = session.execute(query).one()
    return LedgerMark(through, until)


def begin_rows(session: Session, campaign: Campaign, *, languages: Sequence[str] | Mapping[str, str],
               default_language: str, now: datetime, segment: Filter | None = None, chunk: int) -> int:
    """Begin a new campaign's ledger (`create_rows`'s rows, written in chunks of about `chunk`
    of the list's subscribers): write chunks until one has a row or the whole is written; the
    rest is `write_chunk`'s. Returns rows added (0: the audience is empty, the ledger whole)."""
    until = session.scalar(select(func.max(Subscriber.id)))
    _move_mark(session, campaign.id, 0, until)
    added, whole = 0, until is None
    while not added and not whole:
        added, whole = write_chunk(session, campaign.id, languages=languages, default_language=default_language,
                                   now=now, segment=segment, chunk=chunk, first=True)
    session.expire(campaign, ["ledger_through", "ledger_until"])
    return added


def write_chunk(session: Session, campaign_id: int, *, languages: Sequence[str] | Mapping[str, str],
                default_language: str, now: datetime, segment: Filter | None = None, chunk: int,
                first: bool = False) -> tuple[int, bool]:
    """Write the next chunk of the campaign's ledger: the rows of the next `chunk` of its list's
    subscribers past the mark, then move the mark (in the caller's transaction, taking the
    writers' turn). Subscriptions confirmed after the campaign was created are left out, unless
    `first` (the chunks written in the campaign's own first transaction). Returns (rows added,
    whether the ledger is now whole); (0, True) when it already was."""
    mark = ledger_mark(session, campaign_id, lock=True)
    if mark.whole:
        return 0, True
    list_id, kind, created = session.execute(
        select(_CAMPAIGNS.c.list_id, _CAMPAIGNS.c.kind, _CAMPAIGNS.c.created_at)
        .where(_CAMPAIGNS.c.id == campaign_id)).one()
    low = mark.through or 0
    high = session.scalar(
        select(Subscription.subscriber_id)
        .where(_of_list(list_id, (low, mark.until)), Subscription.subscriber_id > low,
               Subscription.subscriber_id <= mark.until)
        .order_by(Subscription.subscriber_id).offset(max(chunk, 1) - 1).limit(1))
    high = mark.until if high is None else high
    source = _audience(campaign_id, list_id, kind, _mapping(languages), default_language, now=now, segment=segment,
                       ids=(low, high))
    added = _insert(session, _confirmed_by(source, None if first else created))
    whole = high >= mark.until
    _move_mark(session, campaign_id, high, None if whole else mark.until)
    return max(added, 0), whole


def _confirmed_by(source, confirmed_by: datetime | None):
    """`source` without the subscriptions confirmed after `confirmed_by` (None: all of them)."""
    if confirmed_by is not None:
        source = source.where(or_(Subscription.confirmed_at.is_(None), Subscription.confirmed_at <= confirmed_by))
    return source


def _move_mark(session: Session, campaign_id: int, through: int | None, until: int | None) -> None:
    session.execute(update(_CAMPAIGNS).where(_CAMPAIGNS.c.id == campaign_id)
                    .values(ledger_through=through, ledger_until=until))


def skip_unwritten(session: Session, campaign_id: int, reason: str, *, languages: Sequence[str] | Mapping[str, str],
                   default_language: str, now: datetime, segment: Filter | None = None) -> int:
    """Write the rest of the campaign's ledger at once, every row `skipped` with `reason`
    (cancelling while it was still being written: the ledger ends as it would have had every
    row been written before), and make it whole. Returns rows written."""
    mark = ledger_mark(session, campaign_id, lock=True)
    if mark.whole:
        return 0
    list_id, kind, created = session.execute(
        select(_CAMPAIGNS.c.list_id, _CAMPAIGNS.c.kind, _CAMPAIGNS.c.created_at)
        .where(_CAMPAIGNS.c.id == campaign_id)).one()
    source = _audience(campaign_id, list_id, kind, _mapping(languages), default_language, now=now, segment=segment,
                       status=OutboxStatus.SKIPPED, reply=reason, ids=(mark.through or 0, mark.until))
    added = _insert(session, _confirmed_by(source, created))
    _move_mark(session, campaign_id, mark.until, None)
    return max(added, 0)


def _skip_reason(subscriber_status, subscription_status, email, suppressed: Collection[str],
                 hashed: str | None = None) -> str | None:
    """Why a row may not be mailed (None: it may). `hashed`: the address's `address_hash`,
    when the caller has it."""
    if email is None:
        return "the subscriber was erased"
    if subscriber_status != SubscriberStatus.ACTIVE:
        return f"the subscriber is {SubscriberStatus(subscriber_status).value}"
    if subscription_status is None:
        return "not subscribed to the list"
    if subscription_status != SubscriptionStatus.ACTIVE:
        return f"the subscription is {SubscriptionStatus(subscription_status).value}"
    if suppressed and (hashed or address_hash(email)) in suppressed:
        return "the address is suppressed"
    return None


def _binder(dialect, column):
    """The column's own bind processor (values converted as SQLAlchemy would), or identity."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    return process or (lambda value: value)


class _ClaimStatements(NamedTuple):
    """A dialect's claim statements in its driver's parameter style (built once)."""

    select: str      # {extra}: the condition; {limit}
    stale: str       # the reclaim condition; {dead}: "OR claimed_by is a dead worker", or ""
    deferred: str
    queued: str
    suppressed: str  # {n}: the hashes
    take: str        # {n}: the ids
    skip: str
    stamp: Callable[[datetime], object]
    postgres: bool


_CLAIM_CACHE: dict[str, _ClaimStatements] = {}


def _claim_statements(dialect) -> _ClaimStatements:
    found = _CLAIM_CACHE.get(dialect.name)
    if found is not None:
        return found
    postgres = dialect.name == "postgresql"
    p = "%s" if postgres else "?"
    sending, queued, deferred = (OutboxStatus.SENDING.value, OutboxStatus.QUEUED.value,
                                 OutboxStatus.DEFERRED.value)
    # In the claim index's order on SQLite (campaign, status, next_attempt_at, id): no sort of
    # every open row per claim, which made a claim cost grow with the list. PostgreSQL takes
    # row locks, skipping rows other workers hold.
    tail = f" LIMIT {p} FOR UPDATE OF o SKIP LOCKED" if postgres else f" ORDER BY o.next_attempt_at, o.id LIMIT {p}"
    select_ = ("SELECT o.id, o.subscriber_id, o.language, o.attempts, s.email, s.name, s.key, s.status, sub.status "
               "FROM outbox o LEFT OUTER JOIN subscribers s ON s.id = o.subscriber_id "
               f"LEFT OUTER JOIN subscriptions sub ON sub.subscriber_id = o.subscriber_id AND sub.list_id = {p} "
               f"WHERE o.campaign_id = {p} AND {{extra}}{tail}")
    found = _CLAIM_CACHE[dialect.name] = _ClaimStatements(
        select=select_,
        # Never the claimer's own rows: a live worker's message may be on the wire or waiting for
        # the pacing (a relay's hourly cap can hold one for most of an hour) however old its
        # claim; taking them back would send them twice. Only another worker takes over.
        stale=f"o.status = '{sending}' AND ((o.claimed_at < {p} AND o.claimed_by <> {p}){{dead}})",
        deferred=f"o.status = '{deferred}' AND o.next_attempt_at <= {p}",
        queued=f"o.status = '{queued}'",
        suppressed=("SELECT address_hash FROM suppressions WHERE "
                    + ("address_hash = ANY(%s)" if postgres else "address_hash IN ({n})")),
        take=(f"UPDATE outbox SET status = '{sending}', claimed_by = {p}, claimed_at = {p}, updated_at = {p} WHERE "
              + ("id = ANY(%s)" if postgres else "id IN ({n})")),
        skip=(f"UPDATE outbox SET status = '{OutboxStatus.SKIPPED.value}', last_reply = {p}, claimed_by = NULL, "
              f"updated_at = {p} WHERE id = {p}"),
        stamp=_binder(dialect, OUTBOX.c.updated_at),
        postgres=postgres,
    )
    return found


#: Rows a claim writes before SQLite's CHECK constraints are switched off for its UPDATEs: the
#: switch makes SQLite prepare the connection's statements again, which costs more than a few checks.
_CHECKS_OFF_FROM = 32


def _own_statuses(conn: Connection, rows: int):
    """A block whose UPDATEs write only statuses we wrote into their SQL (SQLite, `rows` of them
    or more: CHECK constraints off in it, as `bulk.BulkStore.own_values` does for inserts, for
    the same reason: SQLite 3.40 checks `status IN (…)` with a temporary b-tree a row)."""
    if conn.dialect.name == "postgresql" or rows < _CHECKS_OFF_FROM:
        return nullcontext()
    from .bulk import BulkStore

    return BulkStore(conn).own_values()


def claim_batch(session: Session, campaign: Campaign, worker: str, *, limit: int, now: datetime,
                stale_before: datetime, dead_workers: Collection[str] = ()) -> tuple[list[ClaimedRow], int]:
    """Take up to `limit` rows to send: queued ones, deferred ones that are due, and `sending`
    ones whose worker is dead (named in `dead_workers`) or whose claim is older than `stale_before`
    (another worker's only: `worker` never takes back its own).

    Consent is re-checked for each; rows that fail it become `skipped` with the reason. Returns
    (rows now held by `worker` in status `sending`, number skipped). Takes row locks on
    PostgreSQL (skipping rows other workers hold); call in a short transaction of its own.

    Driver-level statements on the session's connection, in its transaction: a claim of 200
    rows through the ORM cost ~60 µs a row, most of it building, binding and reading.
    """
    conn = session.connection()
    q = _claim_statements(conn.dialect)
    stamp = q.stamp
    cursor = conn.connection.driver_connection.cursor()
    try:
        dead = list(dead_workers)
        if q.postgres:
            stale = q.stale.format(dead=" OR o.claimed_by = ANY(%s)" if dead else "")
            stale_args: tuple = (stamp(stale_before), worker, dead) if dead else (stamp(stale_before), worker)
        else:
            stale = q.stale.format(dead=f" OR o.claimed_by IN ({','.join('?' * len(dead))})" if dead else "")
            stale_args = (stamp(stale_before), worker, *dead)
        conditions = ((stale, stale_args), (q.deferred, (stamp(now),)), (q.queued, ()))
        found: list = []
        for condition, args in conditions:
            if len(found) >= limit:
                break
            cursor.execute(q.select.format(extra=condition),
                           (campaign.list_id, campaign.id, *args, limit - len(found)))
            found.extend(cursor.fetchall())
        if not found:
            return [], 0
        hashes = {e: address_hash(e) for e in {r[4] for r in found if r[4] is not None}}
        suppressed: set[str] = set()
        values = list(hashes.values())
        for i in range(0, len(values), 500):
            chunk = values[i:i + 500]
            if q.postgres:
                cursor.execute(q.suppressed, (chunk,))
            else:
                cursor.execute(q.suppressed.format(n=",".join("?" * len(chunk))), chunk)
            suppressed.update(r[0] for r in cursor.fetchall())
        claimed: list[ClaimedRow] = []
        skipped: list[tuple] = []
        at = stamp(now)
        for row_id, subscriber_id, language, attempts, email, name, key, s_status, sub_status in found:
            reason = _skip_reason(s_status, sub_status, email, suppressed, hashes.get(email))
            if reason:
                skipped.append(("skipped: " + reason, at, row_id))
            else:
                claimed.append(ClaimedRow(row_id, subscriber_id, email, name or "", key, language or "", attempts))
        ids = [r.id for r in claimed]
        with _own_statuses(conn, len(found)):
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                if q.postgres:
                    cursor.execute(q.take, (worker, at, at, chunk))
                else:
                    cursor.execute(q.take.format(n=",".join("?" * len(chunk))), (worker, at, at, *chunk))
            if skipped:
                cursor.executemany(q.skip, skipped)
        return claimed, len(skipped)
    finally:
        cursor.close()


def _recheck_statements():
    s, sub = Subscriber.__table__, Subscription.__table__
    held = and_(OUTBOX.c.claimed_by == bindparam("b_worker"), OUTBOX.c.status == OutboxStatus.SENDING)
    query = (
        select(OUTBOX.c.id, s.c.status, sub.c.status, s.c.email, held.label("held"))
        .select_from(OUTBOX.join(s, s.c.id == OUTBOX.c.subscriber_id)
                     .join(sub, and_(sub.c.subscriber_id == OUTBOX.c.subscriber_id,
                                     sub.c.list_id == bindparam("b_list"))))
        .where(OUTBOX.c.id.in_(bindparam("b_ids", expanding=True)))
    )
    # The outbox rows key-share-locked: a claim (FOR UPDATE) passes them by until the caller's
    # transaction ends, while this worker's renewal of its claims does not wait.
    locking = (query.with_for_update(read=True, of=[s, sub])
               .suffix_with(f"FOR KEY SHARE OF {OUTBOX.name}", dialect="postgresql"))
    skip = (update(OUTBOX)
            .where(OUTBOX.c.id == bindparam("b_id"), OUTBOX.c.claimed_by == bindparam("b_worker"),
                   OUTBOX.c.status == OutboxStatus.SENDING)
            .values(status=OutboxStatus.SKIPPED, last_reply=bindparam("b_reply"), claimed_by=None,
                    updated_at=bindparam("b_now", type_=OUTBOX.c.updated_at.type)))
    return query, locking, skip


# Built once: the gate runs them for every few messages.
_RECHECK, _RECHECK_LOCKING, _SKIP = _recheck_statements()

#: The reason of a row whose subscriber or subscription the re-check did not find.
_NOT_FOUND = "the subscriber was erased or is not subscribed to the list"


def _sort_rechecked(rows: Sequence[ClaimedRow], found_rows: Iterable[Sequence]) -> tuple[set[int], dict[int, str]]:
    """Sort `rows` by their re-check (`found_rows`: id, subscriber status, subscription status,
    email, whether the worker holds the row), for both re-checks (`recheck_consent`,
    `store.rounds`). Returns (the ids the worker no longer holds, {id: "skipped: " + reason}
    for the others that may not be mailed, in the order of `rows`). A row not found (its
    subscriber erased, or no subscription) has a reason: the caller's guarded skip tells
    whether it is still the worker's."""
    found = {r[0]: r for r in found_rows}
    not_held: set[int] = set()
    reasons: dict[int, str] = {}
    for row in rows:
        hit = found.get(row.id)
        if hit is not None and not hit[4]:
            not_held.add(row.id)
            continue
        reason = _NOT_FOUND if hit is None else _skip_reason(hit[1], hit[2], hit[3], frozenset())
        if reason:
            reasons[row.id] = "skipped: " + reason
    return not_held, reasons


def recheck_consent(conn: Connection, list_id: int, worker: str, rows: Sequence[ClaimedRow], *,
                    now: datetime) -> Recheck:
    """Check consent again for rows `worker` claimed, in one query; skip those that fail it.

    Looks at the subscriber's and the subscription's status: every way an address stops being
    mailable changes one of them in the same transaction (unsubscribe, `consent.suppress` for
    bounces, complaints and blocks, erasure). The suppression list itself is read at claim time.
    Returns the rows now `skipped` and those `worker` no longer holds (left as they are). On
    PostgreSQL the subscriber and subscription rows are share-locked until the caller's
    transaction ends, so an unsubscribe (an UPDATE of those rows) waits for it, and the outbox
    rows key-share-locked, so another worker's claim passes them by; on SQLite the caller's
    transaction holds the write lock. Either way a change that commits after this call is
    ordered after the transaction.
    """
    if not rows:
        return Recheck({}, frozenset())
    query = _RECHECK_LOCKING if conn.dialect.name == "postgresql" else _RECHECK
    not_held, reasons = _sort_rechecked(rows, conn.execute(query, {"b_list": list_id, "b_worker": worker,
                                                                   "b_ids": [r.id for r in rows]}))
    skipped: dict[int, str] = {}
    for row_id, reason in reasons.items():
        # Written only while `worker` holds the row: a row not found may be another's.
        if conn.execute(_SKIP, {"b_id": row_id, "b_reply": reason, "b_worker": worker, "b_now": now}).rowcount:
            skipped[row_id] = reason
        else:
            not_held.add(row_id)
    return Recheck(skipped, frozenset(not_held))


# Built once: the sender runs it many times a second, and building it is most of its cost.
_RECORD = (
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("b_id"), OUTBOX.c.claimed_by == bindparam("b_worker"),
           OUTBOX.c.status == OutboxStatus.SENDING)
    .values(
        status=bindparam("b_status"),
        last_reply=func.coalesce(bindparam("b_reply"), OUTBOX.c.last_reply),
        message_id=func.coalesce(bindparam("b_mid"), OUTBOX.c.message_id),
        relay=func.coalesce(bindparam("b_relay", type_=OUTBOX.c.relay.type), OUTBOX.c.relay),
        reply_code=func.coalesce(bindparam("b_code", type_=OUTBOX.c.reply_code.type), OUTBOX.c.reply_code),
        next_attempt_at=bindparam("b_next", type_=OUTBOX.c.next_attempt_at.type),
        sent_at=func.coalesce(bindparam("b_sent", type_=OUTBOX.c.sent_at.type), OUTBOX.c.sent_at),
        attempts=OUTBOX.c.attempts + bindparam("b_inc"),
        claimed_by=None,
        updated_at=bindparam("b_now", type_=OUTBOX.c.updated_at.type),
    )
)


def record_outcomes(session: Session | Connection, worker: str, outcomes: Iterable[Outcome], *, now: datetime) -> int:
    """Write what happened to rows `worker` holds, in one statement; returns rows written.

    A row is only written while `worker` still holds it (status `sending`, claimed by it), so a
    worker whose claim was taken over cannot overwrite the new holder's result. Takes a session
    or, cheaper for the sender's many small writes, a connection in a transaction. Sent rows get
    `sent_at`; every attempted row's `attempts` goes up by one; the relay and its reply code are
    kept where the outcome has them (else the row keeps those of its last attempt).
    """
    params = [
        {
            "b_id": oc.row_id,
            "b_status": oc.status.value,
            "b_reply": oc.reply,
            "b_mid": oc.message_id,
            "b_relay": oc.relay,
            "b_code": oc.reply_code,
            "b_next": oc.next_attempt_at,
            "b_sent": now if oc.status is OutboxStatus.SENT else None,
            "b_inc": 1 if oc.attempted else 0,
            "b_worker": worker,
            "b_now": now,
        }
        for oc in outcomes
    ]
    if not params:
        return 0
    conn = session.connection() if isinstance(session, Session) else session
    result = conn.execute(_RECORD, params)
    return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(params)


def release_rows(session: Session, worker: str, row_ids: Sequence[int], *, now: datetime,
                 status: OutboxStatus = OutboxStatus.QUEUED, reason: str | None = None) -> int:
    """Give back rows `worker` holds but did not send (to `queued`, or `skipped` with a reason)."""
    total = 0
    for i in range(0, len(row_ids), 500):
        values = dict(status=status, claimed_by=None, updated_at=now)
        if reason:
            values["last_reply"] = reason
        total += session.execute(
            update(OUTBOX).where(OUTBOX.c.id.in_(list(row_ids[i:i + 500])), OUTBOX.c.claimed_by == worker,
                                 OUTBOX.c.status == OutboxStatus.SENDING).values(**values)
        ).rowcount or 0
    return total


def renew_claims(session: Session, campaign_id: int, worker: str, *, now: datetime) -> int:
    """Stamp the rows `worker` holds in the campaign as claimed `now`, so that no other worker
    takes them as stale while this one, alive, waits its turn to send them (a slow pace, an
    hourly cap). Returns how many."""
    return session.execute(
        update(OUTBOX).where(OUTBOX.c.campaign_id == campaign_id, OUTBOX.c.claimed_by == worker,
                             OUTBOX.c.status == OutboxStatus.SENDING).values(claimed_at=now)
    ).rowcount or 0


def count_rows(session: Session, campaign_id: int) -> Counts:
    """How many of the campaign's rows are in each state."""
    rows = session.execute(
        select(OutboxRow.status, func.count()).where(OutboxRow.campaign_id == campaign_id).group_by(OutboxRow.status)
    ).all()
    by_status = {OutboxStatus(status).value: n for status, n in rows}
    return Counts(**{field: by_status.get(field, 0) for field in Counts._fields})


def next_due_at(session: Session, campaign_id: int) -> datetime | None:
    """When the earliest deferred row is due again (None when none is deferred)."""
    return session.scalar(
        select(func.min(OutboxRow.next_attempt_at))
        .where(OutboxRow.campaign_id == campaign_id, OutboxRow.status == OutboxStatus.DEFERRED)
    )


def requeue_rows(session: Session, campaign_id: int, statuses: Sequence[OutboxStatus], *, now: datetime) -> int:
    """Put rows in `statuses` back to `queued` (for `campaign retry`); returns how many."""
    return session.execute(
        update(OUTBOX).where(OUTBOX.c.campaign_id == campaign_id, OUTBOX.c.status.in_(list(statuses)))
        .values(status=OutboxStatus.QUEUED, next_attempt_at=None, claimed_by=None, updated_at=now)
    ).rowcount or 0


def skip_remaining(session: Session, campaign_id: int, reason: str, *, now: datetime) -> int:
    """Mark every queued or deferred row skipped with `reason` (cancelling); returns how many."""
    return session.execute(
        update(OUTBOX).where(OUTBOX.c.campaign_id == campaign_id,
                             OUTBOX.c.status.in_([OutboxStatus.QUEUED, OutboxStatus.DEFERRED]))
        .values(status=OutboxStatus.SKIPPED, last_reply=reason, next_attempt_at=None, updated_at=now)
    ).rowcount or 0


def list_failures(session: Session, campaign_id: int, *, limit: int | None = None) -> list[FailureLine]:
    """Who did not get the mail and why: failed, deferred and skipped rows, by address."""
    query = (
        select(Subscriber.email, OutboxRow.status, OutboxRow.attempts, OutboxRow.last_reply, OutboxRow.updated_at,
               OutboxRow.relay, OutboxRow.reply_code)
        .select_from(OutboxRow)
        .outerjoin(Subscriber, Subscriber.id == OutboxRow.subscriber_id)
        .where(OutboxRow.campaign_id == campaign_id,
               OutboxRow.status.in_([OutboxStatus.FAILED, OutboxStatus.DEFERRED, OutboxStatus.SKIPPED]))
        .order_by(OutboxRow.status, Subscriber.email)
    )
    if limit:
        query = query.limit(limit)
    return [FailureLine(e, OutboxStatus(st), a, r, u, relay, code) for e, st, a, r, u, relay, code in session.execute(query)]


def counts_by_relay(session: Session, campaign_id: int) -> dict[str, dict[str, int]]:
    """relay -> row status -> rows, for the campaign's rows a relay answered for (by relay name)."""
    out: dict[str, dict[str, int]] = {}
    for relay, status, n in session.execute(
            select(OutboxRow.relay, OutboxRow.status, func.count())
            .where(OutboxRow.campaign_id == campaign_id, OutboxRow.relay.is_not(None))
            .group_by(OutboxRow.relay, OutboxRow.status).order_by(OutboxRow.relay)):
        out.setdefault(relay, {})[OutboxStatus(status).value] = n
    return out


def active_claims(session: Session, campaign_id: int) -> dict[str, int]:
    """Rows in `sending`, by the worker holding them."""
    rows = session.execute(
        select(OutboxRow.claimed_by, func.count())
        .where(OutboxRow.campaign_id == campaign_id, OutboxRow.status == OutboxStatus.SENDING)
        .group_by(OutboxRow.claimed_by)
    ).all()
    return {worker or "?": n for worker, n in rows}
