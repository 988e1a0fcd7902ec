"""Session series: an assembly's session (name, venue, time zone, first and last day) whose
daily summaries on one list are its "Day N of M", and how each reader takes them — each day,
or one digest after the last day (`statuses.DeliveryMode`).

An issue joins a session when its content's `session` field is the session's name and it goes
to the session's list; its `day` is its N, the session's length its M. The archive groups a
list's issues by session (`archive_groups`). A digest reader gets none of the list's daily
summaries (`store.ledger.create_rows` leaves them out) and, once the session's last day has
gone out, one digest of all its days (`routine.welcome` plans and sends it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy.orm import Session

from ..errors import InvalidField, NewsletterError
from ..mail.content import load_issue
from ..mail.issue import DailySummary, Issue, Kind
from ..people.consent import subscriber_by_key
from ..people.lists import get_list
from ..statuses import CampaignStatus, DeliveryMode
from ..store import personal as stored_personal
from ..store import series as stored
from ..tokens import Purpose
from .timing import zone_named

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["SessionDay", "SessionView", "DailyIssue", "issue_of", "daily_issues", "create_session", "list_sessions",
           "choose_delivery", "choose_delivery_for", "delivery_of", "archive_groups"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class SessionDay(NamedTuple):
    """One day of a session that has an issue: "Day `number` of `total`"."""

    number: int
    total: int
    slug: str
    status: CampaignStatus


class SessionView(NamedTuple):
    slug: str
    name: str
    list_slug: str
    venue: str
    zone: str
    first_day: date
    last_day: date
    days: tuple[SessionDay, ...] = ()

    @property
    def total_days(self) -> int:
        return (self.last_day - self.first_day).days + 1


class DailyIssue(NamedTuple):
    """A daily-summary campaign of a list, with its content's session fields."""

    campaign: stored_personal.DailyCampaign
    issue: Issue
    fields: DailySummary


@lru_cache(maxsize=256)
def issue_of(files: tuple[str, ...]) -> Issue | None:
    try:
        return load_issue(list(files))
    except NewsletterError:  # content gone or changed beyond reading
        return None


def daily_issues(session: Session, list_id: int) -> list[DailyIssue]:
    """The list's daily-summary campaigns (not cancelled) whose content can be read, oldest first."""
    found = []
    for campaign in stored_personal.daily_campaigns(session, list_id, kind=Kind.DAILY_SUMMARY.value):
        issue = issue_of(tuple((campaign.source or {}).get("files", ())))
        if issue is not None:
            found.append(DailyIssue(campaign, issue, next(iter(issue.variants.values())).fields))
    return found


def _day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidField(field, f"{text!r} is not a date like 2024-12-02") from None


def _view(session: Session, row, list_slug: str) -> SessionView:
    total = (row.last_day - row.first_day).days + 1
    days = tuple(SessionDay(d.fields.day, total, d.campaign.slug, d.campaign.status)
                 for d in daily_issues(session, row.list_id) if d.fields.session == row.name)
    return SessionView(row.slug, row.name, list_slug, row.venue, row.zone, row.first_day, row.last_day,
                       tuple(sorted(days)))


def create_session(newsletter: Newsletter, slug: str, name: str, list_slug: str, *, zone: str, first_day: str,
                   last_day: str, venue: str = "") -> SessionView:
    """Make a session of `list_slug`: its issues are those whose `session` field is `name`.
    Raises InvalidField (slug taken or malformed, name empty, unknown zone, dates malformed or
    in the wrong order), UnknownList."""
    if not _SLUG.match(slug):
        raise InvalidField("slug", f"{slug!r}: use lower-case letters, digits and hyphens, such as asp23")
    if not name.strip():
        raise InvalidField("name", "a session needs its name as issues spell it, such as ASP 23")
    tz = zone_named(zone)
    first, last = _day(first_day, "first day"), _day(last_day, "last day")
    if last < first:
        raise InvalidField("last day", f"{last} is before the first day {first}")
    with newsletter.store.session() as session:
        mailing_list = get_list(session, list_slug)
        if stored.find_session(session, slug) is not None:
            raise InvalidField("slug", f"a session {slug!r} exists already")
        row = stored.add_session(session, slug=slug, name=name.strip(), list_id=mailing_list.id, venue=venue.strip(),
                                 zone=tz.key, first_day=first, last_day=last, created_at=newsletter.clock())
        return _view(session, row, list_slug)


def list_sessions(newsletter: Newsletter, list_slug: str | None = None) -> list[SessionView]:
    """Sessions (of one list when given), latest first, each with the days sent or sending.
    Raises UnknownList."""
    with newsletter.store.reading() as session:
        list_id = get_list(session, list_slug).id if list_slug else None
        return [_view(session, row, slug) for row, slug in stored.sessions_of(session, list_id)]


def archive_groups(newsletter: Newsletter, list_slug: str, slugs: Iterable[str]) -> dict[str, tuple[str, str]]:
    """For the archive: issue slug -> (its session's name, "venue, first – last day") for the
    issues of `slugs` that belong to a session of the list; others are left out."""
    wanted = set(slugs)
    out: dict[str, tuple[str, str]] = {}
    for view in list_sessions(newsletter, list_slug):
        where = ", ".join(part for part in (view.venue, f"{view.first_day} – {view.last_day}") if part)
        for day in view.days:
            if day.slug in wanted:
                out[day.slug] = (view.name, where)
    return out


def choose_delivery_for(newsletter: Newsletter, subscriber_key: str, list_slugs: Iterable[str],
                        mode: DeliveryMode) -> None:
    """Record how this person takes the daily summaries of these lists. Raises
    UnknownSubscriber, UnknownList."""
    with newsletter.store.session() as session:
        subscriber = subscriber_by_key(session, subscriber_key)
        ids = [get_list(session, slug).id for slug in list_slugs]
        stored.set_delivery(session, subscriber.id, ids, mode, now=newsletter.clock())


def choose_delivery(newsletter: Newsletter, token: str, mode: DeliveryMode) -> list[str]:
    """From the preferences page: `mode` for every list the holder of `token` is on; returns
    their slugs. Raises InvalidToken."""
    claims = newsletter.read(Purpose.PREFERENCES, token)
    with newsletter.store.session() as session:
        subscriber = subscriber_by_key(session, claims.subscriber_key)
        subs = [(s.list_id, s.mailing_list.slug) for s in subscriber.subscriptions]
        stored.set_delivery(session, subscriber.id, [list_id for list_id, _ in subs], mode, now=newsletter.clock())
        return [slug for _, slug in subs]


def delivery_of(newsletter: Newsletter, token: str) -> DeliveryMode:
    """How the holder of `token` takes daily summaries: digest when they chose it on any list. Raises InvalidToken."""
    claims = newsletter.read(Purpose.PREFERENCES, token)
    with newsletter.store.session() as session:
        subscriber = subscriber_by_key(session, claims.subscriber_key)
        modes = set(stored.deliveries_of(session, subscriber.id).values())
    return DeliveryMode.DIGEST if DeliveryMode.DIGEST in modes else DeliveryMode.DAILY


