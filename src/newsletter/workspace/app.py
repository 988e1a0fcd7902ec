"""The staff workspace, mounted at /admin by the web app: `workspace_routes(installation)`.

Each page module (`auth`, `dashboard`, `accounts`, `account`, `audit`, …) lists its `ROUTES`;
`workspace_routes` binds them to one `WorkspaceState` and adds the workspace's own static files.
A handler is either `@guarded(Action.X)` or `@public()` (`guard.py`): `tests/test_workspace_roles.py`
walks what this returns and holds every route to its roles, so a new page is held as it comes.
Add a page module to `PAGES` to mount its routes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..installation import Newsletter
from ..resources import find_template_file
from . import (
    account,
    accounts,
    audit,
    auth,
    campaigns,
    dashboard,
    issues,
    lists,
    people,
    segments,
)
from .pages import WorkspaceState

__all__ = ["workspace_routes", "PAGES"]

#: The modules whose ROUTES make the workspace, in the order they are matched.
PAGES: tuple[ModuleType, ...] = (auth, dashboard, accounts, account, audit, people, segments, lists, issues,
                                 campaigns)


def _bind(state: WorkspaceState, endpoint):
    @functools.wraps(endpoint)
    async def bound(request: Request) -> Response:
        request.state.workspace = state
        return await endpoint(request)

    bound.guard = endpoint.guard  # type: ignore[attr-defined]
    return bound


def workspace_routes(installation: Newsletter, *, dns: Callable[[str], list[str]] | None = None) -> list[BaseRoute]:
    """Every route of the workspace over this installation (mount them under /admin).

    `dns` answers the pre-flight check's TXT lookups (default: dnspython's resolver)."""
    state = WorkspaceState.of(installation, dns=dns)
    routes: list[BaseRoute] = []
    for module in PAGES:
        for route in module.ROUTES:
            if not hasattr(route.endpoint, "guard"):
                raise TypeError(f"{module.__name__}: {route.path} is neither @guarded nor @public")
            routes.append(Route(route.path, _bind(state, route.endpoint), methods=sorted(route.methods - {"HEAD"}),
                                name=route.name))
    static = (find_template_file(installation.config.templates_path, "workspace/static")
              or installation.config.templates_path / "workspace" / "static")
    routes.append(Mount("/static", app=StaticFiles(directory=str(static)), name="workspace_static"))
    return routes
