"""Importing people from a CSV file: streamed, checked as read, written in set-based batches.

    file ─► csvrows.open_rows ─► csvrows.check_each (row by row) ─► duplicates merged, a batch
         of BATCH_SIZE rows at a time ─► writer thread, one transaction per batch: look up
         suppressions, people and their subscriptions (bulkstore), plan in Python, bulk-insert
         what is new, log consent ─► commit ─► confirmation mails for the new pending
         subscriptions, on one SMTP connection

The rules are `consent.subscribe`'s, applied to a whole batch at once:

- a suppressed address (erased, bounced, complained, blocked) is never imported;
- a person who has unsubscribed from any list is not subscribed again by an import (they may
  sign up again themselves); lists they already have stay as they are;
- a new subscription is *pending* (SIGNUP event, channel IMPORT, source "import:<file>") and a
  confirmation mail is due, within the re-send limits of `consent`; with `confirmed=True` and a
  consent note it is *active* at once, with an IMPORTED event carrying the note;
- people already in the store keep their name and language (the store wins over the file);
- a row whose address appeared earlier in the file is merged into it (its lists are added).

Concurrency: one writer thread commits batch n (and mails its confirmations) while this thread
reads and checks batch n+1; the database works without the GIL. The SQL is `bulkstore`'s: a
few large statements per batch (see there for why). Optional worker processes (`workers`)
check rows too; on the 2-core machine we measured, they cost more in pickling than they saved
(docs/benchmarks.md).

Running the same file again changes nothing. Memory stays flat whatever the file's size:
rows are read, checked and written a batch at a time, as tuples the garbage collector soon
stops tracking; the addresses seen so far (for counting duplicates across batches) are kept as
64-bit hashes in a temporary on-disk SQLite table; SQLite's page cache is widened to a fixed
bound (bulkstore.IMPORT_CACHE_KIB) for the import's connection.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import dataclasses
import multiprocessing
import os
import secrets
import sqlite3
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import NamedTuple

import aiosmtplib
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from ..addresses import address_hash, clean_text
from ..errors import DeliveryError, InvalidField, UnknownList
from ..installation import Newsletter
from ..statuses import Channel, ConsentKind, SubscriberStatus, SubscriptionStatus
from ..store import MailingList
from ..store.bulk import BulkStore, KnownPerson
from ..transport.smtp import open_connection
from . import confirmation_queue
from .consent import RESEND_INTERVAL, RESEND_MAX, RESEND_WINDOW, ConfirmationDue
from .csvrows import (
    CheckedRow,
    ColumnMap,
    RawRow,
    RejectedRow,
    RejectReason,
    RowRules,
    check_each,
    check_rows,
    open_rows,
)
from .records import spreadsheet_safe

__all__ = [
    "ImportOptions",
    "ImportProgress",
    "ImportReport",
    "RejectReason",
    "RejectedRow",
    "import_csv",
    "BATCH_SIZE",
    "MAX_REPORTED_REJECTS",
]

#: Rows per transaction (and per unit of work given to a worker process). Larger batches dirty
#: each index page for more rows at once (a million-row import: 18,500 rows/s at 20,000, 15,100 at
#: 10,000); 20,000 keeps a batch's objects to ~30 MiB.
BATCH_SIZE = 20_000
#: Rejected rows kept in the report (all of them go to the reject file).
MAX_REPORTED_REJECTS = 1000


@dataclass(frozen=True)
class ImportOptions:
    """How to import a file. `confirmed` needs a `consent_note` saying where the consent comes from."""

    #: Lists every row is added to, besides the lists its own `lists` cell names.
    list_slugs: tuple[str, ...] = ()
    #: Language of new people whose row names none (default: the configuration's default_language).
    language: str | None = None
    confirmed: bool = False
    consent_note: str | None = None
    #: Check and count everything, write nothing to the store (the reject file is still written).
    dry_run: bool = False
    #: "," ";" "tab" or None to detect it from the header line.
    delimiter: str | None = None
    #: Write rejected rows (the original cells plus `line` and `reason`) to this CSV file.
    rejects_path: str | None = None
    batch_size: int = BATCH_SIZE
    #: Worker processes that check rows while this one writes. 0: check here, which measured
    #: faster on 2 cores once domain checks are memoised (docs/benchmarks.md).
    workers: int = 0


class ImportProgress(NamedTuple):
    """Reported after each batch: rows read so far and how far into the file we are."""

    rows: int
    bytes_read: int
    total_bytes: int


@dataclass(frozen=True)
class ImportReport:
    """What an import did (or, for a dry run, would do). Every row is counted exactly once."""

    path: str
    delimiter: str
    columns: ColumnMap
    dry_run: bool
    #: Rows read (header and blank lines excluded).
    rows: int
    #: Rows that added a person or a subscription (or, confirmed, activated a pending one).
    imported: int
    #: Rows whose person already had every list they name (active or pending).
    already_there: int
    #: Rows whose address appeared earlier in the file; their lists were merged into it.
    merged_duplicates: int
    #: Rows for a suppressed or blocked address: never imported.
    suppressed: int
    #: Rows for a person who has unsubscribed: not subscribed again.
    unsubscribed: int
    rejected: int
    #: The first MAX_REPORTED_REJECTS rejected rows, in file order.
    rejected_rows: tuple[RejectedRow, ...]
    #: Confirmation mails due (sent, or for a dry run to be sent), sent, and refused by the relay.
    confirmations_due: int
    confirmations_sent: int
    confirmations_failed: int
    #: Confirmation mails the relay refused for now (4xx): queued for `newsletter serve`'s
    #: sender, which retries them with back-off.
    confirmations_queued: int = 0

    @property
    def valid(self) -> int:
        return self.rows - self.rejected


@dataclass
class _BatchCounts:
    """What one batch did (counted in the writer thread, added up in the reading one)."""

    imported: int = 0
    already_there: int = 0
    merged_duplicates: int = 0
    suppressed: int = 0
    unsubscribed: int = 0
    confirmations_due: int = 0
    confirmations_sent: int = 0
    confirmations_failed: int = 0
    confirmations_queued: int = 0


@dataclass
class _Tally(_BatchCounts):
    rows: int = 0
    rejected: int = 0
    rejected_rows: list[RejectedRow] = field(default_factory=list)

    def add(self, counts: _BatchCounts) -> None:
        for f in dataclasses.fields(_BatchCounts):
            setattr(self, f.name, getattr(self, f.name) + getattr(counts, f.name))


class _Person(NamedTuple):
    """A valid row, with later rows for the same address in its batch merged into it.

    A tuple of plain values: the garbage collector stops tracking it, which matters when a
    batch holds tens of thousands of them (docs/benchmarks.md).
    """

    line: int
    email: str
    #: addresses.address_hash(email): how the suppression list knows it.
    hash: str
    name: str
    language: str | None
    slugs: tuple[str, ...]
    #: The address appeared in an earlier batch.
    seen_before: bool = False


class _ListInfo(NamedTuple):
    id: int
    name: str


def import_csv(newsletter: Newsletter, path: str | os.PathLike, options: ImportOptions = ImportOptions(), *,
               progress: Callable[[ImportProgress], None] | None = None) -> ImportReport:
    """Import the people in a CSV file into the store; see the module docstring for the rules.

    Returns an ImportReport. Raises ImportFileError when the file cannot be read at all (no
    email column, unreadable), UnknownList for an unknown `list_slugs` entry, InvalidField for
    bad options, and DeliveryError when confirmation mails are due and the relay cannot be used
    (checked before anything is written; if it fails later, the batches already committed stay).
    Rows are never raised: each bad row is counted and reported with its line number.
    Blocking: call it from synchronous code or a worker thread, not from a running event loop.
    """
    path = os.fspath(path)
    config = newsletter.config
    note = _check_options(options, config.languages)
    with newsletter.store.session() as session:
        lists = {m.slug: _ListInfo(m.id, m.name) for m in session.scalars(select(MailingList))}
    for slug in options.list_slugs:
        if slug not in lists:
            raise UnknownList(slug)
    source = f"import:{Path(path).name}"[:200]
    tally = _Tally()
    mailer = None
    with open_rows(path, options.delimiter) as rows, _SeenAddresses() as seen, _RejectFile(
            options.rejects_path, rows.header) as reject_file:
        rules = RowRules(
            columns=rows.columns, languages=config.languages, known_lists=frozenset(lists),
            extra_lists=tuple(options.list_slugs), default_language=None,
            check_deliverability=config.check_deliverability,
        )
        workers = options.workers or 0
        default_language = options.language or config.default_language

        store = _StoreWriter(newsletter)

        def store_batch(people: list[_Person]) -> _BatchCounts:
            """Write one batch, then mail its confirmations (in the writer thread)."""
            counts, dues = store.write(people, lists, options, source=source, note=note,
                                       default_language=default_language)
            if dues and mailer is not None:
                counts.confirmations_sent, counts.confirmations_failed, later = mailer.send(
                    [(due, [lists[s].name for s in due.list_slugs]) for due in dues])
                if later:
                    with newsletter.store.session() as session:
                        confirmation_queue.enqueue_confirmations(session, later, now=newsletter.clock())
                    counts.confirmations_queued = len(later)
            return counts

        # One writer thread: while it writes batch n (the driver releases the GIL inside the
        # database), this thread reads and checks batch n+1. One batch in flight keeps the
        # order of batches, so a duplicate always finds the earlier row committed.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") as writer:
            if not options.confirmed and not options.dry_run:
                mailer = _ConfirmationMailer(newsletter)
                writer.submit(mailer.connect).result()  # fail before writing anything if the relay is unusable
            try:
                in_flight: Future | None = None
                for people in _batches(rows, rules, options.batch_size, workers, tally, seen, reject_file):
                    if in_flight is not None:
                        tally.add(in_flight.result())
                    in_flight = writer.submit(store_batch, people) if people else None
                    if progress is not None:
                        progress(ImportProgress(tally.rows, rows.bytes_read, rows.total_bytes))
                if in_flight is not None:
                    tally.add(in_flight.result())
            finally:
                writer.submit(store.close).result()
                if mailer is not None:
                    writer.submit(mailer.close).result()
    return ImportReport(
        path=path, delimiter=rows.delimiter, columns=rows.columns, dry_run=options.dry_run, rows=tally.rows,
        imported=tally.imported, already_there=tally.already_there, merged_duplicates=tally.merged_duplicates,
        suppressed=tally.suppressed, unsubscribed=tally.unsubscribed, rejected=tally.rejected,
        rejected_rows=tuple(tally.rejected_rows), confirmations_due=tally.confirmations_due,
        confirmations_sent=tally.confirmations_sent, confirmations_failed=tally.confirmations_failed,
        confirmations_queued=tally.confirmations_queued,
    )


def _check_options(options: ImportOptions, languages: tuple[str, ...]) -> str | None:
    """The cleaned consent note; raises InvalidField for options that cannot work."""
    if options.language is not None and options.language not in languages:
        raise InvalidField("language", f"choose one of {', '.join(languages)}")
    if options.batch_size < 1:
        raise InvalidField("batch_size", "at least 1")
    note = clean_text("consent note", options.consent_note, max_length=2000) or None
    if options.confirmed and not note:
        raise InvalidField("consent note", "a confirmed import must say where the people's consent comes from "
                                           "(e.g. --consent-note \"signed up on paper at ASP 23, forms kept in Geneva\")")
    return note


# -- reading and checking ----------------------------------------------------------------------


def _batches(rows: Iterable[RawRow | RejectedRow], rules: RowRules, size: int, workers: int, tally: _Tally,
             seen: "_SeenAddresses", reject_file: "_RejectFile") -> Iterator[list[_Person]]:
    """The valid people of each `size` rows read, duplicates within the batch merged, in file order.

    Rejected rows are counted (and written to the reject file) on the way. Rows are checked
    one at a time as they are read, so that only the merged people of one batch stay in memory;
    with `workers`, chunks of rows are checked in worker processes instead.
    """
    if workers > 0:
        checked: Iterable[CheckedRow | RejectedRow] = chain.from_iterable(
            _checked_chunks(_chunks(rows, size), rules, workers))
    else:
        checked = check_each(rows, rules)
    people: dict[str, _Person] = {}
    count = 0
    for row in checked:
        count += 1
        if type(row) is RejectedRow:
            tally.rejected += 1
            if len(tally.rejected_rows) < MAX_REPORTED_REJECTS:
                tally.rejected_rows.append(row._replace(cells=()))
            reject_file.write(row)
        else:
            person = people.get(row.email)
            if person is None:
                people[row.email] = _Person(row.line, row.email, address_hash(row.email), row.name, row.language,
                                            row.list_slugs)
            else:
                tally.merged_duplicates += 1
                people[row.email] = person._replace(
                    slugs=(*person.slugs, *(s for s in row.list_slugs if s not in person.slugs)),
                    name=person.name or row.name, language=person.language or row.language)
        if count == size:
            tally.rows += count
            yield _mark_seen(people, seen)
            people, count = {}, 0
    if count:
        tally.rows += count
        yield _mark_seen(people, seen)


def _mark_seen(people: dict[str, _Person], seen: "_SeenAddresses") -> list[_Person]:
    """The batch's people, those whose address appeared in an earlier batch marked so."""
    return [p._replace(seen_before=True) if was_seen else p
            for p, was_seen in zip(people.values(), seen.add(list(people)))]


def _chunks(rows: Iterable[RawRow | RejectedRow], size: int) -> Iterator[list[RawRow | RejectedRow]]:
    chunk: list[RawRow | RejectedRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _checked_chunks(chunks: Iterator[list[RawRow | RejectedRow]], rules: RowRules,
                    workers: int) -> Iterator[list[CheckedRow | RejectedRow]]:
    """Chunks checked in worker processes, in file order: up to 2 chunks per worker are checked
    ahead while the caller writes the current one (bounded, so memory stays flat)."""
    # spawn, not fork: the parent may hold database connections and threads.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        ahead: deque[Future] = deque()
        for chunk in chunks:
            ahead.append(pool.submit(check_rows, chunk, rules))
            if len(ahead) > 2 * workers:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


# -- writing a batch ----------------------------------------------------------------------------


class _StoreWriter:
    """The writer thread's one connection to the store, for the whole import.

    Opened at the first batch and closed by `close()`, both in the writer thread; each batch is
    one transaction on it. (One connection, so that SQLite's widened page cache stays warm.)
    """

    def __init__(self, newsletter: Newsletter):
        self.newsletter = newsletter
        self._connection: Connection | None = None
        self._bulk: BulkStore | None = None

    def write(self, people: list[_Person], lists: dict[str, _ListInfo], options: ImportOptions,
              **kwargs) -> tuple[_BatchCounts, list[ConfirmationDue]]:
        """One transaction for the batch; retried when a concurrent sign-up inserted one of its people."""
        if self._connection is None:
            self._connection = self.newsletter.store.engine.connect()
            self._bulk = BulkStore(self._connection)
            self._bulk.widen_cache()
            self._connection.commit()  # the PRAGMA began a transaction; batches begin their own
        for attempt in range(3):
            counts = _BatchCounts()
            try:
                with self._connection.begin() as transaction:
                    dues = _write_batch(self._bulk, people, lists, options, now=self.newsletter.clock(),
                                        counts=counts, **kwargs)
                    if options.dry_run:
                        transaction.rollback()
                    return counts, dues
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._bulk.restore_cache()
                self._connection.commit()
            finally:
                self._connection.close()
                self._connection = None


def _write_batch(bulk: BulkStore, people: list[_Person], lists: dict[str, _ListInfo], options: ImportOptions, *,
                 now: datetime, source: str, note: str | None, default_language: str,
                 counts: _BatchCounts) -> list[ConfirmationDue]:
    """Apply one batch with set-based SQL (three look-ups, one insert per table); returns the mails due."""
    suppressed = bulk.suppressed([p.hash for p in people])
    existing = bulk.people([p.email for p in people])
    current = bulk.subscriptions([k.id for k in existing.values()]) if existing else {}

    confirmed = options.confirmed
    # The list ids each slug tuple stands for (files repeat a few combinations).
    ids_of: dict[tuple[str, ...], tuple[int, ...]] = {}
    # (person, known person or None, list ids to add, list ids to activate): tuples all, which
    # the garbage collector stops tracking.
    plans: list[tuple[_Person, KnownPerson | None, tuple[int, ...], tuple[int, ...]]] = []
    for person in people:
        known = existing.get(person.email)
        wanted = ids_of.get(person.slugs)
        if wanted is None:
            wanted = ids_of[person.slugs] = tuple(lists[s].id for s in person.slugs)
        if known is None:
            if person.hash in suppressed:
                _count(counts, person, "suppressed")
            else:
                _count(counts, person, "imported")
                plans.append((person, None, wanted, ()))
            continue
        if person.hash in suppressed or known.status is not SubscriberStatus.ACTIVE:
            _count(counts, person, "suppressed")
            continue
        theirs = current.get(known.id, {})
        to_add = tuple(lid for lid in wanted if lid not in theirs)
        to_activate = tuple(lid for lid in wanted if theirs.get(lid) is SubscriptionStatus.PENDING) if confirmed else ()
        if SubscriptionStatus.UNSUBSCRIBED in theirs.values():
            # They left at least one list: an import never signs them up again.
            if to_add or to_activate or any(theirs.get(lid) is SubscriptionStatus.UNSUBSCRIBED for lid in wanted):
                _count(counts, person, "unsubscribed")
            else:
                _count(counts, person, "already_there")
            continue
        if not to_add and not to_activate:
            _count(counts, person, "already_there")
            continue
        _count(counts, person, "imported")
        plans.append((person, known, to_add, to_activate))

    if not confirmed:
        allowed = _confirmations_allowed(bulk, [k.id for _, k, add, _ in plans if k is not None and add], now)
        due_plans = [(p, k, add) for p, k, add, _ in plans if add and (k is None or k.id in allowed)]
        counts.confirmations_due += len(due_plans)
    if options.dry_run or not plans:
        return []

    new_plans = [plan for plan in plans if plan[1] is None]
    new_ids = bulk.new_person_ids(len(new_plans))
    # Each planned person's (id, key, name, language): the store's values win for known people.
    who = {p.email: (k.id, k.key, k.name, k.language) for p, k, _, _ in plans if k is not None}
    people_rows = []
    for (person, _, _, _), sid, key in zip(new_plans, new_ids, _new_keys(len(new_plans))):
        language = person.language or default_language
        who[person.email] = (sid, key, person.name, language)
        people_rows.append((sid, key, person.email, person.name, language))
    # Each (subscriber id, list id) added or activated; one consent-log line each.
    added, activated = [], []
    for person, _, to_add, to_activate in plans:
        sid = who[person.email][0]
        added += [(sid, lid) for lid in to_add]
        activated += [(sid, lid) for lid in to_activate]
    confirmations, dues = [], []
    if not confirmed:
        slug_of = {info.id: slug for slug, info in lists.items()}
        for person, _, to_add in due_plans:
            sid, key, name, language = who[person.email]
            slugs = tuple(slug_of[lid] for lid in to_add)
            confirmations.append((sid, None, ",".join(slugs)))
            dues.append(ConfirmationDue(key, person.email, name, language, slugs))

    with bulk.own_values():
        bulk.insert_people(people_rows, status=SubscriberStatus.ACTIVE, at=now)
        bulk.insert_subscriptions(added, status=SubscriptionStatus.ACTIVE if confirmed else SubscriptionStatus.PENDING,
                                  at=now, confirmed_at=now if confirmed else None)
        bulk.activate(activated, now)
        bulk.insert_events(added + activated, kind=ConsentKind.IMPORTED if confirmed else ConsentKind.SIGNUP,
                           channel=Channel.IMPORT, at=now, source=source, note=note if confirmed else None)
        bulk.insert_events(confirmations, kind=ConsentKind.CONFIRMATION_SENT, channel=Channel.IMPORT, at=now,
                           source=source)
    return dues


def _new_keys(n: int) -> list[str]:
    """`n` keys in the form of `consent.new_subscriber_key` (128 random bits, URL-safe base64),
    from one read of the system's random source rather than one per key."""
    data = secrets.token_bytes(16 * n)
    return [base64.urlsafe_b64encode(data[i:i + 16]).rstrip(b"=").decode("ascii") for i in range(0, 16 * n, 16)]


def _count(counts: _BatchCounts, person: _Person, outcome: str) -> None:
    """Count a row once: an address seen in an earlier batch counts as a merged duplicate."""
    if person.seen_before:
        counts.merged_duplicates += 1
    else:
        setattr(counts, outcome, getattr(counts, outcome) + 1)


def _confirmations_allowed(bulk: BulkStore, subscriber_ids: list[int], now: datetime) -> set[int]:
    """Which of these people may get a confirmation now under consent's re-send limits."""
    if not subscriber_ids:
        return set()
    recent = bulk.confirmations_since(subscriber_ids, now - RESEND_WINDOW)
    return {sid for sid in subscriber_ids
            if len(recent.get(sid, [])) < RESEND_MAX and not any(at > now - RESEND_INTERVAL for at in recent.get(sid, []))}


# -- side files and mail -----------------------------------------------------------------------


class _SeenAddresses:
    """Addresses seen so far in the file, as 64-bit hashes in a private on-disk SQLite database.

    The hash is Python's own string hash (SipHash, salted per process, cached on the string):
    the table lives no longer than the import. A collision (about 1 in 10^8 for a million
    addresses) could only mislabel one row's count as a merged duplicate; what is written to
    the store never depends on it.
    """

    def __init__(self) -> None:
        # "" opens a private temporary database on disk, deleted when closed.
        self._db = sqlite3.connect("")
        self._db.execute("CREATE TABLE seen (h INTEGER PRIMARY KEY)")

    def add(self, emails: list[str]) -> list[bool]:
        """Record the addresses; for each, whether it had been recorded before."""
        keys = [hash(e) for e in emails]
        before: set[int] = set()
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            before.update(h for (h,) in self._db.execute(
                f"SELECT h FROM seen WHERE h IN ({','.join('?' * len(part))})", part))
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", ((k,) for k in keys))
        return [k in before for k in keys]

    def __enter__(self) -> "_SeenAddresses":
        return self

    def __exit__(self, *exc: object) -> None:
        self._db.close()


class _RejectFile:
    """The rejected rows as CSV: the file's header plus `line` and `reason`, cells spreadsheet-safe."""

    def __init__(self, path: str | None, header: list[str]):
        self._file = None
        if path:
            self._file = open(path, "w", encoding="utf-8", errors="surrogateescape", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._file)
            self._writer.writerow([*header, "line", "reason"])
            self._width = len(header)

    def write(self, row: RejectedRow) -> None:
        if self._file is None:
            return
        cells = list(row.cells[:self._width]) + [""] * (self._width - len(row.cells))
        self._writer.writerow([spreadsheet_safe(c) for c in cells]
                              + [row.line, spreadsheet_safe(f"{row.reason.value}: {row.detail}")])

    def __enter__(self) -> "_RejectFile":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


class _ConfirmationMailer:
    """Sends confirmation mails through the service's message, reusing one SMTP connection."""

    def __init__(self, newsletter: Newsletter):
        self.newsletter = newsletter
        self._runner = asyncio.Runner()
        self._client: aiosmtplib.SMTP | None = None

    def connect(self) -> None:
        """Open the connection now; raises DeliveryError when the relay cannot be used."""
        self._runner.run(self._connect())

    async def _connect(self) -> None:
        self._client = await open_connection(self.newsletter.config.smtp)

    def send(self, dues: list[tuple[ConfirmationDue, list[str]]]) -> tuple[int, int, list[ConfirmationDue]]:
        """Send each mail; returns (sent, refused for good, refused for now: 4xx).
        Raises DeliveryError if the relay goes away."""
        return self._runner.run(self._send(dues))

    async def _send(self, dues: list[tuple[ConfirmationDue, list[str]]]) -> tuple[int, int, list[ConfirmationDue]]:
        sent = refused = 0
        later: list[ConfirmationDue] = []
        for due, list_names in dues:
            envelope = self.newsletter.confirmation_wire(due, list_names)
            for attempt in range(2):
                try:
                    if self._client is None or not self._client.is_connected:
                        await self._connect()
                    errors, _ = await self._client.sendmail(*envelope)
                    codes = [reply.code for reply in errors.values()]
                except aiosmtplib.SMTPRecipientsRefused as exc:
                    codes = [e.code for e in exc.recipients]
                except aiosmtplib.SMTPResponseException as exc:
                    codes = [exc.code]
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
                    self._client = None
                    if attempt:
                        raise DeliveryError(f"the relay dropped the connection while sending confirmations: {exc}") from None
                    continue
                # A refusal is this person's, not a reason to stop: for good (5xx) or for now (4xx).
                if not codes:
                    sent += 1
                elif all(400 <= code < 500 for code in codes):
                    later.append(due)
                else:
                    refused += 1
                break
        return sent, refused, later

    def close(self) -> None:
        try:
            if self._client is not None and self._client.is_connected:
                self._runner.run(self._client.quit())
        except (aiosmtplib.SMTPException, OSError):
            pass
        finally:
            self._runner.close()
