"""Importing people from a CSV file: streamed, checked as read, written in set-based batches.

    file ─► csvrows.open_rows ─► csvrows.check_each (row by row) ─► duplicates merged, a batch
         of BATCH_SIZE rows at a time ─► writer thread, one transaction per batch:
         signups.record_signups (look up, plan with the one set of rules, write through the one
         writer of people, queue the confirmation mails) ─► commit ─► the queued mails sent
         in-process by the one drainer (confirmation_queue.LocalDrainer), on one connection

The rules are a sign-up's (`rules.plan_subscription`), with the import's documented options
(`rules.import_rules`):

- a suppressed address (erased, bounced, complained, blocked) is never imported;
- a row whose `status` cell says the person left, bounced, complained or was blocked
  (`csvrows.STATUS_VALUES`: unsubscribed, cleaned, complained, blocklisted, …) is never a person:
  its address is suppressed (`suppressions.suppress_many`: a person already here leaves every
  list), whatever `confirmed` says; a row whose status says pending (unconfirmed) is imported
  pending, with a confirmation mail, even into a confirmed import;
- a person who has unsubscribed from any list is not subscribed again by an import (they may
  sign up again themselves); lists they already have stay as they are;
- a new subscription is *pending* (SIGNUP event, channel IMPORT, source "import:<file>") and a
  confirmation mail is due, within the re-send limits; with `confirmed=True` and a consent
  note it is *active* at once, with an IMPORTED event carrying the note;
- people already in the store keep their name and language (the store wins over the file);
- a row whose address appeared earlier in the file is merged into it (its lists are added).

Confirmation mails are queued in each batch's transaction and sent once it commits; one the
relay refuses for now (4xx, or the relay gone) stays queued for `newsletter serve`'s drainer,
which retries it with back-off; one refused for good (5xx) is counted as refused.

Concurrency: one writer thread commits batch n (and mails its confirmations) while this thread
reads and checks batch n+1; the database works without the GIL. The SQL is `store.bulk`'s: a
few large statements per batch (see there for why). Optional worker processes (`workers`)
check rows too; on the 2-core machine we measured, they cost more in pickling than they saved
(docs/benchmarks.md).

Running the same file again changes nothing. Memory stays flat whatever the file's size:
rows are read, checked and written a batch at a time, as tuples the garbage collector soon
stops tracking; the addresses seen so far (for counting duplicates across batches) are kept as
64-bit hashes in a temporary on-disk SQLite table; SQLite's page cache is widened to a fixed
bound (bulk.IMPORT_CACHE_KIB) for the import's connection.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import NamedTuple

from sqlalchemy.orm import Session

from ..addresses import address_hash, clean_text
from ..errors import InvalidField, ListArchived, UnknownList
from ..installation import Newsletter
from ..statuses import Channel, ConsentKind, SuppressionReason
from ..store import people as people_store
from ..store.bulk import BatchWriter, BulkStore
from ..store.people import ListRow
from ..texts import N_, Text
from .confirmation_queue import LocalDrainer
from .csvrows import (
    PENDING,
    CheckedRow,
    ColumnMap,
    RawRow,
    RejectedRow,
    RejectReason,
    RowRules,
    check_each,
    check_rows,
    open_rows,
    status_value,
)
from .formats import ConsentProof
from .importfiles import RejectFile, SeenAddresses
from .rules import ConsentContext, Outcome, SubscribeRules, import_rules
from .signups import Recorded, origin_of, record_signups
from .suppressions import Suppressing, suppress_many

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
    #: The file's encoding (None: detected, `csvrows.detect_encoding`).
    encoding: str | None = None
    #: The status of every row whose own status cell says nothing (e.g. "unsubscribed" for
    #: another tool's export of those who left); None: what the file's format says, if anything.
    status: str | None = None
    #: Write rejected rows (the original cells plus `line` and `reason`) to this CSV file.
    rejects_path: str | None = None
    batch_size: int = BATCH_SIZE
    #: Worker processes that check rows while this one writes. 0: check here, which measured
    #: faster on 2 cores once domain checks are memoised (docs/benchmarks.md).
    workers: int = 0
    #: How the consent log names the import (default "import:<file name>"); the workspace adds who.
    source: str | None = None


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
    #: The encoding the file was read in, and whether it was detected (False: as asked).
    encoding: str
    encoding_detected: bool
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
    #: Confirmation mails the relay refused for now (4xx, or it could not be reached): left in
    #: the queue for `newsletter serve`'s drainer, which retries them with back-off.
    confirmations_queued: int = 0
    #: Rows whose status column said they had left, bounced, complained or were blocked: their
    #: addresses suppressed, never imported as people; by reason (SuppressionReason values).
    status_suppressions: dict[str, int] = field(default_factory=dict)
    #: Of the rows imported, those whose status said pending: pending (with a confirmation mail)
    #: although the import was confirmed.
    kept_pending: int = 0

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
    kept_pending: int = 0
    status_suppressions: dict[str, int] = field(default_factory=dict)


@dataclass
class _Tally(_BatchCounts):
    rows: int = 0
    rejected: int = 0
    rejected_rows: list[RejectedRow] = field(default_factory=list)

    def add(self, counts: _BatchCounts) -> None:
        for f in dataclasses.fields(_BatchCounts):
            if f.name == "status_suppressions":
                for reason, n in counts.status_suppressions.items():
                    self.status_suppressions[reason] = self.status_suppressions.get(reason, 0) + n
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(counts, f.name))


class _Person(NamedTuple):
    """A valid row, with later rows for the same address in its batch merged into it.

    Shaped as a `signups.Wanted` (the same first fields), so that a batch goes to the writer
    as it is. A tuple of plain values: the garbage collector stops tracking it, which matters
    when a batch holds tens of thousands of them (docs/benchmarks.md).
    """

    address: str
    name: str
    language: str | None
    slugs: tuple[str, ...]
    #: addresses.address_hash(address): how the suppression list knows it.
    hash: str
    #: Always None: the import's one context is given with the batch.
    ctx: None = None
    line: int = 0
    #: The address appeared in an earlier batch.
    seen_before: bool = False
    #: What the row's status cell said (`CheckedRow.status`): a suppression reason, PENDING or None.
    status: str | None = None
    #: Declared attributes the file gives (as `signups.Wanted`'s): later rows' values win.
    attributes: tuple = ()
    #: The consent proof another tool recorded (`CheckedRow.proof`).
    proof: ConsentProof | None = None


def import_csv(newsletter: Newsletter, path: str | os.PathLike, options: ImportOptions = ImportOptions(), *,
               progress: Callable[[ImportProgress], None] | None = None) -> ImportReport:
    """Import the people in a CSV file into the store; see the module docstring for the rules.

    Returns an ImportReport. Raises ImportFileError when the file cannot be read at all (no
    email column, unreadable), UnknownList for an unknown `list_slugs` entry, InvalidField for
    bad options, and DeliveryError when confirmation mails are due and the relay cannot be used
    (checked before anything is written; if it fails later, the mails wait in the queue and are
    counted as queued).
    Rows are never raised: each bad row is counted and reported with its line number.
    Blocking: call it from synchronous code or a worker thread, not from a running event loop.
    """
    path = os.fspath(path)
    config = newsletter.config
    note = _check_options(options, config.languages)
    with newsletter.store.session() as session:
        every = people_store.lists_by_slug(session)
    for slug in options.list_slugs:
        if slug not in every:
            raise UnknownList(slug)
        if every[slug].closed:
            raise ListArchived(slug)
    lists = {slug: row for slug, row in every.items() if not row.closed}  # a closed list is unknown to a row
    ctx = ConsentContext(channel=Channel.IMPORT, source=(options.source or f"import:{Path(path).name}")[:200])
    rules = import_rules(confirmed=options.confirmed, consent_note=note)
    default_language = options.language or config.default_language
    tally = _Tally()
    status = status_value(options.status) if options.status else None
    with open_rows(path, options.delimiter, config.attributes, options.encoding) as rows, SeenAddresses() as seen, RejectFile(
            options.rejects_path, rows.header) as reject_file:
        row_rules = RowRules(
            columns=rows.columns, languages=config.languages, known_lists=frozenset(lists),
            extra_lists=tuple(options.list_slugs), default_language=None,
            check_deliverability=config.check_deliverability, attributes=config.attributes,
            default_status=status or rows.columns.source.status, encoding=rows.encoding,
        )
        writer = _BatchWriter(newsletter, lists, rules, ctx, default_language, dry_run=options.dry_run,
                              mails=not options.confirmed and not options.dry_run,
                              source_format=rows.columns.source.name)
        # One writer thread: while it writes batch n (the driver releases the GIL inside the
        # database), this thread reads and checks batch n+1. One batch in flight keeps the
        # order of batches, so a duplicate always finds the earlier row committed.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") as thread:
            try:
                thread.submit(writer.open).result()  # fail before writing anything if the relay is unusable
                in_flight: Future | None = None
                for people in _batches(rows, row_rules, options.batch_size, options.workers or 0, tally, seen,
                                       reject_file):
                    if in_flight is not None:
                        tally.add(in_flight.result())
                    in_flight = thread.submit(writer.write, people) if people else None
                    if progress is not None:
                        progress(ImportProgress(tally.rows, rows.bytes_read, rows.total_bytes))
                if in_flight is not None:
                    tally.add(in_flight.result())
            finally:
                thread.submit(writer.close).result()
    return ImportReport(
        path=path, delimiter=rows.delimiter, columns=rows.columns, dry_run=options.dry_run,
        encoding=rows.encoding, encoding_detected=rows.encoding_detected, rows=tally.rows,
        imported=tally.imported, already_there=tally.already_there, merged_duplicates=tally.merged_duplicates,
        suppressed=tally.suppressed, unsubscribed=tally.unsubscribed, rejected=tally.rejected,
        rejected_rows=tuple(tally.rejected_rows), confirmations_due=tally.confirmations_due,
        confirmations_sent=tally.confirmations_sent, confirmations_failed=tally.confirmations_failed,
        confirmations_queued=tally.confirmations_queued, status_suppressions=dict(tally.status_suppressions),
        kept_pending=tally.kept_pending,
    )


def _check_options(options: ImportOptions, languages: tuple[str, ...]) -> str | None:
    """The cleaned consent note; raises InvalidField for options that cannot work."""
    if options.language is not None and options.language not in languages:
        raise InvalidField("language", Text.of(N_("choose one of %(choices)s"), choices=", ".join(languages)))
    if options.batch_size < 1:
        raise InvalidField("batch_size", Text(N_("at least 1")))
    note = clean_text("consent note", options.consent_note, max_length=2000) or None
    if options.confirmed and not note:
        raise InvalidField("consent note", Text(N_("a confirmed import must say where the people's consent comes from")))
    return note


# -- reading and checking ----------------------------------------------------------------------


def _batches(rows: Iterable[RawRow | RejectedRow], rules: RowRules, size: int, workers: int, tally: _Tally,
             seen: SeenAddresses, reject_file: RejectFile) -> Iterator[list[_Person]]:
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
                people[row.email] = _Person(row.email, row.name, row.language, row.list_slugs,
                                            address_hash(row.email), None, row.line, False, row.status,
                                            row.attributes, row.proof)
            else:
                tally.merged_duplicates += 1
                people[row.email] = person._replace(
                    slugs=(*person.slugs, *(s for s in row.list_slugs if s not in person.slugs)),
                    name=person.name or row.name, language=person.language or row.language,
                    status=_stronger(person.status, row.status), proof=person.proof or row.proof,
                    attributes=tuple({**dict(person.attributes), **dict(row.attributes)}.items()))
        if count == size:
            tally.rows += count
            yield _mark_seen(people, seen)
            people, count = {}, 0
    if count:
        tally.rows += count
        yield _mark_seen(people, seen)


def _stronger(one: str | None, other: str | None) -> str | None:
    """Of two statuses of one address, the one that wins: a suppression, then pending, then none."""
    for status in (one, other):
        if status not in (None, PENDING):
            return status
    return one or other


def _mark_seen(people: dict[str, _Person], seen: SeenAddresses) -> list[_Person]:
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

#: How an outcome of the rules is counted.
_COUNTED = {Outcome.CHANGED: "imported", Outcome.ALREADY_THERE: "already_there", Outcome.SUPPRESSED: "suppressed",
            Outcome.UNSUBSCRIBED: "unsubscribed"}


class _BatchWriter:
    """The writer thread's side: one store connection for the whole import (each batch one
    transaction on it) and, for a pending import, the drainer that sends each batch's mails."""

    def __init__(self, newsletter: Newsletter, lists: dict[str, ListRow], rules: SubscribeRules,
                 ctx: ConsentContext, default_language: str, *, dry_run: bool, mails: bool,
                 source_format: str = "CSV"):
        self.newsletter = newsletter
        self.source_format = source_format
        self.lists = lists
        self.rules = rules
        self.ctx = ctx
        self.default_language = default_language
        self.dry_run = dry_run
        self._store = BatchWriter(newsletter.store)
        self._drainer = LocalDrainer(newsletter) if mails else None

    def open(self) -> None:
        """Raises DeliveryError when mails are due and the relay cannot be used."""
        if self._drainer is not None:
            self._drainer.connect()

    def write(self, people: list[_Person]) -> _BatchCounts:
        """Write one batch (one transaction): its suppressions first, then its people; then
        send the mails it queued."""
        suppressing = [p for p in people if p.status not in (None, PENDING)]
        kept_pending = [p for p in people if p.status == PENDING and self.rules.confirmed]
        signing = [p for p in people if p.status is None or (p.status == PENDING and not self.rules.confirmed)]

        def record(session: Session, bulk: BulkStore) -> list[Recorded]:
            now = self.newsletter.clock()
            if suppressing:
                suppress_many(session, [Suppressing(p.address, SuppressionReason(p.status), f"{self.ctx.source}")
                                        for p in suppressing], self.ctx, now=now, write=not self.dry_run, bulk=bulk)
            recorded = record_signups(session, signing, self.lists, now=now, default_language=self.default_language,
                                      rules=self.rules, ctx=self.ctx, write=not self.dry_run, bulk=bulk)
            if kept_pending:
                recorded += record_signups(session, kept_pending, self.lists, now=now,
                                           default_language=self.default_language, rules=import_rules(),
                                           ctx=self.ctx, write=not self.dry_run, bulk=bulk)
            proven = [p for p, r in zip([*signing, *kept_pending], recorded)
                      if p.proof is not None and r.outcome is Outcome.CHANGED]
            if proven and not self.dry_run:
                self._record_proof(session, bulk, proven, now)
            return recorded

        recorded = self._store.run(record, dry_run=self.dry_run)
        counts = _BatchCounts()
        for person in suppressing:
            if person.seen_before:
                counts.merged_duplicates += 1
            else:
                counts.status_suppressions[person.status] = counts.status_suppressions.get(person.status, 0) + 1
        for person, outcome in zip([*signing, *kept_pending], recorded):
            _count(counts, person, _COUNTED[outcome.outcome])
            counts.confirmations_due += outcome.due is not None
        counts.kept_pending = sum(1 for p in kept_pending if not p.seen_before)
        queued = [r.queued for r in recorded if r.queued is not None]
        if queued and self._drainer is None and not self.dry_run:
            self._drainer = LocalDrainer(self.newsletter)  # a confirmed import's pending rows: connects when used
        if queued and self._drainer is not None:
            mails = self._drainer.send(queued)
            counts.confirmations_sent, counts.confirmations_queued, counts.confirmations_failed = (
                mails.sent, mails.retried, mails.dropped)
        return counts

    def _record_proof(self, session: Session, bulk: BulkStore, proven: list[_Person], now: datetime) -> None:
        """The consent log lines of another tool's proof: when and from where each person
        opted in (SIGNUP) and confirmed (CONFIRMED), for each list the row joins, at the
        times that tool recorded; tags (and proof without a time) in an IMPORTED line."""
        ids = {person.email: person.id for person in bulk.people([p.address for p in proven]).values()}
        origin = origin_of(self.ctx)._replace(source=f"{self.ctx.source} ({self.source_format})"[:200])
        said = f"as recorded by the {self.source_format}"
        events = []
        for p in proven:
            proof, sid = p.proof, ids[p.address]
            tags = f"; tags: {proof.tags}" if proof.tags else ""
            for slug in p.slugs:
                list_id = self.lists[slug].id
                base = dict(origin._asdict(), subscriber_id=sid, list_id=list_id)
                if proof.optin_at:
                    events.append({**base, "kind": ConsentKind.SIGNUP, "at": proof.optin_at, "ip": proof.optin_ip,
                                   "note": f"opted in {said}{tags}"})
                if proof.confirm_at:
                    events.append({**base, "kind": ConsentKind.CONFIRMED, "at": proof.confirm_at,
                                   "ip": proof.confirm_ip, "note": f"confirmed {said}"})
                if not (proof.optin_at or proof.confirm_at):
                    ips = ", ".join(f"{k} {v}" for k, v in (("opt-in IP", proof.optin_ip),
                                                            ("confirmation IP", proof.confirm_ip)) if v)
                    events.append({**base, "kind": ConsentKind.IMPORTED, "at": now,
                                   "note": f"{said}: no opt-in time{'; ' + ips if ips else ''}{tags}"})
        people_store.add_events(session, events)

    def close(self) -> None:
        try:
            self._store.close()
        finally:
            if self._drainer is not None:
                self._drainer.close()


def _count(counts: _BatchCounts, person: _Person, outcome: str) -> None:
    """Count a row once: an address seen in an earlier batch counts as a merged duplicate."""
    if person.seen_before:
        counts.merged_duplicates += 1
    else:
        setattr(counts, outcome, getattr(counts, outcome) + 1)
