"""The workspace's reads stay cheap as the store grows (#14): a person's issues come from an index,
the dashboard's counts are right after sends and unsubscribes without counting the ledger on
every view, and a people search is one bounded scan. Real SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import anyio
import httpx
import pytest
from conftest import REPO
from population import populate
from sqlalchemy import event, inspect, select, text, update
from sqlalchemy.orm import Session
from staffing import PASSWORD, add_staff, logged_in

from newsletter.app import create_app
from newsletter.people import lists, subscriptions
from newsletter.people.rules import ConsentContext
from newsletter.sending import campaigns
from newsletter.sending.launch import launch, prepare_send
from newsletter.sending.options import SendOptions
from newsletter.staff import accounts, dashboard, directory, sessions, totp
from newsletter.staff.audit import Actor
from newsletter.staff.roles import Role
from newsletter.statuses import CampaignStatus, Channel, OutboxStatus, StaffRole
from newsletter.store import Campaign, MailingList, OutboxRow, StaffSession, Subscriber
from newsletter.store import directory as directory_store
from newsletter.tokens import Purpose
from newsletter.workspace.guard import COOKIE
from newsletter.workspace.pages import WorkspaceState

DAY_3 = sorted((REPO / "examples" / "asp23").glob("day-3.*.md"))
FORM = ConsentContext(channel=Channel.FORM, ip="198.51.100.20", source="website-footer")


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


def _dashboard_numbers(newsletter):
    board = dashboard.dashboard(newsletter)
    return ({line.slug: (line.active, line.pending, line.unsubscribed) for line in board.lists},
            {line.slug: (line.status, line.sent, line.failed, line.open) for line in board.campaigns})


def _outbox_reads(store) -> list[str]:
    seen: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: seen.append(statement) if " outbox" in statement else None)
    return seen


def test_the_dashboards_numbers_are_right_after_sends_and_unsubscribes(newsletter, clock, smtp_server):
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"], now=clock())
    emails = populate(newsletter.store, 12, now=clock())
    assert _dashboard_numbers(newsletter) == ({"asp-daily": (12, 0, 0)}, {})

    result = launch(newsletter, prepare_send(newsletter, DAY_3), SendOptions(concurrency=2, idle_poll=3600.0))
    assert result.status is CampaignStatus.FINISHED and len(smtp_server.received) == 12
    slug = result.slug
    assert _dashboard_numbers(newsletter)[1] == {slug: (CampaignStatus.FINISHED, 12, 0, 0)}

    with newsletter.store.reading() as session:
        keys = session.scalars(select(Subscriber.key).where(Subscriber.email.in_(emails[:2]))).all()
    for key in keys:
        subscriptions.unsubscribe_by_token(newsletter, newsletter.token(Purpose.UNSUBSCRIBE, key), FORM)
    # The lists' counts are reused for FRESH_FOR, then read again.
    assert _dashboard_numbers(newsletter)[0] == {"asp-daily": (12, 0, 0)}
    clock.advance(seconds=dashboard.FRESH_FOR.total_seconds() + 1)
    assert _dashboard_numbers(newsletter) == ({"asp-daily": (10, 0, 2)}, {slug: (CampaignStatus.FINISHED, 12, 0, 0)})

    # An ended campaign's ledger is not counted again, however long after.
    reads = _outbox_reads(newsletter.store)
    clock.advance(hours=1)
    _dashboard_numbers(newsletter)
    assert reads == []

    # Until its status changes: two rows failed, then retried, show at once as open again.
    with newsletter.store.session() as session:
        ids = session.scalars(select(OutboxRow.id).order_by(OutboxRow.id).limit(2)).all()
        session.execute(update(OutboxRow).where(OutboxRow.id.in_(ids)).values(status=OutboxStatus.FAILED))
    with newsletter.store.session() as session:
        assert campaigns.retry_campaign(session, slug, now=clock()) == 2
    assert _dashboard_numbers(newsletter)[1] == {slug: (CampaignStatus.PAUSED, 10, 0, 2)}
    assert reads, "a campaign whose status changed is counted again"


def test_the_dashboard_says_when_the_oldest_counts_it_shows_were_read(newsletter, clock):
    populate(newsletter.store, 3, now=clock())
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    client = logged_in(newsletter, owner)
    first = clock()
    assert dashboard.dashboard(newsletter).counted_at == first
    clock.advance(seconds=1)
    with newsletter.store.session() as session:  # a campaign still sending: counted now, the lists reused
        list_id = session.scalar(select(MailingList.id))
        session.add(Campaign(slug="moving", list_id=list_id, kind="daily_summary", subject="Day 1", source={},
                             status=CampaignStatus.SENDING, created_at=clock(), started_at=clock()))
    moving = clock()
    board = dashboard.dashboard(newsletter)
    assert [line.slug for line in board.campaigns] == ["moving"] and board.counted_at == first
    assert f"Counts as of {first:%H:%M:%S} UTC." in client.get("/admin/").text
    assert f"Counts as of {first:%H:%M:%S} UTC." in client.get("/admin/lists").text  # the same counts
    clock.advance(seconds=dashboard.FRESH_FOR.total_seconds() - 0.5)  # the lists read again, not the campaign
    assert dashboard.dashboard(newsletter).counted_at == moving
    lists_read = clock()
    clock.advance(seconds=1)  # the campaign read again, the lists not yet
    assert dashboard.dashboard(newsletter).counted_at == lists_read


def test_a_people_search_counts_up_to_the_cap_and_finds_an_address_by_its_start(newsletter, clock):
    populate(newsletter.store, 30, now=clock())
    populate(newsletter.store, 5, now=clock(), start=100, domain="example.net", list_slug="alerts")
    with newsletter.store.reading() as session:
        rows, total, more = directory_store.search_people(session, "person", limit=10, cap=20)
        assert (len(rows), total, more) == (10, 20, True)
        assert [r.email for r in rows] == sorted(r.email for r in rows)
        rows, total, more = directory_store.search_people(session, "person", limit=10, offset=30, cap=20)
        assert (len(rows), total, more) == (5, 35, False)  # a page beyond the cap is counted through
        rows, total, more = directory_store.search_people(session, "person00002", cap=20)
        assert ([r.email for r in rows], total, more) == (
            [f"person0000{i}@example.org" for i in range(20, 30)], 10, False)
        # With an "@": the address's start, any case; not the middle of one, not a wildcard.
        rows, total, _ = directory_store.search_people(session, "PERSON000101@exa")
        assert [r.email for r in rows] == ["person000101@example.net"] and total == 1
        assert directory_store.search_people(session, "erson000101@")[1] == 0
        assert directory_store.search_people(session, "person00010_@")[1] == 0
        assert directory_store.search_people(session, "person%@")[1] == 0
    page = directory.search(newsletter, "person")
    assert page.total == len(page.people) == 35 and not page.more


def _search_statement(store, session, query: str) -> tuple[str, object]:
    """The SELECT of subscribers (and its parameters) that a people search for `query` runs."""
    seen: list[tuple[str, object]] = []

    def listener(_conn, _cur, statement, params, *_a):
        if "FROM subscribers" in statement and "ORDER BY" in statement:
            seen.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", listener)
    try:
        directory_store.search_people(session, query)
    finally:
        event.remove(store.engine, "before_cursor_execute", listener)
    [found] = seen
    return found


def test_an_address_start_is_found_on_the_address_index(sqlite_store):
    with sqlite_store.reading() as session:
        statement, params = _search_statement(sqlite_store, session, "someone@exa")
        plan = " ".join(str(row[-1]) for row in session.connection().exec_driver_sql(
            f"EXPLAIN QUERY PLAN {statement}", params))
    assert "INDEX" in plan and "SCAN subscribers" not in plan.split("INDEX")[0].replace("USING", ""), plan
    assert "SEARCH" in plan, plan  # a range of the index, not a walk of all of it


def test_an_address_start_is_a_range_of_the_address_index_on_postgresql_under_a_c_collation(store):
    if store.dialect != "postgresql":
        pytest.skip("SQLite: the test above")
    with store.reading() as session:
        collation = session.scalar(text("SELECT datcollate FROM pg_database WHERE datname = current_database()"))
    if collation not in ("C", "POSIX", "C.UTF-8", "C.utf8"):
        pytest.skip(f"the database's collation is {collation}: the pattern alone decides")
    with store.reading() as session:
        statement, params = _search_statement(store, session, "someone@exa")
        # Whether the index can serve the search, whatever the table's size and statistics that
        # earlier tests left (a near-empty table is scanned whole by choice): with sequential
        # scans off, a condition the index cannot take still shows as a Seq Scan.
        session.connection().exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(row[0] for row in session.connection().exec_driver_sql(f"EXPLAIN {statement}", params))
    assert "Index Cond" in plan and "subscribers_email_key" in plan and "Seq Scan" not in plan, plan


def _statements(store) -> list[str]:
    """Every statement run on `store` from now on (listening until the test ends)."""
    seen: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda _c, _cur, statement, *_a: seen.append(statement))
    return seen


def test_the_session_check_reads_the_session_and_its_settings_in_two_selects(newsletter):
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    sender = add_staff(newsletter, "sender@example.org", Role.SENDER)
    totp.require_for(newsletter, Actor(owner, None), [StaffRole.SENDER])
    accounts.set_interface_language(newsletter, Actor(owner, None), "fr")
    cookies = {who.email: sessions.login(newsletter, who.email, PASSWORD).cookie for who in (owner, sender)}
    seen = _statements(newsletter.store)
    mine, theirs = sessions.current(newsletter, cookies[owner.email]), sessions.current(newsletter, cookies[sender.email])
    assert (mine.member.interface_language, mine.needs_totp) == ("fr", False)
    assert (theirs.member.interface_language, theirs.needs_totp) == (None, True)
    assert len([s for s in seen if s.startswith("SELECT")]) == 4, seen


def test_a_people_search_reads_plain_values_and_no_orm_rows(newsletter, clock):
    populate(newsletter.store, 30, now=clock())
    loaded: list[object] = []
    listener = lambda _session, instance: loaded.append(instance)  # noqa: E731
    event.listen(Session, "loaded_as_persistent", listener)
    try:
        page = directory.search(newsletter, "person")
        assert directory.list_options(newsletter) == page.lists
    finally:
        event.remove(Session, "loaded_as_persistent", listener)
    assert len(page.people) == 30 and [o.slug for o in page.lists] == ["asp-daily"]
    assert loaded == []


def test_a_persons_page_reads_each_thing_once(newsletter, clock):
    populate(newsletter.store, 3, now=clock())
    key = directory.search(newsletter, "person000001@").people[0].key
    seen = _statements(newsletter.store)
    page = directory.person_page(newsletter, key)
    selects = [s for s in seen if s.startswith("SELECT")]
    assert page.record.email == "person000001@example.org" and page.record.received == ()
    # The person, their subscriptions, consent log, bounces and issues, and the lists.
    assert len(selects) == len(set(selects)) == 6, selects


#: The pages of bench/workspace.py, as an owner reads them.
PAGES = ("/admin/", "/admin/people?q=person", "PERSON", "/admin/lists", "/admin/audit", "/admin/accounts",
         "/admin/issues", "/admin/account")


def test_a_workspace_page_reads_in_one_transaction_and_its_session_is_still_touched(newsletter, clock):
    populate(newsletter.store, 3, now=clock())
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    client = logged_in(newsletter, owner)
    key = directory.search(newsletter, "person000001@").people[0].key
    begun: list[object] = []
    event.listen(newsletter.store.engine, "begin", lambda conn: begun.append(conn))
    for page in PAGES:
        begun.clear()
        assert client.get(f"/admin/people/{key}" if page == "PERSON" else page).status_code == 200, page
        assert len(begun) == 1, page  # the session check's reads and the page's: one transaction
        assert newsletter.store.engine.pool.checkedout() == 0, page

    def last_seen():
        with newsletter.store.reading() as session:
            return session.scalar(select(StaffSession.last_seen_at).where(StaffSession.member_id == owner.id))

    seen = last_seen()
    clock.advance(minutes=2)
    begun.clear()
    page = client.get(f"/admin/people/{key}")
    assert page.status_code == 200 and "person000001@example.org" in page.text
    assert len(begun) == 3  # read, touch, then read what it wrote
    assert last_seen() == clock() > seen
    clock.advance(seconds=30)
    assert client.get("/admin/").status_code == 200 and last_seen() == clock() - timedelta(seconds=30)


def test_many_pages_at_once_each_hold_a_connection_without_running_out_of_them(newsletter, clock):
    """Twice as many pages at once as the pool has connections: a page keeps its reading open
    between its calls, and only `db_threads` pages hold one at once."""
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    cookie = sessions.login(newsletter, owner.email, PASSWORD).cookie
    app = create_app(newsletter, min_fill_seconds=0)
    many = 2 * (newsletter.store.engine.pool.size() + newsletter.store.engine.pool._max_overflow)

    async def pages() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver",
                                     cookies={COOKIE: cookie}) as client:
            statuses: list[int] = []

            async def one(path: str) -> None:
                statuses.append((await client.get(path, timeout=20)).status_code)

            async with anyio.create_task_group() as group:
                for i in range(many):
                    group.start_soon(one, PAGES[i % 2 + 3])
            return statuses

    statuses = anyio.run(pages)
    assert statuses == [200] * many and newsletter.store.engine.pool.checkedout() == 0


def test_a_slow_call_of_a_page_holds_no_connection_while_it_waits(newsletter):
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    client = logged_in(newsletter, owner)
    held: list[int] = []

    def lookup(name: str) -> list[str]:
        held.append(newsletter.store.engine.pool.checkedout())
        return []

    client.app.state.txt_lookup = lookup
    assert client.get("/admin/check").status_code == 200
    assert held and set(held) == {0}


def test_pre_flight_checks_waiting_on_dns_leave_every_place_free_for_other_pages(newsletter):
    """As many pre-flight checks as there are places for pages' shared readings (`db_threads`),
    all waiting on DNS: another page still answers at once, and no connection is held."""
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    cookie = sessions.login(newsletter, owner.email, PASSWORD).cookie
    app = create_app(newsletter, min_fill_seconds=0)
    places = WorkspaceState.db_threads
    waiting: list[str] = []
    answer = threading.Event()

    def lookup(name: str) -> list[str]:
        waiting.append(name)
        answer.wait(20)
        return []

    app.state.txt_lookup = lookup

    async def pages() -> tuple[list[int], int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver",
                                     cookies={COOKIE: cookie}) as client:
            checks: list[int] = []

            async def check() -> None:
                checks.append((await client.get("/admin/check", timeout=30)).status_code)

            async with anyio.create_task_group() as group:
                for _ in range(places):
                    group.start_soon(check)
                with anyio.fail_after(10):
                    while len(waiting) < places:
                        await anyio.sleep(0.01)
                try:
                    with anyio.fail_after(5):
                        lists_page = (await client.get("/admin/lists", timeout=30)).status_code
                    held = newsletter.store.engine.pool.checkedout()  # the checks still wait on DNS
                finally:
                    answer.set()
            return checks, lists_page, held

    checks, lists_page, held = anyio.run(pages)
    assert lists_page == 200 and held == 0
    assert checks == [200] * places and newsletter.store.engine.pool.checkedout() == 0
