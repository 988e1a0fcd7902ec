"""The owners' pages: accounts (invite, revoke, change role) and the workspace's settings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..errors import InvalidAddress, InvalidField, StaffMemberExists, StaffStateError, UnknownStaffMember
from ..staff import accounts, totp
from ..staff.roles import Action, Role
from .guard import guarded
from .pages import language_of, render, say, workspace

__all__ = ["ROUTES"]


def _role(value: str) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        return None


async def _page(request: Request, *, status_code: int = 200, **context) -> Response:
    ws = workspace(request)
    overview = await ws.db(accounts.overview, ws.newsletter)
    return render(request, "accounts.html", status_code=status_code, members=overview.members,
                  totp_required=overview.totp_required, roles=list(Role), sending_roles=sorted(
                      r.value for r in totp.SENDING_ROLES), **{"error": None, "invited": None, **context})


@guarded(Action.VIEW_ACCOUNTS)
async def accounts_page(request: Request) -> Response:
    return await _page(request)


@guarded(Action.INVITE)
async def invite_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    role = _role(str(form.get("role", "")))
    if role is None:
        return await _page(request, status_code=400, error="role")
    try:
        invitation = await ws.slow(accounts.invite, ws.newsletter, request.state.actor, str(form.get("email", "")),
                                 role, name=str(form.get("name", "")), languages=form.getlist("languages"),
                                 mail_language=str(form.get("mail_language", "")) or language_of(request))
    except (InvalidAddress, InvalidField, StaffMemberExists) as exc:
        return await _page(request, status_code=400, error=say(request, exc))
    return await _page(request, invited=invitation)


@guarded(Action.REVOKE)
async def revoke_submit(request: Request) -> Response:
    ws = workspace(request)
    try:
        await ws.db(accounts.revoke, ws.newsletter, request.state.actor, str(request.state.form.get("email", "")))
    except (UnknownStaffMember, StaffStateError) as exc:
        return await _page(request, status_code=400, error=say(request, exc))
    return RedirectResponse(f"{request.scope.get('root_path', '')}/accounts", status_code=303)


@guarded(Action.CHANGE_ROLE)
async def role_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    role = _role(str(form.get("role", "")))
    if role is None:
        return await _page(request, status_code=400, error="role")
    try:
        await ws.db(accounts.change_role, ws.newsletter, request.state.actor, str(form.get("email", "")), role,
                    form.getlist("languages"))
    except (UnknownStaffMember, StaffStateError, InvalidField) as exc:
        return await _page(request, status_code=400, error=say(request, exc))
    return RedirectResponse(f"{request.scope.get('root_path', '')}/accounts", status_code=303)


@guarded(Action.CHANGE_SETTINGS)
async def totp_requirement_submit(request: Request) -> Response:
    ws = workspace(request)
    roles = [r for r in (_role(v) for v in request.state.form.getlist("roles")) if r is not None]
    try:
        await ws.db(totp.require_for, ws.newsletter, request.state.actor, roles)
    except InvalidField as exc:
        return await _page(request, status_code=400, error=say(request, exc))
    return RedirectResponse(f"{request.scope.get('root_path', '')}/accounts", status_code=303)


@guarded(Action.CHANGE_ROLE)
async def totp_reset_submit(request: Request) -> Response:
    """An owner removes a member's second factor (a lost phone); they enroll again."""
    ws = workspace(request)
    await ws.db(totp.disable, ws.newsletter, request.state.actor, str(request.state.form.get("email", "")))
    return RedirectResponse(f"{request.scope.get('root_path', '')}/accounts", status_code=303)


ROUTES = [
    Route("/accounts", accounts_page, methods=["GET"], name="accounts"),
    Route("/accounts/invite", invite_submit, methods=["POST"]),
    Route("/accounts/revoke", revoke_submit, methods=["POST"]),
    Route("/accounts/role", role_submit, methods=["POST"]),
    Route("/accounts/totp-reset", totp_reset_submit, methods=["POST"]),
    Route("/settings/totp", totp_requirement_submit, methods=["POST"]),
]
