"""The workspace's home page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..staff.roles import Action
from .guard import guarded
from .pages import render

__all__ = ["ROUTES"]


@guarded(Action.VIEW_DASHBOARD)
async def dashboard_page(request: Request) -> Response:
    return render(request, "dashboard.html")


ROUTES = [
    Route("/", dashboard_page, methods=["GET"], name="dashboard"),
]
