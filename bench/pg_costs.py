"""What one message costs on PostgreSQL: statements and round trips per gate round, per claim and
per message, and the CPU of our process and of the server's backends.

    python bench/pg_costs.py                       # 20,000 recipients, the CLI's defaults (8 connections)
    python bench/pg_costs.py -n 10000 --concurrency 32
    python bench/pg_costs.py --workers 2           # two sender processes on one campaign
    python bench/pg_costs.py --trace               # count statements and round trips (libpq trace)
    python bench/pg_costs.py --gate-only           # the gate's rounds alone: no message, no SMTP
    python bench/pg_costs.py --gate-only --sqlite  # the same on a SQLite file

`--gate-only` claims the whole campaign first, then K tasks (one per connection) pass every row
through the sender's own gate (`Sender.gate`: its gathering, rounds, DB threads and statements)
as a connection does — admit with the previous outcome, MAIL FROM written at once, the data
after the commit, "250" at once — with no message built and no socket: the figures are what
the gate costs per message, ours and the server's, with nothing else on the cores from us.

A scratch database on the server (`--server`, default postgresql://postgres@127.0.0.1:5432) is
made and dropped. The campaign of bench/send.py (a ~20 KB two-part issue) goes, in-process
(`Sender`, as `newsletter send` runs it), into Postfix's `smtp-sink` on loopback.

Without `--trace`: the senders' CPU (process time) and the server's — the backends of the
scratch database, their /proc utime + stime sampled every 0.1 s until each exits — per
message. With `--trace`: libpq's protocol trace of every connection (which costs CPU, so the
CPU figures of that run do not count), read afterwards: a round trip is a run of messages from
us followed by the server's answer; statements are named by their first words.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import send as bench_send

TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


class BackendCpu:
    """Samples the CPU of the scratch database's backend processes until stopped."""

    def __init__(self, server: str, db: str):
        import psycopg

        self.conn = psycopg.connect(f"{server}/postgres", autocommit=True)
        self.db = db
        self.seen: dict[int, float] = {}
        self.base: dict[int, float] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = self.conn.info.backend_pid
        while not self._stop.is_set():
            pids = [r[0] for r in self.conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                                    (self.db,)).fetchall() if r[0] != me]
            for pid in pids:
                cpu = proc_cpu(pid)
                if cpu is not None:
                    self.base.setdefault(pid, cpu)
                    self.seen[pid] = cpu
            time.sleep(0.1)

    def start(self) -> None:
        self.thread.start()

    def mark(self) -> None:
        """From now: backends already open count from their CPU at this moment."""
        self.base = dict(self.seen)

    def stop(self) -> float:
        self._stop.set()
        self.thread.join()
        self.conn.close()
        return sum(cpu - self.base.get(pid, 0.0) for pid, cpu in self.seen.items())


def gate_only(sender, counts) -> dict:
    """Claim every row, then pass each through `sender.gate` from `concurrency` tasks; CPU of that part."""
    import asyncio
    from collections import deque

    from newsletter.statuses import OutboxStatus
    from newsletter.store.ledger import Outcome

    async def main() -> dict:
        campaign, _counts, _holders = await sender._db(sender._load)
        gate = sender.gate
        gate.campaign_id, gate.list_id = sender.campaign_id, sender.list_id
        queue: deque = deque()
        while True:
            _status, got, _skipped = await sender._db(sender._claim, campaign, [])
            if not got:
                break
            queue.extend(got)
        counts.clear()  # the rounds only
        runner = asyncio.get_running_loop().create_task(gate.run())
        sent = 0

        async def connection() -> None:
            nonlocal sent
            previous: list = []
            try:
                while queue:
                    row = queue.popleft()
                    ticket = await gate.admit(previous, row)
                    previous = []
                    if not ticket.goes:
                        continue
                    await asyncio.sleep(0)  # MAIL FROM written
                    ticket.mail_began()
                    await ticket.wait_committed()
                    await asyncio.sleep(0)  # the data, the relay's answer
                    previous = [Outcome(row.id, OutboxStatus.SENT, "250 2.0.0 Ok: queued", f"<{row.id}@x>",
                                        None, None, True, "127.0.0.1:25", 250)]
                    sent += 1
            finally:
                sender.working -= 1
                gate.poke()
                if previous:
                    await gate.admit(previous, None)

        c0, t0 = time.process_time(), time.time()
        await asyncio.gather(*(connection() for _ in range(sender.options.concurrency)))
        await gate.drain()
        cpu, wall = time.process_time() - c0, time.time() - t0
        runner.cancel()
        await sender._in_db_thread(gate.close)
        sender.db_threads.shutdown()
        return {"status": "gate-only", "sent": sent, "cpu": cpu, "start": t0, "end": t0 + wall}

    from newsletter.sending.sender import run_sending

    return run_sending(main())


def child(url: str, port: int, concurrency: int, trace_dir: str | None, start_at: float,
          only_gate: bool = False, options: dict | None = None) -> None:
    """One sender process: send the campaign (or with `only_gate`, pass it through the gate); print JSON figures."""
    from sqlalchemy import event

    from newsletter.sending.messages import build_skeletons
    from newsletter.sending.sender import Sender, SendOptions, run_sending
    from newsletter.store import ledger, open_store, rounds

    counts = collections.Counter()
    plain_round, plain_claim = rounds.write_and_recheck, ledger.claim_batch

    def counted_round(held, list_id, worker, outcomes, rows, *, now):
        counts["rounds"] += 1
        counts["round_outcomes"] += len(outcomes)
        counts["round_rows"] += len(rows)
        return plain_round(held, list_id, worker, outcomes, rows, now=now)

    def counted_claim(*args, **kwargs):
        claimed, skipped = plain_claim(*args, **kwargs)
        counts["claims"] += 1
        counts["claimed"] += len(claimed)
        return claimed, skipped

    rounds.write_and_recheck = counted_round  # the gate looks it up on the module
    ledger.claim_batch = counted_claim  # the sender too
    config = bench_send.config_for(url, port)
    store = open_store(url)
    traces = []
    if trace_dir:
        import psycopg.pq

        @event.listens_for(store.engine, "connect")
        def _trace(dbapi_conn, _record):
            path = Path(trace_dir) / f"{os.getpid()}-{len(traces)}.trace"
            f = open(path, "w")  # noqa: SIM115 — open for the connection's lifetime
            traces.append(f)
            dbapi_conn.pgconn.trace(f.fileno())
            dbapi_conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    skeletons = build_skeletons(config, bench_send.issue(), "asp-daily", "ASP daily summaries", bench_send.SLUG)
    sender = Sender(store, config, bench_send.SLUG, skeletons, options=SendOptions(concurrency=concurrency, **(options or {})))
    time.sleep(max(0.0, start_at - time.time()))
    if only_gate:
        figures = gate_only(sender, counts)
    else:
        c0, t0 = time.process_time(), time.time()
        result = run_sending(sender.run())
        cpu, wall = time.process_time() - c0, time.time() - t0
        figures = {"status": result.status.value, "sent": result.sent_now, "cpu": cpu, "start": t0, "end": t0 + wall}
    store.dispose()
    for f in traces:
        f.close()
    print(json.dumps({**figures, **counts}))


# -- reading libpq's trace -----------------------------------------------------------------------

_WORDS = re.compile(r"\s+")


def statement_name(sql: str) -> str:
    s = _WORDS.sub(" ", sql.strip()).upper()
    for prefix, name in (("BEGIN; EXECUTE NEWSLETTER_ROUND_BOTH", "round: BEGIN + outcomes + re-check (EXECUTE, one query)"),
                         ("BEGIN; EXECUTE NEWSLETTER_ROUND_RECHECK", "round: BEGIN + re-check (EXECUTE, one query)"),
                         ("BEGIN; EXECUTE NEWSLETTER_ROUND_OUTCOMES", "round: BEGIN + outcomes (EXECUTE, one query)"),
                         ("EXECUTE NEWSLETTER_ROUND_", "round: a statement after its BEGIN (EXECUTE)"),
                         ("SET PLAN_CACHE_MODE", "a round connection: SET and PREPARE (one query)"),
                         ("BEGIN", "BEGIN"), ("COMMIT", "COMMIT"), ("ROLLBACK", "ROLLBACK"),
                         ("WITH WRITTEN", "round: outcomes + re-check (WITH … UPDATE … SELECT FOR SHARE)"),
                         ("UPDATE OUTBOX O SET", "round: outcomes (UPDATE … FROM unnest)"),
                         ("SELECT O.ID, S.STATUS", "round: re-check (SELECT … FOR SHARE)"),
                         ("UPDATE OUTBOX SET STATUS = 'SKIPPED'", "skip a row (UPDATE)"),
                         ("UPDATE OUTBOX SET STATUS = 'SENDING'", "claim: take (UPDATE … id = ANY)"),
                         ("SELECT O.ID, O.SUBSCRIBER_ID", "claim: SELECT … FOR UPDATE SKIP LOCKED"),
                         ("SELECT ADDRESS_HASH FROM SUPPRESSIONS", "claim: suppressions"),
                         ("SELECT CAMPAIGNS.", "campaign read (ORM)"),
                         ("INSERT INTO OUTBOX", "ledger chunk INSERT … SELECT"),
                         ("SELECT OUTBOX.CLAIMED_BY", "active claims (holders)"),
                         ("SELECT OUTBOX.STATUS, COUNT", "counts by status")):
        if s.startswith(prefix):
            return name
    return " ".join(s.split()[:4])[:60]


def _messages(path: Path):
    """(direction, message type, the rest) of each message of a trace (SQL may span lines)."""
    current: list[str] | None = None
    for line in path.open():
        parts = line.rstrip("\n").split("\t", 3)
        if len(parts) >= 3 and parts[0] in ("F", "B") and parts[1].isdigit():
            if current is not None:
                yield tuple(current)
            current = [parts[0], parts[2], parts[3] if len(parts) > 3 else ""]
        elif current is not None:
            current[2] += "\n" + line.rstrip("\n")
    if current is not None:
        yield tuple(current)


def read_trace(path: Path, statements: collections.Counter) -> int:
    """Count statements (Parse of a new text, Bind of a prepared one, or a simple Query) into
    `statements`; return round trips (a run of our messages answered by the server)."""
    trips, last = 0, "B"
    prepared: dict[str, str] = {}
    for direction, kind, rest in _messages(path):
        if direction == "F":
            if last == "B":
                trips += 1
            if kind == "Parse":
                m = re.match(r'\s*"([^"]*)"\s+"(.*)"', rest, re.DOTALL)
                if m:
                    name, sql = m.group(1), m.group(2)
                    if name:
                        prepared[name] = sql
                    else:
                        statements[statement_name(sql)] += 1
            elif kind == "Bind":
                m = re.match(r'\s*"[^"]*"\s+"([^"]*)"', rest)
                if m and m.group(1):
                    statements[statement_name(prepared.get(m.group(1), m.group(1)))] += 1
            elif kind == "Query":
                m = re.match(r'\s*"(.*)"', rest, re.DOTALL)
                if m:
                    statements[statement_name(m.group(1))] += 1
        last = direction
    return trips


def gate_options(args) -> dict:
    """The SendOptions the command line sets (the others keep their defaults)."""
    return {k: v for k, v in (("gate_rounds", args.gate_rounds), ("gate_gather", args.gate_gather)) if v is not None}


def gate_only_sqlite(args) -> None:
    """`--gate-only --sqlite`: the same passage through the gate, on a SQLite file."""
    folder = Path(tempfile.mkdtemp(prefix="bench-gate-sqlite-"))
    try:
        url = f"sqlite:///{folder}/bench.db"
        bench_send.build_store(url, args.n)
        out = subprocess.run([sys.executable, __file__, "--child", url, "25", str(args.concurrency), "", "0", "1",
                              json.dumps(gate_options(args))],
                             check=False, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"the sender failed:\n{out.stderr[-3000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rounds_ = max(r.get("rounds", 0), 1)
        print(f"{r['sent']:,} rows through the gate (SQLite), {args.concurrency} connections, "
              f"{r['end'] - r['start']:.2f} s; load {os.getloadavg()[0]:.1f}")
        print(f"  CPU per message: ours {r['cpu'] / r['sent'] * 1e6:.0f} µs")
        print(f"  gate rounds: {r.get('rounds', 0):,} ({r.get('round_rows', 0) / rounds_:.1f} messages admitted "
              f"and {r.get('round_outcomes', 0) / rounds_:.1f} outcomes a round)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8, help="connections per sender (the CLI's default: 8)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--trace", action="store_true", help="count statements and round trips (costs CPU)")
    parser.add_argument("--taskset", default=None, metavar="CPUS[:CPUS…]", help="pin the i-th sender (taskset -c)")
    parser.add_argument("--gate-only", action="store_true",
                        help="pass the claimed rows through the sender's gate alone (no message, no SMTP)")
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead of the server (with --gate-only)")
    parser.add_argument("--gate-rounds", type=int, default=None, help="SendOptions.gate_rounds (default: its own)")
    parser.add_argument("--gate-gather", type=float, default=None, help="SendOptions.gate_gather, seconds")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]), args.child[3] or None, float(args.child[4]),
              only_gate=args.child[5] == "1", options=json.loads(args.child[6]))
        return
    if args.sqlite:
        gate_only_sqlite(args)
        return
    import psycopg

    db = f"bench_costs_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    url = f"postgresql+psycopg://{args.server.split('://', 1)[1]}/{db}"
    folder = Path(tempfile.mkdtemp(prefix="bench-pg-costs-"))
    port = bench_send.free_port()
    sink = subprocess.Popen([bench_send.SINK, "-u", "nobody", f"127.0.0.1:{port}", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server_cpu = BackendCpu(args.server, db)
    try:
        bench_send.build_store(url, args.n)
        with psycopg.connect(f"{args.server}/{db}", autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        server_cpu.start()
        time.sleep(0.3)
        server_cpu.mark()
        start_at = time.time() + 2.0
        pins = args.taskset.split(":") if args.taskset else []
        wrap = os.environ.get("BENCH_CHILD_PREFIX", "").split()  # e.g. "py-spy record -o out.svg --"
        procs = [subprocess.Popen([*(["taskset", "-c", pins[i % len(pins)]] if pins else []), *wrap, sys.executable,
                                   __file__, "--child", url, str(port), str(args.concurrency),
                                   str(folder) if args.trace else "", str(start_at),
                                   "1" if args.gate_only else "0", json.dumps(gate_options(args))],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(args.workers)]
        runs = []
        for proc in procs:
            out, err = proc.communicate()
            if proc.returncode:
                sys.exit(f"a sender failed:\n{err[-3000:]}")
            runs.append(json.loads(out.strip().splitlines()[-1]))
        time.sleep(0.3)
        server = server_cpu.stop()
        sent = sum(r["sent"] for r in runs)
        wall = max(r["end"] for r in runs) - min(r["start"] for r in runs)
        cpu = sum(r["cpu"] for r in runs)
        total = collections.Counter()
        for r in runs:
            total.update({k: v for k, v in r.items() if isinstance(v, int) and k != "sent"})
        print(f"{sent:,} messages, {args.workers} sender(s) × {args.concurrency} connections, {wall:.1f} s = "
              f"{sent / wall:,.0f} msgs/s; load {os.getloadavg()[0]:.1f}"
              + ("  (traced: CPU and rate do not count)" if args.trace else "")
              + ("  (gate only: no message, no SMTP)" if args.gate_only else "")
              + (f"  options {gate_options(args)}" if gate_options(args) else ""))
        print(f"  CPU per message: ours {cpu / sent * 1e6:.0f} µs, the server's backends {server / sent * 1e6:.0f} µs")
        rounds_ = max(total["rounds"], 1)
        print(f"  gate rounds: {total['rounds']:,} ({total['round_rows'] / rounds_:.1f} messages admitted and "
              f"{total['round_outcomes'] / rounds_:.1f} outcomes a round); claims: {total['claims']:,} "
              f"({total['claimed'] / max(total['claims'], 1):.0f} rows a claim)")
        if args.workers > 1:
            print("  sent per process: " + ", ".join(f"{r['sent']:,}" for r in runs))
        if args.trace:
            statements = collections.Counter()
            trips = sum(read_trace(p, statements) for p in sorted(folder.glob("*.trace")))
            n_statements = sum(statements.values())
            print(f"  statements: {n_statements:,} = {n_statements / sent:.2f} a message, "
                  f"{n_statements / rounds_:.2f} a gate round (everything the senders ran, over the rounds)")
            print(f"  round trips: {trips:,} = {trips / sent:.2f} a message")
            for name, n in statements.most_common():
                print(f"    {n:8,}  {n / sent:6.3f}/message  {name}")
    finally:
        if server_cpu.thread.is_alive():
            server_cpu.stop()
        sink.terminate()
        sink.wait()
        with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        if os.environ.get("KEEP_TRACE"):
            print(f"traces kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
