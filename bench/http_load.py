"""A lean HTTP/1.1 load generator for bench/web.py, run as its own process.

    python bench/http_load.py SPEC.json > RESULT.json

SPEC is {"host", "port", "concurrency", "rate", "requests": [[method, path, content_type, body], ...]};
a request may carry a fifth item, extra header lines ("Cookie: …\r\n").
Each of `concurrency` keep-alive connections takes the next request when it is free. With
`rate` 0 the loop is closed (as fast as the server answers); with `rate` N, request i is due
at start + i/N and its latency is counted from that moment, so a server that falls behind is
charged for the queue it causes (no coordinated omission).

Prints {"seconds", "latencies" (ms, in request order), "errors" (up to 20), "error_count",
"cpu_seconds"} as JSON. Raw asyncio streams over uvloop (when installed) keep the client's
own CPU per request small: the 2-core machine shares it with the server under test.
A response counts as an error unless it is a 200 without a Location header.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


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
    requests = [
        (f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: bench/web\r\n{extra[0] if extra else ''}"
         f"Content-Type: {ctype}\r\nContent-Length: {len(body.encode())}\r\n\r\n").encode() + body.encode()
        for method, path, ctype, body, *extra in spec["requests"]
    ]
    latencies = [0.0] * len(requests)
    errors: list[str] = []
    error_count = 0
    next_index = 0

    async def connection() -> None:
        nonlocal next_index, error_count
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while next_index < len(requests):
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
    await asyncio.gather(*(connection() for _ in range(int(spec["concurrency"]))))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "latencies": [x * 1000 for x in latencies], "errors": errors,
            "error_count": error_count, "cpu_seconds": time.process_time() - cpu0}


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
