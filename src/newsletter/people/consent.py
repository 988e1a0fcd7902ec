"""The subscriber lifecycle and its consent log: pure domain functions over a session.

Sign-up is double opt-in::

    (none) --subscribe--> PENDING --confirm--> ACTIVE --unsubscribe--> UNSUBSCRIBED
                             ^                                             |
                             +----------------- subscribe -----------------+

Every transition is one function here that checks the current state, writes the new one and
appends a `ConsentEvent` saying when, through which channel, from which IP and user agent,
with which consent text. Nothing here sends mail or knows of HTTP or click: `subscribe`
returns a `ConfirmationDue` when a confirmation mail should go out, and the caller sends it.

Suppressed addresses (erased, bounced, complained, blocked) are kept only as hashes and are
never subscribed again, whoever asks.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import bindparam, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session

from ..addresses import address_hash, clean_text, normalise_address
from ..errors import InvalidField, InvalidToken, UnknownList, UnknownSubscriber
from ..statuses import (
    Channel,
    ConsentKind,
    SubscriberStatus,
    SubscriptionStatus,
    SuppressionReason,
)
from ..store import (
    ConsentEvent,
    MailingList,
    OutboxRow,
    Subscriber,
    Subscription,
    Suppression,
)
from .lists import get_list

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
    "set_preferences",
    "block",
    "suppress",
    "erase",
    "export_person",
    "consent_log",
]

#: A pending person gets at most one confirmation mail per RESEND_INTERVAL and RESEND_MAX per RESEND_WINDOW.
RESEND_INTERVAL = timedelta(minutes=10)
RESEND_WINDOW = timedelta(days=7)
RESEND_MAX = 3


@dataclass(frozen=True)
class ConsentContext:
    """Who asked, how and where: stored with every consent event."""

    channel: Channel
    ip: str | None = None
    user_agent: str | None = None
    #: The form or source ("website-footer", "import:members.csv", "cli").
    source: str | None = None
    consent_version: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class ConfirmationDue:
    """A confirmation mail should be sent to this person now."""

    subscriber_key: str
    email: str
    name: str
    language: str
    list_slugs: tuple[str, ...]
    #: The names of those lists, in the same order (for the mail; empty when not known).
    list_names: tuple[str, ...] = ()
    #: The person's row id, when the caller knows it (saves a look-up when queueing the mail).
    subscriber_id: int | None = None


def new_subscriber_key() -> str:
    """A random public reference for link tokens (128 bits)."""
    return secrets.token_urlsafe(16)


def _event_values(ctx: ConsentContext, kind: ConsentKind, now: datetime, list_id: int | None = None,
                  note: str | None = None) -> dict[str, Any]:
    """The columns of one consent-log row (without the subscriber)."""
    return dict(
        list_id=list_id,
        kind=kind,
        channel=ctx.channel,
        at=now,
        ip=(ctx.ip or None) and ctx.ip[:64],
        user_agent=(ctx.user_agent or None) and ctx.user_agent[:512],
        source=(ctx.source or None) and ctx.source[:200],
        consent_version=ctx.consent_version,
        note=note if note is not None else ctx.note,
    )


def _log(session: Session, subscriber: Subscriber, kind: ConsentKind, ctx: ConsentContext, now: datetime,
         list_id: int | None = None, note: str | None = None) -> None:
    session.add(ConsentEvent(subscriber=subscriber, **_event_values(ctx, kind, now, list_id, note)))


#: Statements of the sign-up fast path, built once (SQLAlchemy then only looks up their compiled form).
_LISTS_BY_SLUG = select(MailingList.id, MailingList.slug, MailingList.name, MailingList.public).where(
    MailingList.slug.in_(bindparam("slugs", expanding=True)))
_SUPPRESSED_AND_SUBSCRIBER = select(
    exists().where(Suppression.address_hash == bindparam("hash")),
    select(Subscriber.id).where(Subscriber.email == bindparam("email")).scalar_subquery(),
)
_INSERT_SUBSCRIBER = insert(Subscriber.__table__)
_INSERT_SUBSCRIPTION = insert(Subscription.__table__)
_INSERT_EVENT = insert(ConsentEvent.__table__)


def _insert_new_subscriber(session: Session, address: str, name: str, language: str, mailing_lists: list,
                           ctx: ConsentContext, now: datetime) -> ConfirmationDue:
    """A person never seen before, pending on `mailing_lists` (rows with id, slug and name), with
    the SIGNUP events and the CONFIRMATION_SENT event: three INSERT statements (Core) on the
    session's connection, not the ORM's unit of work."""
    connection = session.connection()
    key = new_subscriber_key()
    subscriber_id = connection.execute(_INSERT_SUBSCRIBER, dict(
        key=key, email=address, name=name, language=language, status=SubscriberStatus.ACTIVE,
        created_at=now, updated_at=now)).inserted_primary_key[0]
    connection.execute(_INSERT_SUBSCRIPTION, [
        dict(subscriber_id=subscriber_id, list_id=m.id, status=SubscriptionStatus.PENDING, created_at=now,
             confirmed_at=None, unsubscribed_at=None)
        for m in mailing_lists])
    slugs = [m.slug for m in mailing_lists]
    events = [_event_values(ctx, ConsentKind.SIGNUP, now, list_id=m.id) for m in mailing_lists]
    events.append(_event_values(ctx, ConsentKind.CONFIRMATION_SENT, now, note=",".join(slugs)))
    connection.execute(_INSERT_EVENT, [dict(e, subscriber_id=subscriber_id) for e in events])
    return ConfirmationDue(key, address, name, language, tuple(slugs), tuple(m.name for m in mailing_lists),
                           subscriber_id)


def find_subscriber(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address (any spelling that normalises to it), or None."""
    return session.scalar(select(Subscriber).where(Subscriber.email == email.strip().lower()))


def subscriber_by_key(session: Session, key: str) -> Subscriber:
    """The subscriber a token names; an unknown key raises InvalidToken, like a forged one."""
    found = session.scalar(select(Subscriber).where(Subscriber.key == key))
    if found is None:
        raise InvalidToken()
    return found


def is_suppressed(session: Session, email: str) -> bool:
    return session.get(Suppression, address_hash(email)) is not None


def _subscription(session: Session, subscriber: Subscriber, list_id: int) -> Subscription | None:
    return session.get(Subscription, (subscriber.id, list_id))


def _confirmation_allowed(session: Session, subscriber: Subscriber, now: datetime) -> bool:
    """At most one confirmation per RESEND_INTERVAL and RESEND_MAX per RESEND_WINDOW."""
    sent = list(
        session.scalars(
            select(ConsentEvent.at).where(
                ConsentEvent.subscriber_id == subscriber.id,
                ConsentEvent.kind == ConsentKind.CONFIRMATION_SENT,
                ConsentEvent.at > now - RESEND_WINDOW,
            )
        )
    )
    if len(sent) >= RESEND_MAX:
        return False
    return not any(at > now - RESEND_INTERVAL for at in sent)


def validate_signup(email: str, name: str, language: str | None, list_slugs: Iterable[str], *,
                    languages: tuple[str, ...], check_deliverability: bool = False
                    ) -> tuple[str, str, str | None, list[str]]:
    """The fields of a sign-up, checked and normalised: (address, name, language, list slugs).

    Raises InvalidAddress or InvalidField; looks nothing up (the lists are checked by the caller).
    """
    address = normalise_address(email, check_deliverability=check_deliverability)
    name = clean_text("name", name)
    if language is not None:
        language = language.strip().lower()
    if language is not None and language not in languages:
        raise InvalidField("language", f"choose one of {', '.join(languages)}")
    slugs = list(dict.fromkeys(s.strip() for s in list_slugs if s and s.strip()))
    if not slugs:
        raise InvalidField("lists", "choose at least one list")
    return address, name, language, slugs


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
    """Sign a person up (pending) for lists and say whether a confirmation mail is due.

    `public_only` (the public form) treats a list that is not public as unknown.

    `language` None keeps a known person's language (else the first of `languages`, which
    callers order with the default first); an empty
    name keeps a known person's name.

    Validates everything first (InvalidAddress, InvalidField, UnknownList) and changes nothing
    when anything is wrong. Then:
    - a suppressed or blocked address: nothing changes, nothing is due;
    - a list already active for the person: unchanged;
    - otherwise the subscription becomes (or stays) pending, with a SIGNUP event.
    A confirmation is due when some requested list is pending and the re-send limits allow.
    Callers must answer every case the same way, so nobody learns who is subscribed.
    """
    address, name, language, slugs = validate_signup(email, name, language, list_slugs, languages=languages,
                                                     check_deliverability=check_deliverability)
    # The common case on a busy form is a person never seen before: two SELECTs (the lists; the
    # suppression and the address together) and straight INSERTs, as Core statements built once.
    connection = session.connection()
    found = {row.slug: row for row in connection.execute(_LISTS_BY_SLUG, {"slugs": slugs})}
    for slug in slugs:
        if slug not in found or (public_only and not found[slug].public):
            raise UnknownList(slug)
    mailing_lists = [found[slug] for slug in slugs]
    suppressed, subscriber_id = connection.execute(
        _SUPPRESSED_AND_SUBSCRIBER, {"hash": address_hash(address), "email": address}).one()
    if suppressed:
        return None
    if subscriber_id is None:
        return _insert_new_subscriber(session, address, name, language or languages[0], mailing_lists, ctx, now)
    with session.no_autoflush:  # one flush at the end writes the person, subscriptions and log
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber.status is not SubscriberStatus.ACTIVE:
            return None

        pending: list[str] = []
        pending_names: list[str] = []
        any_active = False
        current = {sub.list_id: sub for sub in subscriber.subscriptions}
        for mailing_list in mailing_lists:
            sub = current.get(mailing_list.id)
            if sub is not None and sub.status is SubscriptionStatus.ACTIVE:
                any_active = True
                continue
            if sub is None:
                subscriber.subscriptions.append(Subscription(list_id=mailing_list.id,
                                                             status=SubscriptionStatus.PENDING, created_at=now))
            elif sub.status is SubscriptionStatus.UNSUBSCRIBED:
                sub.status, sub.created_at, sub.unsubscribed_at = SubscriptionStatus.PENDING, now, None
            _log(session, subscriber, ConsentKind.SIGNUP, ctx, now, list_id=mailing_list.id)
            pending.append(mailing_list.slug)
            pending_names.append(mailing_list.name)
        if not pending:
            return None
        if not any_active and not _has_active(session, subscriber):
            # Nobody has confirmed this address yet: the newest sign-up's name and language win.
            subscriber.name = name or subscriber.name
            subscriber.language = language or subscriber.language
            subscriber.updated_at = now
        if not _confirmation_allowed(session, subscriber, now):
            return None
        _log(session, subscriber, ConsentKind.CONFIRMATION_SENT, ctx, now, note=",".join(pending))
    session.flush()
    return ConfirmationDue(subscriber.key, subscriber.email, subscriber.name, subscriber.language, tuple(pending),
                           tuple(pending_names), subscriber.id)


def _has_active(session: Session, subscriber: Subscriber) -> bool:
    return bool(session.scalar(
        select(func.count()).select_from(Subscription).where(
            Subscription.subscriber_id == subscriber.id, Subscription.status == SubscriptionStatus.ACTIVE)
    ))


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


_IDS_BY_KEY = select(Subscriber.key, Subscriber.id).where(Subscriber.key.in_(bindparam("keys", expanding=True)))
_STAYING = (select(Subscription.subscriber_id, Subscription.list_id, MailingList.slug)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscription.subscriber_id.in_(bindparam("ids", expanding=True)),
                   Subscription.status != SubscriptionStatus.UNSUBSCRIBED)
            .order_by(Subscription.subscriber_id, Subscription.list_id))
_LEAVE = (update(Subscription.__table__)
          .where(Subscription.subscriber_id == bindparam("person"), Subscription.list_id == bindparam("list"))
          .values(status=SubscriptionStatus.UNSUBSCRIBED, unsubscribed_at=bindparam("now")))


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
    connection = session.connection()
    ids = {key: subscriber_id for key, subscriber_id in connection.execute(
        _IDS_BY_KEY, {"keys": sorted({key for key, _, _ in requests})})}
    staying: dict[int, list] = {}
    if ids:
        for row in connection.execute(_STAYING, {"ids": sorted(set(ids.values()))}):
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
            leaving.append({"person": subscriber_id, "list": r.list_id, "now": now})
            events.append(dict(_event_values(ctx, ConsentKind.UNSUBSCRIBED, now, list_id=r.list_id),
                               subscriber_id=subscriber_id))
        results.append([r.slug for r in left])
    if leaving:
        connection.execute(_LEAVE, leaving)
        connection.execute(_INSERT_EVENT, events)
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


def set_preferences(session: Session, subscriber: Subscriber, ctx: ConsentContext, *, now: datetime,
                    languages: tuple[str, ...], language: str | None = None,
                    list_slugs: Iterable[str] | None = None, name: str | None = None) -> dict[str, Any]:
    """Change language, name and lists through the person's own preferences link.

    The link proves the mailbox, so a list chosen here is active at once. Lists left out are
    unsubscribed. Returns what changed: {"language": …, "added": […], "removed": […]}.
    """
    changes: dict[str, Any] = {"added": [], "removed": []}
    if language is not None:
        language = language.strip().lower()
        if language not in languages:
            raise InvalidField("language", f"choose one of {', '.join(languages)}")
        if language != subscriber.language:
            subscriber.language = changes["language"] = language
    if name is not None:
        new_name = clean_text("name", name)
        if new_name != subscriber.name:
            subscriber.name = changes["name"] = new_name
    if list_slugs is not None and subscriber.status is SubscriberStatus.ACTIVE:
        wanted = {get_list(session, s).id: s for s in dict.fromkeys(list_slugs)}
        current = {sub.list_id: sub for sub in subscriber.subscriptions}
        for list_id, slug in wanted.items():
            sub = current.get(list_id)
            if sub is None:
                session.add(Subscription(subscriber_id=subscriber.id, list_id=list_id,
                                         status=SubscriptionStatus.ACTIVE, created_at=now, confirmed_at=now))
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
    return changes


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
        subscriber.status = SubscriberStatus.BLOCKED if reason is SuppressionReason.BLOCKED else SubscriberStatus.SUPPRESSED
        subscriber.updated_at = now
        _log(session, subscriber, ConsentKind.BLOCKED if reason is SuppressionReason.BLOCKED else ConsentKind.SUPPRESSED,
             ctx, now, note=note or reason.value)
    key = address_hash(address)
    if session.get(Suppression, key) is not None:
        session.flush()
        return False
    session.add(Suppression(address_hash=key, reason=reason, at=now, note=note))
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
    existing = session.get(Suppression, key)
    if existing is None:
        session.add(Suppression(address_hash=key, reason=SuppressionReason.ERASED, at=now, note="erased on request"))
    if subscriber is None:
        session.flush()
        return False
    session.execute(update(OutboxRow).where(OutboxRow.subscriber_id == subscriber.id).values(subscriber_id=None))
    session.execute(delete(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id))
    session.execute(delete(Subscription).where(Subscription.subscriber_id == subscriber.id))
    session.delete(subscriber)
    session.flush()
    return True


def consent_log(session: Session, subscriber: Subscriber) -> list[ConsentEvent]:
    return list(session.scalars(
        select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id).order_by(ConsentEvent.id)
    ))


def export_person(session: Session, email: str) -> dict[str, Any]:
    """Everything we hold about one person, JSON-ready. Raises UnknownSubscriber."""
    subscriber = find_subscriber(session, email)
    if subscriber is None:
        raise UnknownSubscriber(email)

    def when(at: datetime | None) -> str | None:
        return at.isoformat() if at else None

    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "language": subscriber.language,
        "status": subscriber.status.value,
        "created_at": when(subscriber.created_at),
        "subscriptions": [
            {
                "list": sub.mailing_list.slug,
                "list_name": sub.mailing_list.name,
                "status": sub.status.value,
                "since": when(sub.created_at),
                "confirmed_at": when(sub.confirmed_at),
                "unsubscribed_at": when(sub.unsubscribed_at),
            }
            for sub in sorted(subscriber.subscriptions, key=lambda s: s.mailing_list.slug)
        ],
        "consent_log": [
            {
                "at": when(ev.at),
                "event": ev.kind.value,
                "channel": ev.channel.value,
                "list": ev.mailing_list.slug if ev.mailing_list else None,
                "ip": ev.ip,
                "user_agent": ev.user_agent,
                "source": ev.source,
                "consent_version": ev.consent_version,
                "note": ev.note,
            }
            for ev in consent_log(session, subscriber)
        ],
    }
