"""The suppression list: addresses never mailed and never imported, kept as hashes only.

`suppress_many` suppresses many addresses in a few statements (an import's rows whose status
says they left, bounced or complained; a suppression list imported from another system): each
new hash is written with its reason, and a person the store knows by the address leaves every
list (UNSUBSCRIBED in the consent log) and is marked suppressed (or blocked), with a SUPPRESSED
(or BLOCKED) event saying why. The one-at-a-time path of bounces and "this wasn't me" is
`consent.suppress`; both end in the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from ..addresses import address_hash
from ..statuses import ConsentKind, SubscriberStatus, SuppressionReason
from ..store import people as people_store
from ..store.bulk import BulkStore
from .rules import ConsentContext
from .signups import origin_of

__all__ = ["Suppressing", "SuppressCounts", "suppress_many"]


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

    An address given twice counts once (its first reason is kept), and so does one suppressed
    already (its first reason is kept too). `write=False` counts and writes nothing.
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
        return SuppressCounts(len(new), len(first) - len(new), len(known))
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
    return SuppressCounts(len(new), len(first) - len(new), len(known))
