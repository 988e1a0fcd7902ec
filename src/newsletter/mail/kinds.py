"""The kinds of mail the installation sends.

Every kind is built by the one message builder (`message.MailSkeleton`), signed and
bounce-addressed by the one hook (`postmark.Postmark`); a kind differs only in the headers it
carries (`message.KIND_HEADERS`) and in what its VERP return path refers to (`verp`).
"""

from __future__ import annotations

import enum

__all__ = ["MailKind"]


class MailKind(str, enum.Enum):
    """What a mail is, for its headers and for reading its bounces back."""

    #: An issue sent to a list's subscribers.
    CAMPAIGN = "campaign"
    #: An issue sent to staff before the campaign ("[TEST] " subject, placeholder links).
    TEST = "test"
    #: The double opt-in mail (nobody is subscribed yet: no list headers).
    CONFIRMATION = "confirmation"
    #: The first mail after confirming.
    WELCOME = "welcome"
    #: Past issues sent to a new subscriber.
    CATCH_UP = "catch-up"
    #: A session's days in one mail, after its last day, to those who chose it over the daily mail.
    DIGEST = "digest"
    #: A workspace account's mail: an invitation or a password reset link (no list headers).
    STAFF = "staff"
