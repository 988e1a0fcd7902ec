"""The visitor web app: `create_app(newsletter)` returns a Starlette application.

Routes (GET also answers HEAD; neither ever changes anything)::

    GET  /healthz
    GET  /subscribe                 the sign-up form
    POST /subscribe                 the form, or JSON from an allowed origin
    GET  /confirm/{token}           a page with a Confirm button; POST confirms
    GET  /unsubscribe/{token}       a page with one button; POST unsubscribes; the RFC 8058
                                    one-click POST (List-Unsubscribe=One-Click) likewise
    POST /unsubscribe/{token}/undo  take it back
    GET  /preferences/{token}       language, lists, leave everything, download my data
    GET  /block/{token}             "this wasn't me"; POST blocks the address
    GET  /archive …                 past issues (see archive.py)

and whatever the caller mounts beside them (`mounts`): `newsletter.app.create_app`, the
composition root, mounts the staff workspace at /admin and the REST API at /api/v1; this
package knows neither.

Errors are turned into pages here, in one place: an unknown path gets `not_found.html`; a
library error (or any failure) that reaches a handler gets the visitor's own page,
`unavailable.html` (503, or 500), never the library's message, which is for the log.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..addresses import escape_controls
from ..config import Config
from ..errors import ConfigError, NewsletterError
from ..installation import Newsletter
from ..people import subscriptions as visitor
from ..people.abuse import RateLimiter
from ..people.confirmation_queue import ConfirmationDrainer
from ..people.confirmations import ConfirmationSender
from ..people.signups import mailbox_of
from ..resources import find_template_file
from . import archive, links, preferences, signup
from .ceiling import ConfirmationCeiling
from .forms import BadRequest, is_json
from .group_commit import GroupCommit
from .pages import choose_language, consent_text, render_page
from .security import SecurityHeaders, client_ip, origin_of, parse_networks

__all__ = ["WebState", "create_app"]

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Sign-up batches written at once where the store allows it (PostgreSQL; `WebState.db_threads`
#: bounds it, and leaves threads for the one-clicks and the confirmation drainer).
SIGNUP_LANES = 4


@dataclass
class WebState:
    """What every handler needs, kept on `app.state.web`."""

    newsletter: Newsletter
    config: Config
    templates_path: Path
    trusted: tuple
    per_ip: RateLimiter
    per_address: RateLimiter
    ceiling: ConfirmationCeiling
    confirmations: ConfirmationSender
    min_fill_seconds: float
    #: Sends the confirmation mails sign-ups queue (a background task of the app's lifespan).
    drainer: ConfirmationDrainer | None = None
    #: Records sign-ups, those that arrive together in one transaction (`visitor.record_signups`).
    signups: GroupCommit | None = None
    #: Records RFC 8058 one-click unsubscribes likewise (`visitor.unsubscribe_by_tokens`).
    one_clicks: GroupCommit | None = None
    allowed_origins: frozenset[str] = field(default_factory=frozenset)
    #: Database calls run in worker threads, at most this many at once. SQLite takes its write
    #: lock at BEGIN, so one at a time there: queueing here is fair and fast, whereas threads
    #: racing for the file lock sleep in SQLite's busy handler.
    db_threads: int = 1
    #: The visitor pages' reads (`read`), at most this many at once: they take no write lock
    #: (their use cases read through `Store.reading`), so they need not queue behind the writes.
    read_threads: int = 4
    #: Seconds after it arrived before a sign-up is answered (`hold_answer`); 0: at once.
    answer_floor: float = 0.0
    #: The clock and the sleep `hold_answer` uses (tests pass their own).
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    _limiter: anyio.CapacityLimiter | None = None
    _read_limiter: anyio.CapacityLimiter | None = None

    async def hold_answer(self, started: float) -> None:
        """Wait until `answer_floor` seconds after `started` (a `monotonic()` reading): every
        sign-up is answered at the same time after it arrived, whatever the store knew of it."""
        delay = self.answer_floor - (self.monotonic() - started)
        if delay > 0:
            await self.sleep(delay)

    def secret(self) -> bytes:
        return self.newsletter.secret()

    async def db(self, func: Callable[..., T], *args: Any) -> T:
        """Run a blocking library call (one unit of work) in a worker thread."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.db_threads)
        return await anyio.to_thread.run_sync(functools.partial(func, *args), limiter=self._limiter)

    async def read(self, func: Callable[..., T], *args: Any) -> T:
        """Run a blocking library call that only reads in a worker thread, beside the writes."""
        if self._read_limiter is None:
            self._read_limiter = anyio.CapacityLimiter(self.read_threads)
        return await anyio.to_thread.run_sync(functools.partial(func, *args), limiter=self._read_limiter)

    def own_origins(self, request: Request) -> frozenset[str]:
        """Our own origins: base_url's and the one the request was addressed to."""
        return frozenset({origin_of(self.config.base_url), origin_of(str(request.base_url))})

    def ip(self, request: Request) -> str | None:
        peer = request.client.host if request.client else None
        return client_ip(peer, request.headers.get("x-forwarded-for"), self.trusted)


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok", headers={"Cache-Control": "no-store"})


async def _not_found(request: Request, exc: HTTPException) -> Response:
    web: WebState = request.app.state.web
    language = choose_language(request, web.config.languages, web.config.default_language)
    if exc.status_code not in (404, 405):
        return await _bad_request(request, BadRequest(400, str(exc.detail)))
    status = exc.status_code
    return render_page(request, "not_found.html", language, status_code=status,
                       path=request.scope.get("root_path", "") + "/archive")  # never echo an unknown path


def _where(request: Request) -> str:
    """The request's path for the log: its link token left out, its control characters escaped."""
    path, token = request.url.path, request.path_params.get("token")
    return escape_controls(path.replace(token, "{token}") if token else path)


async def _bad_request(request: Request, exc: BadRequest) -> Response:
    """A body we do not read (`forms.BadRequest`): its status, and a page or JSON saying why."""
    log.info("%s %s refused: %s (%d)", request.method, _where(request), exc.reason, exc.status)
    headers = {"Cache-Control": "no-store"}
    if is_json(request):
        return JSONResponse({"status": "error", "error": exc.reason}, status_code=exc.status,
                            headers={**headers, **signup.cors_headers(request)})
    web: WebState = request.app.state.web
    language = choose_language(request, web.config.languages, web.config.default_language)
    return render_page(request, "bad_request.html", language, status_code=exc.status, headers=headers,
                       too_large=exc.status == 413)


async def _client_left(request: Request, exc: ClientDisconnect) -> Response:
    """The client went away before its request was read: one line in the log, nobody to answer."""
    log.info("%s %s: the client left before sending the whole request", request.method, _where(request))
    return Response(status_code=400)


async def _unavailable(request: Request, exc: Exception) -> Response:
    """The visitor's page for a failure behind a page (the store, the configuration, a bug)."""
    if isinstance(exc, NewsletterError):  # foreseen: the message says what is wrong, for the log
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    web: WebState = request.app.state.web
    language = choose_language(request, web.config.languages, web.config.default_language)
    return render_page(request, "unavailable.html", language, status_code=503 if isinstance(exc, NewsletterError)
                       else 500, headers={"Cache-Control": "no-store", "Retry-After": "60"})


def create_app(newsletter: Newsletter, *, min_fill_seconds: float | None = None,
               mounts: Sequence[Mount] = ()) -> Starlette:
    """The visitor pages over `newsletter` (its config, store and clock), with `mounts` (other
    faces' routes, which share the error pages, the security headers and the lifespan).

    `min_fill_seconds` overrides `config.signup_min_seconds` (tests and demos).
    """
    config = newsletter.config
    if not consent_text(config.templates_path, config.consent_version, config.default_language):
        raise ConfigError(
            f"there is no consent text for consent_version {config.consent_version!r}: write it to "
            f"{config.templates_path / 'web' / 'consent' / config.consent_version}/<language>.txt "
            "(never edit a published one: a new text gets a new version)", key="consent_version")
    state = WebState(
        newsletter=newsletter,
        config=config,
        templates_path=config.templates_path,
        trusted=parse_networks(config.trusted_proxies),
        per_ip=RateLimiter(config.signup_per_ip_per_hour, timedelta(hours=1)),
        per_address=RateLimiter(config.signup_per_address_per_hour, timedelta(hours=1)),
        ceiling=ConfirmationCeiling(newsletter, config.signup_hourly_ceiling),
        confirmations=ConfirmationSender(newsletter),
        min_fill_seconds=config.signup_min_seconds if min_fill_seconds is None else min_fill_seconds,
        allowed_origins=frozenset(o.rstrip("/").lower() for o in config.allowed_origins),
        db_threads=1 if newsletter.store.dialect == "sqlite" else 8,
        answer_floor=config.signup_answer_ms / 1000,
    )
    state.ceiling.db = state.read
    state.drainer = ConfirmationDrainer(newsletter, state.confirmations, state.db)
    # PostgreSQL writes several batches at once (row locks), never two of one mailbox; SQLite one.
    state.signups = GroupCommit(functools.partial(visitor.record_signups, newsletter), state.db,
                                lanes=min(SIGNUP_LANES, state.db_threads), key=mailbox_of)
    state.one_clicks = GroupCommit(functools.partial(visitor.unsubscribe_by_tokens, newsletter), state.db)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *signup.routes(),
        *links.routes(),
        *preferences.routes(),
        *archive.routes(),
        *mounts,
        Mount("/static", app=StaticFiles(directory=str(find_template_file(config.templates_path, "web/static")
                                                        or config.templates_path / "web" / "static")), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        state.drainer.start()
        try:
            yield
        finally:
            await state.drainer.stop()

    hsts = config.hsts_max_age if config.base_url.lower().startswith("https://") else 0
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders, hsts_max_age=hsts)],
                    exception_handlers={HTTPException: _not_found, BadRequest: _bad_request,
                                        ClientDisconnect: _client_left, NewsletterError: _unavailable,
                                        Exception: _unavailable}, lifespan=lifespan)
    app.state.web = state
    return app
