"""What the service's senders carry on: campaigns a sender should be running and is not.

- a campaign `sending` (started by a face that left, or by a process that died or another
  service that shares the work on PostgreSQL, where senders claim rows with SKIP LOCKED);
- a campaign paused because a service stopped (SIGTERM: `SERVICE_STOPPED`);
- a campaign paused after its first pass with deferred rows only, once the earliest is due.

A campaign paused by a person, by the relay (refused login or sender, too many failures) or
at the end of its send window stays paused: people and the scheduler resume those. Each send
goes through the one send path (`sending.launch.prepare_resume` → `launch`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from typing import TYPE_CHECKING

from ..sending import campaigns as sending_campaigns
from ..sending.launch import SendControl, launch, prepare_resume
from ..sending.options import SendOptions, SendResult
from ..statuses import CampaignStatus, ScheduleStatus
from ..store import routine as stored
from ..store import schedules as stored_schedules
from ..texts import N_, Text

if TYPE_CHECKING:
    from ..installation import Newsletter
    from ..sending.sender import Connector

__all__ = ["SERVICE_STOPPED", "campaigns_to_carry_on", "carry_on"]

#: The reason a campaign paused by a stopping service gives; the next service resumes it.
SERVICE_STOPPED = Text(N_("the service stopped (SIGTERM); it goes on when the service runs again"))


def _carried(c: stored.OpenCampaign, due: Collection[str]) -> bool:
    """Sending, stopped by a service, or paused only for deferred rows that are due now
    (`sending.campaigns.retry_at`, which a person's pause clears)."""
    if c.status is CampaignStatus.SENDING:
        return True
    if sending_campaigns.reason_is(c.said, c.reason, SERVICE_STOPPED):
        return True
    return c.slug in due and c.queued == 0 and c.sending == 0


def campaigns_to_carry_on(newsletter: Newsletter, *, busy: Collection[str] = ()) -> list[str]:
    """Slugs of the campaigns a sender should run now (see the module's docstring), oldest
    first, leaving out those in `busy` (this service runs them already) and those a windowed
    schedule runs (the scheduler resumes them inside their window)."""
    now = newsletter.clock()
    with newsletter.store.session() as session:
        found = stored.open_campaigns(session, (CampaignStatus.SENDING, CampaignStatus.PAUSED))
        windowed = {s.slug for s in stored_schedules.schedules_in(session, ScheduleStatus.SENDING) if s.window_start}
        due = set(sending_campaigns.due_for_retry(session, now))
    return [c.slug for c in found if c.slug not in busy and c.slug not in windowed and _carried(c, due)]


def carry_on(newsletter: Newsletter, slug: str, options: SendOptions = SendOptions(), *,
             on_start: Callable[[SendControl], None] | None = None,
             connect: Connector | None = None) -> SendResult:
    """Send the rest of campaign `slug` from the content it recorded, until it is finished,
    stopped, or (deferred rows left) its first pass is over. Raises what `prepare_resume`
    and `launch` raise (UnknownCampaign, CampaignStateError, CampaignContentMissing, …)."""
    prepared = prepare_resume(newsletter, slug)
    return launch(newsletter, prepared, replace(options, wait_for_deferred=False), on_start=on_start,
                  connect=connect)
