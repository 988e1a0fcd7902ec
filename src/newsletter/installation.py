"""The library's front door: one `Newsletter` object per installation, used by the CLI and web.

It owns the wiring: configuration, store, clock and secret are given to it (tests inject
their own), and each method is one unit of work — a transaction over the domain functions in
`consent`, then any mail that must go out once it has committed.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from .config import Config
from .errors import InvalidToken, UnknownSubscriber
from .people import consent
from .people.consent import ConfirmationDue, ConsentContext
from .people.lists import get_list
from .statuses import SubscriptionStatus
from .store import (
    ConsentEvent,
    MailingList,
    Store,
    Subscriber,
    Subscription,
    open_store,
)
from .tokens import Purpose, issue_token, read_token
from .transport.smtp import send_bytes

if TYPE_CHECKING:
    from .people.confirmations import ConfirmationSender

__all__ = ["Newsletter", "SignupResult", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SignupResult:
    """What a sign-up may tell the person: always the same "check your inbox".

    `confirmation_sent` is for logs and tests only; never show it to the visitor.
    """

    confirmation_sent: bool


class Newsletter:
    """An installation: configuration + store + clock."""

    def __init__(self, config: Config, store: Store | None = None, *,
                 clock: Callable[[], datetime] = utc_now):
        self.config = config
        self.store = store or open_store(config.database_url)
        self.clock = clock
        self._secret: bytes | None = None

    # -- links -------------------------------------------------------------------------------

    def secret(self) -> bytes:
        """The signing key, read once per installation object. Raises ConfigError when there is none."""
        if self._secret is None:
            self._secret = self.config.secret()
        return self._secret

    def token(self, purpose: Purpose, subscriber_key: str, *, list_slug: str | None = None,
              language: str | None = None) -> str:
        return issue_token(self.secret(), purpose, subscriber_key, list_slug=list_slug,
                           language=language, now=self.clock())

    def link(self, purpose: Purpose, subscriber_key: str, *, list_slug: str | None = None,
             language: str | None = None) -> str:
        """The absolute URL of a visitor page for this token, e.g. …/unsubscribe/<token>."""
        token = self.token(purpose, subscriber_key, list_slug=list_slug, language=language)
        return f"{self.config.base_url.rstrip('/')}/{purpose.value}/{token}"

    def read(self, purpose: Purpose, token: str):
        """Verify a link token; raises InvalidToken."""
        max_age = timedelta(days=self.config.confirm_days) if purpose is Purpose.CONFIRM else ...
        return read_token(self.secret(), purpose, token, max_age=max_age, now=self.clock())

    # -- sign-up and consent ------------------------------------------------------------------

    async def subscribe(self, email: str, name: str, language: str | None, lists: list[str],
                        ctx: ConsentContext) -> SignupResult:
        """Sign a person up (double opt-in) and mail the confirmation when one is due.

        Raises InvalidAddress, InvalidField or UnknownList (nothing changed). Delivery problems
        raise DeliveryError after the sign-up has been recorded.
        """
        if not ctx.consent_version:
            ctx = dataclasses.replace(ctx, consent_version=self.config.consent_version)
        with self.store.session() as session:
            due = consent.subscribe(session, email, name, language, lists, ctx, now=self.clock(),
                                    languages=self.config.languages_by_preference,
                                    check_deliverability=self.config.check_deliverability)
            list_names = [get_list(session, slug).name for slug in due.list_slugs] if due else []
        if due is None:
            return SignupResult(False)
        await self.send_confirmation(due, list_names)
        return SignupResult(True)

    async def send_confirmation(self, due: ConfirmationDue, list_names: list[str]) -> None:
        """Mail the double opt-in confirmation for `due` on a connection of its own."""
        await send_bytes(self.config.smtp, *self.confirmation_wire(due, list_names))

    def confirmation_wire(self, due: ConfirmationDue, list_names: list[str]) -> tuple[str, list[str], bytes]:
        """(envelope sender, recipients, bytes) of the confirmation for `due`, ready for `sendmail`.

        Built from a skeleton rendered and CSS-inlined once per (language, lists); bulk senders
        (the importer) hand many of these to one connection.
        """
        return self.confirmations.wire(due, list_names)

    @functools.cached_property
    def confirmations(self) -> "ConfirmationSender":
        """The cached confirmation renderer (and pooled sender) of this installation."""
        from .people.confirmations import (
            ConfirmationSender,  # here: confirmations builds on this class
        )

        return ConfirmationSender(self)

    def confirm(self, token: str, ctx: ConsentContext) -> list[str]:
        """Confirm with a link token; returns the list slugs confirmed ([] on replay). Raises InvalidToken."""
        claims = self.read(Purpose.CONFIRM, token)
        with self.store.session() as session:
            subscriber = consent.subscriber_by_key(session, claims.subscriber_key)
            return consent.confirm(session, subscriber, ctx, now=self.clock(), issued_at=claims.issued_at)

    def unsubscribe_by_token(self, token: str, ctx: ConsentContext) -> list[str]:
        """Unsubscribe with a link token (list-scoped if the token names a list). Raises InvalidToken."""
        claims = self.read(Purpose.UNSUBSCRIBE, token)
        with self.store.session() as session:
            return consent.unsubscribe_by_key(session, claims.subscriber_key, ctx, now=self.clock(),
                                              list_slug=claims.list_slug)

    def unsubscribe_by_tokens(self, requests: list[tuple[str, ConsentContext]]) -> list[list[str] | InvalidToken]:
        """`unsubscribe_by_token` for many (token, context) in one transaction, in order; a bad
        token's result is an InvalidToken (returned: the others are unsubscribed all the same)."""
        results: list[list[str] | InvalidToken] = []
        valid: list[tuple[int, tuple[str, str | None, ConsentContext]]] = []
        for token, ctx in requests:
            try:
                claims = self.read(Purpose.UNSUBSCRIBE, token)
            except InvalidToken as exc:
                results.append(exc)
                continue
            valid.append((len(results), (claims.subscriber_key, claims.list_slug, ctx)))
            results.append([])
        if valid:
            with self.store.session() as session:
                outcomes = consent.unsubscribe_many_by_key(session, [v for _, v in valid], now=self.clock())
            for (index, _), outcome in zip(valid, outcomes):
                results[index] = outcome
        return results

    def unsubscribe_address(self, email: str, ctx: ConsentContext, list_slug: str | None = None) -> list[str]:
        """Unsubscribe an address (administrators, bounces). Raises UnknownSubscriber, UnknownList."""
        with self.store.session() as session:
            if list_slug is not None:
                get_list(session, list_slug)
            subscriber = consent.find_subscriber(session, email)
            if subscriber is None:
                raise UnknownSubscriber(email)
            return consent.unsubscribe(session, subscriber, ctx, now=self.clock(), list_slug=list_slug)

    def block_by_token(self, token: str, ctx: ConsentContext) -> None:
        """"This wasn't me": suppress the address the token names. Raises InvalidToken."""
        claims = self.read(Purpose.BLOCK, token)
        with self.store.session() as session:
            subscriber = consent.subscriber_by_key(session, claims.subscriber_key)
            consent.block(session, subscriber, ctx, now=self.clock())

    def erase(self, email: str) -> bool:
        with self.store.session() as session:
            return consent.erase(session, email, now=self.clock())

    def export_person(self, email: str) -> dict[str, Any]:
        with self.store.session() as session:
            return consent.export_person(session, email)

    # -- queries ---------------------------------------------------------------------------

    def count_subscribers(self, *, list_slug: str | None = None, status: SubscriptionStatus | None = None) -> int:
        with self.store.session() as session:
            query = select(func.count(func.distinct(Subscription.subscriber_id))).select_from(Subscription)
            if list_slug:
                query = query.where(Subscription.list_id == get_list(session, list_slug).id)
            if status:
                query = query.where(Subscription.status == status)
            return session.scalar(query) or 0

    def subscribers(self, *, list_slug: str | None = None, status: SubscriptionStatus | None = None,
                    limit: int | None = None) -> list[tuple[str, str, str, str, str]]:
        """(email, name, language, list slug, status) rows, ordered by address."""
        with self.store.session() as session:
            query = (
                select(Subscriber.email, Subscriber.name, Subscriber.language, MailingList.slug, Subscription.status)
                .join(Subscription, Subscription.subscriber_id == Subscriber.id)
                .join(MailingList, MailingList.id == Subscription.list_id)
                .order_by(Subscriber.email, MailingList.slug)
            )
            if list_slug:
                query = query.where(MailingList.slug == get_list(session, list_slug).slug)
            if status:
                query = query.where(Subscription.status == status)
            if limit:
                query = query.limit(limit)
            return [(e, n, lang, slug, st.value) for e, n, lang, slug, st in session.execute(query)]

    def consent_events(self, email: str) -> list[ConsentEvent]:
        with self.store.session() as session:
            subscriber = consent.find_subscriber(session, email)
            return consent.consent_log(session, subscriber) if subscriber else []
