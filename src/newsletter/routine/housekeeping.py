"""Housekeeping: the jobs time asks for, run by the service every few minutes (or by
`newsletter housekeeping` from cron): reminders and expiry of pending sign-ups, and the
retention of IP addresses and user agents in the consent log (`people.housekeeping`). Each
job is off when its setting is 0; each pass is one transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, NamedTuple

from ..people.housekeeping import blank_old_origins, expire_pending, remind_pending

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["Housekeeping", "run_housekeeping"]


class Housekeeping(NamedTuple):
    """What a pass did: people reminded, pending sign-ups expired, consent-log lines blanked."""

    reminded: int = 0
    expired: int = 0
    blanked: int = 0


def run_housekeeping(newsletter: Newsletter) -> Housekeeping:
    """One pass of every job the configuration turns on (`reminder_days`, `pending_expiry_days`,
    `consent_origin_retention_days`). Returns what it did."""
    config = newsletter.config
    now = newsletter.clock()
    expire_after = timedelta(days=config.pending_expiry_days) if config.pending_expiry_days else None
    with newsletter.store.session() as session:
        reminded = expired = blanked = 0
        if expire_after is not None:
            expired = expire_pending(session, now=now, after=expire_after)
        if config.reminder_days:
            reminded = remind_pending(session, now=now, after=timedelta(days=config.reminder_days),
                                      expire_after=expire_after)
        if config.consent_origin_retention_days:
            blanked = blank_old_origins(session, now=now, after=timedelta(days=config.consent_origin_retention_days))
    return Housekeeping(reminded, expired, blanked)
