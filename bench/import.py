"""Benchmark: CSV import rate (valid rows/s) and peak memory for generated files.

    .venv/bin/python bench/import.py                      # 100k and 1M rows on SQLite
    .venv/bin/python bench/import.py --sizes 100000 --postgres postgresql://postgres@127.0.0.1:5432

Generates CSV files in a temporary folder (addresses spread over a few webmail domains and
thousands of organisation domains, names in four languages, 0.5 % bad rows, 1 % duplicates
differing in case), then imports each with the real `import_csv` into a fresh store, as a
confirmed import (a pending import of a million rows would be a million confirmation mails;
their cost is measured separately on a small sample through a local SMTP sink).

Baselines, in the same run:
- email-validator alone, per address, on the same addresses (no memo: the cost the importer avoids);
- a naive import: `consent.subscribe` row by row through the ORM, one transaction per row.

Peak memory is the process's resident-set high-water mark during each import (Linux /proc;
reset before each run), and its rise over the resident set before the run.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import socket
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from email_validator import validate_email

from newsletter.config import Config
from newsletter.errors import InvalidAddress
from newsletter.installation import Newsletter
from newsletter.people import consent, lists
from newsletter.people.consent import ConsentContext
from newsletter.people.importer import ImportOptions, import_csv
from newsletter.statuses import Channel
from newsletter.store import open_store

WEBMAIL = ["gmail.com", "yahoo.fr", "hotmail.com", "outlook.com", "yahoo.com", "gmx.de", "orange.fr", "hotmail.es"]
FIRST = ["Ana", "Jean", "Amina", "Kofi", "Lucía", "Marc", "Priya", "Tomáš", "Fatou", "Omar", "Inès", "Sami", "Zoé", "José"]
LAST = ["Ruiz", "Martin", "Haddad", "Mensah", "Fernández", "Dubois", "Nair", "Novák", "Diallo", "Khalil", "Moreau"]
ASCII = str.maketrans("áíéèšúáč", "aieesuac")
BAD = ["not-an-address", "two@@example.org", "trailing.dot.@example.org", "space in@example.org", ""]


def generate(path: Path, n: int, seed: int = 23) -> int:
    """Write an n-row CSV; returns how many rows are valid and distinct (the expected imports)."""
    rnd = random.Random(seed)
    org_domains = [f"ngo{i}.{rnd.choice(['org', 'net', 'ong.fr', 'org.ar', 'or.ke'])}" for i in range(5000)]
    valid = 0
    recent: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("email,name,language,lists\n")
        for i in range(n):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            domain = rnd.choice(WEBMAIL) if rnd.random() < 0.35 else rnd.choice(org_domains)
            local = f"{first}.{last}.{i}".lower().translate(ASCII)
            email = f"{local}@{domain}"
            roll = rnd.random()
            if roll < 0.005:
                email = rnd.choice(BAD)
            elif roll < 0.015 and recent:
                email = " " + rnd.choice(recent).upper() + " "  # an earlier row's address, shouted
            else:
                valid += 1
                recent = [*recent[-9:], email]
            language = rnd.choice(["en", "fr", "es", "ar", "", "EN"])
            slugs = rnd.choice(["asp-daily", "alerts", "asp-daily|alerts"])
            f.write(f"{email},{first} {last},{language},{slugs}\n")
    return valid


def reset_peak() -> int:
    """Reset the resident-set high-water mark; returns the current resident set in KiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_kib("VmRSS")


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def fresh_newsletter(kind: str, folder: Path, pg_server: str | None, smtp_url: str | None = None) -> Newsletter:
    if kind == "sqlite":
        url = f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    else:
        import psycopg

        name = f"newsletter_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"{pg_server}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"{pg_server.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    store = open_store(url)
    store.upgrade()
    config = Config(database_url=url, secret_key="bench-secret-key-0123456789",
                    smtp_url=smtp_url or "smtp://127.0.0.1:9?starttls=off")
    now = datetime.now(timezone.utc)
    with store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"], now=now)
        lists.create_list(session, "alerts", "Campaign alerts", languages=["en", "fr", "es", "ar"], now=now)
    return Newsletter(config, store)


def drop(newsletter: Newsletter, pg_server: str | None) -> None:
    url = newsletter.store.engine.url
    newsletter.store.dispose()
    if url.get_backend_name() == "postgresql":
        import psycopg

        with psycopg.connect(f"{pg_server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def baseline_validator(path: Path, sample: int) -> float:
    """Microseconds per address for email-validator alone (run before the memo is installed)."""
    addresses = []
    with path.open(encoding="utf-8") as f:
        next(f)
        for line in f:
            addresses.append(line.split(",", 1)[0])
            if len(addresses) >= sample:
                break
    start = time.perf_counter()
    for a in addresses:
        try:
            validate_email(a, check_deliverability=False)
        except Exception:  # noqa: BLE001  (invalid ones cost the same to find)
            pass
    return (time.perf_counter() - start) / len(addresses) * 1e6


def baseline_naive(kind: str, folder: Path, pg_server: str | None, path: Path, sample: int) -> float:
    """Rows per second for consent.subscribe row by row, one ORM transaction per row."""
    newsletter = fresh_newsletter(kind, folder, pg_server)
    ctx = ConsentContext(channel=Channel.IMPORT, source="import:naive")
    rows = []
    with path.open(encoding="utf-8") as f:
        next(f)
        for line in f:
            email, name, language, slugs = line.rstrip("\n").split(",")
            rows.append((email, name, language.lower() or None, slugs.split("|")))
            if len(rows) >= sample:
                break
    start = time.perf_counter()
    for email, name, language, slugs in rows:
        try:
            with newsletter.store.session() as session:
                consent.subscribe(session, email, name, language, slugs, ctx, now=datetime.now(timezone.utc),
                                  languages=("en", "fr", "es", "ar"))
        except (InvalidAddress, ValueError):
            pass
    elapsed = time.perf_counter() - start
    drop(newsletter, pg_server)
    return len(rows) / elapsed


def run_import(kind: str, folder: Path, pg_server: str | None, path: Path, expected: int, workers: int,
               rerun: bool) -> dict:
    newsletter = fresh_newsletter(kind, folder, pg_server)
    options = ImportOptions(confirmed=True, consent_note="benchmark", workers=workers)
    before = reset_peak()
    cpu = time.process_time()
    start = time.perf_counter()
    report = import_csv(newsletter, path, options)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = status_kib("VmHWM")
    assert report.imported == expected, (report.imported, expected)
    load = os.getloadavg()[0]
    rerun_seconds = None
    if rerun:
        start = time.perf_counter()
        again = import_csv(newsletter, path, options)  # a re-run adds nothing
        rerun_seconds = time.perf_counter() - start
        assert again.imported == 0, again
    drop(newsletter, pg_server)
    return {"rows": report.rows, "valid": report.valid, "seconds": elapsed, "rate": report.valid / elapsed,
            "cpu": cpu, "peak_mib": peak / 1024, "rise_mib": (peak - before) / 1024, "load": load,
            "rerun": rerun_seconds}


def run_pending_with_mail(folder: Path, path: Path, sample: int) -> float:
    """Valid rows/s of a pending import whose confirmation mails go to a local SMTP sink."""
    from newsletter.transport.sink import Sink

    small = folder / "pending.csv"
    with path.open(encoding="utf-8") as src, small.open("w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i > sample:
                break
            dst.write(line)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Sink(folder / "mail", port=port) as sink:
        newsletter = fresh_newsletter("sqlite", folder, None, smtp_url=f"smtp://127.0.0.1:{sink.port}?starttls=off")
        start = time.perf_counter()
        report = import_csv(newsletter, small, ImportOptions())
        elapsed = time.perf_counter() - start
        assert report.confirmations_sent == report.imported
        drop(newsletter, None)
    return report.imported / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="Row counts, comma-separated.")
    parser.add_argument("--postgres", default=None, metavar="URL",
                        help="Also run on PostgreSQL (a server URL without database, e.g. postgresql://postgres@127.0.0.1:5432).")
    parser.add_argument("--postgres-sizes", default="100000", help="Row counts for PostgreSQL (default 100000).")
    parser.add_argument("--workers", type=int, default=0, help="ImportOptions.workers (default 0).")
    parser.add_argument("--naive-sample", type=int, default=2000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-") as tmp:
        folder = Path(tmp)
        print(f"machine: {os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
              f"load average {os.getloadavg()[0]:.1f}")
        files = {}
        for n in sizes:
            path = folder / f"people-{n}.csv"
            files[n] = (path, generate(path, n))
            print(f"generated {path.name}: {n} rows, {path.stat().st_size / 1e6:.1f} MB, {files[n][1]} to import")
        first = files[sizes[0]][0]
        per_address = baseline_validator(first, 20_000)
        print(f"baseline email-validator alone: {per_address:.1f} µs per address = {1e6 / per_address:,.0f} addresses/s")
        for kind in kinds:
            naive = baseline_naive(kind, folder, args.postgres, first, args.naive_sample)
            print(f"baseline naive consent.subscribe per row ({kind}, {args.naive_sample} rows): {naive:,.0f} rows/s")
            kind_sizes = sizes if kind == "sqlite" else [int(x) for x in args.postgres_sizes.split(",")]
            for n in kind_sizes:
                if n not in files:
                    path = folder / f"people-{n}.csv"
                    files[n] = (path, generate(path, n))
                path, expected = files[n]
                r = run_import(kind, folder, args.postgres, path, expected, args.workers, rerun=n == min(kind_sizes))
                rerun = f"; re-run {r['rerun']:.1f} s, nothing added" if r["rerun"] is not None else ""
                print(f"import {kind:<10} {n:>9,} rows: {r['valid']:,} valid in {r['seconds']:.1f} s = "
                      f"{r['rate']:,.0f} valid rows/s (CPU {r['cpu']:.1f} s, load {r['load']:.1f}); "
                      f"peak RSS {r['peak_mib']:.0f} MiB (+{r['rise_mib']:.0f} MiB during the import){rerun}; "
                      f"{r['rate'] / naive:.0f}x the naive loop, {r['rate'] * per_address / 1e6:.2f}x validator-alone")
        pending = run_pending_with_mail(folder, first, 1000)
        print(f"pending import with confirmation mails to a local SMTP sink (1,000 rows): {pending:,.0f} rows/s")
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(f"process max RSS over the whole run: {usage.ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
