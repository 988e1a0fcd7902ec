"""The tables, as SQLAlchemy 2.x declarative models.

The statuses (`newsletter.statuses`) are stored as database enums (a native ENUM on PostgreSQL, a CHECK
constraint on SQLite). Transitions are made by the domain modules (`consent`, `outbox`), one
function per transition; nothing here changes a status by itself.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..statuses import (
    BounceKind,
    CampaignStatus,
    Channel,
    ConsentKind,
    OutboxStatus,
    SubscriberStatus,
    SubscriptionStatus,
    SuppressionReason,
)

__all__ = [
    "Base",
    "Subscriber",
    "MailingList",
    "Subscription",
    "ConsentEvent",
    "Suppression",
    "Campaign",
    "OutboxRow",
    "BounceEvent",
    "BounceScore",
    "QueuedConfirmation",
    "Segment",
]


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        values_callable=lambda members: [m.value for m in members],
        create_constraint=True,
        validate_strings=True,
    )


class Base(DeclarativeBase):
    pass


class UtcDateTime(TypeDecorator):
    """A point in time, always an aware UTC `datetime` in Python, on both databases.

    PostgreSQL keeps `timestamptz`; SQLite keeps the UTC wall time without an offset. Values
    written may be in any zone (a naive one is taken as UTC); values read are aware UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


Timestamp = UtcDateTime()
#: JSON on SQLite, JSONB on PostgreSQL (compared and indexed as values, not text).
AttributesJson = JSON().with_variant(JSONB(), "postgresql")


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Random public reference carried by link tokens; never the row id.
    key: Mapped[str] = mapped_column(String(32), unique=True)
    #: Normalised address (email-validator's normalised form, domain lower-cased).
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus, "subscriber_status"), default=SubscriberStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
    #: The declared attributes (`newsletter.attributes`): {name: JSON scalar}. A JSON column rather
    #: than a table of (person, name, value): one row per person, read with the person, written by
    #: the one writer unchanged (its default is {}), filtered by segments with json_extract (SQLite)
    #: or ->> (PostgreSQL, where it is JSONB); attributes change with the configuration, not the schema.
    attributes: Mapped[dict] = mapped_column(AttributesJson, default=dict, server_default="{}")

    subscriptions: Mapped[list["Subscription"]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", passive_deletes=True
    )


class MailingList(Base):
    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: Languages the list's issues are written in, in fallback order.
    languages: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["en"])
    #: Shown on the public sign-up form.
    public: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class Subscription(Base):
    __tablename__ = "subscriptions"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[SubscriptionStatus] = mapped_column(_enum(SubscriptionStatus, "subscription_status"))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    confirmed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(Timestamp)

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")
    mailing_list: Mapped[MailingList] = relationship(lazy="joined")

    __table_args__ = (Index("ix_subscriptions_list_status", "list_id", "status"),)


class ConsentEvent(Base):
    """One line of the append-only consent log (the database refuses UPDATEs of it)."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id", ondelete="SET NULL"))
    kind: Mapped[ConsentKind] = mapped_column(_enum(ConsentKind, "consent_kind"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "consent_channel"))
    at: Mapped[datetime] = mapped_column(Timestamp)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    #: The form or source: "website-footer", "import:members.csv", …
    source: Mapped[str | None] = mapped_column(String(200))
    consent_version: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)

    mailing_list: Mapped[MailingList | None] = relationship(lazy="joined")
    #: Lets an event be added with a subscriber not yet flushed (one flush writes both).
    subscriber: Mapped[Subscriber] = relationship(lazy="raise_on_sql")


class Suppression(Base):
    """An address that must never be mailed or re-imported, kept only as a hash."""

    __tablename__ = "suppressions"

    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[SuppressionReason] = mapped_column(_enum(SuppressionReason, "suppression_reason"))
    at: Mapped[datetime] = mapped_column(Timestamp)
    note: Mapped[str | None] = mapped_column(Text)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The content's slug ("asp23-day-3"): running `send` again resumes the same campaign.
    slug: Mapped[str] = mapped_column(String(128), unique=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(32), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[CampaignStatus] = mapped_column(
        _enum(CampaignStatus, "campaign_status"), default=CampaignStatus.DRAFT
    )
    #: Content files it was sent from, and settings it was started with.
    source: Mapped[dict] = mapped_column(JSON, default=dict)
    #: Why it is paused or cancelled, for people.
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)

    mailing_list: Mapped[MailingList] = relationship(lazy="joined")


class OutboxRow(Base):
    """One recipient of one campaign: the ledger that makes sending resumable."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    #: Kept NULL-able: erasing a person keeps the campaign's counts.
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"))
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus, "outbox_status"), default=OutboxStatus.QUEUED)
    language: Mapped[str | None] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: Deterministic per (campaign, subscriber): a re-send after a crash keeps it.
    message_id: Mapped[str | None] = mapped_column(String(255))
    last_reply: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id", name="uq_outbox_campaign_subscriber"),
        Index("ix_outbox_claim", "campaign_id", "status", "next_attempt_at"),
    )


class BounceEvent(Base):
    """One bounce, delay notice, complaint or SMTP-time rejection, with its raw reason."""

    __tablename__ = "bounce_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    #: NULL when the person was erased, or the report could not be attributed to anyone.
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"), index=True)
    #: SHA-256 of the bounced address (as in `suppressions`); NULL when no address is known.
    address_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[BounceKind] = mapped_column(_enum(BounceKind, "bounce_kind"))
    #: Where the verdict came from: dsn, arf, heuristic (flufl.bounce), smtp, unparsed.
    source: Mapped[str] = mapped_column(String(32))
    #: The enhanced status code (RFC 3463), e.g. 5.1.1.
    status: Mapped[str | None] = mapped_column(String(16))
    #: The raw reason as the report gives it (Diagnostic-Code, SMTP reply, feedback type…).
    reason: Mapped[str] = mapped_column(Text, default="")
    diagnostic_code: Mapped[str | None] = mapped_column(Text)
    #: What we did: suppressed, scored 2/5, ignored (delayed), not attributed…
    outcome: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(Timestamp)
    #: Message-ID of the report (sha256:… of its bytes when it has none).
    report_message_id: Mapped[str | None] = mapped_column(String(255))
    #: SHA-256 of the report's bytes: reading the same message twice records it once.
    report_digest: Mapped[str | None] = mapped_column(String(64), index=True)


class BounceScore(Base):
    """A person's soft-bounce score: at most +1 a day, forgotten after quiet days."""

    __tablename__ = "bounce_scores"

    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer, default=0)
    #: The (UTC) day the score last went up: a second soft bounce that day does not count.
    last_counted_on: Mapped[date | None] = mapped_column(Date)
    last_bounce_at: Mapped[datetime] = mapped_column(Timestamp)


class QueuedConfirmation(Base):
    """A confirmation mail recorded by a sign-up and not yet handed to the relay.

    Written in the sign-up's own transaction (with its CONFIRMATION_SENT event), deleted once
    the relay has taken the mail: a server that dies leaves its rows here, and they are sent
    when a server runs again. `claimed_by`/`claimed_at` mark a batch one process is sending;
    a claim older than the lease is taken over (the mails of that batch may go twice).
    """

    __tablename__ = "confirmation_queue"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    #: The slugs of the lists the mail asks to confirm, comma-separated (as in the consent log's note).
    list_slugs: Mapped[str] = mapped_column(Text)
    queued_at: Mapped[datetime] = mapped_column(Timestamp)
    #: Not before this moment (later after a temporary failure).
    due_at: Mapped[datetime] = mapped_column(Timestamp)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_confirmation_queue_due", "due_at"),)


class Segment(Base):
    """A named, saved filter over people: a segment expression (`newsletter.segment_language`)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    expression: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
