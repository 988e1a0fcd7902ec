"""Bounces in the store: the events kept, the soft-bounce scores, and the look-ups that tell
whom a report is about. Named statements for `bounces.rules`, which decides what they mean.

Each function takes the caller's session and runs in its transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..statuses import BounceKind, OutboxStatus
from . import BounceEvent, BounceScore, Campaign, OutboxRow, Subscriber

__all__ = [
    "CampaignBounces",
    "BounceLine",
    "bounce_lines",
    "subscriber_with_key",
    "subscriber_by_id",
    "recipient_of_message",
    "score_of",
    "locked_score",
    "write_score",
    "add_event",
    "digest_recorded",
    "events_about",
    "count_bounces",
    "PersonBounce",
    "bounces_by_person",
]


class BounceLine(NamedTuple):
    """One event about a person, as `newsletter show` prints it."""

    at: datetime
    kind: BounceKind
    source: str
    status: str | None
    reason: str
    outcome: str
    campaign_slug: str | None
    #: The mail provider whose webhook reported it (None: a mailbox, or the relay at SMTP time).
    provider: str | None = None

    @property
    def came_from(self) -> str:
        """Where it came from: the provider (ses, postmark, …), else the kind of report (dsn, arf, smtp, …)."""
        return self.provider or self.source


class CampaignBounces(NamedTuple):
    """Events of one campaign by kind, with how many of its messages were sent."""

    campaign_id: int | None
    slug: str | None
    sent: int
    hard: int
    soft: int
    delayed: int
    complaint: int
    unknown: int


def subscriber_with_key(session: Session, key: str) -> Subscriber | None:
    """The subscriber whose key (the one VERP and link tokens carry) this is, or None."""
    return session.scalar(select(Subscriber).where(Subscriber.key == key))


def subscriber_by_id(session: Session, subscriber_id: int) -> Subscriber | None:
    return session.get(Subscriber, subscriber_id)


def recipient_of_message(session: Session, message_id: str) -> tuple[int, int] | None:
    """(subscriber id, campaign id) of the outbox row that sent this Message-ID (with or
    without its angle brackets), or None when no row with a subscriber did."""
    bare = message_id.strip("<>")
    row = session.scalar(select(OutboxRow).where(OutboxRow.message_id.in_([bare, f"<{bare}>"])).limit(1))
    if row is None or row.subscriber_id is None:
        return None
    return row.subscriber_id, row.campaign_id


def score_of(session: Session, subscriber_id: int) -> BounceScore | None:
    """The person's soft-bounce score row, or None."""
    return session.get(BounceScore, subscriber_id)


def locked_score(session: Session, subscriber_id: int, *, now: datetime) -> BounceScore:
    """The person's score row, locked until the transaction ends (PostgreSQL: FOR UPDATE); made
    at 0 (last bounce `now`) when there is none. The bounce reader and sender workers may score
    the same person at once: a racing first insert wins, and a savepoint keeps the caller's
    transaction usable."""
    state = session.get(BounceScore, subscriber_id, with_for_update=True)
    if state is None:
        try:
            with session.begin_nested():
                state = BounceScore(subscriber_id=subscriber_id, score=0, last_counted_on=None, last_bounce_at=now)
                session.add(state)
        except IntegrityError:
            state = session.get(BounceScore, subscriber_id, with_for_update=True, populate_existing=True)
    return state


def write_score(session: Session, state: BounceScore, *, score: int, last_counted_on: date | None,
                last_bounce_at: datetime) -> None:
    """Write a score row's new values (locked with `locked_score`)."""
    state.score, state.last_counted_on, state.last_bounce_at = score, last_counted_on, last_bounce_at
    session.flush()


def add_event(session: Session, **columns: object) -> BounceEvent:
    """Keep one bounce event (the `BounceEvent` columns as keywords); returns it with its id."""
    event = BounceEvent(**columns)
    session.add(event)
    session.flush()
    return event


def digest_recorded(session: Session, digest: str) -> bool:
    """Whether a report with this digest was recorded before."""
    return session.scalar(select(BounceEvent.id).where(BounceEvent.report_digest == digest).limit(1)) is not None


def events_about(session: Session, address_hash: str, subscriber_id: int | None = None
                 ) -> list[tuple[BounceEvent, str | None]]:
    """Every event about this address hash (or this subscriber), oldest first, with its
    campaign's slug (None when it names none)."""
    condition = BounceEvent.address_hash == address_hash
    if subscriber_id is not None:
        condition = or_(condition, BounceEvent.subscriber_id == subscriber_id)
    return [(event, slug) for event, slug in session.execute(
        select(BounceEvent, Campaign.slug).outerjoin(Campaign, Campaign.id == BounceEvent.campaign_id)
        .where(condition).order_by(BounceEvent.at, BounceEvent.id))]


def bounce_lines(session: Session, address_hash: str, subscriber_id: int | None = None) -> list[BounceLine]:
    """`events_about`, as BounceLines."""
    return [BounceLine(ev.at, ev.kind, ev.source, ev.status, ev.reason, ev.outcome, slug, ev.provider)
            for ev, slug in events_about(session, address_hash, subscriber_id)]


class PersonBounce(NamedTuple):
    """One bounce or complaint, with whom it is about (`email` None: erased, or nobody known)."""

    campaign_slug: str | None
    email: str | None
    at: datetime
    kind: BounceKind
    status: str | None
    reason: str
    outcome: str
    #: Where it came from: the mail provider's webhook (ses, postmark, mailgun, sendgrid), else
    #: the kind of report read from the mailbox (dsn, arf, …) or smtp (the relay's refusal).
    came_from: str = ""


def bounces_by_person(session: Session, campaign_slug: str | None = None) -> list[PersonBounce]:
    """Every bounce and complaint (delay notices aside), by campaign then address then time;
    `campaign_slug`: that campaign's only."""
    query = (
        select(Campaign.slug, Subscriber.email, BounceEvent.at, BounceEvent.kind, BounceEvent.status,
               BounceEvent.reason, BounceEvent.outcome, func.coalesce(BounceEvent.provider, BounceEvent.source))
        .select_from(BounceEvent)
        .outerjoin(Campaign, Campaign.id == BounceEvent.campaign_id)
        .outerjoin(Subscriber, Subscriber.id == BounceEvent.subscriber_id)
        .where(BounceEvent.kind != BounceKind.DELAYED)
        .order_by(Campaign.slug, Subscriber.email, BounceEvent.at, BounceEvent.id)
    )
    if campaign_slug is not None:
        query = query.where(Campaign.slug == campaign_slug)
    return [PersonBounce(*row) for row in session.execute(query)]


def count_bounces(session: Session, campaign_slug: str | None = None) -> list[CampaignBounces]:
    """Events counted per campaign (campaign None: reports not tied to a campaign), by campaign id."""
    def count(kind: BounceKind):
        return func.sum(case((BounceEvent.kind == kind, 1), else_=0))

    query = (
        select(BounceEvent.campaign_id, Campaign.slug, count(BounceKind.HARD), count(BounceKind.SOFT),
               count(BounceKind.DELAYED), count(BounceKind.COMPLAINT), count(BounceKind.UNKNOWN))
        .outerjoin(Campaign, Campaign.id == BounceEvent.campaign_id)
        .group_by(BounceEvent.campaign_id, Campaign.slug)
        .order_by(BounceEvent.campaign_id)
    )
    if campaign_slug is not None:
        query = query.where(Campaign.slug == campaign_slug)
    rows = session.execute(query).all()
    ids = [cid for cid, *_ in rows if cid is not None]
    sent = dict(session.execute(
        select(OutboxRow.campaign_id, func.count()).where(OutboxRow.campaign_id.in_(ids),
                                                           OutboxRow.status == OutboxStatus.SENT)
        .group_by(OutboxRow.campaign_id)).all()) if ids else {}
    return [CampaignBounces(cid, slug, int(sent.get(cid, 0)), *(int(n or 0) for n in counts))
            for cid, slug, *counts in rows]
