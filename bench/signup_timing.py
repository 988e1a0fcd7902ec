"""Does the sign-up answer's time tell what the store knows of the address? (issue #12.8)

Serves the visitor pages (uvicorn on loopback, a fresh SQLite or PostgreSQL store, an aiosmtpd
catcher for the confirmation mails) with people in every state an attacker could probe:

    new           an address nobody has (a fresh one each time)
    pending       signed up, not confirmed (mailed again only within the re-send limits)
    active        confirmed
    unsubscribed  confirmed once, then left
    erased        erased: the address is suppressed
    blocked       "this wasn't me": blocked and suppressed

then posts JSON sign-ups for them, the states interleaved in a random order in every round,
over one keep-alive connection, and times each answer at the client. The in-memory per-IP
and per-address limits and the hourly ceiling are off, so that every request reaches the
store (what an attacker who spreads requests out would get). It prints, per state, the
median and the 10th/90th percentiles, and for every pair of states the probability that a
request in one is slower than a request in the other (0.50: the time tells nothing).

    python bench/signup_timing.py --floor-ms 0      # answered as soon as recorded (before)
    python bench/signup_timing.py                   # signup_answer_ms as configured (100)
    python bench/signup_timing.py --store postgresql --rounds 200
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import uvicorn
from aiosmtpd.controller import Controller

from newsletter.app import create_app
from newsletter.config import Config
from newsletter.installation import Newsletter
from newsletter.people import lists, subscriptions
from newsletter.people.rules import ConsentContext
from newsletter.statuses import Channel
from newsletter.store import open_store
from newsletter.tokens import Purpose

PG_SERVER = os.environ.get("NEWSLETTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
REPO = Path(__file__).resolve().parents[1]
STATES = ("new", "pending", "active", "unsubscribed", "erased", "blocked")
CLI = ConsentContext(channel=Channel.CLI, source="bench")


class Sink:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_store(kind: str, folder: Path):
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
        cleanup = None
    else:
        name = f"newsletter_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/{name}"

        def cleanup() -> None:
            with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    store = open_store(url)
    store.upgrade()
    return store, cleanup


def people_in_every_state(newsletter: Newsletter) -> dict[str, str]:
    """One address per state but `new` (fresh each time), put there through the library."""
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", now=newsletter.clock())
    address = {state: f"{state}@example.org" for state in STATES if state != "new"}
    for state, email in address.items():
        subscriptions.record_signup(newsletter, email, "", None, ["asp-daily"], CLI)
    # Confirmed, left and blocked through their links, as a person would.
    from newsletter.people import consent

    for state in ("active", "unsubscribed", "blocked"):
        with newsletter.store.session() as session:
            key = consent.find_subscriber(session, address[state]).key
        subscriptions.confirm(newsletter, newsletter.token(Purpose.CONFIRM, key), CLI)
        if state == "unsubscribed":
            subscriptions.unsubscribe_by_token(newsletter, newsletter.token(Purpose.UNSUBSCRIBE, key), CLI)
        if state == "blocked":
            subscriptions.block_by_token(newsletter, newsletter.token(Purpose.BLOCK, key), CLI)
    subscriptions.erase(newsletter, address["erased"])
    return address


def summary(samples: dict[str, list[float]]) -> None:
    print(f"{'state':<14} {'n':>5} {'p10 ms':>8} {'median':>8} {'p90 ms':>8}")
    for state, times in samples.items():
        q = statistics.quantiles(times, n=10)
        print(f"{state:<14} {len(times):>5} {q[0] * 1000:>8.2f} {statistics.median(times) * 1000:>8.2f} "
              f"{q[-1] * 1000:>8.2f}")
    print("\nP(a request in the row's state is slower than one in the column's); 0.50: nothing to tell")
    print(" " * 14 + "".join(f"{s[:12]:>13}" for s in samples))
    worst = 0.0
    for a in samples:
        row = []
        for b in samples:
            if a == b:
                row.append(f"{'':>13}")
                continue
            wins = sum((x > y) + 0.5 * (x == y) for x, y in itertools.product(samples[a], samples[b]))
            p = wins / (len(samples[a]) * len(samples[b]))
            worst = max(worst, abs(p - 0.5))
            row.append(f"{p:>13.2f}")
        print(f"{a:<14}" + "".join(row))
    print(f"\nlargest departure from 0.50: {worst:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=150, help="requests per state")
    parser.add_argument("--floor-ms", type=int, default=None, help="signup_answer_ms (default: the configured 100)")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="signup-timing-"))
    smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    store, cleanup = make_store(args.store, folder)
    port = free_port()
    changes = {} if args.floor_ms is None else {"signup_answer_ms": args.floor_ms}
    config = Config(database_url=str(store.engine.url), base_url=f"http://127.0.0.1:{port}",
                    smtp_url=f"smtp://127.0.0.1:{smtp.port}?starttls=off", secret_key="bench-secret-key-0123456789",
                    templates_dir=str(REPO / "templates"), signup_per_ip_per_hour=0, signup_per_address_per_hour=0,
                    signup_hourly_ceiling=0, **changes)
    newsletter = Newsletter(config, store)
    address = people_in_every_state(newsletter)
    server = uvicorn.Server(uvicorn.Config(create_app(newsletter), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    rng = random.Random(args.seed)
    samples: dict[str, list[float]] = {state: [] for state in STATES}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for n in range(10):  # warm up: connections, caches, the statements prepared
                client.post("/subscribe", json={"email": f"warm{n}@example.org", "lists": ["asp-daily"]})
            for n in range(args.rounds):
                order = list(STATES)
                rng.shuffle(order)
                for state in order:
                    email = f"new-{n}@example.org" if state == "new" else address[state]
                    start = time.perf_counter()
                    response = client.post("/subscribe", json={"email": email, "lists": ["asp-daily"]})
                    samples[state].append(time.perf_counter() - start)
                    assert response.status_code == 200, response.text
                    time.sleep(rng.uniform(0, 0.01))
    finally:
        server.should_exit = True
        thread.join(10)
        smtp.stop()
        store.dispose()
        if cleanup:
            cleanup()
    floor = config.signup_answer_ms
    print(f"{args.store}, signup_answer_ms = {floor}, {args.rounds} requests per state, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n")
    summary(samples)


if __name__ == "__main__":
    main()
