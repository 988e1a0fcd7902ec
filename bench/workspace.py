"""Benchmark of the staff workspace: 20 staff sessions reading pages while a campaign sends at
100/s and sign-ups arrive at 300/s.

Sets up as bench/web.py does (two Postfix `smtp-sink`s, `newsletter serve` over a fresh store,
`--readers` subscribers, `newsletter send … --rate 100`), makes `--staff` accounts of every
role and logs each in through the library (a real session each), then runs two load
generators at once (bench/http_load.py, separate processes): sign-ups posted at `--signup-rate`
per second (open loop), and the staff's page views, `--staff` connections each with its own
session cookie: each a person who, after a page answers, reads it for a random 0.5–1.5 × `--think`
seconds (default 2) before the next (`--think 0`: as fast as answered, a closed loop): the dashboard, a people search, one person's
page, the lists, the audit trail and the accounts page in turn. It reports p50/p99 latency of
the page views, in all and per page kind (and of the sign-ups), and fails when a page answered
anything but 200.

Before the campaign and the sign-ups start, each page kind is asked `--cpu-views` times alone
(4 connections) and the server's CPU (from /proc, all its threads) is divided by the requests:
the CPU a page costs, which the machine's load changes far less than it changes latencies.
`--profile FILE` runs the server under py-spy (collapsed stacks to FILE.<store>.txt).

    python bench/workspace.py --store sqlite
    python bench/workspace.py --store sqlite --views 600 --readers 100000
    python bench/workspace.py --store postgresql --views 3000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import web as bench_web
from http_load import cpu_seconds, load, report

from newsletter.config import load_config
from newsletter.installation import Newsletter
from newsletter.staff import accounts, directory, sessions
from newsletter.staff.roles import Role

PASSWORD = "a long night at the benchmark"
#: What each role reads in turn (only pages its role allows: a refusal would count as an error).
PAGES = {
    Role.OWNER: ["/admin/", "/admin/people?q=reader1", "PERSON", "/admin/lists", "/admin/audit", "/admin/accounts"],
    Role.SENDER: ["/admin/", "/admin/people?q=reader1", "PERSON", "/admin/lists", "/admin/issues"],
    Role.EDITOR: ["/admin/", "/admin/issues", "/admin/lists", "/admin/account"],
    Role.VIEWER: ["/admin/", "/admin/lists", "/admin/issues", "/admin/account"],
}
#: What each page is called in the report.
KINDS = {"/admin/": "dashboard", "/admin/people?q=reader1": "people search", "PERSON": "one person",
         "/admin/lists": "lists", "/admin/audit": "audit trail", "/admin/accounts": "accounts",
         "/admin/issues": "issues", "/admin/account": "own account"}


def page_view(page: str, cookie: str, key: str) -> list[str]:
    """The request of one page view with a session cookie."""
    path = f"/admin/people/{key}" if page == "PERSON" else page
    return ["GET", path, "text/plain", "", f"Cookie: nl_staff={cookie}\r\n"]


def cpu_per_page(workdir: Path, port: int, pid: int, cookies: list[tuple[str, Role]], key: str, n: int) -> list[dict]:
    """Each page kind alone, `n` times on 4 connections: the server's CPU per request."""
    rows = []
    for page, kind in KINDS.items():
        allowed = [cookie for cookie, role in cookies if page in PAGES[role]]
        requests = [page_view(page, allowed[i % len(allowed)], key) for i in range(n)]
        load(workdir, port, requests[:5], 1, 0)  # templates compiled, caches warm
        before = cpu_seconds(pid)
        result = load(workdir, port, requests, 4, 0)
        rows.append(report(f"{kind} (alone)", result, cpu_seconds(pid) - before))
    return rows


def staff_cookies(config_path: Path, n: int) -> tuple[list[tuple[str, Role]], str]:
    """`n` logged-in accounts (owners first, then every role in turn): their cookies, and one
    reader's key (for a person's page)."""
    newsletter = Newsletter(load_config(str(config_path)))
    roles = [Role.OWNER, Role.SENDER, Role.EDITOR, Role.VIEWER]
    cookies = []
    for i in range(n):
        role = Role.OWNER if i < 2 else roles[i % len(roles)]
        invitation = accounts.add_member(newsletter, f"staff{i}@bench.example.org", role)
        accounts.accept_invitation(newsletter, invitation.link.rsplit("/", 1)[1], PASSWORD)
        cookies.append((sessions.login(newsletter, f"staff{i}@bench.example.org", PASSWORD).cookie, role))
    key = directory.search(newsletter, "reader1@").people[0].key
    newsletter.store.dispose()
    return cookies, key


def run(store_kind: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    pg_db = None
    if store_kind == "sqlite":
        database_url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        pg_db = f"newsletter_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{bench_web.PG_SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_db}"')
        database_url = f"{bench_web.PG_SERVER.replace('postgresql://', 'postgresql+psycopg://')}/{pg_db}"
    sink_port, campaign_port, web_port = bench_web.free_port(), bench_web.free_port(), bench_web.free_port()
    base = f"http://127.0.0.1:{web_port}"
    config_path = workdir / "newsletter.toml"
    config_path.write_text(
        f'database_url = "{database_url}"\nbase_url = "{base}"\n'
        f'smtp_url = "smtp://127.0.0.1:{sink_port}?starttls=off"\n'
        "signup_hourly_ceiling = 0\nsignup_per_ip_per_hour = 0\nsignup_per_address_per_hour = 0\n"
        "signup_min_seconds = 3\nsignup_answer_ms = 0\n")
    (workdir / "secret.key").write_text(bench_web.SECRET + "\n")
    env = {**os.environ, "NEWSLETTER_CONFIG": str(config_path)}
    subprocess.run([*bench_web.NEWSLETTER, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*bench_web.NEWSLETTER, "lists", "create", "asp-daily", "ASP daily summaries",
                    "--languages", "en,fr,es,ar"], env=env, check=True, stdout=subprocess.DEVNULL)
    bench_web.seed_readers(database_url, args.readers)
    os.environ["NEWSLETTER_CONFIG"] = str(config_path)
    cookies, key = staff_cookies(config_path, args.staff)
    processes: list[subprocess.Popen] = []
    processes.append(subprocess.Popen([bench_web.SINK, "-u", "nobody", f"127.0.0.1:{sink_port}", "256"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    processes.append(subprocess.Popen([bench_web.SINK, "-u", "nobody", f"127.0.0.1:{campaign_port}", "256"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    serve = [*bench_web.NEWSLETTER, "serve", "--only", "web", "--port", str(web_port), "--log-level", "warning"]
    if args.profile:
        serve = [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw", "--rate", "250",
                 "-o", str(args.profile.with_suffix(f".{store_kind}.txt")), "--", *serve]
    server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL)
    processes.insert(0, server)
    rows = []
    try:
        bench_web.wait_for(lambda: bench_web._healthy(base), 90, "the server")
        server_pid = server.pid
        if args.profile:  # py-spy's child is the server
            server_pid = int(Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()[0])
        print(f"{store_kind}: each page alone, {args.cpu_views} times (load {os.getloadavg()[0]:.2f})", flush=True)
        cpu_rows = cpu_per_page(workdir, web_port, server_pid, cookies, key, args.cpu_views)
        sender_env = {**env, "NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{campaign_port}?starttls=off"}
        processes.append(subprocess.Popen([*bench_web.NEWSLETTER, "send", *map(str, bench_web.CONTENT), "--list",
                                           "asp-daily", "--yes", "--rate", str(args.campaign_rate)], env=sender_env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        bench_web.wait_for(lambda: bench_web.campaign_sent(database_url) > 0, 60, "the campaign to start sending")
        sent_before, started = bench_web.campaign_sent(database_url), time.perf_counter()

        # About as long as the page views take (a view's own time counted as 0.2 s).
        duration = args.views / max(1, args.staff) * (args.think + 0.2) + 5
        signups = [["POST", "/subscribe", "application/json",
                    json.dumps({"email": f"person{i}@bench.example.org", "name": f"Person {i}",
                                "language": bench_web.LANGUAGES[i % 4], "lists": ["asp-daily"]})]
                   for i in range(int(args.signup_rate * duration))]
        signup_dir = workdir / "signups"
        signup_dir.mkdir()
        signup_result: dict = {}
        thread = threading.Thread(target=lambda: signup_result.update(
            load(signup_dir, web_port, signups, 64, args.signup_rate)))
        thread.start()
        views, kinds = [], []
        for i in range(args.views):
            cookie, role = cookies[i % len(cookies)]
            pages = PAGES[role]
            page = pages[(i // len(cookies)) % len(pages)]
            views.append(page_view(page, cookie, key))
            kinds.append(KINDS[page])
        print(f"{store_kind}: {args.views} page views by {args.staff} staff sessions (think {args.think:g} s), "
              f"{len(signups)} sign-ups at {args.signup_rate:g}/s, campaign at --rate {args.campaign_rate:g}",
              flush=True)
        before = cpu_seconds(server_pid)
        result = load(workdir, web_port, views, args.staff, 0, think=args.think)
        rows.append(report(f"workspace pages (think {args.think:g} s)", result, cpu_seconds(server_pid) - before))
        rows[-1]["cpu_ms"] = None  # the sign-ups' CPU is in that window too: see the pages alone
        for kind in dict.fromkeys(kinds):
            rows.append(report(f"  {kind}", result, 0.0, only=[i for i, k in enumerate(kinds) if k == kind]))
        thread.join()
        rows.append(report("POST /subscribe", signup_result, 0.0))
        rows += cpu_rows
        sent = bench_web.campaign_sent(database_url) - sent_before
        campaign_rate = sent / (time.perf_counter() - started)
        print(f"  campaign: {campaign_rate:.0f}/s during the measurement (--rate {args.campaign_rate:g})", flush=True)
        rows.insert(len(rows) - len(cpu_rows), {"what": f"campaign (--rate {args.campaign_rate:g})", "requests": sent,
                                                "rps": campaign_rate, "p50": 0.0, "p99": 0.0, "errors": 0,
                                                "cpu_ms": None})
        for row in rows:
            row["store"] = store_kind
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
            with psycopg.connect(f"{bench_web.PG_SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--staff", type=int, default=20, help="staff sessions (connections)")
    parser.add_argument("--think", type=float, default=2.0,
                        help="each session's mean pause between pages, seconds (0: back to back)")
    parser.add_argument("--views", type=int, default=2000, help="page views in all")
    parser.add_argument("--signup-rate", type=float, default=300)
    parser.add_argument("--campaign-rate", type=float, default=100)
    parser.add_argument("--readers", type=int, default=20000)
    parser.add_argument("--cpu-views", type=int, default=60, help="requests of each page kind alone, for its CPU")
    parser.add_argument("--profile", type=Path, default=None,
                        help="run the server under py-spy and write its collapsed stacks to PROFILE.<store>.txt")
    args = parser.parse_args()
    rows = []
    for kind in (["sqlite", "postgresql"] if args.store == "both" else [args.store]):
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-workspace-{kind}-"))
        try:
            rows += run(kind, args, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n| store | request | requests | requests/s | p50 ms | p99 ms | errors | server CPU/request |  "
          f"(load {os.getloadavg()[0]:.2f})")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cpu = f"{r['cpu_ms']:.1f} ms" if r["cpu_ms"] else ""
        print(f"| {r['store']} | {r['what'].strip()} | {r['requests']} | {r['rps']:.0f} | {r['p50']:.1f} | "
              f"{r['p99']:.1f} | {r['errors']} | {cpu} |")
    if any(r["errors"] for r in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
