"""The gate's driver-level round statements write what the ledger's own statements write."""

from __future__ import annotations

from datetime import timedelta

import pytest
from population import populate
from sqlalchemy import select
from test_outbox import claim, start

from newsletter.people import consent
from newsletter.people.consent import ConsentContext
from newsletter.statuses import Channel, OutboxStatus
from newsletter.store import SQLITE_BUSY_TIMEOUT_MS, OutboxRow, rounds
from newsletter.store import ledger as outbox
from newsletter.store.ledger import Outcome

COLUMNS = ("status", "last_reply", "message_id", "relay", "reply_code", "next_attempt_at", "sent_at", "attempts",
           "claimed_by", "updated_at")


def outcomes_for(rows, later):
    """The same kinds of outcome for each half, one of them for a row another worker holds."""
    a, b, c, d = rows
    return [Outcome(a.id, OutboxStatus.SENT, "250 2.0.0 Ok: queued as 4F2A1 (at DATA)", "<m@x>", relay="office",
                    reply_code=250),
            Outcome(b.id, OutboxStatus.DEFERRED, "451 later", "<n@x>", next_attempt_at=later, relay="127.0.0.1:25",
                    reply_code=451),
            Outcome(c.id, OutboxStatus.FAILED, "cannot build the message: bad", attempted=False),
            Outcome(d.id, OutboxStatus.FAILED, None, None)]


def state(store, ids):
    with store.session() as session:
        found = session.execute(select(OutboxRow).where(OutboxRow.id.in_(ids)).order_by(OutboxRow.id)).scalars()
        return [tuple(getattr(r, c) for c in COLUMNS) for r in found]


def _claimed(store, clock, n: int):
    """`n` people in a started campaign, every row claimed by "w1": (their addresses, the
    campaign, the claimed rows)."""
    emails = populate(store, n, now=clock())
    campaign, _ = start(store, clock)
    rows, _ = claim(store, campaign, "w1", limit=n, clock=clock)
    return emails, campaign, rows


def test_round_outcomes_write_what_record_outcomes_writes(store, clock):
    _, campaign, rows = _claimed(store, clock, 8)
    clock.advance(seconds=3)
    later = clock() + timedelta(minutes=5)
    with store.session() as session:
        outbox.record_outcomes(session, "w1", outcomes_for(rows[:4], later), now=clock())
    connections = rounds.RoundConnections(store)
    held = connections.begin()
    rounds.write_outcomes(held, "w1", outcomes_for(rows[4:], later), now=clock())
    rounds.write_outcomes(held, "w2", [Outcome(rows[7].id, OutboxStatus.SENT, "250", "<x>")], now=clock())  # not w2's
    connections.end(held, commit=True)
    connections.close()
    assert state(store, [r.id for r in rows[:4]]) == state(store, [r.id for r in rows[4:]])
    assert [s[0] for s in state(store, [r.id for r in rows[4:]])] == [
        OutboxStatus.SENT, OutboxStatus.DEFERRED, OutboxStatus.FAILED, OutboxStatus.FAILED]
    assert [s[3:5] for s in state(store, [r.id for r in rows[4:]])] == [
        ("office", 250), ("127.0.0.1:25", 451), (None, None), (None, None)]


def test_a_row_keeps_the_relay_of_its_last_attempt(store, clock):
    """A deferred row's relay and reply code stay until an attempt gives new ones, on both paths."""
    _, campaign, rows = _claimed(store, clock, 2)
    deferred = [Outcome(r.id, OutboxStatus.DEFERRED, "451 4.7.1 greylisted (at RCPT)", "<m>", relay="spare",
                        reply_code=451) for r in rows]
    with store.session() as session:
        outbox.record_outcomes(session, "w1", deferred[:1], now=clock())
    connections = rounds.RoundConnections(store)
    held = connections.begin()
    rounds.write_outcomes(held, "w1", deferred[1:], now=clock())
    connections.end(held, commit=True)
    with store.session() as session:  # claimed again, then given up without reaching a relay
        session.execute(OutboxRow.__table__.update().values(status=OutboxStatus.SENDING, claimed_by="w1"))
    failed = [Outcome(r.id, OutboxStatus.FAILED, "cannot build the message: bad", attempted=False) for r in rows]
    with store.session() as session:
        outbox.record_outcomes(session, "w1", failed[:1], now=clock())
    held = connections.begin()
    rounds.write_outcomes(held, "w1", failed[1:], now=clock())
    connections.end(held, commit=True)
    connections.close()
    first, second = state(store, [rows[0].id]), state(store, [rows[1].id])
    assert first == second and first[0][3:5] == ("spare", 451)


def test_round_recheck_skips_what_recheck_consent_skips(store, clock):
    emails, campaign, rows = _claimed(store, clock, 8)
    by_email = {r.email: r for r in rows}
    with store.session() as session:
        ctx = ConsentContext(channel=Channel.LINK)
        for email in (emails[0], emails[4]):
            consent.unsubscribe(session, consent.find_subscriber(session, email), ctx, now=clock())
        for email in (emails[1], emails[5]):
            consent.erase(session, email, now=clock())
    first = [by_email[e] for e in emails[:4]]
    second = [by_email[e] for e in emails[4:]]
    with store.session() as session:
        expected = outbox.recheck_consent(session.connection(), campaign.list_id, "w1", first, now=clock())
    connections = rounds.RoundConnections(store)
    held = connections.begin()
    got = rounds.recheck_rows(held, campaign.list_id, "w1", second, now=clock())
    connections.end(held, commit=True)
    connections.close()
    assert sorted(expected.skipped.values()) == sorted(got.skipped.values())
    assert set(got.skipped) == {by_email[emails[4]].id, by_email[emails[5]].id}
    assert expected.not_held == got.not_held == frozenset()
    assert state(store, [r.id for r in first]) == state(store, [r.id for r in second])


def test_a_round_rolled_back_writes_nothing(store, clock):
    _, campaign, rows = _claimed(store, clock, 2)
    connections = rounds.RoundConnections(store)
    held = connections.begin()
    rounds.write_outcomes(held, "w1", [Outcome(r.id, OutboxStatus.SENT, "250", "<m>") for r in rows], now=clock())
    connections.end(held, commit=False)
    connections.close()
    assert {s[0] for s in state(store, [r.id for r in rows])} == {OutboxStatus.SENDING}


def test_outcomes_and_recheck_together_write_what_they_write_apart(store, clock):
    emails, campaign, rows = _claimed(store, clock, 8)
    by_email = {r.email: r for r in rows}
    with store.session() as session:
        ctx = ConsentContext(channel=Channel.LINK)
        for email in (emails[2], emails[6]):
            consent.unsubscribe(session, consent.find_subscriber(session, email), ctx, now=clock())
    first, second = [by_email[e] for e in emails[:4]], [by_email[e] for e in emails[4:]]
    later = clock() + timedelta(minutes=5)
    connections = rounds.RoundConnections(store)
    held = connections.begin()
    rounds.write_outcomes(held, "w1", outcomes_for(first, later)[:2], now=clock())
    apart = rounds.recheck_rows(held, campaign.list_id, "w1", first[2:], now=clock())
    together = rounds.write_and_recheck(held, campaign.list_id, "w1", outcomes_for(second, later)[:2],
                                        second[2:], now=clock())
    connections.end(held, commit=True)
    connections.close()
    assert list(apart.skipped.values()) == list(together.skipped.values()) == [
        "skipped: the subscription is unsubscribed"]
    assert apart.not_held == together.not_held == frozenset()
    assert state(store, [r.id for r in first]) == state(store, [r.id for r in second])


def test_postgres_rounds_plan_their_statement_once_and_keep_the_setting_to_themselves(store, clock):
    """On PostgreSQL a round's statement runs on its generic plan from the first round (custom
    planning cost the server as much as running it, every round), and the round connections'
    setting never reaches the store's pool."""
    if store.dialect != "postgresql":
        pytest.skip("PostgreSQL's plan cache")
    _, campaign, rows = _claimed(store, clock, 12)
    connections = rounds.RoundConnections(store)
    for i in range(0, 12, 3):
        held = connections.begin()
        previous = [Outcome(r.id, OutboxStatus.SENT, "250", f"<{r.id}@x>") for r in rows[max(0, i - 3):i]]
        assert rounds.write_and_recheck(held, campaign.list_id, "w1", previous, rows[i:i + 3],
                                        now=clock()) == outbox.Recheck({}, frozenset())
        connections.end(held, commit=True)
    (conn,) = connections.idle
    plans = conn.exec_driver_sql("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                                 "WHERE name = 'newsletter_round_both'").all()
    conn.rollback()
    assert plans == [(3, 0)]  # the first round had no outcomes: the re-check alone
    connections.close()
    with store.engine.connect() as other:
        assert other.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"
    assert [s[0] for s in state(store, [r.id for r in rows[:9]])] == [OutboxStatus.SENT] * 9


def test_postgres_round_connections_never_reach_the_pool(store, clock):
    """A PostgreSQL round connection (autocommit, generic plans, its prepared statements) is
    closed for good whether its round committed or rolled back: the store's pool never hands
    out its settings."""
    if store.dialect != "postgresql":
        pytest.skip("PostgreSQL's round connections")
    _, campaign, rows = _claimed(store, clock, 4)
    connections = rounds.RoundConnections(store)
    held = connections.begin()
    rounds.recheck_rows(held, campaign.list_id, "w1", rows, now=clock())
    connections.end(held, commit=False)
    assert connections.idle == []
    with store.engine.connect() as other:
        assert other.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"
        assert other.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements "
                                     "WHERE name LIKE 'newsletter_round%%'").scalar() == 0
        assert other.connection.driver_connection.autocommit is False


def test_round_outcomes_carry_any_text_as_record_outcomes_does(store, clock):
    """The round's arrays go as literals (one string each; on PostgreSQL inside a string
    constant): quotes, apostrophes, backslashes, braces, commas, line ends, per cent signs, the
    word NULL and non-ASCII text arrive as they were."""
    _, campaign, rows = _claimed(store, clock, 10)
    later = clock() + timedelta(minutes=5)
    texts = ['550 5.1.1 "no such user" \\ here, {braces}', "NULL", "", "451 it's 'a\r\nsecond' line é ü 中 100% $1"]

    def outcomes(half):
        return [Outcome(r.id, OutboxStatus.DEFERRED if i == 3 else OutboxStatus.FAILED, text, f'<"{i}"\\@x>',
                        next_attempt_at=later if i == 3 else None, relay=f"relay,{i}}}", reply_code=550 - i)
                for i, (r, text) in enumerate(zip(half, texts, strict=True))]

    with store.session() as session:
        outbox.record_outcomes(session, "w1", outcomes(rows[:4]), now=clock())
    connections = rounds.RoundConnections(store)
    held = connections.begin()
    assert rounds.write_and_recheck(held, campaign.list_id, "w1", outcomes(rows[4:8]), rows[8:],
                                    now=clock()) == outbox.Recheck({}, frozenset())
    connections.end(held, commit=True)
    connections.close()
    assert state(store, [r.id for r in rows[:4]]) == state(store, [r.id for r in rows[4:8]])
    assert [s[1] for s in state(store, [r.id for r in rows[4:8]])] == texts


def test_a_round_leaves_alone_the_rows_this_worker_no_longer_holds(store, clock):
    """Rows another worker took over as stale (one of them sent by it since) are no longer
    w1's: the round's re-check answers them as not held — not to be sent, not skipped by w1,
    not written — whatever their consent, alone and with outcomes; the rows w1 still holds are
    re-checked as before. `ledger.recheck_consent` answers the same."""
    populate(store, 8, now=clock())
    campaign, _ = start(store, clock)
    lost, _ = claim(store, campaign, "w1", limit=4, clock=clock)
    clock.advance(minutes=30)  # w1 is presumed dead: w2 takes its rows over as stale
    taken, _ = claim(store, campaign, "w2", limit=4, clock=clock)
    assert sorted(r.id for r in taken) == sorted(r.id for r in lost)
    kept, _ = claim(store, campaign, "w1", limit=4, clock=clock)
    with store.session() as session:
        outbox.record_outcomes(session, "w2", [Outcome(lost[0].id, OutboxStatus.SENT, "250", "<m@x>")], now=clock())
        ctx = ConsentContext(channel=Channel.LINK)
        for row in (lost[1], kept[1]):
            consent.unsubscribe(session, consent.find_subscriber(session, row.email), ctx, now=clock())
        for row in (lost[2], kept[2]):
            consent.erase(session, row.email, now=clock())
    ids = [r.id for r in lost + kept]
    before = state(store, ids)
    with store.engine.connect() as conn:  # the ledger's own re-check, rolled back
        expected = outbox.recheck_consent(conn, campaign.list_id, "w1", lost + kept[:3], now=clock())
        conn.rollback()
    assert state(store, ids) == before
    connections = rounds.RoundConnections(store)
    held = connections.begin()
    alone = rounds.recheck_rows(held, campaign.list_id, "w1", lost[:2] + kept[:2], now=clock())
    together = rounds.write_and_recheck(
        held, campaign.list_id, "w1", [Outcome(kept[3].id, OutboxStatus.SENT, "250", "<k@x>"),
                                       Outcome(lost[3].id, OutboxStatus.SENT, "250", "<l@x>")],
        lost[2:] + kept[2:3], now=clock())
    connections.end(held, commit=True)
    connections.close()
    unsubscribed, erased = "skipped: the subscription is unsubscribed", \
        "skipped: the subscriber was erased or is not subscribed to the list"
    assert alone == outbox.Recheck({kept[1].id: unsubscribed}, frozenset({lost[0].id, lost[1].id}))
    assert together == outbox.Recheck({kept[2].id: erased}, frozenset({lost[2].id, lost[3].id}))
    assert expected == outbox.Recheck({kept[1].id: unsubscribed, kept[2].id: erased},
                                      frozenset(r.id for r in lost))
    after = dict(zip(ids, state(store, ids), strict=True))
    assert [after[r.id] for r in lost] == before[:4]  # w2's rows as w2 left them
    assert [after[r.id][0] for r in kept] == [OutboxStatus.SENDING, OutboxStatus.SKIPPED, OutboxStatus.SKIPPED,
                                              OutboxStatus.SENT]


def test_a_round_names_the_outcomes_it_did_not_write(store, clock):
    """Outcomes of rows another worker took over (one of them sent by it since) change nothing,
    and the round says which: `write_outcomes` returns them, `write_and_recheck` adds them to
    `not_held`; the others are written as ever."""
    populate(store, 12, now=clock())
    campaign, _ = start(store, clock)
    lost, _ = claim(store, campaign, "w1", limit=4, clock=clock)
    clock.advance(minutes=30)  # w1 is presumed dead: w2 takes its rows over as stale
    claim(store, campaign, "w2", limit=4, clock=clock)
    kept, _ = claim(store, campaign, "w1", limit=8, clock=clock)
    with store.session() as session:
        outbox.record_outcomes(session, "w2", [Outcome(lost[0].id, OutboxStatus.SENT, "250", "<m@x>")], now=clock())
    before = state(store, [r.id for r in lost])

    def sent(*rows):
        return [Outcome(r.id, OutboxStatus.SENT, "250", f"<{r.id}@x>") for r in rows]

    connections = rounds.RoundConnections(store)
    held = connections.begin()
    assert rounds.write_outcomes(held, "w1", sent(kept[0], lost[0], kept[1]), now=clock()) == {lost[0].id}
    assert rounds.write_outcomes(held, "w1", sent(kept[2]), now=clock()) == frozenset()
    both = rounds.write_and_recheck(held, campaign.list_id, "w1", sent(lost[1], kept[3], lost[2]), kept[6:],
                                    now=clock())
    alone = rounds.write_and_recheck(held, campaign.list_id, "w1", sent(lost[3], kept[4]), [], now=clock())
    connections.end(held, commit=True)
    connections.close()
    assert both == outbox.Recheck({}, frozenset({lost[1].id, lost[2].id}))
    assert alone == outbox.Recheck({}, frozenset({lost[3].id}))
    assert state(store, [r.id for r in lost]) == before  # as w2 left them
    assert [s[0] for s in state(store, [r.id for r in kept])] == [OutboxStatus.SENT] * 5 + [OutboxStatus.SENDING] * 3


def test_sqlite_rounds_keep_their_settings_to_themselves(sqlite_store, clock):
    """On SQLite the rounds' own connection polls for the write lock (busy timeout 0) and has the
    status CHECK off (the round writes only our constants); a round with the ORM (a hard
    bounce's rules write other tables) runs on a connection of the store's pool, with the
    store's settings; and no setting of the rounds' own reaches the pool."""
    store = sqlite_store
    _, campaign, rows = _claimed(store, clock, 6)

    def settings(held):
        return tuple(held.cursor.execute(f"PRAGMA {name}").fetchone()[0]
                     for name in ("busy_timeout", "ignore_check_constraints"))

    connections = rounds.RoundConnections(store)
    held = connections.begin()
    assert settings(held) == (0, 1)
    rounds.write_and_recheck(held, campaign.list_id, "w1", [Outcome(rows[0].id, OutboxStatus.SENT, "250", "<a@x>")],
                             rows[1:3], now=clock())
    connections.end(held, commit=True)
    held = connections.begin(orm=True)
    assert settings(held) == (SQLITE_BUSY_TIMEOUT_MS, 0)
    rounds.write_outcomes(held, "w1", [Outcome(rows[1].id, OutboxStatus.SENT, "250", "<b@x>")], now=clock())
    connections.end(held, commit=True)
    assert len(connections.idle) == 1  # the rounds' own, not the pool's
    held = connections.begin()
    assert settings(held) == (0, 1)
    connections.end(held, commit=True)
    connections.close()
    with store.engine.connect() as other:
        driver = other.connection.driver_connection
        assert (driver.execute("PRAGMA busy_timeout").fetchone()[0],
                driver.execute("PRAGMA ignore_check_constraints").fetchone()[0]) == (SQLITE_BUSY_TIMEOUT_MS, 0)
    assert [s[0] for s in state(store, [r.id for r in rows[:3]])] == [OutboxStatus.SENT, OutboxStatus.SENT,
                                                                     OutboxStatus.SENDING]


def test_postgres_round_that_fails_raises_the_servers_error_and_changes_nothing(store, clock):
    """A statement of a PostgreSQL round that the server refuses raises psycopg's error for
    its SQLSTATE; committing the failed transaction raises (the server would roll it back, and
    the driver report a commit), and the round's connection is not kept; the rows are as
    they were, and the next round, on a new connection, writes."""
    if store.dialect != "postgresql":
        pytest.skip("PostgreSQL's round connections")
    import psycopg

    _, campaign, rows = _claimed(store, clock, 3)
    before = state(store, [r.id for r in rows])
    connections = rounds.RoundConnections(store)
    held = connections.begin()
    outcomes = [Outcome(rows[0].id, OutboxStatus.SENT, "250", "<a@x>")]
    with pytest.raises(psycopg.errors.InvalidSqlStatementName):
        held.execute_prepared("newsletter_round_missing", ["1"])
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        rounds.write_outcomes(held, "w1", outcomes, now=clock())
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        connections.end(held, commit=True)
    assert connections.idle == []
    assert state(store, [r.id for r in rows]) == before
    held = connections.begin()  # a new connection: the next round goes on as usual
    assert rounds.write_and_recheck(held, campaign.list_id, "w1", outcomes, rows[1:],
                                    now=clock()) == outbox.Recheck({}, frozenset())
    connections.end(held, commit=True)
    connections.close()
    assert [s[0] for s in state(store, [r.id for r in rows])] == [OutboxStatus.SENT, OutboxStatus.SENDING,
                                                                    OutboxStatus.SENDING]


def test_the_inerror_status_is_libpqs():
    """`rounds._INERROR` is libpq's PQTRANS_INERROR, kept as a number so that a SQLite send
    never loads psycopg."""
    from psycopg.pq import TransactionStatus

    assert rounds._INERROR == TransactionStatus.INERROR
