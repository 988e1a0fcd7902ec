"""CPU per message of `newsletter send` itself, tree against tree, alternated (issue #17).

    python bench/send_cpu.py -n 10000 --trees /tmp/base/src,src --runs 3
    python bench/send_cpu.py -n 2000 --trees src --runs 1 --cprofile /tmp/send.prof

One store is made once through the CLI (`init`, `lists create`, `import --confirmed` of N
people, as `bench/send.py --cli` does); each run sends the Day 3 example (with eight more news
items, ~21 KB) from a fresh copy of it with `newsletter send --yes` at the CLI's defaults (or
`--concurrency`) into one Postfix `smtp-sink`. The run's child process is the CLI itself, with
each tree first on PYTHONPATH; it reports the user and system CPU of `Sender.run` alone
(`os.times`, every thread): the import, the rendering, the planning and the campaign's first
ledger chunk are left out, as the sink's span leaves them out in `bench/send.py --cli`. The
trees run in turn (A, B, A, B …), so each pair shares the machine's load of the moment: only
figures of the same run compare.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import send_cli  # the CLI bench's setup: the same people, the same content


def child(folder: str, result_path: str, cprofile: str | None, options: list[str]) -> None:
    """In the run's process: `newsletter send` with `Sender.run` timed (and profiled)."""
    from newsletter.cli import main
    from newsletter.sending import gate, sender

    plain = sender.Sender.run
    plain_round = gate.Gate._round
    rounds = [0]

    async def counted(self, batch):
        rounds[0] += 1
        return await plain_round(self, batch)

    gate.Gate._round = counted
    # CPU of the database thread's work, by what it ran.
    db_cpu: dict[str, list[float]] = {}
    plain_hop = sender.Sender._in_db_thread

    async def hop(self, func, *args, **kwargs):
        def timed_func(*a, **k):
            c = time.thread_time()
            try:
                return func(*a, **k)
            finally:
                entry = db_cpu.setdefault(getattr(func, "__qualname__", repr(func)), [0.0, 0])
                entry[0] += time.thread_time() - c
                entry[1] += 1
        return await plain_hop(self, timed_func, *args, **kwargs)

    sender.Sender._in_db_thread = hop

    async def timed(self):
        profiler = None
        if cprofile:
            import cProfile

            profiler = cProfile.Profile(time.thread_time)  # this thread's CPU, not the wall
            profiler.enable()
        t0, w0, m0 = os.times(), time.perf_counter(), time.thread_time()
        try:
            return (result := await plain(self))
        finally:
            t1, w1, m1 = os.times(), time.perf_counter(), time.thread_time()
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(cprofile)
            Path(result_path).write_text(json.dumps({
                "user": t1.user - t0.user, "system": t1.system - t0.system, "wall": w1 - w0, "loop_thread": m1 - m0,
                "sent": result.sent_now if "result" in locals() else -1, "rounds": rounds[0], "db": db_cpu}))

    sender.Sender.run = timed
    files = sorted(str(p) for p in (Path(folder) / "run").glob("*.md"))
    os.chdir(folder)
    main(["send", *files, "--list", "asp-daily", "--yes", *options], standalone_mode=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10_000, help="people (default 10,000)")
    parser.add_argument("--trees", default="src", help="source folders put first on PYTHONPATH, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs of each tree, alternated")
    parser.add_argument("--concurrency", type=int, default=None, help="default: the CLI's")
    parser.add_argument("--cprofile", default=None, help="(one tree, one run) cProfile of Sender.run into this file")
    parser.add_argument("--store", default=None,
                        help="keep the imported store in this folder and use it again in later runs of the bench")
    parser.add_argument("--callgrind", default=None, metavar="DIR",
                        help="run each send under valgrind --tool=callgrind, its counts into DIR (instructions do "
                             "not depend on the load; slow: use -n 2000 or less)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    options = [] if args.concurrency is None else ["--concurrency", str(args.concurrency)]
    if args.child:
        child(args.child[0], args.child[1], args.child[2] or None, options)
        return
    trees = [str(Path(t).resolve()) for t in args.trees.split(",") if t]
    top = Path(tempfile.mkdtemp(prefix="bench-send-cpu-"))
    master = Path(args.store) if args.store else top / "master"
    made = (master / "newsletter.toml").exists() and (master / f"people-{args.n}").exists()
    if not made:
        shutil.rmtree(master, ignore_errors=True)
        master.mkdir(parents=True)
    bench = send_cli.Bench(master, None, None)
    try:
        if not made:
            t0 = time.perf_counter()
            bench.setup(args.n)
            (master / f"people-{args.n}").touch()
            print(f"store: {args.n:,} people imported in {time.perf_counter() - t0:.1f} s; "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
        figures: dict[str, list[float]] = {t: [] for t in trees}
        for run in range(args.runs):
            for tree in trees:
                folder = top / f"run-{run}-{trees.index(tree)}"
                shutil.copytree(master, folder, ignore=shutil.ignore_patterns("sink.log"))
                files = send_cli.Bench.content(bench_at(folder), "run")
                assert files
                out = folder / "result.json"
                env = {**bench.env, "PYTHONPATH": tree}
                grind = ([] if not args.callgrind else
                         ["valgrind", "--tool=callgrind",
                          f"--callgrind-out-file={Path(args.callgrind).resolve()}/cg-{run}-{trees.index(tree)}-{args.n}.out"])
                proc = subprocess.run([*grind, sys.executable, __file__, "--child", str(folder), str(out), args.cprofile or "",
                                       *(["--concurrency", str(args.concurrency)] if args.concurrency else [])],
                                      env=env, cwd=folder, capture_output=True, text=True, check=False)
                if proc.returncode or not out.exists():
                    sys.exit(f"the send failed ({tree}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
                r = json.loads(out.read_text())
                if r["sent"] != args.n:
                    sys.exit(f"sent {r['sent']} of {args.n} ({tree})")
                cpu = (r["user"] + r["system"]) / r["sent"] * 1e6
                figures[tree].append(cpu)
                print(f"  run {run + 1} {tree}: {cpu:.0f} µs CPU/message (user {r['user'] / r['sent'] * 1e6:.0f}, "
                      f"system {r['system'] / r['sent'] * 1e6:.0f}; event loop's thread {r['loop_thread'] / r['sent'] * 1e6:.0f}), {r['sent'] / r['wall']:,.0f} msgs/s; "
                      f"{r['sent'] / max(r['rounds'], 1):.1f} messages a gate round; load {os.getloadavg()[0]:.1f}", flush=True)
                for name, (seconds, calls) in sorted(r["db"].items(), key=lambda kv: -kv[1][0])[:6]:
                    print(f"      database thread: {name}: {seconds / r['sent'] * 1e6:.0f} µs/message ({calls} calls)")
                shutil.rmtree(folder, ignore_errors=True)
        base = statistics.median(figures[trees[0]])
        for tree in trees:
            med = statistics.median(figures[tree])
            print(f"{tree}: median {med:.0f} µs CPU/message ({med / base:.0%} of the first tree's)")
    finally:
        bench.close()
        shutil.rmtree(top, ignore_errors=True)


def bench_at(folder: Path):
    """An object `send_cli.Bench.content` can write the content files under `folder` with."""
    class At:
        pass
    at = At()
    at.folder = folder
    return at


if __name__ == "__main__":
    main()
