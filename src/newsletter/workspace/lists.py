"""The lists page (counts; created and edited, names and descriptions per language) and the
suppressions page (listed; lifted with a reason)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..errors import InvalidField, NotSuppressed, UnknownList
from ..staff import lists
from ..staff.roles import Action
from ..statuses import SuppressionReason
from .guard import guarded
from .pages import render, say, workspace

__all__ = ["ROUTES"]


async def _lists(request: Request, *, status_code: int = 200, error: str | None = None) -> Response:
    ws = workspace(request)
    found = await ws.db(lists.lists_page, ws.newsletter)
    return render(request, "lists.html", status_code=status_code, lists=found.lists, counted_at=found.counted_at,
                  error=error, done=request.query_params.get("done", ""))


@guarded(Action.VIEW_LISTS)
async def lists_page(request: Request) -> Response:
    return await _lists(request)


def _translations(form, languages) -> dict[str, dict[str, str]]:
    return {lang: {"name": str(form.get(f"name_{lang}", "")), "description": str(form.get(f"description_{lang}", ""))}
            for lang in languages}


@guarded(Action.MANAGE_LISTS)
async def create_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    try:
        slug = await ws.db(lists.create_list, ws.newsletter, request.state.actor, str(form.get("slug", "")),
                           str(form.get("name", "")), description=str(form.get("description", "")),
                           languages=[str(v) for v in form.getlist("languages")], public=bool(form.get("public")))
    except InvalidField as exc:
        return await _lists(request, status_code=400, error=say(request, exc))
    return RedirectResponse(f"{request.scope.get('root_path', '')}/lists?done=created#list-{slug}", status_code=303)


@guarded(Action.MANAGE_LISTS)
async def edit_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    languages = ws.newsletter.config.languages
    try:
        slug = await ws.db(lists.edit_list, ws.newsletter, request.state.actor, request.path_params["slug"],
                           name=str(form.get("name", "")), description=str(form.get("description", "")),
                           languages=[str(v) for v in form.getlist("languages")], public=bool(form.get("public")),
                           translations=_translations(form, languages))
    except (InvalidField, UnknownList) as exc:
        return await _lists(request, status_code=400, error=say(request, exc))
    return RedirectResponse(f"{request.scope.get('root_path', '')}/lists?done=saved#list-{slug}", status_code=303)


def _reason(value: str | None) -> SuppressionReason | None:
    try:
        return SuppressionReason(value) if value else None
    except ValueError:
        return None


async def _suppressions(request: Request, *, status_code: int = 200, error: str | None = None,
                        lifted=None) -> Response:
    ws = workspace(request)
    reason = _reason(request.query_params.get("reason"))
    page = await ws.db(lists.suppressions_page, ws.newsletter, reason)
    return render(request, "suppressions.html", status_code=status_code, page=page, reason=reason.value if reason else "",
                  reasons=[r.value for r in SuppressionReason], error=error, lifted=lifted)


@guarded(Action.VIEW_SUPPRESSIONS)
async def suppressions_page(request: Request) -> Response:
    return await _suppressions(request)


@guarded(Action.LIFT_SUPPRESSION)
async def lift_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    try:
        lifted = await ws.db(lists.lift_suppression, ws.newsletter, request.state.actor, str(form.get("address", "")),
                             str(form.get("why", "")))
    except (InvalidField, NotSuppressed) as exc:
        return await _suppressions(request, status_code=400, error=say(request, exc))
    return await _suppressions(request, lifted=lifted)


ROUTES = [
    Route("/lists", lists_page, methods=["GET"], name="lists"),
    Route("/lists", create_submit, methods=["POST"]),
    Route("/lists/{slug}", edit_submit, methods=["POST"]),
    Route("/suppressions", suppressions_page, methods=["GET"], name="suppressions"),
    Route("/suppressions/lift", lift_submit, methods=["POST"]),
]
