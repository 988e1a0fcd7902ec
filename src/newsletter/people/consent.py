"""The subscription state machine and its consent log: domain functions over a session.

Sign-up is double opt-in::

    (none) --subscribe--> PENDING --confirm--> ACTIVE --unsubscribe--> UNSUBSCRIBED
                             ^                                             |
                             +----------------- subscribe -----------------+

Every transition is one function here that checks the current state, writes the new one and
appends a `ConsentEvent` saying when, through which channel, from which IP and user agent,
with which consent text. The rules of subscribing are `rules`' (one planner for the form, the
command line and imports) and its writing `signups`'; the statements are `store.people`'s.
Nothing here sends mail or knows of HTTP or click: `subscribe` returns a `ConfirmationDue`
when a confirmation mail should go out, queued in the caller's transaction.

Suppressed addresses (erased, bounced, complained, blocked) are kept only as hashes and are
never subscribed again, whoever asks.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ..addresses import address_hash, clean_text, has_control
from ..errors import InvalidField, InvalidToken, NewsletterError, UnknownList
from ..statuses import (
    Channel,
    ConsentKind,
    SubscriberStatus,
    SubscriptionStatus,
    SuppressionReason,
)
from ..store import ConsentEvent, Subscriber
from ..store import people as people_store
from ..texts import N_, Text
from . import signups
from .rules import (
    RESEND_INTERVAL,
    RESEND_MAX,
    RESEND_WINDOW,
    ConfirmationDue,
    ConsentContext,
    validate_signup,
)

__all__ = [
    "ConsentContext",
    "ConfirmationDue",
    "RESEND_INTERVAL",
    "RESEND_WINDOW",
    "RESEND_MAX",
    "new_subscriber_key",
    "find_subscriber",
    "subscriber_by_key",
    "is_suppressed",
    "validate_signup",
    "subscribe",
    "confirm",
    "unsubscribe",
    "unsubscribe_by_key",
    "unsubscribe_many_by_key",
    "undo_unsubscribe",
    "PreferenceChanges",
    "set_preferences",
    "log_attribute_change",
    "block",
    "suppress",
    "erase",
    "consent_log",
]


def new_subscriber_key() -> str:
    """A random public reference for link tokens (128 bits)."""
    return secrets.token_urlsafe(16)


def _event_values(ctx: ConsentContext, kind: ConsentKind, now: datetime, list_id: int | None = None,
                  note: str | None = None) -> dict[str, Any]:
    """The columns of one consent-log row (without the subscriber)."""
    return dict(list_id=list_id, kind=kind, at=now, note=note if note is not None else ctx.note,
                **signups.origin_of(ctx)._asdict())


def _log(session: Session, subscriber: Subscriber, kind: ConsentKind, ctx: ConsentContext, now: datetime,
         list_id: int | None = None, note: str | None = None) -> None:
    people_store.add_event(session, subscriber, _event_values(ctx, kind, now, list_id, note))


def find_subscriber(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address (any spelling that normalises to it), or None."""
    return people_store.find_subscriber(session, email.strip().lower())


def subscriber_by_key(session: Session, key: str) -> Subscriber:
    """The subscriber a token names; an unknown key raises InvalidToken, like a forged one."""
    found = people_store.subscriber_by_key(session, key)
    if found is None:
        raise InvalidToken()
    return found


def is_suppressed(session: Session, email: str) -> bool:
    return people_store.find_suppression(session, address_hash(email)) is not None


def subscribe(
    session: Session,
    email: str,
    name: str,
    language: str | None,
    list_slugs: Iterable[str],
    ctx: ConsentContext,
    *,
    now: datetime,
    languages: tuple[str, ...],
    check_deliverability: bool = False,
    public_only: bool = False,
) -> ConfirmationDue | None:
    """Sign a person up (pending) for lists and queue the confirmation mail when one is due.

    `public_only` (the public form) treats a list that is not public as unknown. `language`
    None keeps a known person's language (else the first of `languages`, which callers order
    with the default first); an empty name keeps a known person's name. The rules are
    `rules.plan_subscription`'s (`rules.SIGNUP_RULES`).

    Validates everything first (InvalidAddress, InvalidField, UnknownList) and changes nothing
    when anything is wrong. Returns the ConfirmationDue of the mail queued, or None when none
    is due (suppressed, already active, or within the re-send limits). Callers must answer
    every case the same way, so nobody learns who is subscribed.
    """
    session.flush()  # the statements below read and write past the ORM's unit of work
    [outcome] = signups.subscribe_many(
        session, [signups.SignupRequest(email, name, language, tuple(list_slugs), ctx)], now=now,
        languages=languages, check_deliverability=check_deliverability, public_only=public_only)
    session.expire_all()  # people it holds may have changed underneath
    if isinstance(outcome, NewsletterError):
        raise outcome
    return outcome


def confirm(session: Session, subscriber: Subscriber, ctx: ConsentContext, *, now: datetime,
            issued_at: datetime | None = None) -> list[str]:
    """Make the person's pending subscriptions active; returns the slugs confirmed.

    A replay (nothing pending) is a harmless no-op returning []. A subscription that became
    pending after the token was issued is left for the newer token. A blocked or suppressed
    person is never activated.
    """
    if subscriber.status is not SubscriberStatus.ACTIVE or is_suppressed(session, subscriber.email):
        return []
    confirmed = []
    for sub in subscriber.subscriptions:
        if sub.status is not SubscriptionStatus.PENDING:
            continue
        if issued_at is not None and sub.created_at > issued_at + timedelta(seconds=1):
            continue
        sub.status, sub.confirmed_at = SubscriptionStatus.ACTIVE, now
        _log(session, subscriber, ConsentKind.CONFIRMED, ctx, now, list_id=sub.list_id)
        confirmed.append(sub.mailing_list.slug)
    subscriber.updated_at = now
    session.flush()
    return confirmed


def unsubscribe(session: Session, subscriber: Subscriber, ctx: ConsentContext, *, now: datetime,
                list_slug: str | None = None) -> list[str]:
    """End the person's subscription to one list, or to all (list_slug None).

    Takes effect in the caller's transaction. Returns the slugs that changed ([] if none did:
    unsubscribing twice is harmless).
    """
    changed = []
    for sub in subscriber.subscriptions:
        if list_slug is not None and sub.mailing_list.slug != list_slug:
            continue
        if sub.status is SubscriptionStatus.UNSUBSCRIBED:
            continue
        sub.status, sub.unsubscribed_at = SubscriptionStatus.UNSUBSCRIBED, now
        _log(session, subscriber, ConsentKind.UNSUBSCRIBED, ctx, now, list_id=sub.list_id)
        changed.append(sub.mailing_list.slug)
    session.flush()
    return changed


def unsubscribe_by_key(session: Session, subscriber_key: str, ctx: ConsentContext, *, now: datetime,
                       list_slug: str | None = None) -> list[str]:
    """`unsubscribe` for the person a link names, in four Core statements (the one-click path).

    Raises InvalidToken for a key that names nobody. Returns the slugs that changed.
    """
    [outcome] = unsubscribe_many_by_key(session, [(subscriber_key, list_slug, ctx)], now=now)
    if isinstance(outcome, InvalidToken):
        raise outcome
    return outcome


def unsubscribe_many_by_key(session: Session, requests: list[tuple[str, str | None, ConsentContext]], *,
                            now: datetime) -> list[list[str] | InvalidToken]:
    """`unsubscribe_by_key` for many (subscriber key, list slug or None, context) at once, in
    four statements for the whole batch, in request order; an unknown key's result is an
    InvalidToken (returned, not raised). A later request finds what an earlier one changed."""
    ids = people_store.ids_by_key(session, (key for key, _, _ in requests))
    staying: dict[int, list[people_store.StayingRow]] = {}
    for row in people_store.staying_subscriptions(session, ids.values()):
        staying.setdefault(row.subscriber_id, []).append(row)
    results: list[list[str] | InvalidToken] = []
    leaving, events = [], []
    for key, list_slug, ctx in requests:
        subscriber_id = ids.get(key)
        if subscriber_id is None:
            results.append(InvalidToken())
            continue
        rows = staying.get(subscriber_id, [])
        left = [r for r in rows if list_slug is None or r.slug == list_slug]
        staying[subscriber_id] = [r for r in rows if r not in left]
        for r in left:
            leaving.append((subscriber_id, r.list_id))
            events.append(dict(_event_values(ctx, ConsentKind.UNSUBSCRIBED, now, list_id=r.list_id),
                               subscriber_id=subscriber_id))
        results.append([r.slug for r in left])
    people_store.end_subscriptions(session, leaving, now=now)
    people_store.add_events(session, events)
    return results


def undo_unsubscribe(session: Session, subscriber: Subscriber, list_slugs: Iterable[str],
                     ctx: ConsentContext, *, now: datetime) -> list[str]:
    """Re-activate lists the person just left through their own link (they had confirmed them).

    Only subscriptions that were confirmed once come back; returns the slugs re-activated.
    """
    wanted = set(list_slugs)
    if subscriber.status is not SubscriberStatus.ACTIVE:
        return []
    back = []
    for sub in subscriber.subscriptions:
        if sub.mailing_list.slug in wanted and sub.status is SubscriptionStatus.UNSUBSCRIBED and sub.confirmed_at:
            sub.status, sub.unsubscribed_at = SubscriptionStatus.ACTIVE, None
            _log(session, subscriber, ConsentKind.CONFIRMED, ctx, now, list_id=sub.list_id, note="undo unsubscribe")
            back.append(sub.mailing_list.slug)
    session.flush()
    return back


@dataclass(frozen=True)
class PreferenceChanges:
    """What a preferences form changed: the new language and name (None: unchanged), the
    lists joined and left (slugs)."""

    language: str | None = None
    name: str | None = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def set_preferences(session: Session, subscriber: Subscriber, ctx: ConsentContext, *, now: datetime,
                    languages: tuple[str, ...], language: str | None = None,
                    list_slugs: Iterable[str] | None = None, name: str | None = None) -> PreferenceChanges:
    """Change language, name and lists through the person's own preferences link.

    The link proves the mailbox, so a list chosen here is active at once. Lists left out are
    unsubscribed. Only the lists the page offers may be chosen: public ones and those the
    person is (or was) on; any other slug, private or unknown, raises the same UnknownList.
    Returns what changed. Raises InvalidField, UnknownList (nothing changed then).
    """
    changes: dict[str, Any] = {"added": [], "removed": []}
    if language is not None:
        language = language.strip().lower()
        if language not in languages:
            raise InvalidField("language", Text.of(N_("choose one of %(choices)s"), choices=", ".join(languages)))
    new_name = clean_text("name", name) if name is not None else None
    wanted: dict[int, str] = {}
    if list_slugs is not None and subscriber.status is SubscriberStatus.ACTIVE:
        slugs = list(dict.fromkeys(list_slugs))
        for slug in slugs:
            if has_control(slug):  # no list has such a slug; the store is not even asked
                raise UnknownList(slug)
        found = people_store.lists_by_slug(session, slugs)
        theirs = {sub.list_id for sub in subscriber.subscriptions}
        for slug in slugs:
            if slug not in found or not (found[slug].public or found[slug].id in theirs):
                raise UnknownList(slug)
            wanted[found[slug].id] = slug
    if language is not None and language != subscriber.language:
        subscriber.language = changes["language"] = language
    if new_name is not None and new_name != subscriber.name:
        subscriber.name = changes["name"] = new_name
    if list_slugs is not None and subscriber.status is SubscriberStatus.ACTIVE:
        current = {sub.list_id: sub for sub in subscriber.subscriptions}
        for list_id, slug in wanted.items():
            sub = current.get(list_id)
            if sub is None:
                people_store.add_subscription(session, subscriber.id, list_id, SubscriptionStatus.ACTIVE, now=now,
                                              confirmed_at=now)
            elif sub.status is not SubscriptionStatus.ACTIVE:
                sub.status, sub.confirmed_at, sub.unsubscribed_at = SubscriptionStatus.ACTIVE, now, None
            else:
                continue
            _log(session, subscriber, ConsentKind.CONFIRMED, ctx, now, list_id=list_id, note="preferences")
            changes["added"].append(slug)
        for list_id, sub in current.items():
            if list_id not in wanted and sub.status is not SubscriptionStatus.UNSUBSCRIBED:
                sub.status, sub.unsubscribed_at = SubscriptionStatus.UNSUBSCRIBED, now
                _log(session, subscriber, ConsentKind.UNSUBSCRIBED, ctx, now, list_id=list_id)
                changes["removed"].append(sub.mailing_list.slug)
    if "language" in changes or "name" in changes:
        _log(session, subscriber, ConsentKind.PREFERENCES, ctx, now,
             note=", ".join(f"{k}={v}" for k, v in changes.items() if k in ("language",)) or "name")
    subscriber.updated_at = now
    session.flush()
    return PreferenceChanges(changes.get("language"), changes.get("name"), tuple(changes["added"]),
                             tuple(changes["removed"]))


def log_attribute_change(session: Session, subscriber: Subscriber, ctx: ConsentContext, *, now: datetime,
                         note: str) -> None:
    """Append to the person's log that their declared attributes changed: `note` says what,
    `ctx` who (a staff member's source) and from where. Writes nothing else."""
    _log(session, subscriber, ConsentKind.PREFERENCES, ctx, now, note=note[:2000])
    subscriber.updated_at = now


def suppress(session: Session, email: str, reason: SuppressionReason, *, now: datetime,
             ctx: ConsentContext | None = None, note: str | None = None) -> bool:
    """Never mail this address again: hash it into the suppression list and end its subscriptions.

    Returns False when it was suppressed already (the first reason is kept).
    """
    address = email.strip().lower()
    subscriber = find_subscriber(session, address)
    if subscriber is not None:
        ctx = ctx or ConsentContext(channel=Channel.ADMIN)
        unsubscribe(session, subscriber, ctx, now=now)
        blocked = reason is SuppressionReason.BLOCKED
        subscriber.status = SubscriberStatus.BLOCKED if blocked else SubscriberStatus.SUPPRESSED
        subscriber.updated_at = now
        _log(session, subscriber, ConsentKind.BLOCKED if blocked else ConsentKind.SUPPRESSED, ctx, now,
             note=note or reason.value)
    key = address_hash(address)
    if people_store.find_suppression(session, key) is not None:
        session.flush()
        return False
    people_store.add_suppression(session, key, reason, now=now, note=note)
    session.flush()
    return True


def block(session: Session, subscriber: Subscriber, ctx: ConsentContext, *, now: datetime) -> None:
    """"This wasn't me": the address is never mailed again, confirmation mails included."""
    suppress(session, subscriber.email, SuppressionReason.BLOCKED, now=now, ctx=ctx,
             note="the address owner said they did not sign up")


def erase(session: Session, email: str, *, now: datetime) -> bool:
    """Delete a person's data and consent log; keep only the hashed address as suppressed.

    Outbox rows keep their counts with the person removed. Returns False if nobody had that
    address (the address is suppressed all the same, so it is never imported again).
    """
    address = email.strip().lower()
    subscriber = find_subscriber(session, address)
    key = address_hash(address)
    if people_store.find_suppression(session, key) is None:
        people_store.add_suppression(session, key, SuppressionReason.ERASED, now=now, note="erased on request")
    if subscriber is None:
        session.flush()
        return False
    session.flush()
    people_store.detach_person(session, subscriber.id)
    session.delete(subscriber)
    session.flush()
    return True


def consent_log(session: Session, subscriber: Subscriber) -> list[ConsentEvent]:
    """The person's consent log, oldest first."""
    return people_store.consent_events(session, subscriber.id)
