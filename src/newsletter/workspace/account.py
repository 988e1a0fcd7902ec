"""One's own account: the workspace's language, password, second factor, sessions ("log out everywhere")."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..errors import InvalidField
from ..staff import accounts, sessions, totp
from ..staff.roles import Action
from .guard import clear_session_cookie, guarded
from .pages import render, say, workspace

__all__ = ["ROUTES"]


async def _page(request: Request, *, status_code: int = 200, error: str | None = None,
                done: str | None = None) -> Response:
    ws = workspace(request)
    mine = await ws.db(sessions.my_sessions, ws.newsletter, request.state.actor, request.state.staff_context.session_id)
    return render(request, "account.html", status_code=status_code, error=error, done=done, sessions=mine)


@guarded(Action.OWN_ACCOUNT)
async def account_page(request: Request) -> Response:
    return await _page(request, done=request.query_params.get("done"))


@guarded(Action.OWN_ACCOUNT)
async def password_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    if str(form.get("password", "")) != str(form.get("password_again", "")):
        return await _page(request, status_code=400, error="mismatch")
    try:
        await ws.db(accounts.change_password, ws.newsletter, request.state.actor, str(form.get("current", "")),
                    str(form.get("password", "")))
    except InvalidField as exc:
        return await _page(request, status_code=400, error=say(request, exc))
    return RedirectResponse(f"{request.scope.get('root_path', '')}/account?done=password", status_code=303)


@guarded(Action.OWN_ACCOUNT)
async def language_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    try:
        await ws.db(accounts.set_interface_language, ws.newsletter, request.state.actor, str(form.get("language", "")))
    except InvalidField as exc:
        return await _page(request, status_code=400, error=say(request, exc))
    base = request.scope.get("root_path", "")
    back = str(form.get("next", ""))
    if not (back.startswith(base + "/") and not back.startswith("//") and "\\" not in back):
        back = f"{base}/account?done=language"
    return RedirectResponse(back, status_code=303)


@guarded(Action.OWN_ACCOUNT)
async def totp_page(request: Request) -> Response:
    ws = workspace(request)
    enrollment = await ws.db(totp.begin_enrollment, ws.newsletter, request.state.actor)
    return render(request, "totp.html", enrollment=enrollment, error=None)


@guarded(Action.OWN_ACCOUNT)
async def totp_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    try:
        await ws.db(totp.finish_enrollment, ws.newsletter, request.state.actor, str(form.get("enrollment", "")),
                    str(form.get("code", "")))
    except InvalidField as exc:
        enrollment = await ws.db(totp.begin_enrollment, ws.newsletter, request.state.actor)
        return render(request, "totp.html", status_code=400, enrollment=enrollment, error=exc.reason)
    return RedirectResponse(f"{request.scope.get('root_path', '')}/account?done=totp", status_code=303)


@guarded(Action.OWN_ACCOUNT)
async def logout_everywhere_submit(request: Request) -> Response:
    ws = workspace(request)
    await ws.db(sessions.logout_everywhere, ws.newsletter, request.state.actor)
    response = RedirectResponse(f"{request.scope.get('root_path', '')}/login", status_code=303)
    clear_session_cookie(request, response)
    return response


@guarded(Action.OWN_ACCOUNT)
async def end_session_submit(request: Request) -> Response:
    ws = workspace(request)
    await ws.db(sessions.end_session, ws.newsletter, request.state.actor, str(request.state.form.get("session", "")))
    return RedirectResponse(f"{request.scope.get('root_path', '')}/account?done=ended", status_code=303)


ROUTES = [
    Route("/account", account_page, methods=["GET"], name="account"),
    Route("/account/password", password_submit, methods=["POST"]),
    Route("/account/language", language_submit, methods=["POST"]),
    Route("/account/totp", totp_page, methods=["GET"]),
    Route("/account/totp", totp_submit, methods=["POST"]),
    Route("/account/sessions/end", end_session_submit, methods=["POST"]),
    Route("/account/logout-everywhere", logout_everywhere_submit, methods=["POST"]),
]
