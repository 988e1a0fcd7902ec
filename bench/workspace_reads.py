"""The workspace's pages in-process: CPU and SQL statements per page, one request at a time.

Builds a store (SQLite in a temporary folder, or `--database-url`) with `--readers` confirmed
readers of one list, `--finished` finished campaigns and one sending campaign (half sent)
whose ledgers hold a row per reader, `--staff` accounts and a few hundred audit lines; then
asks each page kind of the workspace `--views` times through the whole app (Starlette's
TestClient: the session check, the unit of work, the Jinja page) and reports, per page, the
process's CPU (all threads, the TestClient's own included: the same for every page) and the
statements sent to the database. CPU seconds and statement counts move far less with the
machine's load than wall-clock latencies do; the statements do not move at all.

    python bench/workspace_reads.py --readers 100000
    python bench/workspace_reads.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432 --readers 100000
    PYTHONPATH=/path/to/other/tree/src python bench/workspace_reads.py   # the same pages over other code
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import event, func, insert, literal, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent))
import web as bench_web

from newsletter.config import Config
from newsletter.installation import Newsletter
from newsletter.people import lists
from newsletter.staff import accounts, audit, sessions
from newsletter.staff.roles import Role
from newsletter.statuses import CampaignStatus, OutboxStatus
from newsletter.store import Campaign, MailingList, OutboxRow, Subscriber, open_store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from newsletter.app import create_app

PASSWORD = "a long night at the benchmark"
PAGES = {"dashboard": "/admin/", "people search": "/admin/people?q=reader1", "people search (address start)":
         "/admin/people?q=reader12345@", "one person": "PERSON", "lists": "/admin/lists",
         "audit trail": "/admin/audit", "accounts": "/admin/accounts", "issues": "/admin/issues",
         "own account": "/admin/account"}


def build(database_url: str, args: argparse.Namespace) -> Newsletter:
    store = open_store(database_url)
    store.upgrade()
    now = datetime.now(UTC)
    with store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"], now=now)
    bench_web.seed_readers(database_url, args.readers)
    status_type = OutboxRow.__table__.c.status.type
    with store.session() as session:
        list_id = session.scalar(select(MailingList.id).where(MailingList.slug == "asp-daily"))
        for n in range(args.finished + 1):
            running = n == args.finished
            at = now - timedelta(days=args.finished - n)
            campaign = Campaign(slug=f"asp24-day-{n + 1}", list_id=list_id, kind="daily_summary",
                                subject=f"Day {n + 1}", source={},
                                status=CampaignStatus.SENDING if running else CampaignStatus.FINISHED,
                                created_at=at, started_at=at, finished_at=None if running else at)
            session.add(campaign)
            session.flush()
            session.execute(insert(OutboxRow).from_select(
                ["campaign_id", "subscriber_id", "status", "language", "attempts"],
                select(literal(campaign.id), Subscriber.id, literal(OutboxStatus.SENT, type_=status_type),
                       Subscriber.language, literal(1))))
            if running:  # half of it still queued
                half = session.scalar(select(func.min(Subscriber.id) + args.readers // 2))
                session.execute(update(OutboxRow).where(OutboxRow.campaign_id == campaign.id,
                                                        OutboxRow.subscriber_id >= half)
                                .values(status=OutboxStatus.QUEUED, attempts=0))
    config = Config(database_url=database_url, secret_key=bench_web.SECRET, base_url="https://testserver",
                    smtp_url="smtp://127.0.0.1:9?starttls=off")
    newsletter = Newsletter(config, store)
    for i in range(args.staff):
        role = [Role.OWNER, Role.SENDER, Role.EDITOR, Role.VIEWER][i % 4]
        invitation = accounts.add_member(newsletter, f"staff{i}@bench.example.org", role)
        accounts.accept_invitation(newsletter, invitation.link.rsplit("/", 1)[1], PASSWORD)
    owner = accounts.member(newsletter, "staff0@bench.example.org")
    actor = audit.Actor(owner, "127.0.0.1")
    for i in range(300):
        audit.note(newsletter, actor, "view-people", f"/admin/people/{i}", "")
    return newsletter


def plan_nodes(node: dict, depth: int = 0) -> list[str]:
    """A plan's top three levels, one line a node: its type, relation, index, heap fetches, rows, buffers."""
    if depth >= 3:
        return []
    what = node["Node Type"] + (f" on {node['Relation Name']}" if "Relation Name" in node else "")
    index = f" using {node['Index Name']}" if "Index Name" in node else ""
    fetched = f" heap {node['Heap Fetches']}" if "Heap Fetches" in node else ""
    found = [f"{what}{index}{fetched} rows {node['Actual Rows']} "
             f"buf {node.get('Shared Hit Blocks', 0) + node.get('Shared Read Blocks', 0)}"]
    for child in node.get("Plans", ()):
        found += plan_nodes(child, depth + 1)
    return found


def explain(database_url: str, captured: list[tuple[str, object]]) -> list[tuple[float, str, str]]:
    """Each captured SELECT run again under EXPLAIN (ANALYZE, BUFFERS) on a connection of its
    own: (server milliseconds (planning and execution), the plan's top nodes, the statement's start)."""
    found = []
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        for statement, parameters in captured:
            if statement.lstrip().upper().startswith("SELECT"):
                plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement,
                                    parameters).fetchone()[0][0]
                found.append((plan["Planning Time"] + plan["Execution Time"], "; ".join(plan_nodes(plan["Plan"])),
                              " ".join(statement.split())[:90]))
        conn.rollback()
    return found


def measure(newsletter: Newsletter, args: argparse.Namespace) -> list[tuple]:
    """Per page kind: (kind, CPU mean ms, CPU median ms, statements, wall median ms, the server's ms
    for the first view's SELECTs under EXPLAIN ANALYZE or None)."""
    statements = 0
    captured: list[tuple[str, object]] | None = None

    def counted(_conn, _cursor, statement, parameters, *_args) -> None:
        nonlocal statements
        statements += 1
        if captured is not None:
            captured.append((statement, parameters))

    event.listen(newsletter.store.engine, "before_cursor_execute", counted)
    app = create_app(newsletter, min_fill_seconds=0)
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    cookie = sessions.login(newsletter, "staff0@bench.example.org", PASSWORD).cookie
    client.cookies.set("nl_staff", cookie)
    with newsletter.store.reading() as session:
        key = session.scalar(select(Subscriber.key).where(Subscriber.email == "reader12345@campaign.example.org"))
    rows = []
    for kind, path in PAGES.items():
        path = f"/admin/people/{key}" if path == "PERSON" else path
        shown = captured = [] if args.explain else None  # the first view's: the counts not yet reused
        for _ in range(3):  # templates compiled, caches warm
            answer = client.get(path)
            if answer.status_code != 200:
                raise SystemExit(f"{path}: {answer.status_code} {answer.text[:200]}")
            captured = None
        cpu, wall, stmts = [], [], []
        for _ in range(args.views):
            before_cpu, before_wall, before_stmts = time.process_time(), time.perf_counter(), statements
            client.get(path)
            cpu.append(time.process_time() - before_cpu)
            wall.append(time.perf_counter() - before_wall)
            stmts.append(statements - before_stmts)
        plans = explain(newsletter.store.engine.url.render_as_string(hide_password=False), shown) \
            if shown and newsletter.store.dialect == "postgresql" else []
        rows.append((kind, statistics.mean(cpu) * 1000, statistics.median(cpu) * 1000, statistics.mean(stmts),
                     statistics.median(wall) * 1000, sum(ms for ms, _, _ in plans) if plans else None))
        print(f"  {kind:<32} CPU mean {rows[-1][1]:7.1f} ms  median {rows[-1][2]:7.1f} ms  "
              f"statements {rows[-1][3]:5.1f}  wall median {rows[-1][4]:7.1f} ms", flush=True)
        for ms, plan, statement in plans:
            print(f"      {ms:7.2f} ms  {statement}\n                 {plan}", flush=True)
    client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--finished", type=int, default=3, help="finished campaigns (and one sending)")
    parser.add_argument("--staff", type=int, default=20)
    parser.add_argument("--views", type=int, default=30, help="requests of each page")
    parser.add_argument("--database-url", default="", help="a PostgreSQL server URL (a database is made on it)")
    parser.add_argument("--explain", action="store_true",
                        help="PostgreSQL: each page's SELECTs (of its first view) under EXPLAIN (ANALYZE, BUFFERS)")
    args = parser.parse_args()
    pg_db = None
    with tempfile.TemporaryDirectory(prefix="bench-workspace-reads-") as folder:
        if args.database_url:
            pg_db = f"newsletter_bench_{uuid.uuid4().hex[:8]}"
            server = args.database_url.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{pg_db}"')
            database_url = f"{args.database_url}/{pg_db}"
        else:
            database_url = f"sqlite:///{folder}/bench.db"
        try:
            started = time.perf_counter()
            newsletter = build(database_url, args)
            print(f"{newsletter.store.dialect}: {args.readers} readers, {args.finished} finished campaigns and one "
                  f"sending, built in {time.perf_counter() - started:.0f} s", flush=True)
            rows = measure(newsletter, args)
            newsletter.store.dispose()
        finally:
            if pg_db:
                with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
    print(f"\n| page ({newsletter.store.dialect}, {args.readers:,} readers) | CPU mean | CPU median | statements "
          f"| wall median | server, first view |  (load {os.getloadavg()[0]:.2f})")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, mean, median, stmts, wall, server in rows:
        served = f"{server:.1f} ms" if server is not None else ""
        print(f"| {kind} | {mean:.1f} ms | {median:.1f} ms | {stmts:.1f} | {wall:.1f} ms | {served} |")


if __name__ == "__main__":
    main()
