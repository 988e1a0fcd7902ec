"""A lean HTTP/1.1 load generator for bench/web.py and bench/workspace.py, run as its own process,
and the helpers both benches drive it with (`load`, `report`, `percentile`, `cpu_seconds`).

    python bench/http_load.py SPEC.json > RESULT.json

SPEC is {"host", "port", "concurrency", "rate", "requests": [[method, path, content_type, body], ...]},
optionally "think" (seconds); a request may carry a fifth item, extra header lines ("Cookie: …\r\n").
Each of `concurrency` keep-alive connections takes the next request when it is free. With
`rate` 0 the loop is closed (as fast as the server answers); with `rate` N, request i is due
at start + i/N and its latency is counted from that moment, so a server that falls behind is
charged for the queue it causes (no coordinated omission). With `think` T > 0 (closed loop only),
each connection is a person: after each answer it waits a random 0.5–1.5 × T before its next
request (seeded per connection, so runs are repeatable).

Prints {"seconds", "latencies" (ms, in request order), "errors" (up to 20), "error_count",
"cpu_seconds"} as JSON. Raw asyncio streams over uvloop (when installed) keep the client's
own CPU per request small: the 2-core machine shares it with the server under test.
A response counts as an error unless it is a 200 without a Location header.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """(status, headers block, body) of one response (Content-Length framing: all ours have it)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lowered.index(b"\r\n", at + 2)
        length = int(lowered[at + 17:end])
    body = await reader.readexactly(length) if length else b""
    return status, lowered, body


async def run(spec: dict) -> dict:
    host, port, rate = spec["host"], spec["port"], float(spec.get("rate") or 0)
    think = 0.0 if rate else float(spec.get("think") or 0)
    requests = [
        (f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: bench/web\r\n{extra[0] if extra else ''}"
         f"Content-Type: {ctype}\r\nContent-Length: {len(body.encode())}\r\n\r\n").encode() + body.encode()
        for method, path, ctype, body, *extra in spec["requests"]
    ]
    latencies = [0.0] * len(requests)
    errors: list[str] = []
    error_count = 0
    next_index = 0

    async def connection(number: int) -> None:
        nonlocal next_index, error_count
        pauses, first = random.Random(number), True
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while next_index < len(requests):
                if think and not first:  # each connection's first request goes at once
                    await asyncio.sleep(think * pauses.uniform(0.5, 1.5))
                    if next_index >= len(requests):
                        break
                first = False
                i = next_index
                next_index += 1
                due = started + i / rate if rate else time.perf_counter()
                if rate:
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                writer.write(requests[i])
                try:
                    status, head, body = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    error_count += 1
                    errors.append(f"request {i}: {exc!r}")
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    latencies[i] = time.perf_counter() - due
                    continue
                latencies[i] = time.perf_counter() - due
                if status != 200 or b"\r\nlocation:" in head:
                    error_count += 1
                    if len(errors) < 20:
                        errors.append(f"request {i}: {status} {body[:80]!r}")
        finally:
            writer.close()

    cpu0 = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(connection(n) for n in range(int(spec["concurrency"]))))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "latencies": [x * 1000 for x in latencies], "errors": errors,
            "error_count": error_count, "cpu_seconds": time.process_time() - cpu0}


def load(workdir: Path, port: int, requests: list[list[str]], concurrency: int, rate: float, *,
         think: float = 0.0) -> dict:
    """Run this file in its own process over `requests` against 127.0.0.1:`port`; its JSON result.
    `think`: each connection's mean pause between an answer and its next request (closed loop)."""
    spec = workdir / f"load-{time.monotonic_ns()}.json"
    spec.write_text(json.dumps({"host": "127.0.0.1", "port": port, "concurrency": concurrency, "rate": rate,
                                "think": think, "requests": requests}))
    out = subprocess.run([sys.executable, str(HERE / "http_load.py"), str(spec)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(label: str, result: dict, cpu: float, *, only: list[int] | None = None) -> dict:
    """Print and return one row: requests/s, p50/p99 latency, errors and the server's CPU per
    request (`cpu` seconds over the requests). `only`: the indices of the requests to count
    (one kind among several run together; then `cpu` is 0 and not printed)."""
    latencies = result["latencies"] if only is None else [result["latencies"][i] for i in only]
    row = {
        "what": label,
        "requests": len(latencies),
        "rps": len(latencies) / result["seconds"],
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "errors": result["error_count"] if only is None else "",
        "cpu_ms": cpu / max(1, len(latencies)) * 1000,
        "client_cpu_ms": result["cpu_seconds"] / max(1, len(result["latencies"])) * 1000,
    }
    cpu_text = f"  server CPU {row['cpu_ms']:.2f} ms/request" if cpu else ""
    print(f"  {label:<26} {row['requests']:>6} requests  {row['rps']:6.0f}/s  p50 {row['p50']:6.1f} ms  "
          f"p99 {row['p99']:7.1f} ms  errors {row['errors'] if only is None else '-'}{cpu_text}  "
          f"(load generator {row['client_cpu_ms']:.2f} ms)  load {os.getloadavg()[0]:.2f}", flush=True)
    for error in result["errors"][:5] if only is None else []:
        print(f"    error: {error}")
    return row


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    try:
        import uvloop
        result = uvloop.run(run(spec))
    except ImportError:
        result = asyncio.run(run(spec))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
