"""A real HTTP receiver on loopback for webhook tests: it answers 200, 500, or too late, as told,
and keeps what it accepted."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self) -> None:
        self.mode = "ok"  # ok | fail | slow
        self.accepted: list[tuple[dict[str, str], bytes]] = []
        self.seen = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                owner.seen += 1
                mode = owner.mode  # as it was when the request came
                if mode == "slow":
                    time.sleep(1.5)
                if mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"the CRM is down for maintenance")
                    return
                if mode == "ok":
                    owner.accepted.append(({k.lower(): v for k, v in self.headers.items()}, body))
                try:
                    self.send_response(204)
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
