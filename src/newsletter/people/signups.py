"""Many sign-ups in one transaction: the group commit of a busy sign-up form.

`subscribe_many` gives each request exactly the outcome `consent.subscribe` would give it
alone, but writes the people never seen before (the common case on a busy form) with one
statement per table for the whole batch: the lists, the suppressions and the addresses are
looked up once, and subscribers (RETURNING their ids), subscriptions and consent events are
inserted in bulk. Known people, and an address that comes twice in one batch, go through
`consent.subscribe` one by one, after the bulk insert, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..addresses import address_hash
from ..errors import NewsletterError, UnknownList
from ..statuses import ConsentKind, SubscriberStatus, SubscriptionStatus
from ..store import Subscriber, Suppression
from . import consent
from .consent import ConfirmationDue, ConsentContext

__all__ = ["SignupRequest", "subscribe_many"]

_SUPPRESSED_AMONG = select(Suppression.address_hash).where(
    Suppression.address_hash.in_(bindparam("hashes", expanding=True)))
_KNOWN_AMONG = select(Subscriber.email).where(Subscriber.email.in_(bindparam("emails", expanding=True)))
_INSERT_SUBSCRIBERS = consent._INSERT_SUBSCRIBER.returning(Subscriber.id, sort_by_parameter_order=True)


class SignupRequest(NamedTuple):
    """One sign-up as `consent.subscribe` takes it."""

    email: str
    name: str
    language: str | None
    list_slugs: tuple[str, ...]
    ctx: ConsentContext


class _Checked(NamedTuple):
    index: int
    address: str
    name: str
    language: str | None
    slugs: list[str]
    ctx: ConsentContext


def subscribe_many(session: Session, requests: Sequence[SignupRequest], *, now: datetime,
                   languages: tuple[str, ...], check_deliverability: bool = False,
                   public_only: bool = False) -> list[ConfirmationDue | None | NewsletterError]:
    """`consent.subscribe` for each request, in the caller's transaction, in request order.

    Each result is the ConfirmationDue (or None) that `consent.subscribe` would return, or the
    error it would raise (InvalidAddress, InvalidField, UnknownList) — returned, not raised: a
    bad request changes nothing and does not stop the others. Errors of the store itself
    (a unique address inserted meanwhile by another process) are raised for the whole batch.
    """
    results: list[ConfirmationDue | None | NewsletterError] = [None] * len(requests)
    checked: list[_Checked] = []
    for i, r in enumerate(requests):
        try:
            address, name, language, slugs = consent.validate_signup(
                r.email, r.name, r.language, r.list_slugs, languages=languages,
                check_deliverability=check_deliverability)
        except NewsletterError as exc:
            results[i] = exc
            continue
        checked.append(_Checked(i, address, name, language, slugs, r.ctx))
    if not checked:
        return results
    connection = session.connection()
    wanted = sorted({slug for c in checked for slug in c.slugs})
    found = {row.slug: row for row in connection.execute(consent._LISTS_BY_SLUG, {"slugs": wanted})}
    listed: list[_Checked] = []
    for c in checked:
        unknown = next((s for s in c.slugs if s not in found or (public_only and not found[s].public)), None)
        if unknown is not None:
            results[c.index] = UnknownList(unknown)
        else:
            listed.append(c)
    if not listed:
        return results
    hashes = {c.address: address_hash(c.address) for c in listed}
    suppressed = set(connection.scalars(_SUPPRESSED_AMONG, {"hashes": sorted(set(hashes.values()))}))
    known = set(connection.scalars(_KNOWN_AMONG, {"emails": sorted(hashes)}))
    new: list[_Checked] = []
    one_by_one: list[_Checked] = []
    for c in listed:
        if hashes[c.address] in suppressed:
            continue  # nothing changes, nothing is due (results[c.index] stays None)
        if c.address in known:
            one_by_one.append(c)
        else:
            known.add(c.address)  # a second sign-up of it in this batch finds the person inserted
            new.append(c)
    if new:
        _insert_new_people(session, new, found, results, now=now, default_language=languages[0])
    for c in one_by_one:
        results[c.index] = consent.subscribe(session, c.address, c.name, c.language, c.slugs, c.ctx, now=now,
                                             languages=languages, public_only=public_only)
    return results


def _insert_new_people(session: Session, new: list[_Checked], found: dict, results: list, *, now: datetime,
                       default_language: str) -> None:
    """People never seen before: pending on their lists, with their SIGNUP and CONFIRMATION_SENT
    events, in three bulk INSERTs; their ConfirmationDue goes into `results`."""
    connection = session.connection()
    keys = [consent.new_subscriber_key() for _ in new]
    people = [dict(key=key, email=c.address, name=c.name, language=c.language or default_language,
                   status=SubscriberStatus.ACTIVE, created_at=now, updated_at=now) for c, key in zip(new, keys)]
    ids = [row.id for row in connection.execute(_INSERT_SUBSCRIBERS, people)]
    subscriptions, events = [], []
    for c, key, person, subscriber_id in zip(new, keys, people, ids):
        mailing_lists = [found[slug] for slug in c.slugs]
        for m in mailing_lists:
            subscriptions.append(dict(subscriber_id=subscriber_id, list_id=m.id, status=SubscriptionStatus.PENDING,
                                      created_at=now, confirmed_at=None, unsubscribed_at=None))
            events.append(dict(consent._event_values(c.ctx, ConsentKind.SIGNUP, now, list_id=m.id),
                               subscriber_id=subscriber_id))
        events.append(dict(consent._event_values(c.ctx, ConsentKind.CONFIRMATION_SENT, now, note=",".join(c.slugs)),
                           subscriber_id=subscriber_id))
        results[c.index] = ConfirmationDue(key, c.address, c.name, person["language"], tuple(c.slugs),
                                           tuple(m.name for m in mailing_lists), subscriber_id)
    connection.execute(consent._INSERT_SUBSCRIPTION, subscriptions)
    connection.execute(consent._INSERT_EVENT, events)
