"""What a visitor can do on the public pages, each function one unit of work over a `Newsletter`.

The web app calls these (and the `Newsletter` methods) and nothing lower: they open the
session, call the domain functions of `consent` and `lists`, and return typed values.
Every function that takes a link token raises `InvalidToken` for a token that is tampered
with, expired, of another purpose, or names nobody — one error, so no page can tell them apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import NewsletterError
from ..installation import Newsletter
from ..statuses import SubscriberStatus
from ..tokens import Purpose, TokenClaims
from . import abuse, consent
from .confirmation_queue import enqueue_confirmation, enqueue_confirmations
from .consent import ConfirmationDue, ConsentContext
from .lists import all_lists
from .signups import SignupRequest, subscribe_many

__all__ = [
    "ListChoice",
    "LinkHolder",
    "Preferences",
    "SignupRecord",
    "public_lists",
    "record_signup",
    "record_signups",
    "check_link",
    "preferences",
    "save_preferences",
    "unsubscribe_everything",
    "undo_unsubscribe",
    "export_by_token",
    "confirmations_sent_since",
]


@dataclass(frozen=True)
class ListChoice:
    """A list as a visitor sees it; `status` is the person's standing ("" when not subscribed)."""

    slug: str
    name: str
    description: str
    status: str = ""


@dataclass(frozen=True)
class LinkHolder:
    """The person a valid link names, as much as a page needs."""

    claims: TokenClaims
    name: str
    language: str


@dataclass(frozen=True)
class Preferences:
    """What the preferences page shows."""

    holder: LinkHolder
    email: str
    lists: tuple[ListChoice, ...]
    #: False for a blocked or suppressed person: nothing can be changed but the data downloaded.
    can_change: bool


@dataclass(frozen=True)
class SignupRecord:
    """A recorded sign-up: the confirmation mail queued (None: none) and the list names."""

    due: ConfirmationDue | None
    list_names: tuple[str, ...]


def public_lists(newsletter: Newsletter) -> list[ListChoice]:
    """The lists offered on the sign-up form, by slug."""
    with newsletter.store.session() as session:
        return [ListChoice(m.slug, m.name, m.description) for m in all_lists(session, public_only=True)]


def record_signup(newsletter: Newsletter, email: str, name: str, language: str | None,
                  list_slugs: list[str], ctx: ConsentContext) -> SignupRecord:
    """Record a sign-up from the public form (public lists only), and queue its confirmation mail.

    The mail due (`due`, None when none is) is written to the confirmation queue in the same
    transaction; a `confirmation_queue.ConfirmationDrainer` sends it. Raises InvalidAddress,
    InvalidField, or UnknownList (also for a list that is not public); nothing changes then.
    """
    config = newsletter.config
    if not ctx.consent_version:
        ctx = dataclasses.replace(ctx, consent_version=config.consent_version)
    now = newsletter.clock()
    with newsletter.store.session() as session:
        due = consent.subscribe(session, email, name, language, list_slugs, ctx, now=now,
                                languages=config.languages, check_deliverability=config.check_deliverability,
                                public_only=True)
        if due is not None:
            enqueue_confirmation(session, due, now=now)
    names = due.list_names if due else ()
    return SignupRecord(due, names)


def record_signups(newsletter: Newsletter, requests: list[SignupRequest]) -> list[SignupRecord | NewsletterError]:
    """`record_signup` for many sign-ups in one transaction (the web app's group commit).

    Each result is the SignupRecord, or the error `record_signup` would raise for that request
    (returned: the others are recorded all the same). Errors of the store are raised for the
    whole batch, which is then not recorded at all (the caller may record them one by one).
    """
    config = newsletter.config
    requests = [r if r.ctx.consent_version else r._replace(
        ctx=dataclasses.replace(r.ctx, consent_version=config.consent_version)) for r in requests]
    now = newsletter.clock()
    with newsletter.store.session() as session:
        outcomes = subscribe_many(session, requests, now=now, languages=config.languages,
                                  check_deliverability=config.check_deliverability, public_only=True)
        enqueue_confirmations(session, [o for o in outcomes if isinstance(o, ConfirmationDue)], now=now)
    return [o if isinstance(o, NewsletterError) else SignupRecord(o, o.list_names if o else ()) for o in outcomes]


def _holder(session: Any, newsletter: Newsletter, purpose: Purpose, token: str):
    claims = newsletter.read(purpose, token)
    subscriber = consent.subscriber_by_key(session, claims.subscriber_key)
    return claims, subscriber


def check_link(newsletter: Newsletter, purpose: Purpose, token: str) -> LinkHolder:
    """Verify a link for a page that only shows something (changes nothing). Raises InvalidToken."""
    with newsletter.store.session() as session:
        claims, subscriber = _holder(session, newsletter, purpose, token)
        return LinkHolder(claims, subscriber.name, subscriber.language)


def preferences(newsletter: Newsletter, token: str) -> Preferences:
    """The person's language, name and lists (public ones and any they are on). Raises InvalidToken."""
    with newsletter.store.session() as session:
        claims, subscriber = _holder(session, newsletter, Purpose.PREFERENCES, token)
        standing = {sub.mailing_list.slug: sub.status.value for sub in subscriber.subscriptions}
        lists = tuple(
            ListChoice(m.slug, m.name, m.description, standing.get(m.slug, ""))
            for m in all_lists(session)
            if m.public or m.slug in standing
        )
        return Preferences(LinkHolder(claims, subscriber.name, subscriber.language), subscriber.email, lists,
                           subscriber.status is SubscriberStatus.ACTIVE)


def save_preferences(newsletter: Newsletter, token: str, ctx: ConsentContext, *, language: str | None,
                     list_slugs: list[str], name: str | None) -> dict[str, Any]:
    """Apply the preferences form: lists ticked are active at once, the others left.

    Returns what changed ({"language": …, "added": […], "removed": […]}). Raises InvalidToken,
    InvalidField, UnknownList.
    """
    with newsletter.store.session() as session:
        _claims, subscriber = _holder(session, newsletter, Purpose.PREFERENCES, token)
        return consent.set_preferences(session, subscriber, ctx, now=newsletter.clock(),
                                       languages=newsletter.config.languages, language=language,
                                       list_slugs=list_slugs, name=name)


def unsubscribe_everything(newsletter: Newsletter, purpose: Purpose, token: str, ctx: ConsentContext) -> list[str]:
    """Leave every list through a preferences (or unsubscribe) link; returns the slugs left."""
    with newsletter.store.session() as session:
        _claims, subscriber = _holder(session, newsletter, purpose, token)
        return consent.unsubscribe(session, subscriber, ctx, now=newsletter.clock())


def undo_unsubscribe(newsletter: Newsletter, purpose: Purpose, token: str, list_slugs: list[str],
                     ctx: ConsentContext) -> list[str]:
    """Take back an unsubscription made through the person's own link; returns the slugs back."""
    with newsletter.store.session() as session:
        _claims, subscriber = _holder(session, newsletter, purpose, token)
        return consent.undo_unsubscribe(session, subscriber, list_slugs, ctx, now=newsletter.clock())


def export_by_token(newsletter: Newsletter, token: str) -> dict[str, Any]:
    """Everything held about the person a preferences link names (JSON-ready). Raises InvalidToken."""
    with newsletter.store.session() as session:
        _claims, subscriber = _holder(session, newsletter, Purpose.PREFERENCES, token)
        return consent.export_person(session, subscriber.email)


def confirmations_sent_since(newsletter: Newsletter, since: datetime) -> int:
    """Confirmation mails the consent log records after `since`, over the whole installation."""
    with newsletter.store.session() as session:
        return abuse.count_confirmations_sent(session, since)
