"""Signed, expiring, single-use links for workspace accounts: invitations and password resets.

A link carries the account's id, its purpose and the account's `security_stamp`, signed with
the installation's secret and stamped with the clock. It is good only while the stamp is the
account's current one: setting a password changes the stamp, so a link works once, and a
newer reset link makes older ones useless too. `read_link` raises `InvalidToken` for every
failure alike (tampered, expired, another purpose, used).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from itsdangerous import BadData, URLSafeSerializer

from ..errors import InvalidToken

__all__ = ["LinkPurpose", "LINK_LIFETIME", "issue_link", "read_link"]


class LinkPurpose(str, enum.Enum):
    #: Choose the first password of an invited account (the path of its page too).
    INVITE = "invite"
    #: Choose a new password.
    RESET = "reset"


#: How long each kind of link works.
LINK_LIFETIME = {LinkPurpose.INVITE: timedelta(days=7), LinkPurpose.RESET: timedelta(hours=1)}


def _serializer(secret: bytes, purpose: LinkPurpose) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=f"newsletter/staff/{purpose.value}")


def issue_link(secret: bytes, purpose: LinkPurpose, member_id: int, security_stamp: str, now: datetime) -> str:
    """The token of a link for this account and purpose, issued at `now`."""
    return _serializer(secret, purpose).dumps([member_id, security_stamp[:16], int(now.timestamp())])


def read_link(secret: bytes, purpose: LinkPurpose, token: str, now: datetime) -> tuple[int, str]:
    """(member id, stamp prefix) of a valid, unexpired token; the caller compares the stamp.

    Raises InvalidToken.
    """
    try:
        member_id, stamp, issued = _serializer(secret, purpose).loads(token)
        age = now - datetime.fromtimestamp(int(issued), tz=now.tzinfo)
    except (BadData, ValueError, TypeError, OverflowError, UnicodeError):
        raise InvalidToken() from None
    if not isinstance(member_id, int) or not isinstance(stamp, str) or not (
            timedelta(minutes=-5) <= age <= LINK_LIFETIME[purpose]):
        raise InvalidToken()
    return member_id, stamp
