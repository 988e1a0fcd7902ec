"""Benchmark of the visitor pages: POST /subscribe and the RFC 8058 one-click POST, while a
campaign is sending.

Starts, as separate processes on loopback: two Postfix `smtp-sink`s (one catches the
confirmation mails and counts them, one takes the campaign), the server (`newsletter serve`)
over a fresh store, a campaign (`newsletter send … --rate 100` to `--readers` active
subscribers, the rate a typical relay allows), and the load generator (bench/http_load.py,
raw HTTP/1.1 over keep-alive connections). While the campaign sends it measures:

1. N sign-ups posted as JSON (the way the organisation's website posts them), each a new
   address, `--concurrency` at a time (closed loop), or at `--rate` per second (open loop:
   latency counted from when each request was due);
2. N one-click unsubscribes (`List-Unsubscribe=One-Click`), one per person signed up.

It reports requests/s, p50/p99 latency and the server's CPU per request, then checks that no
row was lost: every address is in the store, pending; every confirmation reached the catcher;
every one-click unsubscribed; and the campaign really sent during the measurement. The
per-IP and per-address limits and the hourly ceiling are turned off for the run (all requests
come from one IP), and so is the answer floor (`signup_answer_ms`: the time the work behind it
takes is what is measured); everything else is as in production.

    python bench/web.py --store sqlite --signups 3000 --concurrency 32
    python bench/web.py --store sqlite --signups 3000 --rate 300
    python bench/web.py --store postgresql
    python bench/web.py --store sqlite --signups 6000 --rate 300 --campaign-rate 0 --readers 200000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import func, insert, select

from newsletter.statuses import OutboxStatus, SubscriberStatus, SubscriptionStatus
from newsletter.store import (
    Campaign,
    MailingList,
    OutboxRow,
    Subscriber,
    Subscription,
    open_store,
)
from newsletter.tokens import Purpose, issue_token

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_load import cpu_seconds, load, percentile, report  # noqa: F401  (the shared load loop)

PG_SERVER = os.environ.get("NEWSLETTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
SECRET = "bench-secret-key-0123456789abcdef"
NEWSLETTER = [sys.executable, "-m", "newsletter"]
SINK = "/usr/sbin/smtp-sink"
HERE = Path(__file__).resolve().parent
CONTENT = sorted((HERE.parent / "examples" / "asp23").glob("day-3.*.md"))
LANGUAGES = ["en", "fr", "es", "ar"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def caught(sink_log: Path) -> int:
    """Messages smtp-sink -c has counted so far (its last `mesg=N`)."""
    counts = re.findall(rb"mesg=(\d+)", sink_log.read_bytes()) if sink_log.exists() else []
    return int(counts[-1]) if counts else 0


def campaign_sent(database_url: str) -> int:
    store = open_store(database_url)
    try:
        with store.session() as session:
            return session.scalar(select(func.count()).select_from(OutboxRow).where(
                OutboxRow.status == OutboxStatus.SENT)) or 0
    finally:
        store.dispose()


def seed_readers(database_url: str, n: int) -> None:
    """`n` confirmed subscribers of asp-daily, the campaign's audience."""
    store = open_store(database_url)
    now = datetime.now(timezone.utc)
    with store.session() as session:
        list_id = session.scalar(select(MailingList.id).where(MailingList.slug == "asp-daily"))
        for start in range(0, n, 5000):
            rows = [dict(key=f"reader{i:012d}", email=f"reader{i}@campaign.example.org", name=f"Reader {i}",
                         language=LANGUAGES[i % 4], status=SubscriberStatus.ACTIVE, created_at=now, updated_at=now)
                    for i in range(start, min(n, start + 5000))]
            session.execute(insert(Subscriber), rows)
        ids = session.scalars(select(Subscriber.id)).all()
        session.execute(insert(Subscription), [
            dict(subscriber_id=sid, list_id=list_id, status=SubscriptionStatus.ACTIVE, created_at=now,
                 confirmed_at=now) for sid in ids])
    if store.dialect == "postgresql":  # as `newsletter import` leaves them (store.bulk.BatchWriter.close)
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE subscribers, subscriptions")
            conn.commit()
    store.dispose()


def run(store_kind: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    pg_db = None
    if store_kind == "sqlite":
        database_url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        pg_db = f"newsletter_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_db}"')
        database_url = f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/{pg_db}"
    sink_port, campaign_port, web_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    (workdir / "newsletter.toml").write_text(
        f'database_url = "{database_url}"\n'
        f'base_url = "{base}"\n'
        f'smtp_url = "smtp://127.0.0.1:{sink_port}?starttls=off"\n'
        "signup_hourly_ceiling = 0\nsignup_per_ip_per_hour = 0\nsignup_per_address_per_hour = 0\n"
        "signup_min_seconds = 3\n"
        # The answer floor (#12.8) would measure itself: this benchmark measures the work behind it.
        "signup_answer_ms = 0\n"
    )
    (workdir / "secret.key").write_text(SECRET + "\n")
    env = {**os.environ, "NEWSLETTER_CONFIG": str(workdir / "newsletter.toml")}
    subprocess.run([*NEWSLETTER, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*NEWSLETTER, "lists", "create", "asp-daily", "ASP daily summaries",
                    "--languages", "en,fr,es,ar"], env=env, check=True, stdout=subprocess.DEVNULL)
    seed_readers(database_url, args.readers)
    sink_log = workdir / "sink.log"
    processes: list[subprocess.Popen] = []
    with open(sink_log, "wb") as log_file:
        processes.append(subprocess.Popen([SINK, "-c", "-u", "nobody", f"127.0.0.1:{sink_port}", "256"],
                                          stdout=log_file, stderr=subprocess.DEVNULL))
    processes.append(subprocess.Popen([SINK, "-u", "nobody", f"127.0.0.1:{campaign_port}", "256"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    serve = [*NEWSLETTER, "serve", "--only", "web", "--port", str(web_port), "--log-level", "warning"]
    if args.profile:
        serve = [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw", "--rate", "250",
                 "-o", str(args.profile.with_suffix(f".{store_kind}.txt")), "--", *serve]
    server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL)
    processes.insert(0, server)
    rows = []
    try:
        wait_for(lambda: _healthy(base), 90, "the server")  # a loaded machine starts it slowly
        warmup = [["POST", "/subscribe", "application/json",
                   json.dumps({"email": f"warm{i}@bench.example.org", "name": f"Warm {i}",
                               "language": LANGUAGES[i % 4], "lists": ["asp-daily"]})] for i in range(200)]
        load(workdir, web_port, warmup, args.concurrency, 0)

        sender_env = {**env, "NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{campaign_port}?starttls=off"}
        pace = ["--rate", str(args.campaign_rate)] if args.campaign_rate else []  # 0: full speed
        campaign = subprocess.Popen([*NEWSLETTER, "send", *map(str, CONTENT), "--list", "asp-daily", "--yes",
                                     *pace], env=sender_env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(campaign)
        wait_for(lambda: campaign_sent(database_url) > 0, 60, "the campaign to start sending")
        sent_before, window_start = campaign_sent(database_url), time.perf_counter()

        posts = [["POST", "/subscribe", "application/json",
                  json.dumps({"email": f"person{i}@bench.example.org", "name": f"Person {i}",
                              "language": LANGUAGES[i % 4], "lists": ["asp-daily"], "source": "bench"})]
                 for i in range(args.signups)]
        mode = f"{args.rate:g}/s offered" if args.rate else f"{args.concurrency} in flight"
        print(f"{store_kind}: {args.signups} sign-ups, {mode}, campaign at "
              f"{f'--rate {args.campaign_rate:g}' if args.campaign_rate else 'full speed'} "
              f"(load {os.getloadavg()[0]:.2f} before)", flush=True)
        before = cpu_seconds(server.pid)
        result = load(workdir, web_port, posts, args.concurrency, args.rate)
        total = args.signups + len(warmup)
        # The server's CPU counts until every confirmation is out: the mails are part of a sign-up.
        wait_for(lambda: caught(sink_log) >= total, 120, "the confirmations")
        rows.append(report("POST /subscribe", result, cpu_seconds(server.pid) - before))
        store = open_store(database_url)
        with store.session() as session:
            people = session.scalar(select(func.count()).select_from(Subscriber).where(
                Subscriber.email.like("%@bench.example.org")))
            pending = session.scalar(select(func.count()).select_from(Subscription).where(
                Subscription.status == SubscriptionStatus.PENDING))
            keys = list(session.scalars(select(Subscriber.key).where(
                Subscriber.email.like("person%@bench.example.org")).order_by(Subscriber.id)))
        mails = caught(sink_log)
        print(f"  rows: {people} people, {pending} pending subscriptions, {mails} confirmations caught "
              f"(expected {total} of each)", flush=True)
        lost_signups = (total - people) + (total - pending) + abs(total - mails)

        clicks = [["POST", f"/unsubscribe/{issue_token(SECRET.encode(), Purpose.UNSUBSCRIBE, key, list_slug='asp-daily')}",
                   "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"] for key in keys]
        before = cpu_seconds(server.pid)
        result = load(workdir, web_port, clicks, args.concurrency, args.rate)
        rows.append(report("POST one-click", result, cpu_seconds(server.pid) - before))
        sent_during, window = campaign_sent(database_url) - sent_before, time.perf_counter() - window_start
        still_sending = campaign.poll() is None
        print(f"  campaign: {sent_during} sent during the measurement ({sent_during / window:.0f}/s), "
              f"{'still sending' if still_sending else 'FINISHED EARLY: raise --readers'}", flush=True)
        with store.session() as session:
            left = session.scalar(select(func.count()).select_from(Subscription).where(
                Subscription.status == SubscriptionStatus.UNSUBSCRIBED))
            campaigns = session.scalar(select(func.count()).select_from(Campaign))
        print(f"  rows: {left} unsubscribed (expected {len(clicks)})", flush=True)
        store.dispose()
        rows[0]["lost"] = lost_signups
        rows[1]["lost"] = len(clicks) - left
        for row in rows:
            row["store"] = store_kind
            row["campaign"] = f"{sent_during / window:.0f}/s" if still_sending and campaigns else "none"
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        if pg_db:
            with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
    return rows


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--signups", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32, help="connections (requests in flight at most)")
    parser.add_argument("--rate", type=float, default=0,
                        help="requests offered per second (open loop); 0: as fast as answered (closed loop)")
    parser.add_argument("--campaign-rate", type=float, default=100,
                        help="the campaign's --rate (messages/s); 0: full speed (then raise --readers)")
    parser.add_argument("--readers", type=int, default=20000, help="the campaign's audience")
    parser.add_argument("--profile", type=Path, default=None,
                        help="run the server under py-spy and write its collapsed stacks to PROFILE.<store>.txt")
    args = parser.parse_args()
    if not Path(SINK).exists():
        sys.exit(f"{SINK} is missing: apt-get install -y postfix")
    rows = []
    for kind in (["sqlite", "postgresql"] if args.store == "both" else [args.store]):
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-web-{kind}-"))
        try:
            rows += run(kind, args, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n| store | request | requests | requests/s | p50 ms | p99 ms | errors | lost rows | server CPU/request "
          "| campaign |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['store']} | {r['what']} | {r['requests']} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
              f"{r['errors']} | {r['lost']} | {r['cpu_ms']:.2f} ms | {r['campaign']} |")
    if any(r["errors"] or r["lost"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
