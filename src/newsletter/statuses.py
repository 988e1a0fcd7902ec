"""Every status the product knows, as `Enum`s: naming a status imports no store.

The store keeps each one as a database enum (a native ENUM on PostgreSQL, a CHECK constraint
on SQLite); each transition is one function of the concept that owns it (`people.consent`,
`store.ledger`, `sending.campaigns`, `bounces.rules`).
"""

from __future__ import annotations

import enum

__all__ = [
    "SubscriberStatus",
    "SubscriptionStatus",
    "ConsentKind",
    "Channel",
    "SuppressionReason",
    "CampaignStatus",
    "OutboxStatus",
    "BounceKind",
    "ScheduleStatus",
    "DeliveryMode",
    "StaffRole",
    "StaffStatus",
    "DeliveryStatus",
]


class SubscriberStatus(str, enum.Enum):
    """Whether a person may be mailed at all (their subscriptions aside)."""

    ACTIVE = "active"
    #: Asked never to be mailed ("this wasn't me"), or an administrator blocked them.
    BLOCKED = "blocked"
    #: Hard-bounced or complained: suppressed.
    SUPPRESSED = "suppressed"


class SubscriptionStatus(str, enum.Enum):
    """A person's standing on one list."""

    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"


class ConsentKind(str, enum.Enum):
    """What happened, in the append-only consent log."""

    SIGNUP = "signup"
    CONFIRMATION_SENT = "confirmation_sent"
    CONFIRMED = "confirmed"
    IMPORTED = "imported"
    UNSUBSCRIBED = "unsubscribed"
    PREFERENCES = "preferences"
    BLOCKED = "blocked"
    SUPPRESSED = "suppressed"
    #: An administrator lifted the address's suppression (with the reason, in the note).
    LIFTED = "lifted"
    #: A pending sign-up never confirmed was forgotten (`pending_expiry_days`); the log keeps it.
    EXPIRED = "expired"


class Channel(str, enum.Enum):
    """How an event reached us."""

    FORM = "form"
    API = "api"
    IMPORT = "import"
    CLI = "cli"
    LINK = "link"
    ONE_CLICK = "one_click"
    MAILTO = "mailto"
    ADMIN = "admin"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"


class SuppressionReason(str, enum.Enum):
    ERASED = "erased"
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCES = "soft_bounces"
    COMPLAINT = "complaint"
    BLOCKED = "blocked"
    ADMIN = "admin"
    #: A file imported from another system says the person had unsubscribed there.
    UNSUBSCRIBED = "unsubscribed"


class CampaignStatus(str, enum.Enum):
    DRAFT = "draft"
    SENDING = "sending"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class OutboxStatus(str, enum.Enum):
    """A recipient's row in a campaign's ledger: queued -> sending -> sent | deferred | failed | skipped."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    SKIPPED = "skipped"


class BounceKind(str, enum.Enum):
    """What a bounce or feedback report says about one recipient."""

    #: Permanent failure (5.x.x, the address does not exist): suppressed at once.
    HARD = "hard"
    #: Temporary failure (4.x.x, mailbox full, policy): adds to the soft-bounce score.
    SOFT = "soft"
    #: `Action: delayed`: the MTA is still trying. Not a bounce; kept for the record.
    DELAYED = "delayed"
    #: An abuse report (ARF): unsubscribed and suppressed.
    COMPLAINT = "complaint"
    #: A report we could not attribute or understand (tampered VERP, unknown format).
    UNKNOWN = "unknown"


class DeliveryStatus(str, enum.Enum):
    """An outgoing webhook delivery: pending (retried with back-off) -> delivered | failed (gave up; kept, retryable)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class ScheduleStatus(str, enum.Enum):
    """A scheduled send: waiting -> sending -> done, held (overdue) until a sender says go,
    failed (its content could not be sent, nothing was) or cancelled before it fired."""

    WAITING = "waiting"
    #: Its time passed longer ago than the overdue margin (the service was down): waits for go.
    HELD = "held"
    #: Fired: its campaign exists and is the sender's (a send window may pause and resume it).
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"



class DeliveryMode(str, enum.Enum):
    """How a subscriber of a list takes a session's daily summaries."""

    #: Each day's mail as it goes out.
    DAILY = "daily"
    #: None of the daily mails; one digest of the whole session after its last day.
    DIGEST = "digest"

class StaffRole(str, enum.Enum):
    """What a staff member may do in the workspace (`staff.roles` says which actions each allows)."""

    #: Accounts and settings, and everything the other roles may do.
    OWNER = "owner"
    #: Send, schedule, pause, cancel, retry and approve campaigns; people and imports.
    SENDER = "sender"
    #: Write issues in every language, preview and test-send them.
    EDITOR = "editor"
    #: Edit only the languages given to them.
    TRANSLATOR = "translator"
    #: Read reports and the dashboard.
    VIEWER = "viewer"


class StaffStatus(str, enum.Enum):
    """A staff account: invited -> active -> revoked (a revoked account never comes back)."""

    #: Invited (or added by `users add`) and has not set a password yet.
    INVITED = "invited"
    ACTIVE = "active"
    REVOKED = "revoked"
