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
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..statuses import (
    BounceKind,
    CampaignStatus,
    Channel,
    ConsentKind,
    DeliveryStatus,
    OutboxStatus,
    DeliveryMode,
    ScheduleStatus,
    StaffRole,
    StaffStatus,
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
    "SuppressionLift",
    "Campaign",
    "OutboxRow",
    "BounceEvent",
    "BounceScore",
    "QueuedConfirmation",
    "Schedule",
    "Segment",
    "PersonalMail",
    "SessionSeries",
    "DeliveryChoice",
    "ApiToken",
    "WebhookEndpoint",
    "WebhookDelivery",
    "WebhookAttempt",
    "WebhookCursor",
    "StaffMember",
    "StaffSession",
    "AuditEvent",
    "LoginFailure",
    "WorkspaceSetting",
    "EditorialIssue",
    "IssueRevision",
    "IssueApproval",
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
    #: The mailbox the address reaches (`addresses.canonical_mailbox`: tag stripped, Gmail's dots
    #: gone) when it differs from `email`, else NULL; the re-send limits count per mailbox.
    mailbox: Mapped[str | None] = mapped_column(String(320), nullable=True)
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

    __table_args__ = (Index("ix_subscribers_mailbox", "mailbox", sqlite_where=text("mailbox IS NOT NULL"),
                            postgresql_where=text("mailbox IS NOT NULL")),)


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
    #: The name and description in other languages: {"fr": {"name": …, "description": …}, …}.
    translations: Mapped[dict] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    #: Set when the list was archived: kept with its subscriptions and campaigns, offered to nobody,
    #: sent to never.
    archived_at: Mapped[datetime | None] = mapped_column(Timestamp)
    #: Set when the list was deleted: its subscriptions are gone; the row stays (archived) only
    #: because its consent-log lines and campaigns name it.
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp)


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


class SuppressionLift(Base):
    """A suppression an administrator lifted: what it was, when it went and why (append-only)."""

    __tablename__ = "suppression_lifts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), index=True)
    #: The suppression as it was.
    reason: Mapped[SuppressionReason] = mapped_column(_enum(SuppressionReason, "suppression_reason"))
    suppressed_at: Mapped[datetime] = mapped_column(Timestamp)
    suppression_note: Mapped[str | None] = mapped_column(Text)
    lifted_at: Mapped[datetime] = mapped_column(Timestamp)
    #: Why it was lifted, as the administrator said.
    why: Mapped[str] = mapped_column(Text)


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
    #: Why it is paused or cancelled, for people: in English, and as a message id with its
    #: values (`texts.Text.to_json`) for the workspace to say in its reader's language.
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_said: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    #: The ledger is written in chunks of subscribers by id (`store.ledger`): rows are written
    #: for every subscriber id up to `ledger_through`, and are still to be written up to
    #: `ledger_until`. `ledger_until` NULL: the ledger is whole (nothing is left to write).
    ledger_through: Mapped[int | None] = mapped_column(BigInteger)
    ledger_until: Mapped[int | None] = mapped_column(BigInteger)

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
    #: The relay's last reply: code, text and stage ("250 2.0.0 Ok: queued as 4F2… (at DATA)").
    last_reply: Mapped[str | None] = mapped_column(Text)
    #: The relay that took (or refused) the message: its `[relays.NAME]`, or host:port of `smtp_url`.
    relay: Mapped[str | None] = mapped_column(String(64))
    #: That relay's final SMTP reply code (0: the connection was lost).
    reply_code: Mapped[int | None] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    updated_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id", name="uq_outbox_campaign_subscriber"),
        Index("ix_outbox_claim", "campaign_id", "status", "next_attempt_at"),
        # A person's page (the issues they received) and erasing a person (SET NULL) look rows up by subscriber.
        Index("ix_outbox_subscriber", "subscriber_id"),
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
    #: The mail provider whose webhook reported it (ses, postmark, mailgun, sendgrid); NULL: a
    #: mailbox or the relay's reply at SMTP time.
    provider: Mapped[str | None] = mapped_column(String(32))
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


class Schedule(Base):
    """An issue to send at a moment given in a named time zone (the venue's).

    `local_at` and `zone` are what the sender asked for ("2027-07-08 19:00", "Europe/Amsterdam");
    `due_at` is that moment in UTC, worked out once with the zone's rules. In the "ready" mode
    it fires once every language of the list has a variant, at `due_at` at the earliest and at
    `deadline_at` at the latest (then along the fallback chain). `window_start`/`window_end`
    ("07:00", "22:00", local) bound when its mail may go out. `claimed_by`/`claimed_at` name
    the service that fired it (a conditional UPDATE: one service wins).
    """

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The content's slug: the campaign it starts.
    slug: Mapped[str] = mapped_column(String(128), index=True)
    #: The list to send to (None: the one the content names).
    list_slug: Mapped[str | None] = mapped_column(String(64))
    #: The segment (its name) of the list to send to, looked up when it fires (None: the whole
    #: list). A name, not a key: a segment deleted meanwhile fails the schedule, never widens it.
    segment: Mapped[str | None] = mapped_column(String(64))
    #: The content sources, absolute paths or glob patterns (a language written later is found).
    sources: Mapped[list[str]] = mapped_column(JSON)
    local_at: Mapped[str] = mapped_column(String(16))
    zone: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    deadline_at: Mapped[datetime | None] = mapped_column(Timestamp)
    window_start: Mapped[str | None] = mapped_column(String(5))
    window_end: Mapped[str | None] = mapped_column(String(5))
    status: Mapped[ScheduleStatus] = mapped_column(_enum(ScheduleStatus, "schedule_status"),
                                                   default=ScheduleStatus.WAITING)
    #: What it waits for, why it is held or failed, for people.
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    #: When a sender said go for a held schedule (then lateness no longer holds it).
    released_at: Mapped[datetime | None] = mapped_column(Timestamp)
    fired_at: Mapped[datetime | None] = mapped_column(Timestamp)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Segment(Base):
    """A named, saved filter over people: a segment expression (`newsletter.segment_language`)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    expression: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class PersonalMail(Base):
    """One welcome or catch-up mail to one person: the ledger that counts them, sends each
    once (UNIQUE subscriber and key) and retries it like a campaign's row.

    `key` says what it is for ("welcome:asp-daily", "catch-up:asp-daily:ASP 23"); `content`
    what it carries (a catch-up's campaign slugs). Status and attempts as in `outbox`.
    """

    __tablename__ = "personal_mail"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    #: `MailKind` value: welcome or catch-up.
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200))
    content: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus, "personal_mail_status"),
                                                 default=OutboxStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[str | None] = mapped_column(String(255))
    last_reply: Mapped[str | None] = mapped_column(Text)
    #: The relay that answered last: its `[relays.NAME]`, or host:port of `smtp_url`.
    relay: Mapped[str | None] = mapped_column(String(64))
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        UniqueConstraint("subscriber_id", "key", name="uq_personal_mail_subscriber_key"),
        Index("ix_personal_mail_due", "status", "next_attempt_at"),
    )



class SessionSeries(Base):
    """A session of an assembly (name, venue, time zone, first and last day) whose daily
    summaries, on one list, are its "Day N of M". Issues join it by their `session` field."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    #: As the content's `session` field spells it ("ASP 23").
    name: Mapped[str] = mapped_column(String(200))
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), index=True)
    venue: Mapped[str] = mapped_column(String(200), default="")
    #: The venue's IANA time zone (scheduled sends in the venue's time).
    zone: Mapped[str] = mapped_column(String(64))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class DeliveryChoice(Base):
    """A subscriber's choice for one list's daily summaries (no row: each day)."""

    __tablename__ = "delivery_choices"

    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True)
    delivery: Mapped[DeliveryMode] = mapped_column(_enum(DeliveryMode, "delivery"))
    chosen_at: Mapped[datetime] = mapped_column(Timestamp)

class StaffMember(Base):
    """A workspace account. Never deleted (the audit trail names it): revoked instead."""

    __tablename__ = "staff_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Normalised address, as for subscribers.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[StaffRole] = mapped_column(_enum(StaffRole, "staff_role"))
    #: The languages a translator may edit (ignored for the other roles).
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[StaffStatus] = mapped_column(_enum(StaffStatus, "staff_status"), default=StaffStatus.INVITED)
    #: argon2id, in the PHC string format; NULL until the invitation is accepted.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    #: Random; changed whenever the password is set, so an invitation or reset link works once.
    security_stamp: Mapped[str] = mapped_column(String(64))
    #: Base32 TOTP secret once the second factor is enrolled.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    #: The last TOTP time step accepted: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("staff_members.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    last_login_at: Mapped[datetime | None] = mapped_column(Timestamp)


class StaffSession(Base):
    """A server-side workspace session. The cookie carries a random value; only its SHA-256 is kept."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("staff_members.id", ondelete="CASCADE"), index=True)
    #: The form token of this session's forms (compared in constant time).
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    last_seen_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))


class AuditEvent(Base):
    """One line of the staff audit trail. Append-only: the database refuses UPDATE and DELETE."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    #: The staff member (no foreign key action: accounts are never deleted); NULL for the command line.
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    #: Who, as they were called then ("cli" for the command line).
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(400), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str | None] = mapped_column(String(64))


class LoginFailure(Base):
    """A failed workspace login, counted per account and per IP by `staff.throttle`."""

    __tablename__ = "staff_login_failures"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    #: "account" (key: the address tried, known or not) or "ip".
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (Index("ix_staff_login_failures_key", "scope", "key", "at"),)


class WorkspaceSetting(Base):
    """An owner's setting of the workspace (e.g. which roles must use TOTP), as JSON."""

    __tablename__ = "workspace_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict | list | str | int | bool | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)
class EditorialIssue(Base):
    """An issue being written in the workspace: its slug (the campaign's), kind, list and the
    language the others are translated from. Its text is in its revisions."""

    __tablename__ = "issues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    list_slug: Mapped[str] = mapped_column(String(64))
    source_language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    created_by: Mapped[str | None] = mapped_column(String(320))
    #: The revisions it was sent with (language -> revision id), once sent.
    sent_revisions: Mapped[dict | None] = mapped_column(JSON)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    sent_by: Mapped[str | None] = mapped_column(String(320))


class IssueRevision(Base):
    """One save of one language of an issue; never changed once written."""

    __tablename__ = "issue_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(8))
    #: 1, 2, … per (issue, language).
    number: Mapped[int] = mapped_column(Integer)
    #: The front matter as the editor wrote it (placeholders as typed), dates as ISO text.
    front_matter: Mapped[dict] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(Text, default="")
    #: For a translation: the source language's revision it was translated from.
    based_on_id: Mapped[int | None] = mapped_column(ForeignKey("issue_revisions.id", ondelete="SET NULL"))
    author: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (UniqueConstraint("issue_id", "language", "number", name="uq_issue_revision_number"),)


class IssueApproval(Base):
    """A sender's approval of an exact set of revisions (the two-person rule)."""

    __tablename__ = "issue_approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    #: language -> revision id, and its digest (what a send compares).
    revisions: Mapped[dict] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    approved_by: Mapped[str] = mapped_column(String(320))
    approved_at: Mapped[datetime] = mapped_column(Timestamp)


class ApiToken(Base):
    """A REST API token: its scopes and rate limit. Only the SHA-256 of the token is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: hex SHA-256 of the whole token (the token has 256 random bits: a slow hash adds nothing)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The token's first characters, to recognise it in a list ("nlt_3kQ…")
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Requests a minute at most (0: no limit)
    per_minute: Mapped[int] = mapped_column(Integer, default=60)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)


class WebhookEndpoint(Base):
    """A receiver of outgoing webhooks (Standard Webhooks): its URL, secret and the events it takes."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(Text)
    #: `whsec_` + base64 of the signing key (kept: every delivery is signed with it)
    secret: Mapped[str] = mapped_column(String(128))
    #: The event names it takes (subscribe, confirm, unsubscribe, bounce, complaint, campaign_finished)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class WebhookDelivery(Base):
    """One event for one endpoint: the signed body, frozen when queued, and where its delivery stands."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    #: What the event is ("consent:812", "bounce:44", "campaign:3:2026-11-23T09:00:00+00:00"): one delivery each
    event_key: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(64))
    #: The webhook-id header: the same for every attempt (and every endpoint) of one event
    message_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"),
                                                   default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp)
    #: A process sending it holds it until then (a crashed one's hold runs out)
    claimed_until: Mapped[datetime | None] = mapped_column(Timestamp)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (UniqueConstraint("endpoint_id", "event_key", name="uq_webhook_delivery_event"),
                      Index("ix_webhook_deliveries_due", "status", "next_attempt_at"))


class WebhookAttempt(Base):
    """One try of a delivery: when, the receiver's status code or the error, how long it took."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(Timestamp)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class WebhookCursor(Base):
    """How far the webhook producer has read a source of events (the consent log, the bounces, finished campaigns)."""

    __tablename__ = "webhook_cursors"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: The last id read (for campaigns: the last finished_at, in milliseconds since the epoch)
    last: Mapped[int] = mapped_column(BigInteger, default=0)
