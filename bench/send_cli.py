"""`bench/send.py --cli`: `newsletter send` driven as a user drives it, against `smtp-source`.

A fresh folder; `newsletter init`, `lists create`, `import --confirmed` of N generated people,
then `newsletter send` of a ~21 KB issue with the CLI's defaults and with each `--concurrency`
asked for, into one Postfix `smtp-sink`. In the same run, Postfix's `smtp-source` (C, 8
sessions, the same message size) sends into the same sink: every figure is also printed as a
share of it, because this machine's speed drifts more between runs than the changes measured.

Figures, per send: the sink's span rate (messages from its first to its last message over
that time: start-up and shutdown left out), the CPU of the sender processes over the same
span per message (user + system, /proc), and their peak RSS (wait4). With `--big M`, a
campaign of M recipients is started and its start time measured (from launching `newsletter
send` to the sink's first message: rendering, planning, the ledger's M rows, the first claim),
then `--big-send` messages are sent and the send stopped with Ctrl-C (SIGINT).

    python bench/send.py --cli                                   # SQLite, defaults, 3 and 32
    python bench/send.py --cli --database-url postgresql+psycopg://postgres@127.0.0.1:5432 --workers 2
    python bench/send.py --cli --big 1000000 --sends ''          # the start of a 1M campaign
    python bench/send.py --cli --workers 2 --taskset 0:1 …       # worker 1 on CPU 0, worker 2 on CPU 1
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples" / "asp23"
LANGUAGES = ("en", "fr", "es", "ar")
#: News items added to the Day 3 example so that a message is about 21 KB, as in issue #17.
EXTRA_NEWS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SinkCounter:
    """The running count of `smtp-sink -c` (its last `mesg=N`), read from the end of its log."""

    def __init__(self, log: Path):
        self.fd = os.open(log, os.O_RDONLY)

    def count(self) -> int:
        size = os.fstat(self.fd).st_size
        tail = os.pread(self.fd, 200, max(0, size - 200))
        found = re.findall(rb"mesg=(\d+)", tail)
        return int(found[-1]) if found else 0


@dataclass
class Figures:
    label: str
    messages: int
    span: float  # seconds from the sink's first message of the run to its last
    cpu: float  # sender CPU seconds over the span (nan when not measured)
    rss_mb: float
    start: float = float("nan")  # launch to first message
    ref: float = float("nan")  # smtp-source's span rate in the same round
    start_cpu: float = float("nan")  # the senders' CPU from launch to the first message

    @property
    def rate(self) -> float:
        return (self.messages - 1) / self.span if self.span > 0 else float("nan")

    @property
    def cpu_us(self) -> float:
        return self.cpu / max(self.messages - 1, 1) * 1e6


def peak_rss_mb(pid: int) -> float:
    """The high-water mark of a live process's resident set (VmHWM), in MB; 0 once it is gone.

    Not wait4's ru_maxrss: that counts the forked bench's own pages from before the exec."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def watch(counter: SinkCounter, base: int, expected: int, pids: list[int], *, stop_at: int | None = None,
          timeout: float = 3600) -> tuple[float, float, float, float, int, float]:
    """Poll the sink until `expected` messages past `base` arrived (or every pid has exited).

    Returns (time of the first message, of the last, CPU of `pids` at the first, at the last,
    messages, the largest peak RSS of the pids in MB)."""
    first = last = cpu_first = cpu_last = float("nan")
    seen = base
    rss = 0.0
    next_rss = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if time.monotonic() >= next_rss:
            rss = max([rss] + [peak_rss_mb(p) for p in pids])
            next_rss = time.monotonic() + 0.05
        now_count = counter.count()
        now = time.perf_counter()
        if now_count > seen:
            cpu = sum(cpu_seconds(p) for p in pids)
            if seen == base:
                first, cpu_first = now, cpu
            seen, last, cpu_last = now_count, now, cpu
            if stop_at is not None and seen - base >= stop_at:
                break
            if seen - base >= expected:
                break
        elif all(_exited(p) for p in pids):
            break
        time.sleep(0.002)
    rss = max([rss] + [peak_rss_mb(p) for p in pids])
    return first, last, cpu_first, cpu_last, seen - base, rss


def _exited(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def reap(proc: subprocess.Popen) -> tuple[int, float]:
    """Wait for a child; (exit status, its peak RSS in MB, read just before it is reaped)."""
    rss = peak_rss_mb(proc.pid)
    proc.wait()
    return proc.returncode, rss


class Bench:
    def __init__(self, folder: Path, database_url: str | None, taskset: str | None, python: str = sys.executable,
                 profile: Path | None = None):
        self.folder = folder
        #: Where py-spy's profiles of the first sender process of each send go (None: not profiled).
        self.profile = profile
        #: `newsletter` as this bench runs it: `python -m newsletter` of the tree under test.
        self.command = [python, "-m", "newsletter"]
        # "0:1": the first sender process on CPU 0, the second on CPU 1 (smtp-source on the first).
        self.pins = taskset.split(":") if taskset else []
        self.port = free_port()
        self.env = {**os.environ, "NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{self.port}?starttls=off&timeout=60",
                    "NEWSLETTER_BASE_URL": "https://news.example.org"}
        self.pg_db = None
        if database_url and database_url.startswith("postgresql"):
            import psycopg

            self.pg_server = database_url.replace("postgresql+psycopg://", "postgresql://").rstrip("/")
            self.pg_db = f"bench_cli_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(f"{self.pg_server}/postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.pg_db}"')
            self.env["NEWSLETTER_DATABASE_URL"] = f"postgresql+psycopg://{self.pg_server.split('://', 1)[1]}/{self.pg_db}"
        self.sink_log = folder / "sink.log"
        with open(self.sink_log, "wb") as log:
            self.sink = subprocess.Popen([SINK, "-c", "-u", "nobody", f"127.0.0.1:{self.port}", "1024"], stdout=log,
                                         stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        self.counter = SinkCounter(self.sink_log)

    def pinned(self, index: int) -> list[str]:
        """The `taskset` prefix of the index-th process (none without --taskset)."""
        return ["taskset", "-c", self.pins[index % len(self.pins)]] if self.pins else []

    def close(self) -> None:
        self.sink.terminate()
        self.sink.wait()
        if self.pg_db:
            import psycopg

            with psycopg.connect(f"{self.pg_server}/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_db}" WITH (FORCE)')

    def newsletter(self, *args: str) -> str:
        out = subprocess.run([*self.command, *args], cwd=self.folder, env=self.env, capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"newsletter {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def setup(self, people: int) -> float:
        """init, lists create, import --confirmed of `people`; returns the import's seconds."""
        self.newsletter("init")
        self.newsletter("lists", "create", "asp-daily", "ASP daily summaries", "--languages", ",".join(LANGUAGES))
        return self.add_people(people, 0)

    def add_people(self, count: int, start: int) -> float:
        path = self.folder / f"people-{start}.csv"
        with open(path, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["email", "name", "language"])
            for i in range(start, start + count):
                out.writerow([f"reader{i:07d}@org{i % 997}.example.org", f"Reader {i}", LANGUAGES[i % 4]])
        t0 = time.perf_counter()
        self.newsletter("import", str(path), "--list", "asp-daily", "--confirmed", "--consent-note",
                        "benchmark readers, generated")
        path.unlink()
        return time.perf_counter() - t0

    def content(self, slug: str) -> list[str]:
        """The Day 3 example in four languages under a new slug, with EXTRA_NEWS more items."""
        folder = self.folder / slug
        folder.mkdir()
        files = []
        for source in sorted(EXAMPLES.glob("day-3.*.md")):
            text = source.read_text().replace("slug: asp23-day-3", f"slug: {slug}")
            extra = "".join(
                f"  - date: 2024-12-04\n    title: Side event {i} on the work of the Court\n"
                f"    link: https://www.coalitionfortheicc.org/news/side-event-{i}\n    summary: >\n"
                "      Member organisations met delegations on the margins of the Assembly to talk about\n"
                "      victims' participation, the protection of witnesses and the cooperation of states\n"
                "      with the Court, and agreed to keep one another informed through the week.\n"
                for i in range(EXTRA_NEWS))
            text = text.replace("\nnews:\n", "\nnews:\n" + extra, 1)
            target = folder / source.name
            target.write_text(text)
            files.append(str(target))
        return files

    def message_size(self, files: list[str]) -> int:
        out = self.folder / "preview"
        self.newsletter("preview", *files, "--lang", "en", "--out", str(out))
        size = max(p.stat().st_size for p in out.glob("*.eml"))
        shutil.rmtree(out)
        return size

    def smtp_source(self, messages: int, size: int) -> Figures:
        base = self.counter.count()
        proc = subprocess.Popen([*self.pinned(0), SOURCE, "-s", "8", "-m", str(messages), "-l", str(size), "-d",
                                 "-M", "bench.example.org", "-f", "news@example.org", "-t",
                                 "reader@example.org", f"127.0.0.1:{self.port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first, last, cpu0, cpu1, seen, rss = watch(self.counter, base, messages, [proc.pid])
        code, _ = reap(proc)
        if code or seen < messages:
            sys.exit(f"smtp-source exited with {code} after {seen} messages")
        return Figures("smtp-source, 8 sessions", seen, last - first, cpu1 - cpu0, rss)

    def send(self, label: str, files: list[str], options: list[str], *, workers: int = 1, expected: int,
             stop_after: int | None = None) -> Figures:
        base = self.counter.count()
        command = [*self.command, "send", *files, "--list", "asp-daily", "--yes", *options]
        t0 = time.perf_counter()
        procs = [subprocess.Popen([*self.pinned(0), *command], cwd=self.folder, env=self.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)]
        spy = self._py_spy(label, procs[0].pid)
        if workers > 1:
            self._wait_for_campaign(procs[0], files)
            procs += [subprocess.Popen([*self.pinned(i), *command, "--worker"], cwd=self.folder, env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                      for i in range(1, workers)]
        first, last, cpu0, cpu1, seen, rss = watch(self.counter, base, expected, [p.pid for p in procs],
                                                   stop_at=stop_after)
        if stop_after is not None:
            for p in procs:
                p.send_signal(signal.SIGINT)
        for p in procs:
            err = p.stderr.read()
            code, peak = reap(p)
            rss = max(rss, peak)
            if code and stop_after is None:
                sys.exit(f"newsletter send ({label}) exited with {code}:\n{err[-2000:]}")
        if spy is not None:
            spy.wait()
        if stop_after is None and seen < expected:
            sys.exit(f"newsletter send ({label}): the sink has {seen} of {expected} messages")
        return Figures(label, seen, last - first, cpu1 - cpu0, rss, start=first - t0, start_cpu=cpu0)

    def _py_spy(self, label: str, pid: int) -> subprocess.Popen | None:
        """py-spy recording `pid` until it exits (raw folded stacks, native frames left out), or None."""
        if self.profile is None:
            return None
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        name = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")
        self.profile.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--gil",
                                 "--output", str(self.profile / f"{name}.txt")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _wait_for_campaign(self, first: subprocess.Popen, files: list[str]) -> None:
        """Until the first process has started the campaign (its ledger written): `--worker` joins it."""
        slug = Path(files[0]).parent.name
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            out = subprocess.run([*self.command, "campaigns"], cwd=self.folder, env=self.env, capture_output=True,
                                 text=True).stdout
            if any(line.split()[:1] == [slug] and " sending " in line for line in out.splitlines()):
                return
            time.sleep(0.05)
        sys.exit("the first sender did not start the campaign")


def share(value: float, of: float) -> str:
    return f"{value / of:.0%}" if of == of and of else "–"


def print_table(sources: list[Figures], rows: list[Figures]) -> None:
    print("\n| sender | msgs | span msgs/s | share of smtp-source | CPU µs/message (span) | peak RSS |")
    print("|---|---|---|---|---|---|")
    for s in sources:
        print(f"| {s.label} | {s.messages:,} | {s.rate:,.0f} | 100% | {s.cpu_us:.0f} | {s.rss_mb:.0f} MB |")
    for r in rows:
        print(f"| {r.label} | {r.messages:,} | {r.rate:,.0f} | {share(r.rate, r.ref)} | {r.cpu_us:.0f} | "
              f"{r.rss_mb:.0f} MB |")


def tree_name(python: str) -> str:
    """A short name for the tree a python belongs to (its venv's parent folder)."""
    parts = Path(python).absolute().parts
    return parts[-4] if len(parts) >= 4 and parts[-3] == ".venv" else str(Path(python).parent.name or python)


def main(args) -> None:
    for tool in (SINK, SOURCE):
        if not Path(tool).exists():
            sys.exit(f"{tool} is missing: apt-get install -y postfix")
    folder = Path(tempfile.mkdtemp(prefix="bench-send-cli-"))
    # --pythons A,B: one store per tree (each tree's own migrations), the sends alternating
    # between the trees (A, B, A, B …) in each round, so that each pair runs back to back.
    pythons = [p for p in (args.pythons or "").split(",") if p] or [sys.executable]
    names = [tree_name(p) for p in pythons]
    benches: list[Bench] = []
    try:
        for i, python in enumerate(pythons):  # inside the try: a failure closes the sinks made so far
            sub = folder / f"tree-{i}"
            sub.mkdir()
            benches.append(Bench(sub, args.database_url, args.taskset, python,
                                 Path(args.profile) if args.profile else None))
        bench = benches[0]
        store = "PostgreSQL" if bench.pg_db else "SQLite"
        for b, name in zip(benches, names):
            seconds = b.setup(args.n)
            print(f"{store}: imported {args.n:,} people with `newsletter import --confirmed` in {seconds:.1f} s"
                  + (f" ({name})" if len(benches) > 1 else "") + f"; load {os.getloadavg()[0]:.2f}", flush=True)
        sends = [s for s in args.sends.split(",") if s]
        size = bench.message_size(bench.content("bench-size"))
        print(f"message: {size / 1024:.1f} KB (English, as sent)", flush=True)
        rows: list[Figures] = []
        sources: list[Figures] = []
        for round_no in range(args.rounds):
            sources.append(bench.smtp_source(args.n, size))
            print(f"  {sources[-1].label}: {sources[-1].rate:,.0f} msgs/s", flush=True)
            for spec in sends:
                options = [] if spec == "defaults" else ["--concurrency", spec]
                for b, name in zip(benches, names):
                    label = f"newsletter send, {store}, " + ("the defaults" if spec == "defaults" else f"--concurrency {spec}")
                    if args.workers > 1:
                        label += f", {args.workers} × --worker"
                    if len(benches) > 1:
                        label += f" [{name}]"
                    slug = f"bench-{round_no}-{spec}"
                    row = b.send(label, b.content(slug), options, workers=args.workers, expected=args.n)
                    row.ref = sources[-1].rate
                    rows.append(row)
                    print(f"  {row.label}: {row.rate:,.0f} msgs/s ({share(row.rate, sources[-1].rate)} of smtp-source), "
                          f"{row.cpu_us:.0f} µs CPU/message, {row.rss_mb:.0f} MB; load {os.getloadavg()[0]:.2f}",
                          flush=True)
        if args.big:
            more = args.big - args.n
            seconds = bench.add_people(more, args.n)
            print(f"imported {more:,} more people in {seconds:.1f} s", flush=True)
            row = bench.send(f"newsletter send, {store}, {args.big:,} recipients (stopped after {args.big_send:,})",
                             bench.content("bench-big"), [], expected=args.big, stop_after=args.big_send)
            row.ref = sources[-1].rate if sources else float("nan")
            rows.append(row)
            print(f"  {args.big:,}-recipient campaign: first message {row.start:.1f} s after launch "
                  f"(the sender's CPU until then: {row.start_cpu:.1f} s); "
                  f"{row.rate:,.0f} msgs/s, {row.cpu_us:.0f} µs CPU/message, {row.rss_mb:.0f} MB", flush=True)
        print_table(sources, rows)
        if args.big:
            print(f"\nstart of the {args.big:,}-recipient campaign (launch to first message): {rows[-1].start:.1f} s, "
                  f"of which the sender's CPU {rows[-1].start_cpu:.1f} s")
    finally:
        for b in benches:
            b.close()
        shutil.rmtree(folder, ignore_errors=True)
