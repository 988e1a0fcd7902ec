"""Issues written in the workspace: the named statements `editorial` runs.

Each function takes the caller's session and runs in its transaction; none decides anything
(what may be saved, approved or sent is `editorial`'s business). Revisions and approvals are
only ever added, never changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import cast, func, insert, literal, select
from sqlalchemy.orm import Session

from ..statuses import BounceKind, OutboxStatus
from . import BounceEvent, Campaign, EditorialIssue, IssueApproval, IssueRevision, OutboxRow, Subscriber

__all__ = [
    "find_issue",
    "all_issues",
    "add_issue",
    "add_revision",
    "current_revisions",
    "revision_by_id",
    "revisions_of",
    "add_approval",
    "approvals_of",
    "record_sent",
    "fallback_readers",
    "queue_readers",
    "ReaderLine",
    "BounceLine",
    "counts_by_language",
    "readers_not_reached",
    "campaign_bounces",
    "sent_since",
]


def find_issue(session: Session, slug: str) -> EditorialIssue | None:
    """The issue with this slug, or None."""
    return session.scalar(select(EditorialIssue).where(EditorialIssue.slug == slug))


def all_issues(session: Session) -> list[EditorialIssue]:
    """Every issue, newest first."""
    return list(session.scalars(select(EditorialIssue).order_by(EditorialIssue.created_at.desc(),
                                                                 EditorialIssue.id.desc())))


def add_issue(session: Session, *, slug: str, kind: str, list_slug: str, source_language: str,
              created_by: str | None, now: datetime) -> EditorialIssue:
    """Insert an issue with no revisions yet; returns it with its id."""
    issue = EditorialIssue(slug=slug, kind=kind, list_slug=list_slug, source_language=source_language,
                           created_by=created_by, created_at=now)
    session.add(issue)
    session.flush()
    return issue


def add_revision(session: Session, issue: EditorialIssue, *, language: str, front_matter: Mapping[str, Any],
                 body: str, based_on_id: int | None, author: str | None, now: datetime) -> IssueRevision:
    """Append the next revision of `language` (number: the last one's + 1); returns it with its id."""
    last = session.scalar(select(func.max(IssueRevision.number)).where(
        IssueRevision.issue_id == issue.id, IssueRevision.language == language)) or 0
    revision = IssueRevision(issue_id=issue.id, language=language, number=last + 1, front_matter=dict(front_matter),
                             body=body, based_on_id=based_on_id, author=author, created_at=now)
    session.add(revision)
    session.flush()
    return revision


def current_revisions(session: Session, issue_id: int) -> dict[str, IssueRevision]:
    """The newest revision of each language of the issue."""
    newest = (select(IssueRevision.language, func.max(IssueRevision.number).label("number"))
              .where(IssueRevision.issue_id == issue_id).group_by(IssueRevision.language).subquery())
    rows = session.scalars(select(IssueRevision).join(
        newest, (IssueRevision.language == newest.c.language) & (IssueRevision.number == newest.c.number))
        .where(IssueRevision.issue_id == issue_id))
    return {r.language: r for r in rows}


def revision_by_id(session: Session, revision_id: int) -> IssueRevision | None:
    return session.get(IssueRevision, revision_id)


def revisions_of(session: Session, issue_id: int, language: str) -> list[IssueRevision]:
    """Every revision of one language, newest first."""
    return list(session.scalars(select(IssueRevision).where(
        IssueRevision.issue_id == issue_id, IssueRevision.language == language).order_by(IssueRevision.number.desc())))


def add_approval(session: Session, issue: EditorialIssue, *, revisions: Mapping[str, int], digest: str,
                 approved_by: str, now: datetime) -> IssueApproval:
    approval = IssueApproval(issue_id=issue.id, revisions=dict(revisions), digest=digest, approved_by=approved_by,
                             approved_at=now)
    session.add(approval)
    session.flush()
    return approval


def approvals_of(session: Session, issue_id: int, *, digest: str | None = None) -> list[IssueApproval]:
    """The issue's approvals (of the revision set `digest` only, when given), oldest first."""
    query = select(IssueApproval).where(IssueApproval.issue_id == issue_id)
    if digest is not None:
        query = query.where(IssueApproval.digest == digest)
    return list(session.scalars(query.order_by(IssueApproval.id)))


def record_sent(session: Session, issue: EditorialIssue, *, revisions: Mapping[str, int], by: str | None,
                now: datetime) -> None:
    """Note the revision set the issue's campaign was started with (the first start only)."""
    if issue.sent_revisions is None:
        issue.sent_revisions, issue.sent_at, issue.sent_by = dict(revisions), now, by
        session.flush()


def fallback_readers(session: Session, campaign_id: int, language: str) -> list[int]:
    """Subscribers who read `language` and were sent another language by the campaign (its
    ledger's sent rows), in id order."""
    return list(session.scalars(
        select(OutboxRow.subscriber_id).join(Subscriber, Subscriber.id == OutboxRow.subscriber_id)
        .where(OutboxRow.campaign_id == campaign_id, OutboxRow.status == OutboxStatus.SENT,
               OutboxRow.language != language, Subscriber.language == language)
        .order_by(OutboxRow.subscriber_id)))


def queue_readers(session: Session, campaign: Campaign, subscriber_ids: Sequence[int], *, language: str,
                  now: datetime) -> int:
    """Queue one row of `campaign` in `language` for each of `subscriber_ids` (one statement
    per batch; the sender checks consent again when it claims them). Returns rows added."""
    table = OutboxRow.__table__
    added = 0
    for start in range(0, len(subscriber_ids), 1000):
        chunk = list(subscriber_ids[start:start + 1000])
        source = select(literal(campaign.id), Subscriber.id, cast(literal(OutboxStatus.QUEUED.value), table.c.status.type),
                        literal(language), literal(0), literal(now, table.c.updated_at.type)).where(
            Subscriber.id.in_(chunk))
        session.execute(insert(table).from_select(
            ["campaign_id", "subscriber_id", "status", "language", "attempts", "updated_at"], source))
        added += len(chunk)
    return added


class ReaderLine(NamedTuple):
    """A reader a campaign did not reach (yet): address (None once erased), the language they
    were to get, the row's state, attempts and the relay's last reply or the skip reason, and
    which relay gave it."""

    email: str | None
    name: str
    language: str | None
    status: OutboxStatus
    attempts: int
    reason: str | None
    at: datetime | None
    #: The relay of the last attempt and its reply code (None: never attempted).
    relay: str | None = None
    reply_code: int | None = None


class BounceLine(NamedTuple):
    """A bounce or complaint a campaign brought back, with the person and their language."""

    email: str | None
    language: str | None
    kind: BounceKind
    status: str | None
    reason: str
    at: datetime
    #: The mail provider whose webhook reported it, else the kind of report (dsn, arf, smtp…).
    came_from: str = ""


def counts_by_language(session: Session, campaign_id: int) -> dict[str, dict[str, int]]:
    """language -> row status -> rows, for one campaign."""
    out: dict[str, dict[str, int]] = {}
    for language, status, n in session.execute(
            select(OutboxRow.language, OutboxRow.status, func.count()).where(OutboxRow.campaign_id == campaign_id)
            .group_by(OutboxRow.language, OutboxRow.status)):
        out.setdefault(language or "", {})[OutboxStatus(status).value] = n
    return out


def readers_not_reached(session: Session, campaign_id: int, *, limit: int = 1000) -> list[ReaderLine]:
    """Failed, deferred and skipped rows of the campaign with who and why, by state and address."""
    query = (select(Subscriber.email, Subscriber.name, OutboxRow.language, OutboxRow.status, OutboxRow.attempts,
                    OutboxRow.last_reply, OutboxRow.updated_at, OutboxRow.relay, OutboxRow.reply_code)
             .select_from(OutboxRow).outerjoin(Subscriber, Subscriber.id == OutboxRow.subscriber_id)
             .where(OutboxRow.campaign_id == campaign_id,
                    OutboxRow.status.in_([OutboxStatus.FAILED, OutboxStatus.DEFERRED, OutboxStatus.SKIPPED]))
             .order_by(OutboxRow.status, Subscriber.email).limit(limit))
    return [ReaderLine(e, n or "", lang, OutboxStatus(st), a, r, u, relay, code)
            for e, n, lang, st, a, r, u, relay, code in session.execute(query)]


def campaign_bounces(session: Session, campaign_id: int, *, limit: int = 1000) -> list[BounceLine]:
    """The bounces and complaints recorded against the campaign, newest first, with the language
    the person was sent (their own when the ledger has no row)."""
    row_language = (select(OutboxRow.language).where(OutboxRow.campaign_id == campaign_id,
                                                     OutboxRow.subscriber_id == BounceEvent.subscriber_id)
                    .scalar_subquery())
    query = (select(Subscriber.email, func.coalesce(row_language, Subscriber.language), BounceEvent.kind,
                    BounceEvent.status, BounceEvent.reason, BounceEvent.at,
                    func.coalesce(BounceEvent.provider, BounceEvent.source))
             .select_from(BounceEvent).outerjoin(Subscriber, Subscriber.id == BounceEvent.subscriber_id)
             .where(BounceEvent.campaign_id == campaign_id).order_by(BounceEvent.at.desc(), BounceEvent.id.desc())
             .limit(limit))
    return [BounceLine(e, lang, BounceKind(k), st, r or "", at, via)
            for e, lang, k, st, r, at, via in session.execute(query)]


def sent_since(session: Session, campaign_id: int, since: datetime) -> int:
    """Rows of the campaign sent at or after `since`."""
    return session.scalar(select(func.count()).select_from(OutboxRow).where(
        OutboxRow.campaign_id == campaign_id, OutboxRow.status == OutboxStatus.SENT,
        OutboxRow.sent_at >= since)) or 0
