"""The workspace's home page: the dashboard, and the pre-flight check on demand."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..sending.preflight import Fix
from ..staff import dashboard
from ..staff.roles import Action
from .guard import guarded
from .pages import render, say, workspace

__all__ = ["ROUTES", "FIX_HINTS"]

#: What to do about a pre-flight result, as the workspace says it (the commands are the operator's).
FIX_HINTS = {
    Fix.MAKE_DKIM_KEY: "make-dkim-key",
    Fix.PUBLISH_DKIM_KEY: "publish-dkim-key",
    Fix.START_WEB: "start-web",
    Fix.GIVE_CONTENT: "give-content",
}


@guarded(Action.VIEW_DASHBOARD)
async def dashboard_page(request: Request) -> Response:
    ws = workspace(request)
    board = await ws.db(dashboard.dashboard, ws.newsletter)
    return render(request, "dashboard.html", board=board, thresholds=dashboard)


@guarded(Action.VIEW_DASHBOARD)
async def check_page(request: Request) -> Response:
    ws = workspace(request)
    lookup = ws.dns or getattr(request.app.state, "txt_lookup", None)  # an app may bring its own resolver
    results = await ws.slow(dashboard.preflight, ws.newsletter, lookup=lookup)
    shown = [r._replace(detail=say(request, r.said or r.detail)) for r in results]  # in the page's language
    return render(request, "check.html", results=shown, hints=FIX_HINTS)


ROUTES = [
    Route("/", dashboard_page, methods=["GET"], name="dashboard"),
    Route("/check", check_page, methods=["GET"], name="check"),
]
