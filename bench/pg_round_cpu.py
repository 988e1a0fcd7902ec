"""Our CPU per PostgreSQL gate round, alone: `write_and_recheck` and the COMMIT of rounds of 8
(the CLI's default connections), on a round connection (`rounds.RoundConnections`) against a
scratch database, timed with `time.process_time` (every thread of ours; the server's work and
the round trips' waits are left out).

    python bench/pg_round_cpu.py                         # this tree
    python bench/pg_round_cpu.py --pythons /tmp/old/.venv/bin/python,.venv/bin/python --runs 3

With `--pythons`, each tree's python runs the same rounds in turn (A, B, A, B …) on one scratch
database (its rows claimed afresh before each run): only figures of the same run compare. This
machine's CPU time drifts by half from run to run; instructions do not. For those, run one
child under callgrind at two round counts on a database made by a run of this script kept (or
any with the bench's campaign), and take the difference:

    valgrind --tool=callgrind python bench/pg_round_cpu.py --child URL 100   # then 500
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(url: str, rounds_n: int) -> None:
    import psycopg

    from newsletter.statuses import OutboxStatus
    from newsletter.store import open_store
    from newsletter.store import rounds as stored_rounds
    from newsletter.store.ledger import Outcome

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("UPDATE outbox SET status = 'sending', claimed_by = 'w1', sent_at = NULL")
        conn.execute("VACUUM ANALYZE outbox")
        ids = [r[0] for r in conn.execute("SELECT id FROM outbox ORDER BY id").fetchall()]
        list_id = conn.execute("SELECT id FROM lists").fetchone()[0]

    class Row:  # what a round reads of a claimed row
        def __init__(self, row_id: int):
            self.id = row_id

    store = open_store(url)
    connections = stored_rounds.RoundConnections(store)
    now = datetime.now(timezone.utc)
    previous: list = []
    cpu, done = 0.0, 0
    for start in range(0, min(len(ids), 8 * rounds_n), 8):
        rows = [Row(i) for i in ids[start:start + 8]]
        outcomes = [Outcome(r.id, OutboxStatus.SENT, "250 2.0.0 Ok: queued as 4F2A1C", f"<{r.id}.a@example.org>",
                            None, None, True, "127.0.0.1:2525", 250) for r in previous]
        c0 = time.process_time()
        held = connections.begin()
        recheck = stored_rounds.write_and_recheck(held, list_id, "w1", outcomes, rows, now=now)
        connections.end(held, commit=True)
        cpu += time.process_time() - c0
        done += 1
        if recheck.skipped or recheck.not_held:
            sys.exit(f"unexpected re-check: {recheck}")
        previous = rows
    connections.close()
    store.dispose()
    print(f"{sys.prefix}: {done:,} rounds of 8, our CPU {1e6 * cpu / done:.0f} µs a round")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--rounds", type=int, default=1200)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--pythons", default=sys.executable, metavar="PY[,PY…]")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    import psycopg

    sys.path.insert(0, str(HERE))
    import send as bench_send

    db = f"bench_round_cpu_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    url = f"postgresql+psycopg://{args.server.split('://', 1)[1]}/{db}"
    try:
        bench_send.build_store(url, 8 * args.rounds + 8)
        for _ in range(args.runs):
            for python in args.pythons.split(","):
                subprocess.run([python, __file__, "--child", url, str(args.rounds)], check=True)
    finally:
        with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
