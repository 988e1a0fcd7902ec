"""The segments page: the saved segments with their audience now, one shown per language and
country, saved from the expression language, deleted. Each handler parses, makes one call to
`staff.segments` and renders."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..attributes import country_name
from ..errors import InvalidField, SegmentError, UnknownSegment
from ..segment_language import BUILDER_OPERATORS
from ..staff import segments
from ..staff.roles import Action
from .guard import guarded
from .pages import render, say, workspace

__all__ = ["ROUTES"]

#: How many condition rows the form offers (all must hold).
CONDITIONS = 3


async def _page(request: Request, *, status_code: int = 200, error: str | None = None, column: int | None = None,
                form: dict | None = None) -> Response:
    ws = workspace(request)
    lines = await ws.db(segments.segments_page, ws.newsletter)
    shown, audience, show_error = None, None, None
    name = request.query_params.get("show", "").strip()
    if name:
        try:
            shown, audience = await ws.db(segments.show_segment, ws.newsletter, name)
        except (UnknownSegment, SegmentError) as exc:
            show_error = say(request, exc)
    fields = ["list", "language", *(a.name for a in ws.newsletter.config.attributes)]
    return render(request, "segments.html", status_code=status_code, lines=lines, shown=shown, audience=audience,
                  show_error=show_error, error=error, column=column, form=form or {}, fields=fields,
                  operators=BUILDER_OPERATORS, rows=range(CONDITIONS),
                  country_name=country_name, done=request.query_params.get("done", ""))


@guarded(Action.VIEW_PEOPLE)
async def segments_page(request: Request) -> Response:
    return await _page(request)


@guarded(Action.MANAGE_SEGMENTS)
async def save_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    echo = {"name": str(form.get("name", "")), "expression": str(form.get("expression", "")),
            "description": str(form.get("description", "")), "replace": bool(form.get("replace"))}
    conditions = [(str(form.get(f"field_{i}", "")), str(form.get(f"op_{i}", "")), str(form.get(f"value_{i}", "")))
                  for i in range(CONDITIONS)]
    echo["conditions"] = conditions
    try:
        saved = await ws.db(segments.save_segment, ws.newsletter, request.state.actor, echo["name"],
                            echo["expression"], description=echo["description"], replace=echo["replace"],
                            conditions=conditions)
    except SegmentError as exc:
        return await _page(request, status_code=400, error=say(request, exc), column=exc.column, form=echo)
    except InvalidField as exc:
        return await _page(request, status_code=400, error=say(request, exc), form=echo)
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/segments?show={saved.name}&done=saved", status_code=303)


@guarded(Action.MANAGE_SEGMENTS)
async def delete_submit(request: Request) -> Response:
    ws = workspace(request)
    try:
        await ws.db(segments.delete_segment, ws.newsletter, request.state.actor, request.path_params["name"])
    except UnknownSegment as exc:
        return await _page(request, status_code=404, error=say(request, exc))
    return RedirectResponse(f"{request.scope.get('root_path', '')}/segments?done=deleted", status_code=303)


ROUTES = [
    Route("/segments", segments_page, methods=["GET"], name="segments"),
    Route("/segments", save_submit, methods=["POST"]),
    Route("/segments/{name}/delete", delete_submit, methods=["POST"]),
]
