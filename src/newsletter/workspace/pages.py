"""Rendering the workspace's pages, and what every handler reaches through the request.

`WorkspaceState` (one per mount, set on each request by the routes `workspace_routes` binds)
holds the installation and runs blocking library calls in worker threads (`db`). `render`
renders templates/workspace/<name> in the staff member's language (`?lang=`, then the language
chosen on the account page, then the one remembered in a cookie before login, then
Accept-Language), right to left for Arabic, with `can(action)` for the navigation. `say` is
the one place the workspace words a library error: in the page language, from the message id
and values the error carries (the CLI prints the same error in English).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..errors import NewsletterError
from ..i18n import translations
from ..installation import Newsletter
from ..resources import find_template_file
from ..staff.roles import Action, allowed
from ..texts import Text
from ..web.pages import choose_language, page_environment
from ..web.security import client_ip, parse_networks

__all__ = ["LANG_COOKIE", "WorkspaceState", "language_of", "render", "say", "workspace"]

T = TypeVar("T")
LANG_COOKIE = "nl_staff_lang"


@dataclass
class WorkspaceState:
    newsletter: Newsletter
    templates_path: Path
    trusted: tuple = ()
    #: Database calls at most this many at once. The pages' reads take no write lock (their use
    #: cases read through `Store.reading`), so on SQLite too they run beside each other and
    #: beside a writer; the workspace's few writes queue on SQLite's own lock.
    db_threads: int = 4
    #: How the pre-flight check asks DNS (None: the app's `state.txt_lookup` if it has one, else
    #: dnspython's resolver; tests give their own).
    dns: Callable[[str], list[str]] | None = None
    _limiter: anyio.CapacityLimiter | None = field(default=None, repr=False)
    _sharing: anyio.Semaphore | None = field(default=None, repr=False)

    @classmethod
    def of(cls, newsletter: Newsletter, *, dns: Callable[[str], list[str]] | None = None) -> "WorkspaceState":
        config = newsletter.config
        return cls(newsletter, config.templates_path, parse_networks(config.trusted_proxies), dns=dns)

    async def db(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one blocking library call (a unit of work) in a worker thread. Inside
        `one_reading`, the request's shared reading ends as the call returns, in its thread."""
        return await self._in_thread(_ending_reading, self.newsletter, functools.partial(func, *args, **kwargs))

    async def db_keeping(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`db`, the shared reading left open for the request's next call (the guard's session check)."""
        return await self._in_thread(functools.partial(func, *args, **kwargs))

    async def _in_thread(self, func: Callable[..., T], *args: Any) -> T:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.db_threads)
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)

    @asynccontextmanager
    async def one_reading(self) -> AsyncIterator[None]:
        """Within the block, the guard's session check (`db_keeping`) and the page's next call
        (`db`) share one read-only unit of work (`Store.shared_reading`) instead of one each.
        It keeps its connection between the two calls, so at most `db_threads` requests hold
        one at once (a turn): never more connections held than the pool has while waiting for
        a turn. A slow call (`slow`) gives the turn back before it waits."""
        if self._sharing is None:
            self._sharing = anyio.Semaphore(self.db_threads)
        await self._sharing.acquire()
        turn = _Turn(self._sharing)
        token = _TURN.set(turn)
        try:
            with self.newsletter.store.shared_reading() as turn.shared:
                try:
                    yield
                finally:
                    await self._give_back(turn)
        finally:
            _TURN.reset(token)

    async def _give_back(self, turn: _Turn) -> None:
        """End the turn's shared reading for good and free its place, once."""
        if turn.given:
            return
        turn.given = True
        with anyio.CancelScope(shield=True):  # a client gone still gives the connection back
            try:
                if turn.shared.open:
                    await self.db(turn.shared.close)
                else:
                    turn.shared.close()
            finally:
                turn.places.release()

    async def slow(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a slow call (DNS, HTTP, SMTP: a use case that mails, the pre-flight check) in a worker
        thread, outside the database limiter, so that it never holds up other pages' units of work.
        Inside `one_reading`, the request's turn is given back first: its shared reading ends (and
        its connection returns to the pool) and its place is free for another page while it waits;
        the request's later calls read in units of work of their own."""
        turn = _TURN.get()
        if turn is not None:
            await self._give_back(turn)
        return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))

    def ip(self, request: Request) -> str | None:
        peer = request.client.host if request.client else None
        return client_ip(peer, request.headers.get("x-forwarded-for"), self.trusted)


def _ending_reading(newsletter: Newsletter, call: Callable[[], T]) -> T:
    try:
        return call()
    finally:
        newsletter.store.end_shared_reading()


@dataclass
class _Turn:
    """One request's place among the `db_threads` that may hold a shared reading at once."""

    places: anyio.Semaphore
    #: The request's `Store.shared_reading()`.
    shared: Any = None
    given: bool = False


#: The turn of the request running in this context, if it holds one.
_TURN: ContextVar[_Turn | None] = ContextVar("workspace_turn", default=None)


def workspace(request: Request) -> WorkspaceState:
    return request.state.workspace


def language_of(request: Request) -> str:
    """The page language: `?lang=`, then the account's choice, then the browser's remembered
    choice, then Accept-Language."""
    config = workspace(request).newsletter.config
    member = getattr(request.state, "staff", None)
    chosen = getattr(member, "interface_language", None)
    return choose_language(request, config.languages, config.default_language,
                           chosen if chosen in config.languages else request.cookies.get(LANG_COOKIE))


def render(request: Request, template: str, *, status_code: int = 200, headers: dict[str, str] | None = None,
           **context: Any) -> HTMLResponse:
    """templates/workspace/<template> as an HTML response in the page language."""
    ws = workspace(request)
    config = ws.newsletter.config
    language = language_of(request)
    member = getattr(request.state, "staff", None)
    env = page_environment(ws.templates_path, language)
    html = env.get_template(f"workspace/{template}").render(
        base=request.scope.get("root_path", ""),
        path=request.url.path,
        organisation=config.organisation_name,
        languages=config.languages,
        staff=member,
        csrf=getattr(getattr(request.state, "staff_context", None), "csrf", ""),
        can=lambda action, language=None: allowed(member, Action(action), language=language),
        say=lambda said: say(request, said),
        Action=Action,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    response.headers["Content-Language"] = language
    response.headers.setdefault("Cache-Control", "no-store")
    asked = request.query_params.get("lang")
    if asked in config.languages and asked != request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, asked, max_age=365 * 86400, path=request.scope.get("root_path", "") or "/",
                            samesite="lax", secure=request.url.scheme == "https")
    return response


def say(request: Request, said: BaseException | Text) -> str:
    """A library error's message, or a `Text` (an import's rejected row says why with one), in
    the page language: the message id and values (`NewsletterError.text`, `.values`)
    translated, each value that is a message of its own translated in turn; anything the
    catalogue does not have stays in English, as `str(said)`."""
    if isinstance(said, NewsletterError) and said.text:
        said = said.said
    if not isinstance(said, Text):
        return str(said)
    templates_path = workspace(request).templates_path
    language = language_of(request)
    locale = find_template_file(templates_path, f"locale/{language}") or templates_path / "locale" / language
    catalogue = translations(locale.parent, language)
    return said.translated(catalogue.gettext, catalogue.ngettext)
