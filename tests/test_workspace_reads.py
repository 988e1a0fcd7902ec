"""The workspace's reads stay cheap as the store grows (#14): a person's issues come from an index,
the dashboard's counts are right after sends and unsubscribes without counting the ledger on
every view, and a people search is one bounded scan. Real SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect, select, text

from newsletter.store import OutboxRow
from newsletter.store import directory as directory_store


def test_a_persons_issues_are_read_through_the_subscriber_index(store):
    assert "ix_outbox_subscriber" in {ix["name"] for ix in inspect(store.engine).get_indexes("outbox")}
    if store.dialect == "sqlite":
        query = select(OutboxRow.id).where(OutboxRow.subscriber_id == 1)
        with store.engine.connect() as conn:
            compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
            plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
        assert "ix_outbox_subscriber" in plan, plan
    with store.reading() as session:
        assert directory_store.received_by(session, 1) == []
