"""What each role may do: the one table the workspace checks, on the server, for every route.

`allowed(member, action, language=...)` is the whole rule. Every guarded action is an `Action`;
`POLICY` gives the roles that may take it. Owners may do everything (they bootstrap an
installation and must be able to finish any job); translators take the language-bound actions
(`LANGUAGE_BOUND`) only in the languages given to them, and never without naming one.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from types import MappingProxyType
from typing import Protocol

from ..statuses import StaffRole

__all__ = ["Role", "Action", "POLICY", "LANGUAGE_BOUND", "SENDING_ROLES", "allowed", "actions_of", "HasRole"]

#: The workspace's roles (a database enum; defined with the other statuses).
Role = StaffRole


class Action(str, enum.Enum):
    """Every action a workspace route is guarded by; the value names it in the audit trail."""

    # reading, for everyone with an account
    VIEW_DASHBOARD = "dashboard.view"
    VIEW_REPORTS = "reports.view"
    VIEW_LISTS = "lists.view"
    VIEW_ISSUES = "issues.view"
    PREVIEW = "issues.preview"
    #: One's own account: password, second factor, sessions ("log out everywhere").
    OWN_ACCOUNT = "account.self"
    # accounts and settings
    VIEW_ACCOUNTS = "accounts.view"
    INVITE = "accounts.invite"
    REVOKE = "accounts.revoke"
    CHANGE_ROLE = "accounts.change_role"
    CHANGE_SETTINGS = "settings.change"
    VIEW_AUDIT = "audit.view"
    EXPORT_AUDIT = "audit.export"
    # people and lists
    VIEW_PEOPLE = "people.view"
    EDIT_PERSON = "people.edit"
    UNSUBSCRIBE_PERSON = "people.unsubscribe"
    ERASE_PERSON = "people.erase"
    EXPORT_PERSON = "people.export"
    IMPORT_PEOPLE = "people.import"
    VIEW_SUPPRESSIONS = "suppressions.view"
    LIFT_SUPPRESSION = "suppressions.lift"
    MANAGE_LISTS = "lists.manage"
    #: Saved segments: create, change, delete (listing them is VIEW_PEOPLE's).
    MANAGE_SEGMENTS = "segments.manage"
    # issues
    WRITE_ISSUE = "issues.write"
    TRANSLATE = "issues.translate"
    TEST_SEND = "issues.test_send"
    # campaigns
    APPROVE = "campaigns.approve"
    SEND = "campaigns.send"
    SCHEDULE = "campaigns.schedule"
    PAUSE = "campaigns.pause"
    RESUME = "campaigns.resume"
    CANCEL = "campaigns.cancel"
    RETRY = "campaigns.retry"


_EVERYONE = frozenset(Role)
_OWNER = frozenset({Role.OWNER})
_SENDERS = frozenset({Role.OWNER, Role.SENDER})
_WRITERS = frozenset({Role.OWNER, Role.EDITOR})

#: The roles that may take each action.
POLICY: MappingProxyType[Action, frozenset[StaffRole]] = MappingProxyType({
    Action.VIEW_DASHBOARD: _EVERYONE,
    Action.VIEW_REPORTS: _EVERYONE,
    Action.VIEW_LISTS: _EVERYONE,
    Action.VIEW_ISSUES: _EVERYONE,
    Action.PREVIEW: _EVERYONE,
    Action.OWN_ACCOUNT: _EVERYONE,
    Action.VIEW_ACCOUNTS: _OWNER,
    Action.INVITE: _OWNER,
    Action.REVOKE: _OWNER,
    Action.CHANGE_ROLE: _OWNER,
    Action.CHANGE_SETTINGS: _OWNER,
    Action.VIEW_AUDIT: _OWNER,
    Action.EXPORT_AUDIT: _OWNER,
    Action.VIEW_PEOPLE: _SENDERS,
    Action.EDIT_PERSON: _SENDERS,
    Action.UNSUBSCRIBE_PERSON: _SENDERS,
    Action.ERASE_PERSON: _OWNER,
    Action.EXPORT_PERSON: _OWNER,
    Action.IMPORT_PEOPLE: _SENDERS,
    Action.VIEW_SUPPRESSIONS: _SENDERS,
    Action.LIFT_SUPPRESSION: _OWNER,
    Action.MANAGE_LISTS: _OWNER,
    Action.MANAGE_SEGMENTS: _SENDERS,
    Action.WRITE_ISSUE: _WRITERS,
    Action.TRANSLATE: _WRITERS | {Role.TRANSLATOR},
    Action.TEST_SEND: _WRITERS | {Role.SENDER},
    Action.APPROVE: _SENDERS,
    Action.SEND: _SENDERS,
    Action.SCHEDULE: _SENDERS,
    Action.PAUSE: _SENDERS,
    Action.RESUME: _SENDERS,
    Action.CANCEL: _SENDERS,
    Action.RETRY: _SENDERS,
})

#: Actions a translator may take only in one of their languages.
LANGUAGE_BOUND = frozenset({Action.TRANSLATE})

#: The roles that send mail to lists: an owner can require TOTP of them (`staff.totp`).
SENDING_ROLES = POLICY[Action.SEND]


class HasRole(Protocol):
    role: StaffRole
    languages: Collection[str]


def allowed(member: HasRole | None, action: Action, *, language: str | None = None) -> bool:
    """Whether `member` may take `action` (in `language`, for a language-bound one); never raises.

    Nobody (None) may take any action. A translator takes a language-bound action only when
    `language` is one of `member.languages`.
    """
    if member is None or member.role not in POLICY[action]:
        return False
    if member.role is Role.TRANSLATOR and action in LANGUAGE_BOUND:
        return language is not None and language in member.languages
    return True


def actions_of(role: StaffRole) -> frozenset[Action]:
    """Every action `role` may take (in some language, for a translator)."""
    return frozenset(action for action, roles in POLICY.items() if role in roles)


assert set(POLICY) == set(Action), "every action has its roles"
