"""Fast test populations: lists and active subscribers inserted in bulk (no consent flow)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select

from newsletter.people import lists
from newsletter.statuses import SubscriberStatus, SubscriptionStatus
from newsletter.store import MailingList, Store, Subscriber, Subscription

LANGS = ("en", "fr", "es", "ar")


def populate(store: Store, n: int, *, now: datetime, list_slug: str = "asp-daily", start: int = 0,
             domain: str = "example.org") -> list[str]:
    """Create the list if needed and `n` active subscribers on it; returns their addresses."""
    with store.session() as session:
        mailing_list = session.scalar(select(MailingList).where(MailingList.slug == list_slug))
        if mailing_list is None:
            mailing_list = lists.create_list(session, list_slug, "ASP daily summaries", languages=list(LANGS), now=now)
        list_id = mailing_list.id
        emails = [f"person{i:06d}@{domain}" for i in range(start, start + n)]
        rows = [dict(key=f"k{list_slug[:8]}{i:08d}{domain[:4]}", email=e, name=f"Person {i}", language=LANGS[i % 4],
                     status=SubscriberStatus.ACTIVE, created_at=now, updated_at=now)
                for i, e in zip(range(start, start + n), emails)]
        for i in range(0, n, 2000):
            session.execute(insert(Subscriber), rows[i:i + 2000])
        wanted = set(emails)
        ids = [sid for sid, e in session.execute(select(Subscriber.id, Subscriber.email)) if e in wanted]
        subs = [dict(subscriber_id=sid, list_id=list_id, status=SubscriptionStatus.ACTIVE, created_at=now,
                     confirmed_at=now) for sid in ids]
        for i in range(0, len(subs), 2000):
            session.execute(insert(Subscription), subs[i:i + 2000])
    return emails
