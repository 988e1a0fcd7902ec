"""What emptying the PostgreSQL test database costs per test: the old fixture's TRUNCATE of every
table against tests/conftest.py's `empty_pg_tables`, each after a typical test's rows (20 people on
a list), interleaved in one run so that the machine's load falls on both alike.

    .venv/bin/python bench/pg_emptying.py [--rounds 10]

Prints the median wall milliseconds of each (store opened, emptied, closed) and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import PG_SERVER, TABLES, empty_pg_tables
from population import populate

from newsletter.store import open_store


def truncate_all(conn) -> None:
    conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    name = f"newsletter_bench_{uuid.uuid4().hex[:8]}"
    admin = f"{PG_SERVER}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    try:
        store = open_store(url)
        store.upgrade()
        store.dispose()
        times: dict[str, list[float]] = {"truncate_all": [], "empty_pg_tables": []}
        for _ in range(args.rounds):
            for how in (truncate_all, empty_pg_tables):
                store = open_store(url)
                populate(store, 20, now=datetime(2026, 11, 23, tzinfo=UTC))
                store.dispose()
                began = time.perf_counter()
                store = open_store(url)
                with store.engine.begin() as conn:
                    how(conn)
                store.dispose()
                times[how.__name__].append(time.perf_counter() - began)
        old, new = (statistics.median(times[k]) * 1000 for k in ("truncate_all", "empty_pg_tables"))
        print(f"median of {args.rounds}: TRUNCATE of all {len(TABLES)} tables {old:.0f} ms, "
              f"empty_pg_tables {new:.0f} ms, ratio {new / old:.2f}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
