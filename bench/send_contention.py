"""Other writers during a send on SQLite, with a relay that is not on loopback.

The sender's gate holds SQLite's write lock while it re-checks consent and starts the messages
it admits. This measures what that costs everybody else who writes to the same store — the
web app's sign-ups and unsubscribes — when the relay takes LATENCY to answer each command:

    python bench/send_contention.py                  # 3,000 messages, relay 20 ms away
    python bench/send_contention.py --latency 0.05 -n 2000

An aiosmtpd relay answers MAIL FROM and the final dot after `--latency` seconds; a second
writer (its own sqlite3 connection, as another process would have) commits a one-row
transaction every 20 ms during the send. Reports the send rate and the writer's p50/p99/max
wait.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from newsletter.sending.messages import build_skeletons
from newsletter.sending.sender import Sender, SendOptions, run_sending
from newsletter.store import open_store

_spec = importlib.util.spec_from_file_location("bench_send", Path(__file__).with_name("send.py"))
bench_send = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_send)


class SlowRelay:
    def __init__(self, latency: float):
        self.latency = latency

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802, ANN001
        await asyncio.sleep(self.latency)
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001
        await asyncio.sleep(self.latency)
        return "250 OK"


def other_writer(path: str, stop: threading.Event, waits: list[float]) -> None:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    while not stop.is_set():
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE lists SET name = name")
        conn.execute("COMMIT")
        waits.append(time.perf_counter() - started)
        time.sleep(0.02)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000, help="subscribers (default 3,000)")
    parser.add_argument("--latency", type=float, default=0.02, help="the relay's reply delay in seconds")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    port = bench_send.free_port()
    relay = Controller(SlowRelay(args.latency), hostname="127.0.0.1", port=port)
    relay.start()
    path = f"{tempfile.mkdtemp()}/contention.db"
    url = f"sqlite:///{path}"
    bench_send.build_store(url, args.n)
    config = bench_send.config_for(url, port)
    skeletons = build_skeletons(config, bench_send.issue(), "asp-daily", "ASP daily summaries", bench_send.SLUG)
    sender = Sender(open_store(url), config, bench_send.SLUG, skeletons,
                    options=SendOptions(concurrency=args.concurrency, batch_size=500))
    waits: list[float] = []
    stop = threading.Event()
    writer = threading.Thread(target=other_writer, args=(path, stop, waits))
    writer.start()
    started = time.perf_counter()
    result = run_sending(sender.run())
    wall = time.perf_counter() - started
    stop.set()
    writer.join()
    relay.stop()
    waits.sort()
    ms = [1000 * waits[int(q * (len(waits) - 1))] for q in (0.5, 0.99, 1.0)]
    print(f"relay latency {args.latency * 1000:.0f} ms, {args.concurrency} connections: "
          f"{result.sent_now:,} sent in {wall:.1f} s = {result.sent_now / wall:,.0f} msgs/s; "
          f"other writer: {len(waits)} commits, wait p50 {ms[0]:.1f} ms, p99 {ms[1]:.1f} ms, max {ms[2]:.1f} ms")


if __name__ == "__main__":
    main()
