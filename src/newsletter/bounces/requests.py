"""Unsubscribe requests: the mail a reader's client sends to the `mailto:` of List-Unsubscribe.

Gmail, Apple Mail and Outlook send a plain mail to the address with the subject the header
gives (`unsubscribe <token>`); some put the words in the body instead. `find_request` reads the
token out of such a mail (the Subject, else a line of the first plain-text part; never out of a
delivery report, which quotes our own headers) and never raises, whatever the bytes.
`apply_request` verifies the token with the same signer as the one-click link and unsubscribes
the person from exactly the list it names, through `people.consent` (channel MAILTO): a second
request changes nothing and is fine. A token that does not verify changes nothing.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.orm import Session

from ..errors import InvalidToken
from ..people import consent
from ..people.consent import ConsentContext
from ..statuses import Channel
from ..tokens import Purpose, read_token

__all__ = ["UnsubscribeRequest", "RequestOutcome", "find_request", "apply_request"]

#: A signed token is URL-safe base64 with dots; anything shorter is not one of ours.
_TOKEN = r"([A-Za-z0-9_\-.]{20,})"
_SUBJECT = re.compile(r"^\s*(?:(?:re|fwd?|aw|tr|rv)\s*:\s*)*unsubscribe(?:\s+|%20)" + _TOKEN + r"\s*$",
                      re.IGNORECASE)
_LINE = re.compile(r"^\s*unsubscribe\s+" + _TOKEN + r"\s*$", re.IGNORECASE | re.MULTILINE)
#: What is read of a body: a request is one line, near the top.
_BODY_LIMIT = 10_000


class UnsubscribeRequest(NamedTuple):
    """The token an unsubscribe request carries, and where it was found ("subject" or "body")."""

    token: str
    found_in: str


class RequestOutcome(NamedTuple):
    """What a request did: `acted` False when its token did not verify (nothing changed)."""

    acted: bool
    #: The slugs of the lists left ([] when already unsubscribed).
    left: tuple[str, ...]
    note: str


def find_request(raw: bytes) -> UnsubscribeRequest | None:
    """The unsubscribe request `raw` is, or None (a bounce, a reply, mail we cannot read)."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        if message.get_content_maintype() == "multipart" and message.get_content_subtype() == "report":
            return None
        subject = str(message.get("Subject", "") or "")
        found = _SUBJECT.match(" ".join(subject.split()))
        if found:
            return UnsubscribeRequest(found.group(1), "subject")
        if not re.search(r"\bunsubscribe\b", subject, re.IGNORECASE) and subject.strip():
            return None  # a body is read only when the subject says nothing else
        body = message.get_body(("plain",))
        if body is None or body.get_content_type() != "text/plain":
            return None
        text = body.get_content()[:_BODY_LIMIT]
        found = _LINE.search(text)
        return UnsubscribeRequest(found.group(1), "body") if found else None
    except Exception:  # noqa: BLE001  mangled mail (an unknown charset, a NUL) is simply not a request
        return None


def apply_request(session: Session, request: UnsubscribeRequest, *, secret: bytes, now: datetime) -> RequestOutcome:
    """Verify the request's token (an unsubscribe link's) and unsubscribe the person it names
    from the list it names (every list for a token that names none). Returns what was done;
    raises nothing for a forged, damaged or orphaned token (`acted` False)."""
    try:
        claims = read_token(secret, Purpose.UNSUBSCRIBE, request.token, now=now)
    except InvalidToken:
        return RequestOutcome(False, (), "an unsubscribe request whose token does not verify (forged or damaged); "
                                         "nothing changed")
    ctx = ConsentContext(channel=Channel.MAILTO, source="mailto",
                         note=f"unsubscribe request by mail ({request.found_in})")
    try:
        left = consent.unsubscribe_by_key(session, claims.subscriber_key, ctx, now=now, list_slug=claims.list_slug)
    except InvalidToken:
        return RequestOutcome(False, (), "an unsubscribe request for someone no longer in the store; nothing changed")
    scope = claims.list_slug or "every list"
    if not left:
        return RequestOutcome(True, (), f"unsubscribe request: already unsubscribed from {scope}")
    return RequestOutcome(True, tuple(left), f"unsubscribe request: unsubscribed from {', '.join(left)}")
