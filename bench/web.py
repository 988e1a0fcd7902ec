"""Benchmark of the visitor pages: POST /subscribe and the RFC 8058 one-click POST.

Starts, as separate processes on loopback, the local catcher (`newsletter sink`) and the
server (`newsletter serve`) over a fresh store, then drives them from this process:

1. N sign-ups posted as JSON (the way the organisation's website posts them), each a new
   address, `--concurrency` at a time; every one must answer 200 and mail a confirmation;
2. N one-click unsubscribes (`List-Unsubscribe=One-Click`), one per person.

It reports requests/s and p50/p99 latency, then checks that no row was lost: every address
is in the store, every confirmation reached the catcher, every one-click unsubscribed.
The per-IP and per-address limits and the hourly ceiling are turned off for the run (all
requests come from one IP); everything else is as in production.

    python bench/web.py --store sqlite --signups 3000 --concurrency 32
    python bench/web.py --store postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import func, select

from newsletter.store import Subscriber, Subscription, SubscriptionStatus, open_store
from newsletter.tokens import Purpose, issue_token

PG_SERVER = os.environ.get("NEWSLETTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
SECRET = "bench-secret-key-0123456789abcdef"
NEWSLETTER = [sys.executable, "-m", "newsletter"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def drive(url: str, requests: list[tuple[str, dict]], concurrency: int) -> tuple[float, list[float], list[str]]:
    """POST every (path, kwargs) with `concurrency` in flight; returns (seconds, latencies, errors)."""
    latencies: list[float] = []
    errors: list[str] = []
    queue = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        async def worker() -> None:
            for path, kwargs in queue:
                started = time.perf_counter()
                try:
                    response = await client.post(path, **kwargs)
                    if response.status_code != 200 or "location" in response.headers:
                        errors.append(f"{response.status_code} {response.text[:80]!r}")
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(url: str, requests: list[tuple[str, dict]], concurrency: int, server: subprocess.Popen) -> tuple:
    """`drive`, plus the server's CPU seconds over the run: (seconds, latencies, errors, cpu)."""
    before = cpu_seconds(server.pid)
    seconds, latencies, errors = asyncio.run(drive(url, requests, concurrency))
    print(f"  load average at the end: {os.getloadavg()[0]:.2f}", flush=True)
    return seconds, latencies, errors, cpu_seconds(server.pid) - before


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def report(label: str, seconds: float, latencies: list[float], errors: list[str], cpu: float) -> dict:
    row = {
        "cpu_ms": cpu / max(1, len(latencies)) * 1000,
        "what": label,
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50": percentile(latencies, 0.50) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "errors": len(errors),
    }
    print(f"  {label:<22} {row['requests']:>6} requests  {row['rps']:8.0f}/s  p50 {row['p50']:6.1f} ms  "
          f"p99 {row['p99']:6.1f} ms  errors {row['errors']}  server CPU {row['cpu_ms']:.1f} ms/request", flush=True)
    for error in errors[:5]:
        print(f"    error: {error}")
    return row


def run(store_kind: str, signups: int, concurrency: int, workdir: Path) -> list[dict]:
    pg_db = None
    if store_kind == "sqlite":
        database_url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        pg_db = f"newsletter_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_db}"')
        database_url = f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/{pg_db}"
    sink_port, web_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    (workdir / "newsletter.toml").write_text(
        f'database_url = "{database_url}"\n'
        f'base_url = "{base}"\n'
        f'smtp_url = "smtp://127.0.0.1:{sink_port}?starttls=off"\n'
        f'sink_maildir = "mail"\nsink_port = {sink_port}\n'
        "signup_hourly_ceiling = 0\nsignup_per_ip_per_hour = 0\nsignup_per_address_per_hour = 0\n"
        "signup_min_seconds = 3\n"
    )
    (workdir / "secret.key").write_text(SECRET + "\n")
    env = {**os.environ, "NEWSLETTER_CONFIG": str(workdir / "newsletter.toml")}
    subprocess.run([*NEWSLETTER, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*NEWSLETTER, "lists", "create", "asp-daily", "ASP daily summaries",
                    "--languages", "en,fr,es,ar"], env=env, check=True, stdout=subprocess.DEVNULL)
    sink = subprocess.Popen([*NEWSLETTER, "sink"], env=env, stdout=subprocess.DEVNULL)
    server = subprocess.Popen([*NEWSLETTER, "serve", "--port", str(web_port), "--log-level", "warning"], env=env,
                              stdout=subprocess.DEVNULL)
    rows = []
    try:
        wait_for(lambda: _healthy(base), 20, "the server")
        languages = ["en", "fr", "es", "ar"]
        warmup = [("/subscribe", {"json": {"email": f"warm{i}@bench.example.org", "name": f"Warm {i}",
                                            "language": languages[i % 4], "lists": ["asp-daily"]}})
                  for i in range(200)]
        asyncio.run(drive(base, warmup, concurrency))
        posts = [("/subscribe", {"json": {"email": f"person{i}@bench.example.org", "name": f"Person {i}",
                                           "language": languages[i % 4], "lists": ["asp-daily"],
                                           "source": "bench"}})
                 for i in range(signups)]
        print(f"{store_kind}: {signups} sign-ups, {concurrency} in flight", flush=True)
        rows.append(report("POST /subscribe", *timed(base, posts, concurrency, server)))

        total = signups + len(warmup)
        maildir = workdir / "mail" / "new"
        wait_for(lambda: maildir.exists() and sum(1 for _ in maildir.iterdir()) >= total, 120, "the confirmations")
        store = open_store(database_url)
        with store.session() as session:
            people = session.scalar(select(func.count()).select_from(Subscriber))
            pending = session.scalar(select(func.count()).select_from(Subscription).where(
                Subscription.status == SubscriptionStatus.PENDING))
            keys = list(session.scalars(select(Subscriber.key).order_by(Subscriber.id)))
        mails = sum(1 for _ in maildir.iterdir())
        print(f"  rows: {people} people, {pending} pending subscriptions, {mails} confirmations caught "
              f"(expected {total} of each)", flush=True)
        lost_signups = (total - people) + (total - pending) + (total - mails)

        clicks = [(f"/unsubscribe/{issue_token(SECRET.encode(), Purpose.UNSUBSCRIBE, key, list_slug='asp-daily')}",
                   {"content": b"List-Unsubscribe=One-Click",
                    "headers": {"Content-Type": "application/x-www-form-urlencoded"}})
                  for key in keys[len(warmup):]]
        rows.append(report("POST one-click", *timed(base, clicks, concurrency, server)))
        with store.session() as session:
            left = session.scalar(select(func.count()).select_from(Subscription).where(
                Subscription.status == SubscriptionStatus.UNSUBSCRIBED))
        print(f"  rows: {left} unsubscribed (expected {len(clicks)})", flush=True)
        store.dispose()
        rows[0]["lost"] = lost_signups
        rows[1]["lost"] = len(clicks) - left
        for row in rows:
            row["store"] = store_kind
    finally:
        for process in (server, sink):
            process.send_signal(signal.SIGINT)
        for process in (server, sink):
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
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    rows = []
    for kind in (["sqlite", "postgresql"] if args.store == "both" else [args.store]):
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-web-{kind}-"))
        try:
            rows += run(kind, args.signups, args.concurrency, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n| store | request | requests | requests/s | p50 ms | p99 ms | errors | lost rows | server CPU/request |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['store']} | {r['what']} | {r['requests']} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | "
              f"{r['errors']} | {r['lost']} | {r['cpu_ms']:.1f} ms |")
    if any(r["errors"] or r["lost"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
