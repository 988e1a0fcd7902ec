"""The service's HTTP part: `/healthz` and `/readyz` always, the visitor pages and the staff
workspace (`/admin`, which `web.create_app` mounts) when the web part runs, over uvicorn in the service's
own event loop (the service, not uvicorn, handles the signals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from ..installation import Newsletter
from ..web import create_app
from .parts import Part

__all__ = ["HttpPart", "health_routes"]

log = logging.getLogger("newsletter.service")


def health_routes(readiness: Callable[[], tuple[bool, dict[str, Any]]]) -> list[Route]:
    """`/healthz`: the process answers. `/readyz`: every part started and the store answers
    (200), else 503; both with what each part is doing, as JSON."""

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok", headers={"Cache-Control": "no-store"})

    async def readyz(request: Request) -> Response:
        ready, detail = await asyncio.to_thread(readiness)
        return JSONResponse({"ready": ready, **detail}, status_code=200 if ready else 503,
                            headers={"Cache-Control": "no-store"})

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the supervisor handles SIGTERM and SIGINT
        yield


class HttpPart(Part):
    """Serves `/healthz`, `/readyz` and, with `pages`, the visitor pages (whose app drains the
    confirmation queue in its lifespan) on host:port (port 0: one the system chooses; `url` says
    which once started)."""

    name = "web"

    def __init__(self, newsletter: Newsletter, readiness: Callable[[], tuple[bool, dict[str, Any]]], *,
                 host: str, port: int, root_path: str = "", pages: bool = True, log_level: str = "info"):
        super().__init__()
        routes: list[Any] = health_routes(readiness)
        self.pages = create_app(newsletter) if pages else None
        if self.pages is not None:  # the staff workspace comes with them, under /admin
            routes.append(Mount("/", app=self.pages))
        lifespan = self.pages.router.lifespan_context if self.pages is not None else None
        app = Starlette(routes=routes, lifespan=(lambda _app: lifespan(self.pages)) if lifespan else None)
        config = uvicorn.Config(app, host=host, port=port, root_path=root_path, log_level=log_level,
                                log_config=None, proxy_headers=False, server_header=False,
                                access_log=log_level == "debug", lifespan="on")
        self.server = _Server(config)
        self.url = f"http://{host}:{port}"
        self._task: asyncio.Task | None = None

    @property
    def drainer(self):
        """The visitor pages' confirmation drainer (None without the pages)."""
        return self.pages.state.web.drainer if self.pages is not None else None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.server.serve(), name="service web")
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise SystemExit(f"the web part could not listen on {self.url}")
            await asyncio.sleep(0.05)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        await super().start()
        self.state = f"listening on {self.url}"

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
        await super().stop()
