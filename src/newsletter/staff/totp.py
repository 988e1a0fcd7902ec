"""The optional second factor: time-based one-time codes (RFC 6238, through pyotp).

A member enrolls by scanning (or typing) a secret into an authenticator app and typing back
one code (`begin_enrollment`, `finish_enrollment`); from then on a login needs a code too, and
a code is never accepted twice (the last time step used is kept). An owner can require the
second factor of the roles that send (`require_for`): a member of such a role without it can
only enroll until they have.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import datetime, timedelta

import pyotp
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from ..errors import InvalidField
from ..installation import Newsletter
from ..statuses import StaffRole
from ..store import staff as staff_store
from ..texts import N_, Text
from . import audit
from .audit import Actor
from .roles import SENDING_ROLES, Action

__all__ = ["Enrollment", "STEP", "matching_step", "begin_enrollment", "finish_enrollment", "disable",
           "required_roles", "roles_named", "require_for", "SETTING"]

STEP = 30
SETTING = "totp_required_roles"
_ENROLL_SALT = "newsletter/staff/totp-enroll"


class Enrollment:
    """A secret offered to a member: its text, its otpauth:// URI, and the signed form value
    that carries it back (nothing is stored until a code proves the app has it)."""

    def __init__(self, secret: str, uri: str, sealed: str):
        self.secret = secret
        self.uri = uri
        self.sealed = sealed


def matching_step(secret: str, code: str, now: datetime, *, after: int | None = None) -> int | None:
    """The time step whose code is `code` (now, or one step either side), if later than `after`."""
    code = "".join(code.split())
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret, interval=STEP)
    for offset in (0, -1, 1):
        moment = now + timedelta(seconds=offset * STEP)
        step = int(moment.timestamp()) // STEP
        if hmac.compare_digest(totp.at(moment), code) and (after is None or step > after):
            return step
    return None


def begin_enrollment(newsletter: Newsletter, actor: Actor, issuer: str | None = None) -> Enrollment:
    """A fresh secret for `actor`'s account, not yet stored."""
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret, interval=STEP).provisioning_uri(
        name=actor.member.email, issuer_name=issuer or newsletter.config.organisation_name)
    sealed = URLSafeTimedSerializer(newsletter.secret(), salt=_ENROLL_SALT).dumps([actor.member.id, secret])
    return Enrollment(secret, uri, sealed)


def finish_enrollment(newsletter: Newsletter, actor: Actor, sealed: str, code: str) -> None:
    """Store the offered secret once `code` shows the app has it. Raises InvalidField."""
    now = newsletter.clock()
    try:
        member_id, secret = URLSafeTimedSerializer(newsletter.secret(), salt=_ENROLL_SALT).loads(sealed, max_age=3600)
    except (BadData, ValueError, TypeError):
        raise InvalidField("code", Text(N_("the enrollment expired; start again"))) from None
    if member_id != actor.member.id:
        raise InvalidField("code", Text(N_("the enrollment is not yours; start again")))
    step = matching_step(secret, code, now)
    if step is None:
        raise InvalidField("code", Text(N_("the code is not right: type the 6 digits the app shows now")))
    with newsletter.store.session() as session:
        staff_store.update_member(session, member_id, totp_secret=secret, totp_last_step=step)
        audit.record(session, actor, "account.totp_on", actor.member.email, now=now)


def disable(newsletter: Newsletter, actor: Actor, email: str) -> None:
    """Remove an account's second factor (its owner, or an owner for a lost phone)."""
    now = newsletter.clock()
    with newsletter.store.session() as session:
        row = staff_store.member_by_email(session, email)
        if row is None:
            return
        staff_store.update_member(session, row.id, totp_secret=None, totp_last_step=None)
        audit.record(session, actor, "account.totp_off", row.email, now=now)


def required_roles(session: Session) -> frozenset[StaffRole]:
    """The roles whose members must use a second factor."""
    return roles_named(staff_store.get_setting(session, SETTING))


def roles_named(value: list[str] | None) -> frozenset[StaffRole]:
    """The roles a stored SETTING value names (None: not set, no role)."""
    return frozenset(StaffRole(r) for r in value or ())


def require_for(newsletter: Newsletter, actor: Actor, roles: Iterable[StaffRole]) -> frozenset[StaffRole]:
    """Require the second factor of `roles` (only the roles that send can be chosen); returns them.

    Raises InvalidField for another role."""
    chosen = frozenset(roles)
    if not chosen <= SENDING_ROLES:
        raise InvalidField("roles", Text.of(N_("the second factor can be required of the roles that send: %(roles)s"),
                                            roles=", ".join(sorted(r.value for r in SENDING_ROLES))))
    now = newsletter.clock()
    with newsletter.store.session() as session:
        staff_store.put_setting(session, SETTING, sorted(r.value for r in chosen), now)
        audit.record(session, actor, Action.CHANGE_SETTINGS, SETTING, ",".join(sorted(r.value for r in chosen)),
                     now=now)
    return chosen
