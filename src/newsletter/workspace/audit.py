"""The audit trail: read it (filtered, a page at a time) and export it as CSV."""

from __future__ import annotations

from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..staff import audit
from ..staff.roles import Action
from .guard import guarded
from .pages import render, workspace

__all__ = ["ROUTES"]

PAGE = 50


def _filters(request: Request) -> dict:
    query = request.query_params

    def day(name: str) -> datetime | None:
        try:
            return datetime.fromisoformat(query.get(name, "")).replace(tzinfo=timezone.utc)
        except ValueError:
            return None

    return {"actor": query.get("actor", "")[:320] or None, "action": query.get("action", "")[:64] or None,
            "since": day("since"), "until": day("until")}


@guarded(Action.VIEW_AUDIT)
async def audit_page(request: Request) -> Response:
    ws = workspace(request)
    try:
        offset = max(0, int(request.query_params.get("offset", "0")))
    except ValueError:
        offset = 0
    page = await ws.db(audit.lines, ws.newsletter, offset=offset, limit=PAGE, **_filters(request))
    return render(request, "audit.html", page=page, query=request.query_params, filters=request.url.query)


@guarded(Action.EXPORT_AUDIT)
async def audit_export(request: Request) -> Response:
    ws = workspace(request)
    filters = _filters(request)
    await ws.db(audit.note, ws.newsletter, request.state.actor, Action.EXPORT_AUDIT, "audit_events",
                " ".join(f"{k}={v}" for k, v in filters.items() if v))
    stamp = ws.newsletter.clock().strftime("%Y%m%d-%H%M")
    return StreamingResponse(audit.export_csv(ws.newsletter, **filters), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"',
                                      "Cache-Control": "no-store"})


ROUTES = [
    Route("/audit", audit_page, methods=["GET"], name="audit"),
    Route("/audit.csv", audit_export, methods=["GET"], name="audit_export"),
]
