"""Workspace accounts: add (the command line's bootstrap), invite, accept, reset, revoke, change role.

Each function is one unit of work over an installation and returns typed values (`Member`,
`Invitation`), never ORM rows. Passwords are hashed with argon2id (argon2-cffi's defaults);
invitation and reset links are signed, expiring and single-use (`links`). Every change is in
the audit trail, written in the change's own transaction. Mail (invitations, reset links)
goes out after the transaction commits, through the one message builder (`mailer`).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..addresses import clean_text, normalise_address
from ..errors import (
    InvalidField,
    InvalidToken,
    StaffMemberExists,
    StaffStateError,
    UnknownStaffMember,
)
from ..installation import Newsletter
from ..statuses import StaffRole, StaffStatus
from ..store import staff as staff_store
from ..texts import N_, Text
from . import audit, mailer, totp
from .audit import Actor
from .links import LINK_LIFETIME, LinkPurpose, issue_link, read_link
from .roles import Action

__all__ = [
    "Member", "Invitation", "MIN_PASSWORD", "add_member", "invite", "members", "member", "check_link",
    "accept_invitation", "request_reset", "reset_password", "change_password", "revoke", "change_role",
    "hash_password", "verify_password", "member_value", "Overview", "overview", "recovery_link",
    "interface_language", "language_setting", "set_interface_language",
]

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_HASHER = PasswordHasher()  # argon2id, RFC 9106's second recommended parameters
#: Verified against when an address has no account, so a login takes as long either way.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Member:
    """A workspace account as the faces see it."""

    id: int
    email: str
    name: str
    role: StaffRole
    languages: tuple[str, ...]
    status: StaffStatus
    totp_enabled: bool
    created_at: datetime
    last_login_at: datetime | None
    #: The language the workspace speaks to this member (None: not chosen; the browser's).
    interface_language: str | None = None


@dataclass(frozen=True)
class Invitation:
    """An account just added or invited, and its one-time set-password link (absolute URL)."""

    member: Member
    link: str
    #: Whether the invitation mail was handed to the relay (False: give the link by hand).
    mailed: bool = False
    #: Why the mail could not be sent, when it was not.
    mail_error: str | None = None


def member_value(row, interface_language: str | None = None) -> Member:
    return Member(row.id, row.email, row.name, row.role, tuple(row.languages or ()), row.status,
                  row.totp_secret is not None, row.created_at, row.last_login_at, interface_language)


def language_setting(member_id: int) -> str:
    """The workspace setting that holds the language member `member_id` chose."""
    return f"language.{member_id}"


def interface_language(session, member_id: int) -> str | None:
    """The workspace language member `member_id` chose (None when they chose none)."""
    return staff_store.get_setting(session, language_setting(member_id))


def set_interface_language(newsletter: Newsletter, actor: Actor, language: str) -> str:
    """Remember `language` as the language the workspace speaks to `actor`, on every browser and
    after every login (a workspace setting of the account); written to the audit trail as
    `account.language` with the language before and after. Returns the language.

    Raises InvalidField for a language the installation does not speak.
    """
    if language not in newsletter.config.languages:
        raise InvalidField("language", Text.of(N_("choose one of %(choices)s"),
                                              choices=", ".join(newsletter.config.languages)))
    now = newsletter.clock()
    with newsletter.store.session() as session:
        before = interface_language(session, actor.member.id)
        if before != language:
            staff_store.put_setting(session, language_setting(actor.member.id), language, now)
            audit.record(session, actor, "account.language", actor.member.email, f"{before or '-'} -> {language}",
                         now=now)
    return language


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; compares against a dummy hash when there is none (same cost)."""
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_password(password: str, email: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidField("password", Text.of(N_("use at least %(min)s characters (a few words make a good one)"),
                                              min=MIN_PASSWORD))
    if len(password) > MAX_PASSWORD:
        raise InvalidField("password", Text.of(N_("use at most %(max)s characters"), max=MAX_PASSWORD))
    if password.strip().lower() == email.lower():
        raise InvalidField("password", Text(N_("a password cannot be the address itself")))
    return password


def _languages(role: StaffRole, languages: Iterable[str], known: tuple[str, ...]) -> list[str]:
    chosen = [lang for lang in dict.fromkeys(languages) if lang]
    unknown = [lang for lang in chosen if lang not in known]
    if unknown:
        raise InvalidField("languages", Text.of(N_("%(value)s is not one of %(languages)s"), value=", ".join(unknown),
                                               languages=", ".join(known)))
    if role is StaffRole.TRANSLATOR and not chosen:
        raise InvalidField("languages", Text(N_("a translator needs at least one language to translate into")))
    return chosen if role is StaffRole.TRANSLATOR else []


def _link(newsletter: Newsletter, purpose: LinkPurpose, row) -> str:
    token = issue_link(newsletter.secret(), purpose, row.id, row.security_stamp, newsletter.clock())
    return f"{newsletter.config.base_url.rstrip('/')}/admin/{purpose.value}/{token}"


def add_member(newsletter: Newsletter, email: str, role: StaffRole, *, name: str = "",
               languages: Iterable[str] = (), actor: Actor | None = None) -> Invitation:
    """Add an invited account and return its set-password link (not mailed).

    Raises InvalidAddress, InvalidField, StaffMemberExists.
    """
    address = normalise_address(email)
    name = clean_text("name", name)
    actor = actor or Actor(None)
    now = newsletter.clock()
    with newsletter.store.session() as session:
        existing = staff_store.member_by_email(session, address)
        if existing is not None:
            raise StaffMemberExists(address, existing.status.value)
        row = staff_store.add_member(session, email=address, name=name, role=role,
                                     languages=_languages(role, languages, newsletter.config.languages),
                                     security_stamp=secrets.token_hex(16),
                                     invited_by=actor.member.id if actor.member else None, now=now)
        detail = f"role={role.value}" + (f" languages={','.join(row.languages)}" if row.languages else "")
        audit.record(session, actor, Action.INVITE, address, detail, now=now)
        return Invitation(member_value(row), _link(newsletter, LinkPurpose.INVITE, row))


def invite(newsletter: Newsletter, actor: Actor, email: str, role: StaffRole, *, name: str = "",
           languages: Iterable[str] = (), mail_language: str | None = None) -> Invitation:
    """Add an invited account and mail its link. The account stays when the mail fails
    (`Invitation.mailed` is False and `mail_error` says why); raises as `add_member`."""
    invitation = add_member(newsletter, email, role, name=name, languages=languages, actor=actor)
    outcome = mailer.send_link(newsletter, "staff_invite", invitation.member, invitation.link,
                               language=mail_language or newsletter.config.default_language,
                               hours=int(LINK_LIFETIME[LinkPurpose.INVITE].total_seconds() // 3600))
    return Invitation(invitation.member, invitation.link, outcome is None, outcome)


@dataclass(frozen=True)
class Overview:
    """The accounts page: every account, and the roles that must use a second factor."""

    members: tuple[Member, ...]
    totp_required: frozenset[StaffRole]


def overview(newsletter: Newsletter) -> Overview:
    with newsletter.store.reading() as session:
        return Overview(tuple(member_value(row) for row in staff_store.all_members(session)),
                        totp.required_roles(session))


def members(newsletter: Newsletter) -> list[Member]:
    """Every account, by address."""
    with newsletter.store.reading() as session:
        return [member_value(row) for row in staff_store.all_members(session)]


def member(newsletter: Newsletter, email: str) -> Member:
    """One account by address; raises UnknownStaffMember."""
    with newsletter.store.reading() as session:
        return member_value(_member_or_unknown(session, email))


def _member_or_unknown(session, email: str):
    """The account of `email` (its row); raises UnknownStaffMember (also for no address at all)."""
    try:
        address = normalise_address(email)
    except ValueError:
        raise UnknownStaffMember(email) from None
    row = staff_store.member_by_email(session, address)
    if row is None:
        raise UnknownStaffMember(email)
    return row


def _linked(session, newsletter: Newsletter, purpose: LinkPurpose, token: str):
    member_id, stamp = read_link(newsletter.secret(), purpose, token, newsletter.clock())
    row = staff_store.member_by_id(session, member_id)
    wanted = StaffStatus.INVITED if purpose is LinkPurpose.INVITE else StaffStatus.ACTIVE
    if row is None or row.status is not wanted or not secrets.compare_digest(row.security_stamp[:16], stamp):
        raise InvalidToken()
    return row


def check_link(newsletter: Newsletter, purpose: LinkPurpose, token: str) -> Member:
    """The account an invitation or reset link is for, without using the link; raises InvalidToken."""
    with newsletter.store.reading() as session:
        return member_value(_linked(session, newsletter, purpose, token))


def accept_invitation(newsletter: Newsletter, token: str, password: str, *, name: str | None = None,
                      ip: str | None = None) -> Member:
    """Set the first password of an invited account, which becomes active; the link is used up.

    Raises InvalidToken (tampered, expired, used), InvalidField (the password or name).
    """
    now = newsletter.clock()
    with newsletter.store.session() as session:
        row = _linked(session, newsletter, LinkPurpose.INVITE, token)
        values = {"password_hash": hash_password(_check_password(password, row.email)),
                  "security_stamp": secrets.token_hex(16), "status": StaffStatus.ACTIVE}
        if name is not None and name.strip():
            values["name"] = clean_text("name", name)
        staff_store.update_member(session, row.id, **values)
        row = staff_store.member_by_id(session, row.id)
        audit.record(session, Actor(row, ip), "account.accept", row.email, f"role={row.role.value}", now=now)
        return member_value(row)


def request_reset(newsletter: Newsletter, email: str, *, ip: str | None = None,
                  language: str | None = None) -> Callable[[], str | None] | None:
    """Make a reset link when an active account has this address, and return the mail that
    carries it, to send (`pending()`: None when the relay took it, else why not) once the
    answer is out; None otherwise. The caller says the same thing either way, and answers as
    fast: sending after answering keeps the relay's time out of it. Never raises for the address."""
    try:
        address = normalise_address(email)
    except ValueError:
        return None
    now = newsletter.clock()
    with newsletter.store.session() as session:
        row = staff_store.member_by_email(session, address)
        if row is None or row.status is not StaffStatus.ACTIVE:
            return None
        link = _link(newsletter, LinkPurpose.RESET, row)
        audit.record(session, Actor(row, ip), "account.reset_asked", row.email, now=now)
        value = member_value(row)
    return functools.partial(mailer.send_link, newsletter, "staff_reset", value, link,
                             language=language or newsletter.config.default_language,
                             hours=int(LINK_LIFETIME[LinkPurpose.RESET].total_seconds() // 3600))


def recovery_link(newsletter: Newsletter, email: str, *, remove_totp: bool = False,
                  actor: Actor | None = None) -> str:
    """A reset link for an active account, given by hand (the command line's way back in for an
    owner who lost their password or phone); `remove_totp` also removes the second factor.
    Links mailed before stop working. Raises UnknownStaffMember; StaffStateError unless active."""
    actor = actor or Actor(None)
    now = newsletter.clock()
    with newsletter.store.session() as session:
        row = _member_or_unknown(session, email)
        if row.status is not StaffStatus.ACTIVE:
            raise StaffStateError(row.email, Text.of(N_("the account is %(status)s, not active"),
                                                     status=Text(row.status.value)))
        values = {"security_stamp": secrets.token_hex(16)}
        if remove_totp:
            values.update(totp_secret=None, totp_last_step=None)
        staff_store.update_member(session, row.id, **values)
        row = staff_store.member_by_id(session, row.id)
        audit.record(session, actor, "account.recovery_link", row.email,
                     "second factor removed" if remove_totp else "", now=now)
        return _link(newsletter, LinkPurpose.RESET, row)


def reset_password(newsletter: Newsletter, token: str, password: str, *, ip: str | None = None) -> Member:
    """Set a new password from a reset link (used up), and end every session of the account.

    Raises InvalidToken, InvalidField.
    """
    now = newsletter.clock()
    with newsletter.store.session() as session:
        row = _linked(session, newsletter, LinkPurpose.RESET, token)
        staff_store.update_member(session, row.id, password_hash=hash_password(_check_password(password, row.email)),
                                  security_stamp=secrets.token_hex(16))
        ended = staff_store.revoke_member_sessions(session, row.id, now)
        audit.record(session, Actor(row, ip), "account.reset", row.email, f"sessions ended={ended}", now=now)
        return member_value(staff_store.member_by_id(session, row.id))


def change_password(newsletter: Newsletter, actor: Actor, current: str, new: str) -> None:
    """Change one's own password (the current one is asked again); other sessions end.

    Raises InvalidField (the current password is wrong, the new one unusable).
    """
    now = newsletter.clock()
    with newsletter.store.session() as session:
        row = staff_store.member_by_id(session, actor.member.id)
        if not verify_password(row.password_hash, current):
            raise InvalidField("current password", Text(N_("it is not right")))
        staff_store.update_member(session, row.id, password_hash=hash_password(_check_password(new, row.email)),
                                  security_stamp=secrets.token_hex(16))
        audit.record(session, actor, "account.password", row.email, now=now)


def _other_active_owners(session, row) -> int:
    return sum(1 for m in staff_store.all_members(session)
               if m.role is StaffRole.OWNER and m.status is StaffStatus.ACTIVE and m.id != row.id)


def revoke(newsletter: Newsletter, actor: Actor, email: str) -> Member:
    """Revoke an account for good: its sessions end, its links stop working.

    Raises UnknownStaffMember; StaffStateError for the last active owner.
    """
    now = newsletter.clock()
    with newsletter.store.session() as session:
        row = _member_or_unknown(session, email)
        if row.status is StaffStatus.REVOKED:
            return member_value(row)
        if row.role is StaffRole.OWNER and row.status is StaffStatus.ACTIVE and not _other_active_owners(session, row):
            raise StaffStateError(row.email, Text(N_("the last active owner cannot be revoked; make another owner "
                                                          "first")))
        staff_store.update_member(session, row.id, status=StaffStatus.REVOKED, security_stamp=secrets.token_hex(16))
        ended = staff_store.revoke_member_sessions(session, row.id, now)
        audit.record(session, actor, Action.REVOKE, row.email, f"sessions ended={ended}", now=now)
        return member_value(staff_store.member_by_id(session, row.id))


def change_role(newsletter: Newsletter, actor: Actor, email: str, role: StaffRole,
                languages: Iterable[str] = ()) -> Member:
    """Give an account another role (and a translator their languages).

    Raises UnknownStaffMember, InvalidField; StaffStateError for a revoked account or the last owner.
    """
    now = newsletter.clock()
    with newsletter.store.session() as session:
        row = _member_or_unknown(session, email)
        if row.status is StaffStatus.REVOKED:
            raise StaffStateError(row.email, Text(N_("the account is revoked")))
        if row.role is StaffRole.OWNER and role is not StaffRole.OWNER and not _other_active_owners(session, row):
            raise StaffStateError(row.email, Text(N_("the last owner keeps the role owner; make another owner first")))
        chosen = _languages(role, languages, newsletter.config.languages)
        before = row.role
        staff_store.update_member(session, row.id, role=role, languages=chosen)
        detail = f"role {before.value} -> {role.value}" + (f" languages={','.join(chosen)}" if chosen else "")
        audit.record(session, actor, Action.CHANGE_ROLE, row.email, detail, now=now)
        return member_value(staff_store.member_by_id(session, row.id))
