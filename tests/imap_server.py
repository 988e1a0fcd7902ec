"""A real IMAP server for tests: pymap (in-memory backend) on loopback, in its own process.

`ImapServer(cert)` serves plain IMAP with STARTTLS when given a trustme certificate (none
without one). `TlsFront` puts implicit TLS (as on port 993) in front of it, since pymap
itself speaks only STARTTLS.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import trustme
from conftest import free_port

USER, PASSWORD = "bounces", "imap-test-password"


def _wait_for(port: int, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"pymap exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class ImapServer:
    def __init__(self, folder: Path, cert: trustme.LeafCert | None):
        # pymap is a subprocess told its port: a port free a moment ago may be taken by another xdist
        # worker before pymap binds it, and then pymap exits saying so; take another (three tries).
        for attempt in range(3):
            try:
                self._start(folder, cert)
                return
            except RuntimeError as error:
                if "address already in use" not in str(error).lower() or attempt == 2:
                    raise

    def _start(self, folder: Path, cert: trustme.LeafCert | None) -> None:
        self.port = free_port()
        args = ["--host", "127.0.0.1", "--port", str(self.port)]
        if cert is not None:
            cert.private_key_pem.write_to_path(str(folder / "key.pem"))
            cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
            args += ["--cert", str(folder / "cert.pem"), "--key", str(folder / "key.pem")]
        else:
            args += ["--no-tls"]
        pymap = shutil.which("pymap", path=str(Path(sys.executable).parent)) or "pymap"
        self.process = subprocess.Popen([pymap, *args, "dict", "--demo-user", USER, "--demo-password", PASSWORD],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_for(self.port, self.process)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class TlsFront:
    """Implicit TLS on its own port, relayed in clear to `backend_port` (a thread with an event loop)."""

    def __init__(self, backend_port: int, context: ssl.SSLContext):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._relay, "127.0.0.1", 0, ssl=context), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]  # port 0: never one another worker holds
        self._backend_port = backend_port

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self._backend_port)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(client_reader, writer), pump(reader, client_writer))

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
