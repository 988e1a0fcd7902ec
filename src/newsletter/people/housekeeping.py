"""What time does to people's records, one function each, over the caller's session:

- `remind_pending`: a pending sign-up not confirmed after `reminder_days` gets its
  confirmation mail once more (queued like any confirmation, with a fresh link), at most once
  and only within the re-send limits; the consent log records it (CONFIRMATION_SENT, note
  "reminder: <lists>");
- `expire_pending`: one still pending after `pending_expiry_days` is forgotten (the
  subscription goes; the consent log keeps an EXPIRED line, and the sign-up before it);
- `blank_old_origins`: consent-log lines older than `consent_origin_retention_days` lose
  their IP address and user agent (what, when, which form and which consent text stay).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ..statuses import Channel, ConsentKind
from ..store import mailqueue
from ..store import pending as stored
from ..store import people as people_store
from .rules import RESEND_WINDOW, confirmation_allowed

__all__ = ["REMINDER_NOTE", "remind_pending", "expire_pending", "blank_old_origins"]

#: How a reminder's CONFIRMATION_SENT line's note starts (what tells it from the first mail).
REMINDER_NOTE = "reminder"
_SOURCE = "housekeeping"


def _event(subscriber_id: int, list_id: int | None, kind: ConsentKind, now: datetime, note: str) -> dict:
    return dict(subscriber_id=subscriber_id, list_id=list_id, kind=kind, channel=Channel.ADMIN, at=now, ip=None,
                user_agent=None, source=_SOURCE, consent_version=None, note=note)


def remind_pending(session: Session, *, now: datetime, after: timedelta, expire_after: timedelta | None) -> int:
    """Queue one reminder per person for their sign-ups pending longer than `after` (and not
    about to expire), never a second one, within the re-send limits. Returns how many people."""
    due = [p for p in stored.pending_before(session, now - after)
           if expire_after is None or p.created_at > now - expire_after]
    last_reminded = stored.reminders_sent(session, [p.subscriber_id for p in due], REMINDER_NOTE)
    lists_of: dict[int, list[stored.Pending]] = {}
    for p in due:
        if last_reminded.get(p.subscriber_id, p.created_at) <= p.created_at:  # not reminded since it began
            lists_of.setdefault(p.subscriber_id, []).append(p)
    mails, events = [], []
    for subscriber_id, pending in lists_of.items():
        if not confirmation_allowed(people_store.confirmations_sent_since(session, subscriber_id, now - RESEND_WINDOW),
                                    now):
            continue
        slugs = ",".join(p.list_slug for p in pending)
        mails.append((subscriber_id, slugs))
        events.append(_event(subscriber_id, None, ConsentKind.CONFIRMATION_SENT, now, f"{REMINDER_NOTE}: {slugs}"))
    mailqueue.enqueue(session, mails, now=now)
    people_store.add_events(session, events)
    return len(mails)


def expire_pending(session: Session, *, now: datetime, after: timedelta) -> int:
    """Forget sign-ups pending longer than `after`, an EXPIRED line in the log for each.
    Returns how many subscriptions went."""
    expired = stored.pending_before(session, now - after)
    pairs = [(p.subscriber_id, p.list_id) for p in expired]
    people_store.add_events(session, [_event(p.subscriber_id, p.list_id, ConsentKind.EXPIRED, now,
                                             f"not confirmed in {after.days} days") for p in expired])
    return stored.forget_subscriptions(session, pairs)


def blank_old_origins(session: Session, *, now: datetime, after: timedelta) -> int:
    """Blank the IP address and user agent of consent-log lines older than `after`; returns how many."""
    return stored.blank_origins(session, now - after)
