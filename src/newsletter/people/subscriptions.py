"""The use cases about people: each function one unit of work over an installation.

The faces (the web pages, the `newsletter` commands) call these and nothing lower: each
opens its session (one transaction), calls the domain functions of `consent`, `signups`,
`lists` and `export`, and returns typed values — never ORM objects. Every function that
takes a link token raises `InvalidToken` for a token that is tampered with, expired, of
another purpose, or names nobody — one error, so no page can tell them apart.

Sign-ups queue their confirmation mail in their own transaction; the server's drainer sends
it (`confirmation_queue`). `subscribe`, for commands that run without the server, sends it
at once in this process and says what became of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..attributes import check_attributes
from ..errors import InvalidToken, NewsletterError, UnknownList, UnknownSubscriber
from ..installation import Newsletter
from ..statuses import DeliveryMode, SubscriberStatus, SubscriptionStatus
from ..store import people as people_store
from ..store.series import deliveries_of
from ..store.people import SubscriptionLine
from ..tokens import Purpose, TokenClaims
from . import abuse, consent, lists
from .confirmation_queue import Delivery, LocalDrainer, MailOutcome
from .consent import PreferenceChanges
from .export import ConsentLine, PersonRecord, person_record, record_of
from .lists import ListDeleted, ListSummary
from .names import name_in
from .profiles import change_note, merge_attributes
from .rules import ConfirmationDue, ConsentContext
from .signups import Recorded, SignupRequest, sign_up_many

__all__ = [
    "ListChoice",
    "LinkHolder",
    "Preferences",
    "SignupRecord",
    "SignupResult",
    "PreferenceChanges",
    "public_lists",
    "change_attributes",
    "record_signup",
    "record_signups",
    "subscribe",
    "check_link",
    "confirm",
    "preferences",
    "save_preferences",
    "unsubscribe_by_token",
    "unsubscribe_by_tokens",
    "unsubscribe_address",
    "unsubscribe_everything",
    "undo_unsubscribe",
    "block_by_token",
    "erase",
    "export_by_token",
    "person",
    "consent_events",
    "count_subscribers",
    "subscription_lines",
    "confirmations_sent_since",
    "create_list",
    "list_summaries",
    "list_summary",
    "rename_list",
    "describe_list",
    "set_list_public",
    "archive_list",
    "delete_list",
]


@dataclass(frozen=True)
class ListChoice:
    """A list as a visitor sees it; `status` is the person's standing ("" when not subscribed).
    `name` and `description` are the list's own until `in_language` gives a reader's."""

    slug: str
    name: str
    description: str
    status: str = ""
    translations: dict | None = None

    def in_language(self, language: str | None) -> "ListChoice":
        """The list as a reader of `language` sees it (its own name where it has no translation)."""
        name, description = name_in(self.translations, self.name, self.description, language)
        return dataclasses.replace(self, name=name, description=description)


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
    #: Whether they take the daily summaries as one digest after each session (`routine.series`).
    digest: bool = False
    #: The person's declared attributes ({name: stored value}).
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def in_language(self, language: str | None) -> "Preferences":
        """The page's lists as a reader of `language` sees them."""
        return dataclasses.replace(self, lists=tuple(c.in_language(language) for c in self.lists))


@dataclass(frozen=True)
class SignupRecord:
    """A recorded sign-up: the confirmation mail queued (None: none) and the list names."""

    due: ConfirmationDue | None
    list_names: tuple[str, ...]


@dataclass(frozen=True)
class SignupResult:
    """What `subscribe` did with the confirmation mail: None when none was due (already active,
    suppressed, or mailed recently — which a caller must not tell the person apart), else
    what became of it (sent, refused, or waiting in the queue for a retry)."""

    confirmation: MailOutcome | None

    @property
    def confirmation_sent(self) -> bool:
        return self.confirmation is not None and self.confirmation.delivery is Delivery.SENT


def _signup_context(newsletter: Newsletter, ctx: ConsentContext) -> ConsentContext:
    """The context with the installation's consent version when it names none."""
    if ctx.consent_version:
        return ctx
    return dataclasses.replace(ctx, consent_version=newsletter.config.consent_version)


def _record(newsletter: Newsletter, requests: list[SignupRequest], *, public_only: bool
            ) -> list[Recorded | NewsletterError]:
    config = newsletter.config
    requests = [r._replace(ctx=_signup_context(newsletter, r.ctx)) for r in requests]
    with newsletter.store.session() as session:
        return sign_up_many(session, requests, now=newsletter.clock(), languages=config.languages_by_preference,
                            check_deliverability=config.check_deliverability, public_only=public_only,
                            attribute_specs=[a for a in config.attributes if a.signup or not public_only])


def _as_record(outcome: Recorded | NewsletterError) -> SignupRecord | NewsletterError:
    if isinstance(outcome, NewsletterError):
        return outcome
    return SignupRecord(outcome.due, outcome.due.list_names if outcome.due else ())


# -- signing up ---------------------------------------------------------------------------------

def public_lists(newsletter: Newsletter, language: str | None = None) -> list[ListChoice]:
    """The lists offered on the sign-up form (public, not archived), by slug, named as a reader
    of `language` sees them (None: their own names)."""
    with newsletter.store.reading() as session:
        return [ListChoice(m.slug, m.name, m.description, "", dict(m.translations or {})).in_language(language)
                for m in lists.all_lists(session, public_only=True)]


def record_signup(newsletter: Newsletter, email: str, name: str, language: str | None, list_slugs: list[str],
                  ctx: ConsentContext, *, public_only: bool = True,
                  attributes: Mapping[str, Any] | None = None) -> SignupRecord:
    """Record a sign-up (by default from the public form: public lists only) and queue its
    confirmation mail in the same transaction; a `ConfirmationDrainer` sends it. `attributes`
    fill in only those the person does not have yet (anyone can post a form for any address).

    Raises InvalidAddress, InvalidField (also for an attribute), or UnknownList (also for a list
    that is not public); nothing changes then.
    """
    [outcome] = _record(newsletter, [SignupRequest(email, name, language, tuple(list_slugs), ctx, attributes)],
                        public_only=public_only)
    if isinstance(outcome, NewsletterError):
        raise outcome
    return _as_record(outcome)  # type: ignore[return-value]


def record_signups(newsletter: Newsletter, requests: list[SignupRequest]) -> list[SignupRecord | NewsletterError]:
    """`record_signup` for many sign-ups in one transaction (the web app's group commit).

    Each result is the SignupRecord, or the error `record_signup` would raise for that request
    (returned: the others are recorded all the same). Errors of the store are raised for the
    whole batch, which is then not recorded at all (the caller may record them one by one).
    """
    return [_as_record(o) for o in _record(newsletter, list(requests), public_only=True)]


def subscribe(newsletter: Newsletter, email: str, name: str, language: str | None, list_slugs: list[str],
              ctx: ConsentContext, *, attributes: Mapping[str, Any] | None = None) -> SignupResult:
    """Sign a person up (double opt-in) for any lists, and send the confirmation mail now.

    The sign-up and its queued mail are one transaction; then this process drains that mail
    (`confirmation_queue.LocalDrainer`): sent, refused by the relay, or left in the queue for
    the server's drainer to retry. Raises InvalidAddress, InvalidField or UnknownList (nothing
    changed). `attributes` fill in those the person does not have yet. Blocking: not from a
    running event loop.
    """
    [outcome] = _record(newsletter, [SignupRequest(email, name, language, tuple(list_slugs), ctx, attributes)],
                        public_only=False)
    if isinstance(outcome, NewsletterError):
        raise outcome
    if outcome.queued is None:
        return SignupResult(None)
    with LocalDrainer(newsletter) as drainer:
        return SignupResult(drainer.send([outcome.queued]).outcomes[outcome.queued])


# -- links ---------------------------------------------------------------------------------------

def _holder(session: Session, newsletter: Newsletter, purpose: Purpose, token: str):
    claims = newsletter.read(purpose, token)
    return claims, consent.subscriber_by_key(session, claims.subscriber_key)


def check_link(newsletter: Newsletter, purpose: Purpose, token: str) -> LinkHolder:
    """Verify a link for a page that only shows something (changes nothing). Raises InvalidToken."""
    with newsletter.store.reading() as session:
        claims, subscriber = _holder(session, newsletter, purpose, token)
        return LinkHolder(claims, subscriber.name, subscriber.language)


def confirm(newsletter: Newsletter, token: str, ctx: ConsentContext) -> list[str]:
    """Confirm with a link token; returns the list slugs confirmed ([] on replay). Raises InvalidToken."""
    claims = newsletter.read(Purpose.CONFIRM, token)
    with newsletter.store.session() as session:
        subscriber = consent.subscriber_by_key(session, claims.subscriber_key)
        return consent.confirm(session, subscriber, ctx, now=newsletter.clock(), issued_at=claims.issued_at)


def preferences(newsletter: Newsletter, token: str) -> Preferences:
    """The person's language, name and lists (public ones and any they are on; none archived),
    the lists with their own names (`Preferences.in_language` gives a reader's). Raises InvalidToken."""
    with newsletter.store.reading() as session:
        claims, subscriber = _holder(session, newsletter, Purpose.PREFERENCES, token)
        standing = {sub.mailing_list.slug: sub.status.value for sub in subscriber.subscriptions}
        choices = tuple(ListChoice(m.slug, m.name, m.description, standing.get(m.slug, ""),
                                   dict(m.translations or {}))
                        for m in lists.all_lists(session, open_only=True) if m.public or m.slug in standing)
        digest = DeliveryMode.DIGEST in deliveries_of(session, subscriber.id).values()
        return Preferences(LinkHolder(claims, subscriber.name, subscriber.language), subscriber.email, choices,
                           subscriber.status is SubscriberStatus.ACTIVE, digest, dict(subscriber.attributes or {}))


def save_preferences(newsletter: Newsletter, token: str, ctx: ConsentContext, *, language: str | None,
                     list_slugs: list[str], name: str | None,
                     attributes: Mapping[str, Any] | None = None) -> PreferenceChanges:
    """Apply the preferences form: lists ticked are active at once, the others left;
    `attributes` (only those declared editable there) replace the stored ones, "" removes one.

    Returns what changed. Raises InvalidToken, InvalidField (nothing changes then), UnknownList.
    """
    editable = [a for a in newsletter.config.attributes if a.preferences]
    checked = check_attributes(editable, attributes) if attributes else {}
    with newsletter.store.session() as session:
        _claims, subscriber = _holder(session, newsletter, Purpose.PREFERENCES, token)
        changes = consent.set_preferences(session, subscriber, ctx, now=newsletter.clock(),
                                          languages=newsletter.config.languages, language=language,
                                          list_slugs=list_slugs, name=name)
        if checked and subscriber.status is SubscriberStatus.ACTIVE:
            merge_attributes(session, [(subscriber.id, checked)], overwrite=True, now=newsletter.clock())
        return changes


def change_attributes(newsletter: Newsletter, email: str, values: Mapping[str, Any],
                      ctx: ConsentContext) -> dict[str, Any]:
    """Set declared attributes of a person (an empty value removes one), as `ctx` (an API
    token, a staff member) asks; a change is written to their consent log with the old and new
    values. Returns all of them after. Raises UnknownSubscriber, InvalidField (nothing changed)."""
    checked = check_attributes(newsletter.config.attributes, values)
    now = newsletter.clock()
    with newsletter.store.session() as session:
        subscriber = consent.find_subscriber(session, email)
        if subscriber is None:
            raise UnknownSubscriber(email)
        before = dict(subscriber.attributes or {})
        merge_attributes(session, [(subscriber.id, checked)], overwrite=True, now=now)
        session.refresh(subscriber)
        after = dict(subscriber.attributes or {})
        note = change_note(before, after, [a.name for a in newsletter.config.attributes])
        if note is not None:
            consent.log_attribute_change(session, subscriber, ctx, now=now, note=note)
        return after


def unsubscribe_by_token(newsletter: Newsletter, token: str, ctx: ConsentContext) -> list[str]:
    """Unsubscribe with a link token (list-scoped if the token names a list); the slugs left.
    Raises InvalidToken."""
    claims = newsletter.read(Purpose.UNSUBSCRIBE, token)
    with newsletter.store.session() as session:
        return consent.unsubscribe_by_key(session, claims.subscriber_key, ctx, now=newsletter.clock(),
                                          list_slug=claims.list_slug)


def unsubscribe_by_tokens(newsletter: Newsletter, requests: list[tuple[str, ConsentContext]]
                          ) -> list[list[str] | InvalidToken]:
    """`unsubscribe_by_token` for many (token, context) in one transaction, in order; a bad
    token's result is an InvalidToken (returned: the others are unsubscribed all the same)."""
    results: list[list[str] | InvalidToken] = []
    valid: list[tuple[int, tuple[str, str | None, ConsentContext]]] = []
    for token, ctx in requests:
        try:
            claims = newsletter.read(Purpose.UNSUBSCRIBE, token)
        except InvalidToken as exc:
            results.append(exc)
            continue
        valid.append((len(results), (claims.subscriber_key, claims.list_slug, ctx)))
        results.append([])
    if valid:
        with newsletter.store.session() as session:
            outcomes = consent.unsubscribe_many_by_key(session, [v for _, v in valid], now=newsletter.clock())
        for (index, _), outcome in zip(valid, outcomes):
            results[index] = outcome
    return results


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


def block_by_token(newsletter: Newsletter, token: str, ctx: ConsentContext) -> None:
    """"This wasn't me": suppress the address the token names. Raises InvalidToken."""
    claims = newsletter.read(Purpose.BLOCK, token)
    with newsletter.store.session() as session:
        consent.block(session, consent.subscriber_by_key(session, claims.subscriber_key), ctx, now=newsletter.clock())


def export_by_token(newsletter: Newsletter, token: str) -> PersonRecord:
    """What is held about the person a preferences link names, for whoever holds the link:
    everything but the consent log's IP addresses and user agents (`PersonRecord.without_origins`:
    links get forwarded). Raises InvalidToken."""
    with newsletter.store.reading() as session:
        _claims, subscriber = _holder(session, newsletter, Purpose.PREFERENCES, token)
        return record_of(session, subscriber).without_origins()


# -- administration ---------------------------------------------------------------------------

def unsubscribe_address(newsletter: Newsletter, email: str, ctx: ConsentContext,
                        list_slug: str | None = None) -> list[str]:
    """Unsubscribe an address from one list or all (administrators); the slugs left.
    Raises UnknownSubscriber, UnknownList."""
    with newsletter.store.session() as session:
        if list_slug is not None:
            lists.get_list(session, list_slug)
        subscriber = consent.find_subscriber(session, email)
        if subscriber is None:
            raise UnknownSubscriber(email)
        return consent.unsubscribe(session, subscriber, ctx, now=newsletter.clock(), list_slug=list_slug)


def erase(newsletter: Newsletter, email: str) -> bool:
    """Delete a person's data and consent log, keeping the address suppressed (as a hash).
    Returns False when nobody had the address (it is suppressed all the same)."""
    with newsletter.store.session() as session:
        return consent.erase(session, email, now=newsletter.clock())


def person(newsletter: Newsletter, email: str, *, with_bounces: bool = False) -> PersonRecord:
    """Everything held about the person with this address (and the bounces about it, for
    staff). Raises UnknownSubscriber."""
    with newsletter.store.reading() as session:
        return person_record(session, email, with_bounces=with_bounces)


def consent_events(newsletter: Newsletter, email: str) -> list[ConsentLine]:
    """The consent log of the person with this address, oldest first ([] for nobody)."""
    try:
        return list(person(newsletter, email).consent_log)
    except UnknownSubscriber:
        return []


def _list_id(session: Session, list_slug: str | None) -> int | None:
    return None if list_slug is None else lists.get_list(session, list_slug).id


def count_subscribers(newsletter: Newsletter, *, list_slug: str | None = None,
                      status: SubscriptionStatus | None = None) -> int:
    """How many people have a subscription (to this list, in this status). Raises UnknownList."""
    with newsletter.store.reading() as session:
        return people_store.count_people(session, list_id=_list_id(session, list_slug or None), status=status)


def subscription_lines(newsletter: Newsletter, *, list_slug: str | None = None,
                       status: SubscriptionStatus | None = None, limit: int | None = None) -> list[SubscriptionLine]:
    """Subscriptions as (email, name, language, list, status), by address and list. Raises UnknownList."""
    with newsletter.store.reading() as session:
        return people_store.subscription_lines(session, list_id=_list_id(session, list_slug or None), status=status,
                                               limit=limit)


def confirmations_sent_since(newsletter: Newsletter, since: datetime) -> int:
    """Confirmation mails the consent log records after `since`, over the whole installation."""
    with newsletter.store.reading() as session:
        return abuse.count_confirmations_sent(session, since)


# -- lists --------------------------------------------------------------------------------------

def create_list(newsletter: Newsletter, slug: str, name: str, *, description: str = "",
                languages: list[str] | tuple[str, ...] = ("en",), public: bool = True) -> ListSummary:
    """Create a list; returns it with its (zero) counts. Raises InvalidField."""
    with newsletter.store.session() as session:
        created = lists.create_list(session, slug, name, description=description, languages=languages,
                                    public=public, now=newsletter.clock())
        return ListSummary(created.slug, created.name, created.description, list(created.languages), created.public,
                           {s.value: 0 for s in SubscriptionStatus})


def _summary(session: Session, slug: str) -> ListSummary:
    for summary in lists.summarise_lists(session):
        if summary.slug == slug:
            return summary
    raise UnknownList(slug)


def rename_list(newsletter: Newsletter, slug: str, name: str, *, language: str | None = None) -> ListSummary:
    """Rename a list (its name in `language` only, when given; an empty name there takes the
    translation back). Raises UnknownList, InvalidField."""
    with newsletter.store.session() as session:
        lists.rename_list(session, slug, name, language=language)
        return _summary(session, slug)


def describe_list(newsletter: Newsletter, slug: str, description: str, *,
                  language: str | None = None) -> ListSummary:
    """Describe a list anew (in `language` only, when given). Raises UnknownList, InvalidField."""
    with newsletter.store.session() as session:
        lists.describe_list(session, slug, description, language=language)
        return _summary(session, slug)


def set_list_public(newsletter: Newsletter, slug: str, public: bool) -> ListSummary:
    """Offer a list on the public sign-up form, or stop. Raises UnknownList."""
    with newsletter.store.session() as session:
        lists.set_public(session, slug, public)
        return _summary(session, slug)


def archive_list(newsletter: Newsletter, slug: str, *, archived: bool = True) -> ListSummary:
    """Archive a list (offered to nobody, sent to never, its subscriptions kept), or bring it
    back. Raises UnknownList."""
    with newsletter.store.session() as session:
        lists.archive_list(session, slug, now=newsletter.clock() if archived else None)
        return _summary(session, slug)


def delete_list(newsletter: Newsletter, slug: str, ctx: ConsentContext | None = None) -> ListDeleted:
    """Delete a list and its subscriptions (see `lists.delete_list`); what was deleted. Raises UnknownList."""
    with newsletter.store.session() as session:
        return lists.delete_list(session, slug, ctx, now=newsletter.clock())


def list_summaries(newsletter: Newsletter) -> list[ListSummary]:
    """Every list with its subscription counts per status, by slug."""
    with newsletter.store.reading() as session:
        return lists.summarise_lists(session)


def list_summary(newsletter: Newsletter, slug: str) -> ListSummary:
    """One list with its counts. Raises UnknownList."""
    for summary in list_summaries(newsletter):
        if summary.slug == slug:
            return summary
    raise UnknownList(slug)
