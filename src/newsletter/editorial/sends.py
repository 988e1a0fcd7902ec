"""Sending an issue written in the workspace, through the one send path.

    prepare_issue_send(slug) ─► the issue's newest revisions written out as content files
                                (`issues_dir/<slug>/<digest>/`), then `sending.launch.prepare_send`
                                on them: rendered once per language, audience planned, linted
            │
    approve(slug, digest)  ───► (the two-person rule) a second sender approves that exact set
            │
    send_issue(send) ─────────► `sending.launch.launch`: the campaign records those files, so a
                                resume (from the workspace or `newsletter campaign resume`)
                                renders the same revisions

The files are what `newsletter send` would be given, so the workspace and the CLI make the
same campaign from the same issue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..errors import ApprovalRequired, InvalidField
from ..people.segments import list_segments
from ..routine.schedules import ScheduleView, list_schedules, schedule_send
from ..sending.launch import (
    Prepared,
    SendControl,
    begin_campaign,
    launch,
    prepare_send,
    send_test_mail,
)
from ..sending.options import Progress, SendOptions, SendResult
from ..sending.pacing import Pace, estimated_seconds
from ..store import editorial as stored
from ..texts import N_, Text
from .issues import _get, _view, export_files, mail_issue, show_issue
from .versions import Approval, IssueView, RevisionSet, TranslationState

if TYPE_CHECKING:
    from ..installation import Newsletter
    from ..sending.sender import Connector
    from ..transport.connection import Reply

__all__ = [
    "Audience",
    "AudienceLine",
    "IssueSend",
    "SendReview",
    "approve",
    "audience_of",
    "begin_issue_send",
    "check_approval",
    "check_translations",
    "prepare_issue_send",
    "review_send",
    "send_folder",
    "send_issue",
    "send_issue_test",
    "test_send",
]


class IssueSend(NamedTuple):
    """An issue ready to send: the revisions it is made of, their files and the prepared send."""

    view: IssueView
    revisions: RevisionSet
    files: tuple[Path, ...]
    prepared: Prepared

    @property
    def slug(self) -> str:
        return self.view.slug

    def approved_for(self, sender: str) -> bool:
        """Whether `sender` may send it now under the list's rule."""
        return not self.view.needs_second_approval or any(a.approved_by != sender for a in self.view.approvals)


class AudienceLine(NamedTuple):
    """The readers of one language, and the language they get (another one when theirs is missing)."""

    language: str
    readers: int
    gets: str

    @property
    def fallback(self) -> bool:
        return self.gets != self.language


class Audience(NamedTuple):
    """Who a send goes to, per reader language, along the list's fallback chain, and about how
    long it takes at the pace given; per country when a country attribute is declared."""

    lines: tuple[AudienceLine, ...]
    fallback_chain: tuple[str, ...]
    total: int
    seconds: float
    #: The segment of the list it goes to (None: the whole list), and its expression
    segment: str | None = None
    expression: str = ""
    #: country (ISO code, "" for none known) -> recipients, most first
    countries: tuple[tuple[str, int], ...] = ()


def audience_of(send: IssueSend, pace: Pace = Pace()) -> Audience:
    """The prepared send's audience by reader language (most readers first) and its duration at `pace`."""
    plan = send.prepared.plan
    lines = tuple(AudienceLine(lang, n, plan.variant_of.get(lang, lang)) for lang, n in plan.readers.items())
    return Audience(lines, plan.fallback_chain, plan.total, estimated_seconds(plan.total, pace), plan.segment,
                    plan.expression, tuple(plan.countries.items()))


def send_folder(newsletter: Newsletter, slug: str, revisions: RevisionSet) -> Path:
    """Where the content files of one revision set of an issue are written."""
    return Path(newsletter.config.issues_dir) / slug / revisions.digest


def prepare_issue_send(newsletter: Newsletter, slug: str, *, list_slug: str | None = None,
                       segment: str | None = None) -> IssueSend:
    """Write the issue's newest revisions out as content files and prepare their send
    (`sending.launch.prepare_send`; to those of the list `segment` names, when given):
    rendered, audience planned, linted. Sends nothing.

    Raises UnknownDraft; ContentError (no language written); UnknownList, MissingVariant;
    UnknownSegment, SegmentError.
    """
    view = show_issue(newsletter, slug)
    mail_issue(view)  # raises ContentError when nothing is written yet
    folder = send_folder(newsletter, slug, view.revision_set)
    files = tuple(export_files(newsletter, slug, folder, revisions=view.revision_set))
    prepared = prepare_send(newsletter, [str(f) for f in files], list_slug=list_slug, segment=segment)
    return IssueSend(view, view.revision_set, files, prepared)


def check_approval(view: IssueView, sender: str | None) -> None:
    """Raise ApprovalRequired unless the two-person rule is off for the issue's list or a
    sender other than `sender` approved its current revision set."""
    if not view.needs_second_approval:
        return
    if not any(a.approved_by != sender for a in view.approvals):
        if any(a.approved_by == sender for a in view.approvals):
            reason = N_("the list %(list)s needs a second sender to approve these exact revisions (approving your "
                        "own send does not count)")
        else:
            reason = N_("the list %(list)s needs a second sender to approve these exact revisions")
        raise ApprovalRequired(view.slug, view.revision_set.digest, sender, Text.of(reason, list=view.list_slug))


def check_translations(view: IssueView, *, stale_accepted: bool) -> None:
    """Raise InvalidField (field `stale`) when a language is stale and the sender did not say
    to send it as it is: its readers would get a translation of an older source."""
    stale = [s.language for s in view.languages if s.state is TranslationState.STALE]
    if stale and not stale_accepted:
        reason = (N_("%(languages)s is translated from an older %(source)s version; bring them up to date, or say "
                     "to send them as they are") if len(stale) == 1 else
                  N_("%(languages)s are translated from an older %(source)s version; bring them up to date, or say "
                     "to send them as they are"))
        raise InvalidField("stale", Text.of(reason, languages=", ".join(stale), source=view.source_language))


def schedule_issue(newsletter: Newsletter, slug: str, *, at: str, zone: str, window: str | None = None,
                   segment: str | None = None, sender: str | None = None,
                   stale_accepted: bool = False) -> ScheduleView:
    """Schedule the issue's current revisions for wall time `at` in `zone` (the venue's), as
    `newsletter schedule` does: the revisions are written out as content files now, so what
    fires is what was approved; `window` ("07:00-22:00") bounds the hours it goes out in;
    `segment` (a saved segment's name) restricts it to those of the list it names when it fires.

    Raises UnknownDraft; ApprovalRequired (the two-person rule); InvalidField (a stale
    translation not accepted; the time, zone or window); what `routine.schedules.schedule_send`
    raises (ContentError, LintFailed, UnknownList, MissingVariant, UnknownSegment, SegmentError,
    ScheduleStateError).
    """
    view = show_issue(newsletter, slug)
    check_approval(view, sender)
    check_translations(view, stale_accepted=stale_accepted)
    mail_issue(view)  # raises ContentError when nothing is written yet
    folder = send_folder(newsletter, slug, view.revision_set)
    files = tuple(export_files(newsletter, slug, folder, revisions=view.revision_set))
    return schedule_send(newsletter, [str(f) for f in files], at=at, zone=zone, window=window, segment=segment)


def approve(newsletter: Newsletter, slug: str, *, approver: str, digest: str) -> Approval:
    """Record `approver`'s approval of the revision set `digest` (the one they looked at).

    Raises UnknownDraft; ApprovalRequired when the issue changed since (its current set has
    another digest): nothing is recorded then.
    """
    with newsletter.store.session() as session:
        issue = _get(session, slug)
        view = _view(newsletter, session, issue)
        if view.revision_set.digest != digest:
            raise ApprovalRequired(slug, view.revision_set.digest, None,
                                   N_("it changed since the version you approved; look at it again"))
        approval = stored.add_approval(session, issue, revisions=view.revision_set.as_dict(), digest=digest,
                                       approved_by=approver, now=newsletter.clock())
        return Approval(approval.approved_by, approval.approved_at, approval.digest)


def _check_sendable(newsletter: Newsletter, send: IssueSend, sender: str | None) -> None:
    view = show_issue(newsletter, send.slug)
    if view.revision_set != send.revisions:
        raise ApprovalRequired(send.slug, view.revision_set.digest, sender,
                               N_("it changed since it was prepared; prepare it again"))
    check_approval(view, sender)
    send.prepared.lint.raise_for_errors()


def _record_sent(newsletter: Newsletter, send: IssueSend, sender: str | None) -> None:
    with newsletter.store.session() as session:
        stored.record_sent(session, _get(session, send.slug), revisions=send.revisions.as_dict(), by=sender,
                           now=newsletter.clock())


def begin_issue_send(newsletter: Newsletter, send: IssueSend, *, sender: str | None = None) -> None:
    """The prepared issue's campaign started (`sending.launch.begin_campaign`: its row and the
    start of its ledger committed; a paused one made sending again) and its revisions recorded
    as sent, without mailing anyone: what a face that sends in a thread does before it answers,
    so that the campaign's page is there at once. `send_issue(..., begun=True)` then sends.

    Raises ApprovalRequired (the two-person rule; or the issue changed since it was prepared);
    what `begin_campaign` raises (LintFailed, CampaignStateError, NoAudience, UnknownList).
    """
    _check_sendable(newsletter, send, sender)
    begin_campaign(newsletter, send.prepared)
    _record_sent(newsletter, send, sender)


def send_issue(newsletter: Newsletter, send: IssueSend, options: SendOptions = SendOptions(), *,
               sender: str | None = None, on_progress: Callable[[Progress], None] | None = None,
               on_start: Callable[[SendControl], None] | None = None,
               connect: Connector | None = None, begun: bool = False) -> SendResult:
    """Send the prepared issue (blocking until it ends or is stopped, like `launch`); with
    `begun`, `begin_issue_send` was called for it already.

    Raises ApprovalRequired (the two-person rule; or the issue changed since it was prepared);
    what `sending.launch.launch` raises (LintFailed, CampaignStateError, UnknownList).
    """
    if not begun:
        _check_sendable(newsletter, send, sender)

    def started(control: SendControl) -> None:
        if not begun:
            _record_sent(newsletter, send, sender)
        if on_start is not None:
            on_start(control)

    return launch(newsletter, send.prepared, options, on_progress=on_progress, on_start=started, connect=connect,
                  begun=begun)


def send_issue_test(newsletter: Newsletter, send: IssueSend, addresses: Iterable[str], *,
                    connect: Connector | None = None) -> list[tuple[str, str, Reply]]:
    """Every language of the prepared issue, subject "[TEST] …", to each address; records nothing.

    Raises InvalidField (no address), LintFailed, DeliveryError.
    """
    addresses = [a.strip() for a in addresses if a.strip()]
    if not addresses:
        raise InvalidField("address", N_("give at least one address to send the test to"))
    return send_test_mail(newsletter, send.prepared, addresses, connect=connect)




class SendReview(NamedTuple):
    """What the send page shows before the confirmation: the prepared send and its audience;
    the segments a schedule may take, the audience of the one chosen (`scheduled`), and the
    issue's schedules with their state."""

    send: IssueSend
    audience: Audience
    segments: tuple[str, ...] = ()
    scheduled: Audience | None = None
    schedules: tuple[ScheduleView, ...] = ()

    @property
    def approvals(self) -> tuple[Approval, ...]:
        return self.send.view.approvals


def review_send(newsletter: Newsletter, slug: str, pace: Pace = Pace(), *,
                segment: str | None = None) -> SendReview:
    """The issue prepared to send, with its audience per language and the time it takes at `pace`;
    with `segment`, also the audience of that segment of the list (per language and country),
    for scheduling. Raises what `prepare_issue_send` raises (UnknownSegment, SegmentError for
    the segment)."""
    send = prepare_issue_send(newsletter, slug)
    scheduled = audience_of(prepare_issue_send(newsletter, slug, segment=segment), pace) if segment else None
    names = tuple(s.name for s in list_segments(newsletter))
    return SendReview(send, audience_of(send, pace), names, scheduled,
                      tuple(list_schedules(newsletter, everything=True, slug=slug)))


def test_send(newsletter: Newsletter, slug: str, addresses: Iterable[str], *,
              connect: Connector | None = None) -> list[tuple[str, str, Reply]]:
    """Every language of the issue's newest revisions, "[TEST] …", to each address; records nothing.
    Raises InvalidField (no address), LintFailed, DeliveryError, what `prepare_issue_send` raises."""
    addresses = [a.strip() for a in addresses if a.strip()]
    if not addresses:
        raise InvalidField("address", N_("give at least one address to send the test to"))
    return send_issue_test(newsletter, prepare_issue_send(newsletter, slug), addresses, connect=connect)
