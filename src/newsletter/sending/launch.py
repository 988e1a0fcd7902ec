"""Sending an issue: the one path for `newsletter send`, `campaign resume`, `send --worker` and
the demo (and for the staff workspace and the scheduler to come).

    prepare_send(files) ──► Prepared: the content loaded, each language rendered once, the
    prepare_resume(slug)     audience planned per language along the list's fallback chain,
                             linted; nothing written (a face may ask "Send to N?" here)
            │
    launch(prepared) ─────► the campaign started, resumed or joined; a sender made from the
                             same rendering and run with progress and stop hooks ──► SendResult

`launch` runs the send on an event loop of its own and returns when it ends, so a face without
a terminal runs it in a thread and stops it through the `SendControl` it is handed.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy.orm import Session

from ..config import Config
from ..errors import CampaignContentMissing, CampaignStateError, ListArchived, NewsletterError, UnknownList
from ..mail.compose import DEFAULT_FALLBACK, RenderedMail, render_issue, variant_for
from ..mail.content import load_issue
from ..mail.issue import Issue
from ..mail.lint import LintReport, lint_issue
from ..people.lists import get_list, languages_in_use
from ..people.segments import check_expression, segment_filter
from ..segment_language import Filter
from ..statuses import CampaignStatus
from ..store.reach import AudienceGroup, audience_groups
from ..texts import N_, Text
from ..transport.connection import Reply
from . import campaigns
from .messages import send_test
from .reach import Reach, attributes_of, reach_from_groups
from .options import Progress, SendOptions, SendResult, run_sending
from .sender import Connector, Sender, sender_for

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = [
    "SendPlan",
    "Prepared",
    "Readers",
    "SendControl",
    "plan_send",
    "list_readers",
    "prepare_send",
    "prepare_resume",
    "begin_campaign",
    "launch",
    "retry_due",
    "send_test_mail",
]


class SendPlan(NamedTuple):
    """What a send is about to do: which variant each reader language gets, and to how many."""

    slug: str
    list_slug: str
    list_name: str
    #: subscriber language -> variant language (along the list's fallback chain)
    variant_of: dict[str, str]
    #: variant language -> active subscribers who will get it
    audience: dict[str, int]
    fallback_chain: tuple[str, ...]
    #: subscriber language -> active subscribers who read it, most readers first
    readers: Mapping[str, int] = {}
    #: The segment the send is restricted to (None: the whole list), and its expression
    segment: str | None = None
    expression: str = ""
    #: country (ISO code, "" for none known) -> recipients; empty when no country attribute is declared
    countries: Mapping[str, int] = {}
    #: Member organisations and countries reached (None: no such attributes are declared)
    reach: Reach | None = None

    @property
    def total(self) -> int:
        return sum(self.audience.values())


class Readers(NamedTuple):
    """Who reads a list: active subscribers by language (most readers first), its fallback chain
    and its name."""

    languages: dict[str, int]
    fallback_chain: tuple[str, ...]
    list_name: str = ""


@dataclass(frozen=True)
class Prepared:
    """An issue ready to send: rendered once per language, its audience planned, linted.

    `existing` is the status of the campaign that already has this slug (launching resumes
    it), or None when launching starts a new one. Nothing has been written.
    """

    issue: Issue
    #: The content files, absolute: what the campaign records so that a resume renders the same.
    files: tuple[str, ...]
    rendered: Mapping[str, RenderedMail]
    plan: SendPlan
    lint: LintReport
    existing: CampaignStatus | None
    default_language: str
    #: The checked filter of `plan.segment` (None: the whole list)
    segment: Filter | None = None
    #: SHA-256 of the content files' bytes: what a campaign keeps, so that a resume knows
    #: whether the rest would get what the first readers got.
    content_hash: str = ""

    @property
    def slug(self) -> str:
        return self.issue.slug

    @property
    def resumes(self) -> bool:
        """Whether launching goes on with a campaign started before (one not finished or cancelled)."""
        return self.existing is not None and self.existing not in (CampaignStatus.FINISHED, CampaignStatus.CANCELLED)

    @property
    def subject(self) -> str:
        """The campaign's subject: the default language's variant's (else the first variant's)."""
        return self.rendered.get(self.default_language, next(iter(self.rendered.values()))).subject


def plan_send(session: Session, config: Config, slug: str, list_slug: str, available: list[str], *,
              segment: tuple[str, str, Filter] | None = None) -> SendPlan:
    """Map every language to the variant its readers get and count the audience per variant
    (and per country) — of the list's subscribers `segment` (name, expression, filter) names,
    when given.

    Raises UnknownList (ListArchived for an archived list), MissingVariant (no variant along the
    fallback chain).
    """
    mailing_list = get_list(session, list_slug, open_only=True)
    chain = tuple(mailing_list.languages or ())
    name, expression, checked = segment if segment is not None else (None, "", None)
    # One grouped pass over the list, not one per count (each took seconds on a million people).
    organisation, country = attributes_of(config)
    groups = audience_groups(session, list_id=mailing_list.id, segment=checked, organisation=organisation,
                             country=country)
    # The whole list's readers are its active subscriptions (`lists.languages_in_use`); a
    # segment's, its active people (`segments.language_counts`).
    in_use = _most_first(groups, lambda g: g.language, whole=checked is None)
    variant_of = {lang: variant_for(lang, available, chain) for lang in set(config.languages) | set(in_use)}
    audience: dict[str, int] = {}
    for lang, n in in_use.items():
        audience[variant_of[lang]] = audience.get(variant_of[lang], 0) + n
    countries = {} if country is None else dict(sorted(
        _most_first(groups, lambda g: g.country or "", whole=False).items(), key=lambda kv: (-kv[1], kv[0])))
    return SendPlan(slug, list_slug, mailing_list.name, variant_of, audience, chain, in_use, name, expression,
                    countries, reach_from_groups(config, groups, variant_of=variant_of))


def _most_first(groups: Iterable[AudienceGroup], key: Callable[[AudienceGroup], str | None], *,
                whole: bool) -> dict:
    """The groups' subscriptions (`whole`) or active people summed by `key`, most first; none of 0."""
    totals: dict = {}
    for g in groups:
        n = g.subscribed if whole else g.active
        if n:
            totals[key(g)] = totals.get(key(g), 0) + n
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def list_readers(newsletter: Newsletter, list_slug: str, *, content: tuple[str, ...] = ()) -> Readers:
    """The languages the list's active subscribers read, with its fallback chain (English when
    it names none): what `preview` checks an issue's variants against. Raises UnknownList (said
    of `content`, the files whose `list:` names the slug, when given)."""
    with newsletter.store.session() as session:
        try:
            mailing_list = get_list(session, list_slug)
        except UnknownList as exc:
            raise exc.named_in(content) if content else exc from None
        chain = tuple(mailing_list.languages) or DEFAULT_FALLBACK
        return Readers(languages_in_use(session, list_slug), chain, mailing_list.name)


def prepare_send(newsletter: Newsletter, files: Iterable[str | Path], *, list_slug: str | None = None,
                 segment: str | None = None, expression: str | None = None) -> Prepared:
    """Load the content files, render each language once, plan the audience of `list_slug`
    (default: the list the content names; only those of its subscribers the segment named
    `segment` names, when given) along its fallback chain, and lint against the languages its
    subscribers read. `expression` stands for the segment's saved one (a campaign resumes with
    the expression it started with, even if the segment changed or is gone). Writes nothing.

    Raises ContentError, UnknownList (its `content` the files, when their `list:` named it),
    UnknownSegment, SegmentError, MissingVariant (a reader language no variant serves).
    """
    config = newsletter.config
    given = [str(f) for f in files]
    issue = load_issue(given)  # as given: errors name the files the way the caller did
    rendered = render_issue(config, issue)
    with newsletter.store.session() as session:
        chosen = None
        if segment and expression is not None:
            chosen = (segment, expression, check_expression(session, config, expression))
        elif segment:
            chosen = (segment, *segment_filter(session, config, segment))
        try:
            plan = plan_send(session, config, issue.slug, list_slug or issue.list, list(rendered), segment=chosen)
        except UnknownList as exc:
            if list_slug or isinstance(exc, ListArchived):
                raise
            raise exc.named_in(tuple(v.path for v in issue.variants.values())) from None
        existing = campaigns.find_campaign(session, issue.slug)
        status = existing.status if existing is not None else None
    report = lint_issue(rendered, subscriber_languages=plan.readers, fallback_chain=plan.fallback_chain)
    default = plan.variant_of.get(config.default_language, "en")
    paths = tuple(str(Path(f).resolve()) for f in given)
    return Prepared(issue, paths, rendered, plan, report, status, default, chosen[2] if chosen else None,
                    _content_hash(rendered))


def _content_hash(rendered: Mapping[str, RenderedMail]) -> str:
    """SHA-256 of what readers get in each language (subject, both parts, preheader, archive
    link): the same for content files that differ only in form (the workspace writes its own)."""
    digest = hashlib.sha256()
    for language in sorted(rendered):
        mail = rendered[language]
        for value in (language, mail.subject, mail.text, mail.html, mail.preheader, mail.browser_url):
            data = value.encode("utf-8")
            digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def prepare_resume(newsletter: Newsletter, slug: str) -> Prepared:
    """`prepare_send` for a campaign already started, from the content files it recorded and
    for its list. Writes nothing.

    Raises UnknownCampaign; CampaignStateError when it is finished or cancelled;
    CampaignContentMissing when its content files are gone; what `prepare_send` raises.
    """
    with newsletter.store.session() as session:
        campaign = campaigns.get_campaign(session, slug)
        status, list_slug = campaign.status, campaign.mailing_list.slug
        files = tuple((campaign.source or {}).get("files", []))
        segment = (campaign.source or {}).get("segment")
        expression = (campaign.source or {}).get("expression")
    if status in (CampaignStatus.FINISHED, CampaignStatus.CANCELLED):
        raise CampaignStateError(slug, status.value, Text(N_("only a paused campaign can be resumed")))
    missing = tuple(f for f in files if not Path(f).exists())
    if not files or missing:
        raise CampaignContentMissing(slug, status.value, missing)
    return prepare_send(newsletter, files, list_slug=list_slug, segment=segment, expression=expression)


class SendControl:
    """A send that is running, for the face that launched it: `stop(reason)` from any thread,
    or `stop_on_signal` (when it was launched from the main thread, where signals arrive).
    Stopping finishes the messages in flight and leaves the campaign paused with `reason`."""

    def __init__(self, sender: Sender, loop: asyncio.AbstractEventLoop):
        self._sender = sender
        self._loop = loop

    @property
    def slug(self) -> str:
        return self._sender.slug

    def stop(self, reason: str | Text) -> None:
        self._loop.call_soon_threadsafe(self._sender.stop, reason)

    def stop_on_signal(self, signum: signal.Signals, reason: str | Text) -> None:
        self._loop.add_signal_handler(signum, self._sender.stop, reason)


def begin_campaign(newsletter: Newsletter, prepared: Prepared, *, join: bool = False, to_new: bool = False,
                   accept_changed_content: bool = False) -> None:
    """The create-campaign step of `launch`, on its own: the campaign started (its row and the
    start of its ledger committed), resumed, joined or extended as `launch` would, and nothing
    mailed. A face that sends in a thread calls it before it answers, so that the campaign's
    page exists when the answer comes; then `launch(..., begun=True)` sends.

    Raises what `launch` raises before it sends (LintFailed, CampaignStateError,
    CampaignContentChanged, NoAudience, UnknownList); nothing is written then.
    """
    prepared.lint.raise_for_errors()
    with newsletter.store.session() as session:
        campaigns.check_content(session, prepared.slug, prepared.content_hash, accept=accept_changed_content)
        if join:
            campaigns.join_campaign(session, prepared.slug)
        elif to_new:
            campaigns.extend_campaign(session, prepared.slug, prepared.plan.list_slug, now=newsletter.clock(),
                                      languages=prepared.plan.variant_of, default_language=prepared.default_language,
                                      segment=prepared.segment, segment_name=prepared.plan.segment)
        else:
            campaigns.start_campaign(session, prepared.slug, prepared.plan.list_slug, now=newsletter.clock(),
                                     subject=prepared.subject, kind=prepared.issue.kind.value,
                                     source={"files": list(prepared.files), "content_hash": prepared.content_hash,
                                             "audience": prepared.plan.total, **_segment_source(prepared)},
                                     languages=prepared.plan.variant_of, default_language=prepared.default_language,
                                     segment=prepared.segment, segment_name=prepared.plan.segment, refuse_empty=True,
                                     chunk=newsletter.config.ledger_chunk)


def launch(newsletter: Newsletter, prepared: Prepared, options: SendOptions = SendOptions(), *,
           join: bool = False, to_new: bool = False, accept_changed_content: bool = False, begun: bool = False,
           on_progress: Callable[[Progress], None] | None = None,
           on_start: Callable[[SendControl], None] | None = None, connect: Connector | None = None) -> SendResult:
    """Start the campaign (resume it when it exists; with `join`, take part in it as one more
    worker; with `to_new`, send a finished one on to the list's subscribers who joined since,
    never to anyone it has a row for) and send it with the rendering `prepared` holds, until
    it is finished or stopped. A new campaign to nobody is refused (NoAudience) before it
    starts: nothing is used up. A campaign keeps the hash of the content it started with: going
    on with other content raises CampaignContentChanged, unless `accept_changed_content`
    (then the new content is what it keeps).

    `on_progress` is called with `Progress` while it runs; `on_start` once, with the
    `SendControl` that stops it. A relay that refuses us pauses the campaign: see the result's
    `status` and `reason`. Raises LintFailed (nothing started); CampaignStateError when the
    campaign is finished or cancelled, was sent to another list or, with `join`, is not
    sending or, with `to_new`, is not finished; NoAudience; UnknownList.
    """
    if not begun:
        begin_campaign(newsletter, prepared, join=join, to_new=to_new, accept_changed_content=accept_changed_content)
    extra = {"connect": connect} if connect is not None else {}
    sender = sender_for(newsletter.store, newsletter.config, prepared.slug, prepared.rendered, options=options,
                        clock=newsletter.clock, on_progress=on_progress, secret=newsletter.secret(), **extra)

    async def run() -> SendResult:
        if on_start is not None:
            on_start(SendControl(sender, asyncio.get_running_loop()))
        return await sender.run()

    return run_sending(run())


def retry_due(newsletter: Newsletter, now: datetime | None = None, options: SendOptions = SendOptions(), *,
              connect: Connector | None = None) -> list[tuple[str, SendResult | NewsletterError]]:
    """Send the deferred rows that are due by `now` (default: the installation's clock): every
    campaign a send left paused only to wait for them (`campaigns.due_for_retry`; never one a
    person paused) is resumed from its content files and sent until it is finished or its
    next deferred rows are not yet due (the send returns; nothing waits in the foreground).
    What the long-running service calls on a timer; `newsletter send` run again does the same
    for one campaign.

    Returns (slug, SendResult) per campaign tried, or (slug, the error) for one that could
    not be (its content files gone, its lint failing now, …); raises nothing of those.
    """
    now = newsletter.clock() if now is None else now
    with newsletter.store.session() as session:
        slugs = campaigns.due_for_retry(session, now)
    results: list[tuple[str, SendResult | NewsletterError]] = []
    for slug in slugs:
        try:
            prepared = prepare_resume(newsletter, slug)
            results.append((slug, launch(newsletter, prepared, replace(options, wait_for_deferred=False),
                                         connect=connect)))
        except NewsletterError as exc:
            results.append((slug, exc))
    return results


def _segment_source(prepared: Prepared) -> dict[str, str]:
    """What a campaign records of its segment: its name and the expression it was started with."""
    if prepared.plan.segment is None:
        return {}
    return {"segment": prepared.plan.segment, "expression": prepared.plan.expression}


def send_test_mail(newsletter: Newsletter, prepared: Prepared, addresses: Iterable[str], *,
                   connect: Connector | None = None) -> list[tuple[str, str, Reply]]:
    """Send every language variant of `prepared`, subject prefixed "[TEST] ", to each address;
    records nothing. Returns (address, language, the relay's reply) per message.

    Raises LintFailed (nothing sent), DeliveryError (the relay cannot be used).
    """
    prepared.lint.raise_for_errors()
    plan = prepared.plan
    return asyncio.run(send_test(newsletter.config, prepared.rendered, list(addresses), list_slug=plan.list_slug,
                                 list_name=plan.list_name, campaign_slug=prepared.slug, connect=connect,
                                 clock=newsletter.clock, secret=newsletter.secret()))
