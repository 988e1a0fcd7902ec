"""The workspace's guard: every handler is `@guarded(Action.X)` or `@public(...)`, nothing else.

`@guarded(action, language=...)`, for a handler of a staff page or action:

1. reads the session cookie (`staff.sessions.current`); with none, a GET is redirected to the
   login page and anything else gets the 403 page;
2. a member who must enroll a second factor can only do that (`Action.OWN_ACCOUNT`);
3. on every POST, checks that the browser's Origin (when it sends one) is ours, reads the form
   bounded and strict (`web.forms.read_form`: 1 MiB, or 32 MiB with files for a handler marked
   `uploads=True`; 413, 400 or 415 otherwise, answered by the web app's one error page), and
   checks its `csrf` field against the session's token (constant time);
4. checks the role (`staff.roles.allowed`, with the language taken from the path parameter,
   query parameter or form field named by `language`); refused: the 403 page, and a POST
   refused is written to the audit trail;
5. sets `request.state.staff` (the `Member`), `request.state.actor` (an `audit.Actor` for use
   cases) and `request.state.form` (a POST's parsed form), then calls the handler;
6. after a POST that succeeded (status < 400), writes a line to the audit trail naming the
   action and the path unless the use case wrote its own (`Actor.recorded`).

A GET's reads, the session check's and the page's, share one read-only unit of work
(`WorkspaceState.one_reading`); a POST's units of work are their own, as its use cases make them.

`@public(csrf=True)`, for the pages used without a session (login, invitation, reset): their
forms carry a token bound to a random pre-session cookie (`web.security.issue_csrf`), and their
bodies are read like the visitor pages' (`web.forms.MAX_FORM`), before anyone has logged in.

Both leave their rule on the wrapper as `handler.guard`, a `Guard` (the route-by-role test walks
`workspace_routes` and reads them).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..staff import audit, sessions
from ..staff.audit import Actor
from ..staff.roles import Action, allowed
from ..web.forms import MAX_FORM, MAX_STAFF_FORM, MAX_UPLOAD, read_form
from ..web.security import check_csrf, form_origin_allowed, issue_csrf, origin_of
from .pages import render, workspace

__all__ = ["Guard", "guarded", "public", "COOKIE", "PRE_COOKIE", "set_session_cookie", "clear_session_cookie",
           "public_form_token", "login_redirect"]

Handler = Callable[[Request], Awaitable[Response]]

#: The session cookie (HttpOnly, SameSite=Lax, Path=/admin, Secure under https).
COOKIE = "nl_staff"
#: A random value the public forms' CSRF tokens are bound to.
PRE_COOKIE = "nl_staff_pre"


@dataclass(frozen=True)
class Guard:
    """A handler's rule: the action it takes (None: a public page) and where its language is."""

    action: Action | None
    language: str | None = None
    csrf: bool = True


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _cookie_path(request: Request) -> str:
    return request.scope.get("root_path", "") or "/"


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(COOKIE, value, max_age=int(sessions.LIFETIME.total_seconds()), path=_cookie_path(request),
                        httponly=True, samesite="lax", secure=_secure(request))


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=_cookie_path(request), httponly=True, samesite="lax",
                           secure=_secure(request))


def login_redirect(request: Request) -> Response:
    """To the login page, coming back here afterwards."""
    base = request.scope.get("root_path", "")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{base}/login?next={quote(here, safe='/')}", status_code=303)


def _same_site(request: Request) -> bool:
    """A form post's Origin, when the browser sends one, is ours (base_url's or the request's)."""
    own = {origin_of(workspace(request).newsletter.config.base_url), origin_of(str(request.base_url))}
    return form_origin_allowed(request.headers.get("origin"), own)


def _language_of(request: Request, name: str | None, form) -> str | None:
    if name is None:
        return None
    value = request.path_params.get(name) or request.query_params.get(name)
    if value is None and form is not None:
        value = form.get(name)
    return str(value) if value else None


def _refused(request: Request, reason: str, status: int = 403) -> Response:
    return render(request, "forbidden.html", status_code=status, reason=reason,
                  headers={"Cache-Control": "no-store"})


#: How many files one upload form may carry (an issue's content files: a few languages).
MAX_FILES = 20


def guarded(action: Action, *, language: str | None = None, uploads: bool = False) -> Callable[[Handler], Handler]:
    """Guard a handler by `action` (see the module's docstring for what is checked, in order);
    `uploads`: its form sends files."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: Request) -> Response:
            if request.method in ("GET", "HEAD"):
                async with workspace(request).one_reading():
                    return await checked(request)
            return await checked(request)

        async def checked(request: Request) -> Response:
            ws = workspace(request)
            ctx = await ws.db(sessions.current, ws.newsletter, request.cookies.get(COOKIE))
            if ctx is None:
                if request.method in ("GET", "HEAD"):
                    return login_redirect(request)
                return _refused(request, "login")
            actor = Actor(ctx.member, ws.ip(request))
            request.state.staff = ctx.member
            request.state.staff_context = ctx
            request.state.actor = actor
            if ctx.needs_totp and action is not Action.OWN_ACCOUNT:
                if request.method in ("GET", "HEAD"):
                    return RedirectResponse(f"{request.scope.get('root_path', '')}/account/totp", status_code=303)
                return _refused(request, "totp")
            form = None
            if request.method not in ("GET", "HEAD"):
                if not _same_site(request):
                    return _refused(request, "csrf")
                form = await (read_form(request, limit=MAX_UPLOAD, max_files=MAX_FILES) if uploads
                              else read_form(request, limit=MAX_STAFF_FORM))
                request.state.form = form
                if not secrets.compare_digest(str(form.get("csrf", "")), ctx.csrf):
                    return _refused(request, "csrf")
            lang = _language_of(request, language, form)
            if not allowed(ctx.member, action, language=lang):
                if form is not None:
                    await ws.db(audit.note, ws.newsletter, actor, "denied", request.url.path,
                                f"action={action.value}" + (f" language={lang}" if lang else ""))
                return _refused(request, "role")
            response = await handler(request)
            if form is not None and response.status_code < 400 and not actor.recorded:
                await ws.db(audit.note, ws.newsletter, actor, action.value, request.url.path, "")
            return response

        wrapper.guard = Guard(action, language)  # type: ignore[attr-defined]
        return wrapper

    return decorate


def public_form_token(request: Request) -> str:
    """The CSRF token for a public page's form (bound to the pre-session cookie `public` set)."""
    ws = workspace(request)
    return issue_csrf(ws.newsletter.secret(), "staff-pre:" + request.state.pre_session, ws.newsletter.clock())


def public(*, csrf: bool = True) -> Callable[[Handler], Handler]:
    """Mark a page used without a session. Its POSTs need the form token of `public_form_token`
    (unless `csrf` is False); a browser without the pre-session cookie is given one."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: Request) -> Response:
            ws = workspace(request)
            pre = request.cookies.get(PRE_COOKIE, "")
            fresh = not (16 <= len(pre) <= 64)
            if fresh:
                pre = secrets.token_urlsafe(24)
            request.state.pre_session = pre
            if request.method not in ("GET", "HEAD"):
                if not _same_site(request):
                    return _refused(request, "csrf")
                form = await read_form(request, limit=MAX_FORM)
                request.state.form = form
                if csrf and (fresh or not check_csrf(ws.newsletter.secret(), "staff-pre:" + pre,
                                                     str(form.get("csrf", "")), ws.newsletter.clock())):
                    return _refused(request, "csrf")
            response = await handler(request)
            if fresh:
                response.set_cookie(PRE_COOKIE, pre, path=_cookie_path(request), httponly=True, samesite="lax",
                                    secure=_secure(request))
            return response

        wrapper.guard = Guard(None, None, csrf)  # type: ignore[attr-defined]
        return wrapper

    return decorate
