"""Where the test suite's time goes: per-file totals from a pytest JUnit XML report.

    .venv/bin/python -m pytest -q -n 4 --junitxml=/tmp/suite.xml
    python bench/test_times.py /tmp/suite.xml [--most 30] [--against /tmp/before.xml]

Each test's time is its setup, call and teardown (pytest's default `junit_duration_report`); with
xdist the workers' times add up, so the total is CPU-ish work across workers, not the wall clock.
A file's share of the total is what to read on a loaded machine, not its seconds.
With --against, the same files from an earlier report, with the ratio new/old.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections import Counter


def file_totals(path: str) -> tuple[Counter, Counter]:
    """(seconds, tests) per test file in the report at `path`."""
    seconds, tests = Counter(), Counter()
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("classname", "").split(".")[-1] + ".py"
        seconds[name] += float(case.get("time") or 0)
        tests[name] += 1
    return seconds, tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report")
    parser.add_argument("--most", type=int, default=30)
    parser.add_argument("--against")
    args = parser.parse_args()
    seconds, tests = file_totals(args.report)
    old = file_totals(args.against)[0] if args.against else None
    total = sum(seconds.values())
    old_total = sum(old.values()) if old else 0
    print(f"{sum(tests.values())} tests, {total:.0f} s summed over workers"
          + (f" (before: {old_total:.0f} s, ratio {total / old_total:.2f})" if old else ""))
    for name, s in seconds.most_common(args.most):
        line = f"{s:9.1f} s {100 * s / total:5.1f}% {tests[name]:5d} tests  {name}"
        if old and old.get(name):
            line += f"   before {old[name]:8.1f} s ({100 * old[name] / old_total:4.1f}%), ratio {s / old[name]:.2f}"
        print(line)


if __name__ == "__main__":
    main()
