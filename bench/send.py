"""Sending benchmark: N subscribers, a ~20 KB two-part issue, end to end through the ledger into
Postfix's `smtp-sink` on loopback; then a hand-written aiosmtplib + EmailMessage loop for scale.

    python bench/send.py                 # 20,000 subscribers, SQLite, 8 connections
    python bench/send.py -n 100000       # flat in N?
    python bench/send.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench_send
    python bench/send.py --workers 2     # two sender processes share the campaign (`send --worker`)
    python bench/send.py --cli           # `newsletter send` as a user runs it, against smtp-source (send_cli.py)

Reports msgs/s, CPU seconds and peak RSS of the sending process (a child process, so that
building the store does not count; with --workers, the processes together: wall from the
first start to the last end, CPU summed, the largest RSS), the CPU spent re-checking consent
just before sending (the gate, see `send.Sender`), and the ratio to the naive loop. Needs
/usr/sbin/smtp-sink (Debian package postfix; the mail service itself need not run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import insert, select, text

from newsletter.config import Config
from newsletter.mail.compose import RenderedMail
from newsletter.mail.personalise import Field, marker
from newsletter.people import lists
from newsletter.sending import campaigns
from newsletter.sending.messages import build_skeletons
from newsletter.sending.sender import Sender, SendOptions, run_sending
from newsletter.statuses import SubscriberStatus, SubscriptionStatus
from newsletter.store import Subscriber, Subscription, open_store

SLUG = "bench-day-1"
SINK = "/usr/sbin/smtp-sink"


def issue() -> dict[str, RenderedMail]:
    """A ~20 KB issue (text + HTML), per language, with the usual markers."""
    out = {}
    for lang in ("en", "fr", "es", "ar"):
        items = "".join(
            f'<tr><td style="padding: 12px 24px; font-family: Georgia, serif; font-size: 16px; color: #222">'
            f"<h2 style=\"margin: 0 0 8px; font-size: 18px\">Item {i}: the Assembly of States Parties, day 1</h2>"
            f"<p style=\"margin: 0\">Delegations discussed the budget of the Court, cooperation and the election "
            f"of the Prosecutor's deputies; civil society spoke in the general debate. [{lang}]</p></td></tr>"
            for i in range(28))
        html = (f'<html lang="{lang}"><body style="margin: 0; background: #f4f4f4"><table width="100%">'
                f"<tr><td>Dear {marker(Field.NAME)},</td></tr>{items}"
                f'<tr><td><a href="{marker(Field.UNSUBSCRIBE_URL)}">Unsubscribe</a> · '
                f'<a href="{marker(Field.PREFERENCES_URL)}">Preferences</a></td></tr></table></body></html>')
        body = "".join(f"Item {i}: the Assembly of States Parties, day 1\n"
                       f"Delegations discussed the budget of the Court and cooperation. [{lang}]\n\n" for i in range(40))
        text_part = (f"Dear {marker(Field.NAME)},\n\n{body}Unsubscribe: {marker(Field.UNSUBSCRIBE_URL)}\n"
                     f"Preferences: {marker(Field.PREFERENCES_URL)}\n")
        out[lang] = RenderedMail(lang, f"Assembly of States Parties: day 1 [{lang}]", text_part, html)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_for(url: str, port: int) -> Config:
    return Config(database_url=url, base_url="https://news.example.org",
                  smtp_url=f"smtp://127.0.0.1:{port}?starttls=off&timeout=60",
                  secret_key="bench-secret-key-0123456789abcdef")


def build_store(url: str, n: int) -> None:
    store = open_store(url)
    store.upgrade()
    now = datetime.now(timezone.utc)
    with store.session() as session:
        if store.dialect == "postgresql":
            session.execute(text("TRUNCATE outbox, campaigns, consent_events, subscriptions, suppressions, "
                                 "subscribers, lists RESTART IDENTITY CASCADE"))
        mailing_list = lists.create_list(session, "asp-daily", "ASP daily summaries",
                                         languages=["en", "fr", "es", "ar"], now=now)
        langs = ("en", "fr", "es", "ar")
        for start in range(0, n, 5000):
            rows = [dict(key=f"k{i:012d}", email=f"person{i:07d}@example{i % 50}.org", name=f"Person {i}",
                         language=langs[i % 4], status=SubscriberStatus.ACTIVE, created_at=now, updated_at=now)
                    for i in range(start, min(n, start + 5000))]
            session.execute(insert(Subscriber), rows)
        ids = session.scalars(select(Subscriber.id)).all()
        for start in range(0, len(ids), 5000):
            session.execute(insert(Subscription), [
                dict(subscriber_id=sid, list_id=mailing_list.id, status=SubscriptionStatus.ACTIVE,
                     created_at=now, confirmed_at=now) for sid in ids[start:start + 5000]])
    with store.session() as session:
        campaigns.start_campaign(session, SLUG, "asp-daily", now=now, subject="Day 1",
                                 languages=("en", "fr", "es", "ar"), default_language="en")
    store.dispose()


def child_send(url: str, port: int, concurrency: int, start_at: float) -> None:
    """Runs in its own process: send the campaign, print JSON figures."""
    from newsletter.store import rounds

    recheck = {"cpu": 0.0, "rows": 0}
    plain = rounds.write_and_recheck

    def timed_recheck(conn, *args, **kwargs):
        c = time.thread_time()
        try:
            return plain(conn, *args, **kwargs)
        finally:
            recheck["cpu"] += time.thread_time() - c
            recheck["rows"] += len(args[3])

    rounds.write_and_recheck = timed_recheck  # the gate looks it up on the module
    config = config_for(url, port)
    store = open_store(url)
    skeletons = build_skeletons(config, issue(), "asp-daily", "ASP daily summaries", SLUG)
    sender = Sender(store, config, SLUG, skeletons, options=SendOptions(concurrency=concurrency, batch_size=500))
    time.sleep(max(0.0, start_at - time.time()))  # workers start together
    t0, c0, started = time.perf_counter(), time.process_time(), time.time()
    result = (asyncio.run if os.environ.get("BENCH_LOOP") == "asyncio" else run_sending)(sender.run())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = len(next(iter(skeletons.values())).render(
        __import__("newsletter.mail.message", fromlist=["Recipient"]).Recipient(
            "a@example.org", "A", "<x@example.org>", "https://x/u/" + "t" * 100, "https://x/p/" + "t" * 100,
            "mailto:u@example.org"), date="Mon, 23 Nov 2026 09:00:00 +0000"))
    print(json.dumps({"status": result.status.value, "sent": result.sent_now, "wall": wall, "cpu": cpu,
                      "rss_mb": rss_mb, "size": size, "start": started, "end": started + wall,
                      "recheck_cpu": recheck["cpu"], "recheck_rows": recheck["rows"],
                      "loop": "asyncio" if os.environ.get("BENCH_LOOP") == "asyncio" else loop_name()}))


def loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def child_naive(port: int, count: int) -> None:
    """What a user would write by hand: EmailMessage per recipient, one aiosmtplib connection."""
    from email.message import EmailMessage

    import aiosmtplib

    from newsletter.mail.personalise import fill

    mail = issue()["en"]

    async def run() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, use_tls=False)
        await client.connect()
        for i in range(count):
            values = {Field.NAME: f"Person {i}", Field.UNSUBSCRIBE_URL: f"https://news.example.org/u/{i}",
                      Field.PREFERENCES_URL: f"https://news.example.org/p/{i}"}
            msg = EmailMessage()
            msg["From"] = "Coalition for the ICC <news@example.org>"
            msg["To"] = f"Person {i} <person{i}@example.org>"
            msg["Subject"] = mail.subject
            msg["List-Unsubscribe"] = f"<https://news.example.org/u/{i}>"
            msg.set_content(fill(mail.text, values, html_part=False), cte="quoted-printable")
            msg.add_alternative(fill(mail.html, values, html_part=True), subtype="html", cte="quoted-printable")
            await client.send_message(msg)
        await client.quit()

    t0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(run())
    print(json.dumps({"sent": count, "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}))


def run_child(*args: str) -> dict:
    return run_children([args])[0]


def run_children(arg_lists: list) -> list[dict]:
    procs = [subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for args in arg_lists]
    results = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode:
            sys.exit(f"a child failed:\n{err}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20_000, help="subscribers (default 20,000)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    parser.add_argument("--naive", type=int, default=2000, help="messages for the hand-written loop")
    parser.add_argument("--workers", type=int, default=1, help="sender processes sharing the campaign")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    cli = parser.add_argument_group("--cli: `newsletter send` through the CLI, against smtp-source (bench/send_cli.py)")
    cli.add_argument("--cli", action="store_true", help="drive the CLI: init, lists create, import, send")
    cli.add_argument("--sends", default="defaults,3,32",
                     help="the sends of each round: `defaults` (the CLI's) or a --concurrency (default: %(default)s)")
    cli.add_argument("--rounds", type=int, default=1, help="rounds of smtp-source and the sends")
    cli.add_argument("--big", type=int, default=0, help="then start a campaign of this many recipients")
    cli.add_argument("--big-send", type=int, default=50_000, help="messages of the big campaign sent before Ctrl-C")
    cli.add_argument("--pythons", default=None, metavar="PY[,PY…]",
                     help="A/B: run the sends with each tree's python in turn (each its own store), e.g. "
                          "/tmp/old/.venv/bin/python,.venv/bin/python")
    cli.add_argument("--profile", default=None, metavar="DIR",
                     help="record each send's first process with py-spy (raw folded stacks) into DIR")
    cli.add_argument("--taskset", default=None, metavar="CPUS[:CPUS…]",
                     help="pin the i-th sender process to the i-th CPU list (taskset -c); smtp-source to the first")
    args = parser.parse_args()
    if args.cli:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import send_cli

        send_cli.main(args)
        return
    if args.child:
        if args.child[0] == "send":
            child_send(args.child[1], int(args.child[2]), int(args.child[3]), float(args.child[4]))
        else:
            child_naive(int(args.child[1]), int(args.child[2]))
        return
    if not Path(SINK).exists():
        sys.exit(f"{SINK} is missing: apt-get install -y postfix")
    folder = Path(tempfile.mkdtemp(prefix="bench-send-"))
    url = args.database_url or f"sqlite:///{folder}/store.db"
    port = free_port()
    sink = subprocess.Popen([SINK, "-u", "nobody", f"127.0.0.1:{port}", "1024"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.3)
        t0 = time.perf_counter()
        build_store(url, args.n)
        print(f"store: {args.n:,} subscribers and their ledger rows in {time.perf_counter() - t0:.1f} s ({url.split(':')[0]})")
        start_at = time.time() + 2.0  # after every child has imported and connected to the store
        runs = run_children([("--child", "send", url, str(port), str(args.concurrency), str(start_at))
                             for _ in range(args.workers)])
        sent = sum(r["sent"] for r in runs)
        assert sent == args.n and all(r["status"] == "finished" for r in runs), runs
        wall = max(r["end"] for r in runs) - min(r["start"] for r in runs)
        cpu, rss = sum(r["cpu"] for r in runs), max(r["rss_mb"] for r in runs)
        rate = sent / wall
        who = f"{args.workers} processes x " if args.workers > 1 else ""
        print(f"newsletter send: {sent:,} messages of {runs[0]['size'] / 1024:.1f} KB in {wall:.1f} s "
              f"= {rate:,.0f} msgs/s; CPU {cpu:.1f} s ({cpu / sent * 1e6:.0f} us/message); peak RSS {rss:.0f} MB "
              f"({who}{args.concurrency} connections; event loop {runs[0]['loop']})")
        if args.workers > 1:
            print("  sent per process: " + ", ".join(f"{r['sent']:,}" for r in runs))
        recheck_cpu, recheck_rows = sum(r["recheck_cpu"] for r in runs), sum(r["recheck_rows"] for r in runs)
        print(f"  gate rounds' statements (outcomes, consent re-check just before sending): {recheck_rows:,} rows, CPU {recheck_cpu:.2f} s "
              f"({recheck_cpu / max(recheck_rows, 1) * 1e6:.0f} us/message, "
              f"{recheck_cpu / max(cpu, 1e-9):.0%} of the sender's CPU)")
        naive = run_child("--child", "naive", str(port), str(args.naive))
        naive_rate = naive["sent"] / naive["wall"]
        print(f"hand-written aiosmtplib + EmailMessage loop: {naive['sent']:,} messages in {naive['wall']:.1f} s "
              f"= {naive_rate:,.0f} msgs/s; CPU {naive['cpu']:.1f} s")
        print(f"ratio: {rate / naive_rate:.1f}x")
    finally:
        sink.terminate()
        sink.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
