"""newsletter: a multilingual mailing-list manager with double opt-in, batched SMTP sending and
one-click unsubscribe.

The public API is what `__all__` names: the installation (`Newsletter`: configuration, store,
clock and secret, wired once), its configuration (`Config`, `load_config`) and the error tree
(`errors`). The use cases live in the packages by concept (`people.subscriptions`,
`sending.launch`, `sending.actions`, `bounces.rules`, …); docs/architecture.md maps them.
`Newsletter` is imported on first use, so that naming a configuration or an error loads no
database driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Config, load_config
from .errors import (
    NewsletterError,
    ConfigError,
    MissingConfigFile,
    MissingSecretKey,
    StoreError,
    SchemaOutOfDate,
    InvalidAddress,
    InvalidField,
    UnknownList,
    ListArchived,
    UnknownSubscriber,
    SuppressedAddress,
    NotSuppressed,
    InvalidToken,
    ImportFileError,
    ContentError,
    LintFailed,
    MissingVariant,
    DeliveryError,
    InvalidVerp,
    MailboxError,
    DkimError,
    UnknownIssue,
    UnknownCampaign,
    CampaignStateError,
    CampaignContentMissing,
    SegmentError,
    UnknownSegment,
    ApiAccessDenied,
    WebhookRefused,
    UnknownSchedule,
    ScheduleStateError,
    LoginRefused,
    LoginThrottled,
    PermissionDenied,
    UnknownStaffMember,
    StaffMemberExists,
    StaffStateError,
    UnknownDraft,
    DraftExists,
    EditConflict,
    ApprovalRequired,
    CatchUpUnavailable,
    ArchiveError,
    StoreNotEmpty,
)

if TYPE_CHECKING:
    from .installation import Newsletter

__all__ = [
    "Newsletter",
    "Config",
    "load_config",
    "NewsletterError",
    "ConfigError",
    "MissingConfigFile",
    "MissingSecretKey",
    "StoreError",
    "SchemaOutOfDate",
    "InvalidAddress",
    "InvalidField",
    "UnknownList",
    "ListArchived",
    "UnknownSubscriber",
    "SuppressedAddress",
    "NotSuppressed",
    "InvalidToken",
    "ImportFileError",
    "ContentError",
    "LintFailed",
    "MissingVariant",
    "DeliveryError",
    "InvalidVerp",
    "MailboxError",
    "DkimError",
    "UnknownIssue",
    "UnknownCampaign",
    "CampaignStateError",
    "CampaignContentMissing",
    "SegmentError",
    "UnknownSegment",
    "ApiAccessDenied",
    "WebhookRefused",
    "UnknownSchedule",
    "ScheduleStateError",
    "LoginRefused",
    "LoginThrottled",
    "PermissionDenied",
    "UnknownStaffMember",
    "StaffMemberExists",
    "StaffStateError",
    "UnknownDraft",
    "DraftExists",
    "EditConflict",
    "ApprovalRequired",
    "CatchUpUnavailable",
    "ArchiveError",
    "StoreNotEmpty",
]


def __getattr__(name: str) -> Any:
    if name == "Newsletter":
        from .installation import Newsletter

        return Newsletter
    raise AttributeError(f"module 'newsletter' has no attribute {name!r}")
