"""Sign-ups through the web app's own group commit, on PostgreSQL, tree against tree in one run.

For each tree given (a checkout whose `src` goes on PYTHONPATH), in turn and for several rounds,
a child process makes a fresh database, fills its consent log with `--before` sign-ups (as a
store that has been taking sign-ups has one), builds the visitor app (`web.app.create_app`, so
the group commit is wired as `newsletter serve` wires it: batches, lanes, threads) and offers
`--signups` new sign-ups at `--rate` per second (open loop: each latency counts from when the
request was due), each awaiting its outcome from `app.state.web.signups.submit`, i.e. its
transaction's commit. No HTTP and no answer floor (`signup_answer_ms`): this is the time the
store's work takes, which the answer floor must stay above. It prints p50/p99, the batches and
their sizes, the process's CPU per sign-up, and the round trips of a 20-sign-up batch.

    python bench/signup_batches.py --trees /tmp/old,/work/wt/pgsign --rounds 3
    python bench/signup_batches.py --lanes 1,4          # this tree, one writer against four lanes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

PG_SERVER = os.environ.get("NEWSLETTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def child(url: str, args: argparse.Namespace) -> dict:
    from sqlalchemy import event

    from newsletter.config import Config
    from newsletter.installation import Newsletter
    from newsletter.people import lists
    from newsletter.people import subscriptions as visitor
    from newsletter.people.consent import ConsentContext
    from newsletter.people.signups import SignupRequest
    from newsletter.statuses import Channel
    from newsletter.store import open_store
    from newsletter.web.app import create_app

    store = open_store(url)
    store.upgrade()
    import newsletter as package

    templates = Path(package.__file__).resolve().parent.parent.parent / "templates"  # the tree's own
    config = Config(database_url=url, base_url="https://news.example.org", smtp_url="smtp://127.0.0.1:9?starttls=off",
                    secret_key="bench-secret-key-0123456789abcdef", templates_dir=str(templates),
                    signup_answer_ms=0, signup_hourly_ceiling=0, signup_per_ip_per_hour=0,
                    signup_per_address_per_hour=0)
    newsletter = Newsletter(config, store)
    with store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr"], now=newsletter.clock())
    ctx = ConsentContext(channel=Channel.FORM, ip="203.0.113.7", user_agent="bench", source="bench",
                         consent_version="2026-11")

    def request(email: str) -> SignupRequest:
        return SignupRequest(email, "P", "en", ("asp-daily",), ctx)

    for start in range(0, args.before, 100):
        visitor.record_signups(newsletter, [request(f"before{i}@bench.example.org")
                                            for i in range(start, min(args.before, start + 100))])
    # Round trips of one batch of 20: SQLAlchemy's statements, plus one per psycopg pipeline.
    import psycopg

    statements: list[str] = []

    def listener(*a):
        statements.append(a[2])

    real_pipeline = psycopg.Connection.pipeline
    psycopg.Connection.pipeline = lambda self: (statements.append("pipeline"), real_pipeline(self))[1]
    event.listen(store.engine, "before_cursor_execute", listener)
    visitor.record_signups(newsletter, [request(f"probe{i}@bench.example.org") for i in range(20)])
    event.remove(store.engine, "before_cursor_execute", listener)
    psycopg.Connection.pipeline = real_pipeline

    web = create_app(newsletter).state.web
    sizes: list[int] = []
    write = web.signups.write

    def counted(requests):
        sizes.append(len(requests))
        return write(requests)

    web.signups.write = counted
    if args.lanes and hasattr(web.signups, "lanes"):  # instead of the app's own (a tree without lanes has one)
        web.signups.lanes = args.lanes

    async def offer() -> list[float]:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        latencies: list[float] = []

        async def one(i: int) -> None:
            due = start + i / args.rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            await web.signups.submit(request(f"person{i}@bench.example.org"))
            latencies.append((loop.time() - due) * 1000)

        await asyncio.gather(*(one(i) for i in range(args.signups)))
        return latencies

    cpu = time.process_time()
    latencies = sorted(asyncio.run(offer()))
    cpu = time.process_time() - cpu
    store.dispose()
    return {"p50": latencies[len(latencies) // 2], "p99": latencies[int(len(latencies) * 0.99)],
            "max": latencies[-1], "batches": len(sizes), "mean_batch": sum(sizes) / len(sizes),
            "cpu_ms": cpu * 1000 / args.signups, "statements": len(statements),  # BEGIN and COMMIT not counted
            "lanes": getattr(web.signups, "lanes", 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", default=str(Path(__file__).resolve().parent.parent),
                        help="comma-separated checkouts, each run with its src on PYTHONPATH")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--signups", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--before", type=int, default=6000, help="sign-ups already in the store")
    parser.add_argument("--lanes", default="0",
                        help="comma-separated lane counts to run each tree with (0: as the app wires it)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.lanes = int(args.lanes)
        print(json.dumps(child(args.child, args)))
        return
    import psycopg

    rows = []
    for round_ in range(1, args.rounds + 1):
        for tree, lanes in [(t, n) for t in args.trees.split(",") for n in args.lanes.split(",")]:
            name = f"bench_signups_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                load = os.getloadavg()[0]
                out = subprocess.run(
                    [sys.executable, __file__, "--child", f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/{name}",
                     "--signups", str(args.signups), "--rate", str(args.rate), "--before", str(args.before),
                     "--lanes", lanes],
                    env={**os.environ, "PYTHONPATH": str(Path(tree) / "src")}, check=True, capture_output=True,
                    text=True).stdout
                row = {"round": round_, "tree": tree, "load": load, **json.loads(out.strip().splitlines()[-1])}
                rows.append(row)
                print(f"round {row['round']} {tree}: load {load:.1f}, p50 {row['p50']:.1f} ms, p99 {row['p99']:.1f} ms, "
                      f"max {row['max']:.0f} ms, {row['batches']} batches of {row['mean_batch']:.1f}, "
                      f"{row['lanes']} lanes, {row['cpu_ms']:.2f} ms CPU a sign-up, "
                      f"{row['statements']} round trips a 20-sign-up batch (+ BEGIN, COMMIT)", flush=True)
            finally:
                with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print("\n| round | tree | load | p50 ms | p99 ms | batches (mean size) | lanes | CPU/sign-up | round trips/batch of 20 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['round']} | {r['tree']} | {r['load']:.1f} | {r['p50']:.1f} | {r['p99']:.1f} | "
              f"{r['batches']} ({r['mean_batch']:.1f}) | {r['lanes']} | {r['cpu_ms']:.2f} ms | {r['statements']} |")


if __name__ == "__main__":
    main()
