"""A translation that landed after the issue went out: its readers who got a fallback language
are sent their own, once.

The ledger of the issue's campaign knows who they are: its sent rows whose language is not the
reader's. They get a campaign of their own (`<slug>-<language>`, so a second attempt finds it
and refuses), whose ledger holds only them, made from the new version written out as a content
file and sent by `sending.launch.launch` as a worker of that campaign; the sender checks each
reader's consent again when it claims them, like every send.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..errors import CatchUpUnavailable
from ..sending.campaigns import DEFAULT_EXPIRY, find_campaign, get_campaign
from ..sending.launch import Prepared, SendControl, launch, prepare_send
from ..sending.options import Progress, SendOptions, SendResult
from ..statuses import CampaignStatus
from ..store import campaigns as stored_campaigns
from ..store import editorial as stored
from ..texts import N_, Text
from .files import content_text, file_name
from .issues import _get, _view

if TYPE_CHECKING:
    from ..installation import Newsletter
    from ..sending.sender import Connector

__all__ = ["CatchUp", "begin_catch_up", "catch_up_slug", "prepare_catch_up", "send_catch_up"]


class CatchUp(NamedTuple):
    """Who a late translation would go to: the readers of `language` the campaign `of` sent
    another language, and the campaign that would send it to them."""

    of: str
    language: str
    campaign_slug: str
    readers: int
    prepared: Prepared


def catch_up_slug(slug: str, language: str) -> str:
    """The campaign that sends `language` of `slug` to the readers who got a fallback."""
    return f"{slug}-{language}"


def _readers(newsletter: Newsletter, slug: str, language: str) -> tuple[list[int], object]:
    with newsletter.store.session() as session:
        issue = _get(session, slug)
        view = _view(newsletter, session, issue)
        if view.sent_revisions is None:
            raise CatchUpUnavailable(slug, language, Text(N_("the issue has not been sent yet; send it with this "
                                                             "version")))
        if language in view.sent_revisions.as_dict():
            raise CatchUpUnavailable(slug, language, Text.of(N_("its readers got the %(language)s version with the "
                                                                "issue"), language=language))
        version = view.versions.get(language)
        if version is None:
            raise CatchUpUnavailable(slug, language, Text.of(N_("there is no %(language)s version yet"),
                                                             language=language))
        existing = find_campaign(session, catch_up_slug(slug, language))
        if existing is not None:
            raise CatchUpUnavailable(slug, language, Text.of(N_("it was already sent to them once, as the campaign "
                                                                "%(campaign)s (%(status)s)"),
                                                             campaign=repr(existing.slug),
                                                             status=Text(existing.status.value)))
        campaign = get_campaign(session, slug)
        if campaign.status is not CampaignStatus.FINISHED:
            raise CatchUpUnavailable(slug, language, Text.of(N_("its campaign is %(status)s; the readers who got a "
                                                                "fallback are known once it has finished"),
                                                             status=Text(campaign.status.value)))
        readers = stored.fallback_readers(session, campaign.id, language)
        if not readers:
            raise CatchUpUnavailable(slug, language, Text.of(N_("nobody who reads %(language)s was sent another "
                                                                "language"), language=language))
        return readers, version


def prepare_catch_up(newsletter: Newsletter, slug: str, language: str) -> CatchUp:
    """The late translation written out as a content file and prepared to send (rendered,
    linted), with how many readers it is for. Sends and records nothing.

    Raises UnknownDraft; CatchUpUnavailable (not sent yet, the language went with the issue,
    no version, already caught up, the campaign not finished, nobody to send it to);
    ContentError, UnknownList.
    """
    readers, version = _readers(newsletter, slug, language)
    target = catch_up_slug(slug, language)
    folder = Path(newsletter.config.issues_dir) / slug / f"catch-up-{language}-{version.number}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name(target, language)
    path.write_text(content_text(kind=version.kind, list_slug=version.list_slug, slug=target, language=language,
                                 front_matter=version.front_matter, body=version.body), encoding="utf-8")
    prepared = prepare_send(newsletter, [str(path)], list_slug=version.list_slug)
    return CatchUp(slug, language, target, len(readers), prepared)


def begin_catch_up(newsletter: Newsletter, catch_up: CatchUp, *, sender: str | None = None) -> None:
    """The late translation's campaign made (its row and a queued row per reader who got a
    fallback, committed), nobody mailed yet: what a face that sends in a thread does before it
    answers. `send_catch_up(..., begun=True)` then sends.

    Raises CatchUpUnavailable (as `prepare_catch_up`, checked again: it goes once), LintFailed.
    """
    catch_up.prepared.lint.raise_for_errors()
    readers, _ = _readers(newsletter, catch_up.of, catch_up.language)
    now = newsletter.clock()
    with newsletter.store.session() as session:
        issue = _get(session, catch_up.of)
        mailing_list = get_campaign(session, catch_up.of).mailing_list
        source = {"files": list(catch_up.prepared.files), "catch_up_of": catch_up.of, "started_by": sender,
                  "languages": {catch_up.language: catch_up.language},
                  "expires_at": (now + DEFAULT_EXPIRY).isoformat()}
        campaign = stored_campaigns.add_campaign(
            session, slug=catch_up.campaign_slug, list_id=mailing_list.id, kind=issue.kind,
            subject=catch_up.prepared.subject[:300], status=CampaignStatus.SENDING, source=source, now=now)
        stored.queue_readers(session, campaign, readers, language=catch_up.language, now=now)


def send_catch_up(newsletter: Newsletter, catch_up: CatchUp, options: SendOptions = SendOptions(), *,
                  sender: str | None = None, on_progress: Callable[[Progress], None] | None = None,
                  on_start: Callable[[SendControl], None] | None = None,
                  connect: Connector | None = None, begun: bool = False) -> SendResult:
    """Send the late translation to the readers who got a fallback (blocking, like `launch`);
    with `begun`, `begin_catch_up` made its campaign already.

    Raises CatchUpUnavailable (as `prepare_catch_up`, checked again: it goes once), LintFailed.
    """
    if not begun:
        begin_catch_up(newsletter, catch_up, sender=sender)
    return launch(newsletter, catch_up.prepared, options, join=True, on_progress=on_progress, on_start=on_start,
                  connect=connect)
