"""Sends that run behind a page: the workspace starts a send (or a resume, or a catch-up) and
answers at once; the send runs in a thread of its own through `sending.launch`, and the page
follows it in the ledger (`reports.progress`). Pausing and cancelling go through
`sending.actions`, which every sender obeys, wherever it runs."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import ApprovalRequired, CampaignStateError
from ..sending import actions
from ..sending.launch import Prepared, begin_campaign, launch, prepare_resume
from ..sending.options import SendOptions, SendResult
from ..statuses import CampaignStatus
from ..texts import N_
from .catchup import CatchUp, begin_catch_up, prepare_catch_up, send_catch_up
from .issues import show_issue
from .sends import (
    IssueSend,
    begin_issue_send,
    check_approval,
    check_translations,
    prepare_issue_send,
    send_issue,
)

if TYPE_CHECKING:
    from ..installation import Newsletter
    from ..sending.sender import Connector

__all__ = ["BackgroundSends"]

log = logging.getLogger(__name__)
_RUNNERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_RUNNERS_LOCK = threading.Lock()


@dataclass
class BackgroundSends:
    """Runs sends in threads for one installation; `options` and `connect` are how they send."""

    newsletter: Newsletter
    options: SendOptions = field(default_factory=SendOptions)
    connect: Connector | None = None
    results: dict[str, SendResult | BaseException] = field(default_factory=dict)
    _threads: dict[str, threading.Thread] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def of(cls, newsletter: Newsletter) -> BackgroundSends:
        """The one runner of this installation object (made on first use)."""
        with _RUNNERS_LOCK:
            runner = _RUNNERS.get(newsletter)
            if runner is None:
                runner = _RUNNERS[newsletter] = cls(newsletter)
            return runner

    def running(self, slug: str) -> bool:
        thread = self._threads.get(slug)
        return thread is not None and thread.is_alive()

    def _start(self, slug: str, run: Callable[[], SendResult], begin: Callable[[], None] | None = None) -> None:
        """Run `run` in a thread of its own, unless a send of `slug` runs already; `begin` (the
        create-campaign step) is called first, in the caller's thread, so that the campaign is
        in the store before the caller answers (its page never says "No such issue")."""
        def body() -> None:
            try:
                self.results[slug] = run()
            except BaseException as exc:  # noqa: BLE001 -- kept for the page to show; the campaign says the rest
                log.warning("the send of %s stopped: %s", slug, exc)
                self.results[slug] = exc

        with self._lock:
            if self.running(slug):
                return
            if begin is not None:
                begin()
            thread = threading.Thread(target=body, name=f"send-{slug}", daemon=True)
            self._threads[slug] = thread
            thread.start()

    def start(self, send: IssueSend, *, sender: str | None) -> None:
        """Start sending a prepared issue (or go on with its paused campaign). Raises
        CampaignStateError (it went out already), ApprovalRequired and LintFailed at once
        (nothing started); a send already running for it is left alone."""
        existing = send.prepared.existing
        if existing in (CampaignStatus.FINISHED, CampaignStatus.CANCELLED):
            raise CampaignStateError(send.slug, existing.value, N_("it went out already; a retry re-sends to those "
                                                                   "it failed for, and a late translation goes to "
                                                                   "those who got a fallback"))
        check_approval(show_issue(self.newsletter, send.slug), sender)
        send.prepared.lint.raise_for_errors()
        self._start(send.slug, lambda: send_issue(self.newsletter, send, self.options, sender=sender,
                                                  connect=self.connect, begun=True),
                    begin=lambda: begin_issue_send(self.newsletter, send, sender=sender))

    def resume(self, slug: str) -> None:
        """Resume a paused campaign from the files it recorded. Raises what `prepare_resume` raises."""
        prepared = prepare_resume(self.newsletter, slug)
        self._start(slug, lambda: launch(self.newsletter, prepared, self.options, connect=self.connect))

    def launch(self, prepared: Prepared) -> None:
        """Start (or resume) sending an issue prepared by `sending.launch` (the REST API's sends).
        The campaign is started (`begin_campaign`) before this returns, so that it is in the store
        when the caller answers. Raises at once, nothing started: LintFailed, and what
        `begin_campaign` raises (CampaignStateError, CampaignContentChanged, NoAudience, UnknownList)."""
        prepared.lint.raise_for_errors()
        self._start(prepared.slug, lambda: launch(self.newsletter, prepared, self.options, connect=self.connect,
                                                  begun=True),
                    begin=lambda: begin_campaign(self.newsletter, prepared))

    def catch_up(self, catch_up: CatchUp, *, sender: str | None) -> None:
        """Send a late translation to the readers who got a fallback. Raises LintFailed."""
        self._start(catch_up.campaign_slug, lambda: send_catch_up(self.newsletter, catch_up, self.options,
                                                                  sender=sender, connect=self.connect, begun=True),
                    begin=lambda: begin_catch_up(self.newsletter, catch_up, sender=sender))

    def send(self, slug: str, digest: str, *, sender: str | None, stale_accepted: bool = False,
             segment: str | None = None) -> None:
        """Prepare the issue's newest revisions and start sending them — to the subscribers of its
        list that the saved segment `segment` names now, when given — provided they are the
        ones the sender confirmed (`digest`) and, when a translation is stale, the sender said
        to send it as it is. Raises ApprovalRequired (they changed since, or the two-person
        rule), InvalidField (a stale language not accepted), LintFailed, NoAudience (nobody
        to send to), and what `prepare_issue_send` raises (UnknownSegment, SegmentError for
        the segment); nothing is started then."""
        send = prepare_issue_send(self.newsletter, slug, segment=segment)
        if send.revisions.digest != digest:
            raise ApprovalRequired(slug, send.revisions.digest, sender,
                                   N_("it changed since you looked at it; look at it again before sending"))
        check_translations(send.view, stale_accepted=stale_accepted)
        self.start(send, sender=sender)

    def retry(self, slug: str) -> int:
        """Queue the failed and deferred rows again and resume the campaign; returns how many.
        Raises UnknownCampaign, CampaignStateError, CampaignContentMissing."""
        queued = actions.retry(self.newsletter, slug)
        if queued:
            self.resume(slug)
        return queued

    def catch_up_language(self, slug: str, language: str, *, sender: str | None) -> CatchUp:
        """Send a late translation to the readers who got a fallback. Raises CatchUpUnavailable, LintFailed."""
        late = prepare_catch_up(self.newsletter, slug, language)
        self.catch_up(late, sender=sender)
        return late

    def wait(self, slug: str, timeout: float | None = None) -> SendResult | BaseException | None:
        """Wait for the send of `slug` to end (tests, shutdown); its result, or None while it runs."""
        thread = self._threads.get(slug)
        if thread is not None:
            thread.join(timeout)
        return self.results.get(slug)
