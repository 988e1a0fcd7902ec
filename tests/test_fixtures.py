"""The shared fixtures keep the promises the suite relies on: each PostgreSQL test starts with every
table empty and every id restarted, whatever the test before it left (large tables, append-only
ones), and the database still enforces its foreign keys and triggers afterwards."""

from __future__ import annotations

import pytest
from conftest import TABLES, _pg_store
from population import populate
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from newsletter.people import consent
from newsletter.people.consent import ConsentContext
from newsletter.statuses import Channel, SubscriptionStatus
from newsletter.store import MailingList, Subscriber, Subscription

FORM = ConsentContext(channel=Channel.FORM, ip="203.0.113.7", user_agent="test", source="test")


def counts(store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {name: conn.execute(text(f"SELECT count(*) FROM {name}")).scalar() for name in TABLES}


def test_a_postgresql_store_starts_empty_with_its_ids_restarted(pg_url, clock):
    before = _pg_store(pg_url)
    try:
        populate(before, 2500, now=clock())  # more than the DELETE path takes: subscribers go by TRUNCATE
        with before.session() as session:
            subscriber = consent.find_subscriber(session, "person000001@example.org")
            consent.unsubscribe(session, subscriber, FORM, now=clock())  # a row in the append-only log
        left = counts(before)
        assert left["subscribers"] == 2500 and left["subscriptions"] == 2500 and left["consent_events"] >= 1
    finally:
        before.dispose()
    after = _pg_store(pg_url)
    try:
        assert set(counts(after).values()) == {0}
        populate(after, 1, now=clock())
        with after.session() as session:
            assert session.scalar(select(func.min(Subscriber.id))) == 1
            assert session.scalar(select(MailingList.id)) == 1
    finally:
        after.dispose()


def test_the_emptying_leaves_foreign_keys_and_triggers_on(pg_url, clock):
    store = _pg_store(pg_url)
    try:
        populate(store, 1, now=clock())
        with store.session() as session:
            subscriber = consent.find_subscriber(session, "person000000@example.org")
            consent.unsubscribe(session, subscriber, FORM, now=clock())
        store.dispose()
        store = _pg_store(pg_url)
        with pytest.raises(IntegrityError), store.session() as session:
            session.add(Subscription(subscriber_id=999, list_id=999, status=SubscriptionStatus.ACTIVE, created_at=clock()))
        populate(store, 1, now=clock())
        with store.session() as session:
            subscriber = consent.find_subscriber(session, "person000000@example.org")
            consent.unsubscribe(session, subscriber, FORM, now=clock())
        with pytest.raises(ProgrammingError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text("UPDATE consent_events SET ip = '198.51.100.1'"))
    finally:
        store.dispose()
