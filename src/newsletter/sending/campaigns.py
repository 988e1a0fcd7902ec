"""Campaigns: one issue sent to one list, identified by the content's slug.

    draft ──start──► sending ──(no open rows)──► finished ──retry──► paused
                      │  ▲
               pause  │  │ resume / start again
                      ▼  │
                     paused            any but finished ──cancel──► cancelled

Each transition is one function over the caller's session: it checks the current state,
writes the new one and says why (`status_reason`). Starting a campaign creates its ledger
(`outbox.create_rows`) in the same transaction — or, given a chunk size, its first chunk
(`outbox.begin_rows`), the rest written by its senders while it sends (`sending.writing`);
a campaign is never finished while its ledger is not whole, and cancelling one writes the
rest as skipped. Starting it again resumes it — it never makes a second copy. The statements are in
`store.campaigns` and `store.ledger`; the faces call the units of work in `sending.actions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from ..errors import CampaignContentChanged, CampaignStateError, NoAudience, UnknownCampaign
from ..people.lists import get_list
from ..segment_language import Filter
from ..statuses import CampaignStatus, OutboxStatus
from ..store import Campaign
from ..store import campaigns as stored
from ..store import ledger as outbox
from ..store.ledger import Counts
from ..texts import N_, NP_, Text, text_of

__all__ = [
    "CampaignSummary",
    "DEFAULT_EXPIRY",
    "find_campaign",
    "get_campaign",
    "start_campaign",
    "join_campaign",
    "extend_campaign",
    "check_content",
    "pause_campaign",
    "resume_campaign",
    "retry_at",
    "due_for_retry",
    "cancel_campaign",
    "retry_campaign",
    "finish_if_done",
    "ledger_languages",
    "unwritten_rows",
    "ledger_counts",
    "settle_campaign",
    "release_claims",
    "expires_at",
    "summarise_campaign",
    "summarise_campaigns",
]

#: How long a deferred message is retried before it counts as failed (a daily summary is stale after a day).
DEFAULT_EXPIRY = timedelta(hours=24)


class CampaignSummary(NamedTuple):
    slug: str
    list_slug: str
    subject: str
    status: CampaignStatus
    status_reason: str | None
    counts: Counts
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def find_campaign(session: Session, slug: str) -> Campaign | None:
    """The campaign with this slug, or None."""
    return stored.find_campaign(session, slug)


def get_campaign(session: Session, slug: str) -> Campaign:
    """The campaign with this slug; raises UnknownCampaign."""
    found = stored.find_campaign(session, slug)
    if found is None:
        raise UnknownCampaign(slug)
    return found


def expires_at(campaign: Campaign) -> datetime:
    """When deferred rows of this campaign stop being retried and count as failed."""
    raw = (campaign.source or {}).get("expires_at")
    if raw:
        return datetime.fromisoformat(raw)
    return (campaign.started_at or campaign.created_at) + DEFAULT_EXPIRY


def start_campaign(session: Session, slug: str, list_slug: str, *, now: datetime, subject: str = "",
                   kind: str = "", source: dict[str, Any] | None = None,
                   languages: Sequence[str] | Mapping[str, str] = ("en",),
                   default_language: str = "en", expiry: timedelta = DEFAULT_EXPIRY,
                   segment: Filter | None = None, segment_name: str | None = None,
                   refuse_empty: bool = False, chunk: int | None = None) -> tuple[Campaign, bool]:
    """Start the campaign `slug` to `list_slug` (to those of its subscribers `segment` names,
    when given), or resume it if it exists.

    A new campaign gets its ledger at once: one queued row per active subscriber (with `chunk`,
    the first chunk of about that many of the list's subscribers that has a row; its senders
    write the rest). Returns
    (campaign, created). Raises UnknownList; CampaignStateError when the campaign exists for
    another list or another segment, is finished (use retry, or `extend_campaign`) or was
    cancelled; with `refuse_empty`, NoAudience when a new campaign would have no row (the
    caller's transaction is then rolled back: nothing is used up).
    """
    mailing_list = get_list(session, list_slug)
    existing = stored.find_campaign(session, slug)
    if existing is not None:
        if existing.list_id != mailing_list.id:
            raise CampaignStateError(slug, existing.status.value,
                                     Text.of(N_("it was sent to the list %(sent_to)s, not %(list)s; give this issue "
                                                "another slug to send it to another list"),
                                             sent_to=repr(existing.mailing_list.slug), list=repr(list_slug)))
        started_with = (existing.source or {}).get("segment")
        if started_with != segment_name:
            def audience(name: str | None) -> Text:
                return Text.of(N_("the segment %(name)s"), name=repr(name)) if name else Text(N_("the whole list"))

            raise CampaignStateError(slug, existing.status.value,
                                     Text.of(N_("it was started for %(started)s, not %(asked)s; give this issue "
                                                "another slug to send it to another audience"),
                                             started=audience(started_with), asked=audience(segment_name)))
        if existing.status is CampaignStatus.FINISHED:
            raise CampaignStateError(slug, "finished", Text(N_("everyone has been mailed; a retry re-sends to "
                                                               "those it failed for")))
        if existing.status is CampaignStatus.CANCELLED:
            raise CampaignStateError(slug, "cancelled", Text(N_("a cancelled campaign cannot be sent again")))
        if existing.status is not CampaignStatus.SENDING:
            existing.status = CampaignStatus.SENDING
            _explain(existing, None)
            existing.started_at = existing.started_at or now
            _mark_retry(existing, None)
        return existing, False
    data = dict(source or {})
    data["expires_at"] = (now + expiry).isoformat()
    data["languages"] = dict(languages) if isinstance(languages, Mapping) else list(languages)
    data["default_language"] = default_language
    campaign = stored.add_campaign(session, slug=slug, list_id=mailing_list.id, kind=kind, subject=subject[:300],
                                   status=CampaignStatus.SENDING, source=data, now=now)
    if chunk:
        added = outbox.begin_rows(session, campaign, languages=languages, default_language=default_language, now=now,
                                  segment=segment, chunk=chunk)
    else:
        added = outbox.create_rows(session, campaign, languages=languages, default_language=default_language,
                                   now=now, segment=segment)
    if refuse_empty and not added:
        raise NoAudience(slug, list_slug)
    return campaign, True


def extend_campaign(session: Session, slug: str, list_slug: str, *, now: datetime,
                    languages: Sequence[str] | Mapping[str, str] = ("en",), default_language: str = "en",
                    expiry: timedelta = DEFAULT_EXPIRY, segment: Filter | None = None,
                    segment_name: str | None = None) -> int:
    """Send a finished campaign on to the list's active subscribers (of its segment) who have
    no row in its ledger yet — those who joined since: queue a row for each, give the campaign
    a new expiry and make it sending again. Nobody who already has a row (sent, failed,
    skipped, however their subscription changed since) gets a second one. Returns how many
    were queued.

    Raises UnknownCampaign; CampaignStateError unless the campaign is finished, or when
    `list_slug` or the segment is not the one it was started for; NoAudience when nobody new
    is there (nothing changes).
    """
    campaign = get_campaign(session, slug)
    if campaign.mailing_list.slug != list_slug:
        raise CampaignStateError(slug, campaign.status.value,
                                 Text.of(N_("it was sent to the list %(sent_to)s, not %(list)s"),
                                         sent_to=repr(campaign.mailing_list.slug), list=repr(list_slug)))
    if (campaign.source or {}).get("segment") != segment_name:
        raise CampaignStateError(slug, campaign.status.value, Text(N_("it was started for another audience")))
    if campaign.status is not CampaignStatus.FINISHED:
        raise CampaignStateError(slug, campaign.status.value,
                                 Text(N_("only a finished campaign is sent on to those who joined since")))
    added = outbox.create_rows(session, campaign, languages=languages, default_language=default_language, now=now,
                               segment=segment)
    if not added:
        raise NoAudience(slug, list_slug, since=True)
    campaign.source = {**(campaign.source or {}), "expires_at": (now + expiry).isoformat()}
    campaign.status, campaign.finished_at = CampaignStatus.SENDING, None
    _explain(campaign, None)
    return added


def check_content(session: Session, slug: str, content_hash: str, *, accept: bool = False) -> None:
    """Before a campaign goes on (resumed, joined, sent on to newcomers): its content must be
    what it started with (the hash it recorded). With `accept`, the new content's hash is
    recorded instead. A campaign not started yet, or one that recorded none, passes.
    Raises CampaignContentChanged."""
    campaign = stored.find_campaign(session, slug)
    if campaign is None or not content_hash:
        return
    recorded = (campaign.source or {}).get("content_hash")
    if recorded == content_hash:
        return
    if recorded and not accept:
        raise CampaignContentChanged(slug, campaign.status.value)
    campaign.source = {**(campaign.source or {}), "content_hash": content_hash}


def join_campaign(session: Session, slug: str) -> Campaign:
    """A campaign another process started, for an extra worker; raises UnknownCampaign or
    CampaignStateError unless it is sending."""
    campaign = get_campaign(session, slug)
    if campaign.status is not CampaignStatus.SENDING:
        raise CampaignStateError(slug, campaign.status.value, Text(N_("workers only join a campaign that is sending")))
    return campaign


def _explain(campaign: Campaign, reason: str | Text | None) -> None:
    """Say why the campaign is as it is (None: there is nothing to say): in English
    (`status_reason`) and as a message id with its values (`status_said`), for the workspace."""
    said = None if reason is None else text_of(reason)
    campaign.status_reason = None if said is None else str(said)
    campaign.status_said = None if said is None else said.to_json()


def status_said(campaign: Campaign) -> Text | None:
    """Why the campaign is as it is, as a Text to translate (None: nothing is said). A reason
    written before `status_said` was kept is its English, translated where the catalogue has it."""
    if campaign.status_said:
        return Text.from_json(campaign.status_said)
    return text_of(campaign.status_reason) if campaign.status_reason else None


def reason_is(said: dict | None, reason: str | None, text: Text) -> bool:
    """Whether a campaign's kept reason is `text`: by its message id (`status_said`), whatever
    the English says now; a reason kept before `status_said` was, by its English (`reason`)."""
    if said:
        return said.get("template") == text.template
    return reason == str(text)


def pause_campaign(session: Session, slug: str, reason: str | Text, *, only_if_sending: bool = False,
                   retry_at: datetime | None = None) -> Campaign:
    """Stop claiming new rows (workers finish what they hold). `retry_at`: the campaign only
    waits for its deferred rows, due then (`due_for_retry` finds it). Pausing a paused
    campaign (unless `only_if_sending`) gives it the new reason, and it waits for nothing.
    Raises CampaignStateError for a finished or cancelled campaign, unless `only_if_sending`
    (then it is left as it is)."""
    campaign = get_campaign(session, slug)
    if campaign.status in (CampaignStatus.SENDING, CampaignStatus.DRAFT):
        campaign.status = CampaignStatus.PAUSED
        _explain(campaign, reason)
        _mark_retry(campaign, retry_at)
    elif campaign.status is CampaignStatus.PAUSED:
        if not only_if_sending:
            _explain(campaign, reason)
            _mark_retry(campaign, None)
    elif not only_if_sending:
        raise CampaignStateError(slug, campaign.status.value, Text(N_("only a sending campaign can be paused")))
    return campaign


def _mark_retry(campaign: Campaign, when: datetime | None) -> None:
    source = dict(campaign.source or {})
    if when is None and "retry_at" not in source:
        return
    if when is None:
        source.pop("retry_at")
    else:
        source["retry_at"] = when.isoformat()
    campaign.source = source


def retry_at(campaign: Campaign) -> datetime | None:
    """When a campaign paused only to wait for its deferred rows may go on (None: it does not)."""
    raw = (campaign.source or {}).get("retry_at") if campaign.status is CampaignStatus.PAUSED else None
    return datetime.fromisoformat(raw) if raw else None


def due_for_retry(session: Session, now: datetime) -> list[str]:
    """The slugs of the campaigns paused only to wait for deferred rows that are due by `now`
    (oldest first); a campaign paused by a person is never among them."""
    return [c.slug for c in stored.campaigns_in(session, CampaignStatus.PAUSED)
            if (when := retry_at(c)) is not None and when <= now]


def resume_campaign(session: Session, slug: str) -> Campaign:
    """Mark a paused campaign sending again (a sender must then run to send the rest).
    Raises UnknownCampaign; CampaignStateError for a finished or cancelled campaign."""
    campaign = get_campaign(session, slug)
    if campaign.status in (CampaignStatus.FINISHED, CampaignStatus.CANCELLED):
        raise CampaignStateError(slug, campaign.status.value, Text(N_("only a paused campaign can be resumed")))
    campaign.status = CampaignStatus.SENDING
    _explain(campaign, None)
    _mark_retry(campaign, None)
    return campaign


def cancel_campaign(session: Session, slug: str, *, now: datetime, segment: Filter | None = None) -> int:
    """Cancel: queued and deferred rows become skipped ("cancelled"), and so do the rows of a
    ledger not yet whole, written now (of those `segment` names: the campaign's segment);
    returns how many."""
    campaign = get_campaign(session, slug)
    if campaign.status is CampaignStatus.FINISHED:
        raise CampaignStateError(slug, "finished", Text(N_("there is nothing left to cancel")))
    campaign.status = CampaignStatus.CANCELLED
    _explain(campaign, Text(N_("cancelled by an administrator")))
    campaign.finished_at = now
    reason = "skipped: the campaign was cancelled"
    skipped = outbox.skip_remaining(session, campaign.id, reason, now=now)
    if campaign.ledger_until is not None:
        languages, default = ledger_languages(campaign)
        skipped += outbox.skip_unwritten(session, campaign.id, reason, languages=languages, default_language=default,
                                         now=now, segment=segment)
        session.expire(campaign, ["ledger_through", "ledger_until"])
    return skipped


def ledger_languages(campaign: Campaign) -> tuple[Sequence[str] | Mapping[str, str], str]:
    """The variant each reader language gets, and the default, as the campaign started with them."""
    source = campaign.source or {}
    return source.get("languages") or (), source.get("default_language") or "en"


def unwritten_rows(session: Session, campaign: Campaign, counts: Counts | None = None) -> int:
    """About how many rows of the campaign's ledger are still to be written (0 when it is
    whole): its planned audience less the rows written (`counts`, read when not given)."""
    if campaign.ledger_until is None:
        return 0
    counts = outbox.count_rows(session, campaign.id) if counts is None else counts
    return max(0, int((campaign.source or {}).get("audience") or 0) - counts.total)


def retry_campaign(session: Session, slug: str, *, now: datetime, expiry: timedelta = DEFAULT_EXPIRY) -> int:
    """Queue failed and deferred rows again and give them a new expiry; returns how many.

    The campaign becomes `paused` ("N rows queued again") until a sender resumes it.
    Raises UnknownCampaign; CampaignStateError for a cancelled campaign.
    """
    campaign = get_campaign(session, slug)
    if campaign.status is CampaignStatus.CANCELLED:
        raise CampaignStateError(slug, "cancelled", Text(N_("a cancelled campaign cannot be retried")))
    count = outbox.requeue_rows(session, campaign.id, [OutboxStatus.FAILED, OutboxStatus.DEFERRED], now=now)
    if count:
        campaign.source = {**(campaign.source or {}), "expires_at": (now + expiry).isoformat()}
        if campaign.status is not CampaignStatus.SENDING:
            campaign.status = CampaignStatus.PAUSED
            _explain(campaign, Text.counted(NP_("%(n)s row queued again", "%(n)s rows queued again"), count))
            _mark_retry(campaign, None)
        campaign.finished_at = None
    return count


def finish_if_done(session: Session, campaign: Campaign, *, now: datetime) -> bool:
    """Mark the campaign finished when no row is queued, sending or deferred; returns whether it is."""
    stored.reload_campaign(session, campaign)
    if campaign.status is CampaignStatus.FINISHED:
        return True
    if campaign.ledger_until is not None or outbox.count_rows(session, campaign.id).open:
        return False
    if campaign.status is CampaignStatus.SENDING:
        campaign.status, campaign.finished_at = CampaignStatus.FINISHED, now
        _explain(campaign, None)
        return True
    return False


def settle_campaign(session: Session, slug: str, stop_reason: str | Text | None, *, now: datetime,
                    retry_at: datetime | None = None) -> tuple[CampaignStatus, Counts, str | None]:
    """After a sender's run: finished when nothing is open, else paused with `stop_reason`
    when the run was stopped (a campaign paused, finished or cancelled meanwhile stays so);
    `retry_at`: the run stopped only to leave its deferred rows, due then, to a later one.
    Returns (status, counts, status reason). Raises UnknownCampaign."""
    campaign = get_campaign(session, slug)
    if not finish_if_done(session, campaign, now=now) and stop_reason:
        pause_campaign(session, slug, stop_reason, only_if_sending=True, retry_at=retry_at)
    stored.reload_campaign(session, campaign, write_first=True)
    return campaign.status, outbox.count_rows(session, campaign.id), campaign.status_reason


def release_claims(session: Session, slug: str, worker: str, row_ids: Sequence[int], *, now: datetime) -> int:
    """Give back rows `worker` holds and did not send: `queued` again, or `skipped` when the
    campaign was cancelled meanwhile. Returns how many. Raises UnknownCampaign."""
    campaign = get_campaign(session, slug)
    if campaign.status is CampaignStatus.CANCELLED:
        return outbox.release_rows(session, worker, row_ids, now=now, status=OutboxStatus.SKIPPED,
                                   reason="skipped: the campaign was cancelled")
    return outbox.release_rows(session, worker, row_ids, now=now)


def ledger_counts(session: Session, campaign: Campaign) -> Counts:
    """The campaign's rows in each state, the rows still to be written counted as queued: the
    whole audience, while its ledger is being written."""
    counts = outbox.count_rows(session, campaign.id)
    unwritten = unwritten_rows(session, campaign, counts)
    return counts._replace(queued=counts.queued + unwritten) if unwritten else counts


def summarise_campaign(session: Session, campaign: Campaign) -> CampaignSummary:
    """The campaign with its row counts (the rows still to be written counted as queued)."""
    return CampaignSummary(campaign.slug, campaign.mailing_list.slug, campaign.subject, campaign.status,
                           campaign.status_reason, ledger_counts(session, campaign),
                           campaign.created_at, campaign.started_at, campaign.finished_at)


def summarise_campaigns(session: Session) -> list[CampaignSummary]:
    """Every campaign, newest first, with its row counts."""
    return [summarise_campaign(session, c) for c in stored.all_campaigns(session)]
