"""The look-ups a sign-up makes take the right plan on PostgreSQL without planner statistics
(a fresh database, or tables an import has just filled), and answer what the join answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from newsletter.people import lists
from newsletter.people.signups import new_keys
from newsletter.statuses import Channel, ConsentKind, SubscriberStatus
from newsletter.store.bulk import (
    _MAILBOX_CONFIRMATIONS,
    BulkStore,
    EventHead,
    EventRow,
    Origin,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)

#: What the look-up was before (#17, session 7): a join the planner may start from the log.
_JOINED = ("SELECT s.email, e.at FROM subscribers s JOIN consent_events e ON e.subscriber_id = s.id "
           "WHERE s.email = ANY(%s) AND e.kind = %s AND e.at > %s AND s.mailbox IS NULL")


def _people_with_mails(store, n: int, mailed: int | None = None) -> list[str]:
    """`n` people (every third with a mailbox of its own), the first `mailed` of them (all when
    None) sent a confirmation an hour ago."""
    with store.session() as session:
        lists.create_list(session, "alerts", "Alerts", now=NOW)
    emails = [f"p{i}+x@example.org" if i % 3 == 0 else f"p{i}@example.org" for i in range(n)]
    with store.engine.connect() as connection, connection.begin():
        bulk = BulkStore(connection)
        ids = bulk.insert_people([(key, e, "", "en") for key, e in zip(new_keys(n), emails)],
                                 status=SubscriberStatus.ACTIVE, at=NOW,
                                 mailboxes=[e.replace("+x", "") if "+x" in e else None for e in emails])
        head = EventHead(ConsentKind.CONFIRMATION_SENT, Origin(Channel.FORM))
        ids = ids[:mailed]
        bulk.insert_events([EventRow(sid, None, 0, "alerts") for sid in ids]
                           + [EventRow(sid, None, 1, None) for sid in ids],
                           [head, EventHead(ConsentKind.SIGNUP, Origin(Channel.FORM))], at=NOW - timedelta(hours=1))
    return emails


def test_confirmations_to_mailboxes_by_address_and_by_mailbox(store):
    emails = _people_with_mails(store, 30)
    asked = ["p1@example.org", "p3@example.org", "p3+x@example.org", "nobody@example.org", "p4@example.org"]
    with store.engine.connect() as connection, connection.begin():
        sent = BulkStore(connection).confirmations_to_mailboxes(asked, NOW - timedelta(days=1))
        later = BulkStore(connection).confirmations_to_mailboxes(asked, NOW - timedelta(minutes=30))
    # p3+x@ is stored with its mailbox p3@: found by the mailbox, not by the address it was given.
    assert sorted(sent) == ["p1@example.org", "p3@example.org", "p4@example.org"]
    assert all(at == [NOW - timedelta(hours=1)] for at in sent.values())
    assert later == {} and len(emails) == 30


def test_the_mailbox_look_up_never_scans_the_consent_log_without_statistics(pg_url):
    from conftest import _pg_store

    store = _pg_store(pg_url)
    try:
        emails = _people_with_mails(store, 20_000, 2000)  # as in bench/web.py: readers, then sign-ups
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            # The tables' sizes as autovacuum would record them, whatever earlier tests left
            # (a VACUUM records sizes, not statistics): the planner's inputs are set, not left to chance.
            connection.exec_driver_sql("VACUUM consent_events, subscribers")
        with store.engine.connect() as connection:
            # As after CREATE DATABASE or a big import: no statistics (the test runs as the superuser).
            connection.exec_driver_sql("DELETE FROM pg_statistic WHERE starelid IN "
                                       "('consent_events'::regclass, 'subscribers'::regclass)")
            connection.commit()
            keys = emails[:20]
            since = NOW - timedelta(days=1)
            old = "\n".join(r[0] for r in connection.exec_driver_sql(
                "EXPLAIN " + _JOINED, (keys, "confirmation_sent", since)))
            new = "\n".join(r[0] for r in connection.exec_driver_sql(
                "EXPLAIN " + _MAILBOX_CONFIRMATIONS, ("confirmation_sent", since, keys, "confirmation_sent", since, keys)))
            connection.exec_driver_sql("ANALYZE consent_events, subscribers")
            connection.commit()
        assert "Seq Scan" not in new and "ix_consent_events_subscriber_id" in new, new
        assert "Seq Scan on consent_events" in old, old  # what made a sign-up wait 42 ms (#17)
    finally:
        with store.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
        store.dispose()



def test_a_group_commit_of_new_people_is_six_round_trips_on_postgresql(pg_url, monkeypatch):
    """The lists; one pipeline of the look-ups (suppressions, people, their subscriptions, the
    mails to their mailboxes); then one INSERT each of the people, their subscriptions, their
    consent log and their queued mails — whatever the batch's size (20 here: 11 statements
    before, the inserts one per power of two, #17)."""
    import psycopg
    from conftest import _pg_store
    from sqlalchemy import event

    from newsletter.config import Config
    from newsletter.installation import Newsletter
    from newsletter.people import subscriptions as visitor
    from newsletter.people.consent import ConsentContext
    from newsletter.people.signups import SignupRequest

    store = _pg_store(pg_url)
    try:
        with store.session() as session:
            lists.create_list(session, "alerts", "Alerts", now=NOW)
            lists.create_list(session, "news", "News", now=NOW)
        newsletter = Newsletter(Config(database_url=pg_url, base_url="https://news.example.org",
                                       secret_key="test-secret-key-0123456789abcdef"), store, clock=lambda: NOW)
        ctx = ConsentContext(channel=Channel.FORM, ip="203.0.113.7", user_agent="t", consent_version="1")
        statements: list[str] = []
        pipelined: list[int] = []
        event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        real_pipeline = psycopg.Connection.pipeline

        def pipeline(self):  # the real pipeline, counted
            pipelined.append(len(statements))
            return real_pipeline(self)

        monkeypatch.setattr(psycopg.Connection, "pipeline", pipeline)
        records = visitor.record_signups(newsletter, [
            SignupRequest(f"p{i}+tag@example.org" if i % 2 else f"p{i}@example.org", "P", "en",
                          ("alerts", "news") if i % 3 else ("alerts",), ctx) for i in range(20)])
        assert all(r.due is not None for r in records)
        assert len(statements) == 5 and pipelined == [1], "\n".join(statements)
        with store.session() as session:
            kinds = session.execute(text("SELECT kind, count(*) FROM consent_events GROUP BY kind ORDER BY kind")).all()
            assert [(k, n) for k, n in kinds] == [("signup", 33), ("confirmation_sent", 20)]
            assert session.execute(text("SELECT count(*) FROM subscriptions WHERE status = 'pending'")).scalar() == 33
    finally:
        store.dispose()
