"""Getting in and out: log in, log out, accept an invitation, reset a password.

The login page says the same thing for every failure (`LoginRefused`), and the reset page the
same thing whether the address has an account or not. A successful login always sets a new
session cookie (the old session, if any, is revoked by `staff.sessions.login`).
"""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..errors import InvalidField, InvalidToken, LoginRefused, LoginThrottled
from ..staff import accounts, sessions
from ..staff.links import LinkPurpose
from ..staff.roles import Action
from ..web.security import TOKEN_PAGE_HEADERS
from .guard import COOKIE, clear_session_cookie, guarded, public, public_form_token, set_session_cookie
from .pages import language_of, render, workspace

__all__ = ["ROUTES"]


def _next(request: Request, value: str | None) -> str:
    """Where to go after login: a path of the workspace, never another site."""
    base = request.scope.get("root_path", "")
    if value and value.startswith(base + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return base + "/"


@public()
async def login_page(request: Request) -> Response:
    return render(request, "login.html", form_token=public_form_token(request),
                  next=_next(request, request.query_params.get("next")), email="", error=None)


@public()
async def login_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    email = str(form.get("email", ""))[:320]
    target = _next(request, str(form.get("next", "")))
    try:
        login = await ws.db(sessions.login, ws.newsletter, email, str(form.get("password", ""))[:1024],
                            str(form.get("code", ""))[:16], ip=ws.ip(request),
                            user_agent=request.headers.get("user-agent"), replacing=request.cookies.get(COOKIE))
    except LoginThrottled as exc:
        return render(request, "login.html", status_code=429, headers={"Retry-After": str(exc.retry_after)},
                      form_token=public_form_token(request), next=target, email=email, error="throttled",
                      minutes=max(1, exc.retry_after // 60))
    except LoginRefused:
        return render(request, "login.html", status_code=401, form_token=public_form_token(request), next=target,
                      email=email, error="refused")
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(request, response, login.cookie)
    return response


@guarded(Action.OWN_ACCOUNT)
async def logout_submit(request: Request) -> Response:
    ws = workspace(request)
    await ws.db(sessions.logout, ws.newsletter, request.cookies.get(COOKIE), ip=ws.ip(request))
    request.state.actor.recorded = True
    response = RedirectResponse(f"{request.scope.get('root_path', '')}/login", status_code=303)
    clear_session_cookie(request, response)
    return response


async def _linked(request: Request, purpose: LinkPurpose):
    ws = workspace(request)
    try:
        return await ws.db(accounts.check_link, ws.newsletter, purpose, request.path_params["token"])
    except InvalidToken:
        return None


def _link_invalid(request: Request) -> Response:
    return render(request, "link_invalid.html", status_code=400, headers=TOKEN_PAGE_HEADERS)


@public()
async def invitation_page(request: Request) -> Response:
    member = await _linked(request, LinkPurpose.INVITE)
    if member is None:
        return _link_invalid(request)
    return render(request, "set_password.html", headers=TOKEN_PAGE_HEADERS, form_token=public_form_token(request),
                  invited=member, purpose="invite", error=None)


@public()
async def invitation_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    password, again = str(form.get("password", "")), str(form.get("password_again", ""))
    member = await _linked(request, LinkPurpose.INVITE)
    if member is None:
        return _link_invalid(request)
    if password != again:
        return render(request, "set_password.html", status_code=400, headers=TOKEN_PAGE_HEADERS,
                      form_token=public_form_token(request), invited=member, purpose="invite", error="mismatch")
    try:
        await ws.db(accounts.accept_invitation, ws.newsletter, request.path_params["token"], password,
                    name=str(form.get("name", "")), ip=ws.ip(request))
    except InvalidToken:
        return _link_invalid(request)
    except InvalidField as exc:
        return render(request, "set_password.html", status_code=400, headers=TOKEN_PAGE_HEADERS,
                      form_token=public_form_token(request), invited=member, purpose="invite", error=exc.reason)
    return RedirectResponse(f"{request.scope.get('root_path', '')}/login?done=password", status_code=303)


@public()
async def reset_request_page(request: Request) -> Response:
    return render(request, "reset_request.html", form_token=public_form_token(request), sent=False)


@public()
async def reset_request_submit(request: Request) -> Response:
    ws = workspace(request)
    email = str(request.state.form.get("email", ""))[:320]
    pending = await ws.db(accounts.request_reset, ws.newsletter, email, ip=ws.ip(request),
                          language=language_of(request))
    response = render(request, "reset_request.html", form_token=public_form_token(request), sent=True)
    if pending is not None:  # mailed after the answer: it takes as long whether the address has an account
        response.background = BackgroundTask(ws.slow, pending)
    return response


@public()
async def reset_page(request: Request) -> Response:
    member = await _linked(request, LinkPurpose.RESET)
    if member is None:
        return _link_invalid(request)
    return render(request, "set_password.html", headers=TOKEN_PAGE_HEADERS, form_token=public_form_token(request),
                  invited=member, purpose="reset", error=None)


@public()
async def reset_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    password, again = str(form.get("password", "")), str(form.get("password_again", ""))
    member = await _linked(request, LinkPurpose.RESET)
    if member is None:
        return _link_invalid(request)
    if password != again:
        return render(request, "set_password.html", status_code=400, headers=TOKEN_PAGE_HEADERS,
                      form_token=public_form_token(request), invited=member, purpose="reset", error="mismatch")
    try:
        await ws.db(accounts.reset_password, ws.newsletter, request.path_params["token"], password, ip=ws.ip(request))
    except InvalidToken:
        return _link_invalid(request)
    except InvalidField as exc:
        return render(request, "set_password.html", status_code=400, headers=TOKEN_PAGE_HEADERS,
                      form_token=public_form_token(request), invited=member, purpose="reset", error=exc.reason)
    return RedirectResponse(f"{request.scope.get('root_path', '')}/login?done=password", status_code=303)


ROUTES = [
    Route("/login", login_page, methods=["GET"], name="login"),
    Route("/login", login_submit, methods=["POST"]),
    Route("/logout", logout_submit, methods=["POST"], name="logout"),
    Route("/invite/{token}", invitation_page, methods=["GET"]),
    Route("/invite/{token}", invitation_submit, methods=["POST"]),
    Route("/reset", reset_request_page, methods=["GET"], name="reset"),
    Route("/reset", reset_request_submit, methods=["POST"]),
    Route("/reset/{token}", reset_page, methods=["GET"]),
    Route("/reset/{token}", reset_submit, methods=["POST"]),
]
