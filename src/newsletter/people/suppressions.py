"""The suppression list: addresses never mailed and never imported, kept as hashes only.

The use cases (each one unit of work over an installation, for the faces): `list_suppressions`
(with the address when a person still has it; an erased one is only a hash), `lift` (an
address suppressed or erased by mistake: the suppression goes, kept in `suppression_lifts` with
why, and in the person's consent log as LIFTED; they are mailed again only after a new
confirmed opt-in), and `import_suppressions` (a file of addresses, e.g. another system's
unsubscribed or cleaned export).

`suppress_many` suppresses many addresses in a few statements (an import's rows whose status
says they left, bounced or complained; a suppression list imported from another system): each
new hash is written with its reason, and a person the store knows by the address leaves every
list (UNSUBSCRIBED in the consent log) and is marked suppressed (or blocked), with a SUPPRESSED
(or BLOCKED) event saying why. The one-at-a-time path of bounces and "this wasn't me" is
`consent.suppress`; both end in the same state.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from ..addresses import address_hash, clean_text, normalise_address
from ..errors import InvalidAddress, InvalidField, NotSuppressed
from ..installation import Newsletter
from ..statuses import Channel, ConsentKind, SubscriberStatus, SuppressionReason
from ..store import people as people_store
from ..store.bulk import BulkStore
from ..texts import N_, Text
from .csvrows import PENDING, STATUS_VALUES, RejectedRow, RejectReason, open_rows
from .rules import ConsentContext
from .signups import origin_of

__all__ = ["Suppressing", "SuppressCounts", "suppress_many", "SuppressionLine", "Lifted", "SuppressionImport",
           "list_suppressions", "count_suppressions", "lift", "import_suppressions"]

#: Addresses suppressed per transaction by `import_suppressions`.
IMPORT_BATCH = 20_000


class Suppressing(NamedTuple):
    """An address to suppress (normalised), why, and a note for the record."""

    address: str
    reason: SuppressionReason
    note: str | None = None


class SuppressCounts(NamedTuple):
    """What `suppress_many` did: hashes added, addresses suppressed already, people who left
    their lists because of it."""

    added: int
    already: int
    people: int


def _event(ctx: ConsentContext, kind: ConsentKind, subscriber_id: int, list_id: int | None, now: datetime,
           note: str | None) -> dict[str, Any]:
    return dict(subscriber_id=subscriber_id, list_id=list_id, kind=kind, at=now, note=note,
                **origin_of(ctx)._asdict())


def suppress_many(session: Session, wanted: Sequence[Suppressing], ctx: ConsentContext, *, now: datetime,
                  write: bool = True, bulk: BulkStore | None = None) -> SuppressCounts:
    """Suppress these addresses in the caller's transaction; see the module docstring.

    An address given again, or suppressed already, counts as `already` (its first reason is
    kept). `write=False` counts and writes nothing.
    """
    bulk = bulk or BulkStore(session.connection())
    first: dict[str, Suppressing] = {}
    for item in wanted:
        first.setdefault(item.address, item)
    hashes = {address: address_hash(address) for address in first}
    already = bulk.suppressed(sorted(set(hashes.values())))
    new = [item for address, item in first.items() if hashes[address] not in already]
    known = [p for p in bulk.people(list(first)).values() if p.status is SubscriberStatus.ACTIVE]
    if not write:
        return SuppressCounts(len(new), len(wanted) - len(new), len(known))
    people_store.add_suppressions(session, [(hashes[i.address], i.reason, i.note) for i in new], now=now)
    staying: dict[int, list[people_store.StayingRow]] = {}
    for row in people_store.staying_subscriptions(session, [p.id for p in known]):
        staying.setdefault(row.subscriber_id, []).append(row)
    leaving, events, statuses = [], [], []
    for person in known:
        item = first[person.email]
        blocked = item.reason is SuppressionReason.BLOCKED
        for row in staying.get(person.id, []):
            leaving.append((person.id, row.list_id))
            events.append(_event(ctx, ConsentKind.UNSUBSCRIBED, person.id, row.list_id, now, item.reason.value))
        events.append(_event(ctx, ConsentKind.BLOCKED if blocked else ConsentKind.SUPPRESSED, person.id, None, now,
                             item.note or item.reason.value))
        statuses.append((person.id, SubscriberStatus.BLOCKED if blocked else SubscriberStatus.SUPPRESSED))
    people_store.end_subscriptions(session, leaving, now=now)
    people_store.add_events(session, events)
    people_store.set_people_status(session, statuses, now=now)
    return SuppressCounts(len(new), len(wanted) - len(new), len(known))


# -- the use cases ----------------------------------------------------------------------------


class SuppressionLine(NamedTuple):
    """One suppression as staff see it: the address when a person still has it (None: erased,
    or never a person here), its hash, why and since when."""

    address: str | None
    address_hash: str
    reason: str
    at: datetime
    note: str | None


class Lifted(NamedTuple):
    """What `lift` did: the suppression it removed, and whether a person with the address is
    in the store (their subscriptions stay ended until they opt in again)."""

    address: str
    reason: str
    suppressed_at: datetime
    person_kept: bool


class SuppressionImport(NamedTuple):
    """What `import_suppressions` did (or, for a dry run, would do), each row counted once."""

    path: str
    rows: int
    added: int
    already: int
    #: People in the store who left their lists because of it.
    people: int
    rejected: tuple[RejectedRow, ...]


def list_suppressions(newsletter: Newsletter, *, reason: SuppressionReason | None = None,
                      limit: int | None = None) -> list[SuppressionLine]:
    """The suppressions (of this reason), newest first."""
    with newsletter.store.reading() as session:
        known = {address_hash(email): email for email, _ in people_store.people_not_active(session)}
        return [SuppressionLine(known.get(s.address_hash), s.address_hash, s.reason.value, s.at, s.note)
                for s in people_store.suppressions(session, reason=reason, limit=limit)]


def count_suppressions(newsletter: Newsletter) -> dict[str, int]:
    """How many suppressions there are of each reason (reason value: count)."""
    with newsletter.store.reading() as session:
        return {r.value: n for r, n in sorted(people_store.count_suppressions(session).items(), key=lambda i: i[0].value)}


def lift(newsletter: Newsletter, email: str, why: str, ctx: ConsentContext | None = None) -> Lifted:
    """Lift the suppression of an address suppressed or erased by mistake, saying why.

    The suppression is deleted and kept, with `why`, in the lifts' history; a person with the
    address becomes active again with a LIFTED event in their consent log, and their soft-bounce
    score is forgotten. Nothing is mailed: their subscriptions stay ended until they sign up
    again and confirm. Raises InvalidField (no reason given) and NotSuppressed.
    """
    why = clean_text("reason", why, max_length=2000)
    if not why:
        raise InvalidField("reason", Text(N_("say why the suppression is lifted (it is kept with the record)")))
    address = email.strip().lower()
    ctx = ctx or ConsentContext(channel=Channel.ADMIN, source="cli")
    now = newsletter.clock()
    with newsletter.store.session() as session:
        suppression = people_store.find_suppression(session, address_hash(address))
        if suppression is None:
            raise NotSuppressed(email)
        lifted = Lifted(address, suppression.reason.value, suppression.at, False)
        people_store.lift_suppression(session, suppression, why, now=now)
        person = people_store.find_subscriber(session, address)
        if person is None:
            return lifted
        if person.status is not SubscriberStatus.ACTIVE:
            person.status, person.updated_at = SubscriberStatus.ACTIVE, now
        people_store.forget_bounce_score(session, person.id)
        people_store.add_event(session, person, dict(
            list_id=None, kind=ConsentKind.LIFTED, at=now,
            note=f"suppression ({lifted.reason}) lifted: {why}", **origin_of(ctx)._asdict()))
        return lifted._replace(person_kept=True)


def import_suppressions(newsletter: Newsletter, path: str | os.PathLike, *,
                        reason: SuppressionReason = SuppressionReason.ADMIN, note: str | None = None,
                        dry_run: bool = False) -> SuppressionImport:
    """Suppress every address of a CSV file with an email column (another system's unsubscribed,
    cleaned or blocklisted export, say), in batches of IMPORT_BATCH, one transaction each.

    A row's own `status` column, when it names a suppression reason, wins over `reason`; a row
    whose status says active or pending is suppressed with `reason` all the same (the file is a
    suppression list). Bad addresses are reported with their line numbers, not raised. Raises
    ImportFileError when the file cannot be read at all, InvalidField for a bad note.
    """
    path = os.fspath(path)
    note = clean_text("note", note, max_length=2000) or f"import:{Path(path).name}"
    ctx = ConsentContext(channel=Channel.IMPORT, source=f"import:{Path(path).name}"[:200])
    rows = added = already = people = 0
    rejected: list[RejectedRow] = []
    with open_rows(path) as reader:
        columns = reader.columns
        batch: list[Suppressing] = []

        def flush() -> None:
            nonlocal added, already, people
            if batch:
                with newsletter.store.session() as session:
                    counts = suppress_many(session, batch, ctx, now=newsletter.clock(), write=not dry_run)
                added, already, people = added + counts.added, already + counts.already, people + counts.people
                batch.clear()

        for row in reader:
            rows += 1
            if isinstance(row, RejectedRow):
                rejected.append(row)
                continue
            cell = row.cells[columns.email] if columns.email < len(row.cells) else ""
            try:
                address = normalise_address(cell)
            except InvalidAddress as exc:
                rejected.append(RejectedRow(row.line, cell.strip(), RejectReason.INVALID_ADDRESS, exc.reason_said))
                continue
            said = None
            if columns.status is not None and columns.status < len(row.cells):
                said = STATUS_VALUES.get(row.cells[columns.status].strip().casefold().replace(" ", "_"))
            batch.append(Suppressing(address, SuppressionReason(said) if said not in (None, PENDING) else reason, note))
            if len(batch) >= IMPORT_BATCH:
                flush()
        flush()
    return SuppressionImport(path, rows, added, already, people, tuple(rejected))
