"""The composition root of the HTTP faces: the visitor pages (`web`), with the staff workspace
(`workspace`) under `/admin` and the REST API (`api`) under `/api/v1` mounted beside them.

`web/` knows neither the workspace nor the API; `service/` and `demo.py` serve what
`create_app` returns. The library never imports this module.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount

from .api import api_routes
from .installation import Newsletter
from .web import create_app as create_pages
from .workspace import workspace_routes

__all__ = ["create_app"]


def create_app(newsletter: Newsletter, *, min_fill_seconds: float | None = None) -> Starlette:
    """The whole site over `newsletter`: `web.create_app`'s pages, error pages and lifespan, with
    `/admin` and `/api/v1` mounted. `min_fill_seconds` as for `web.create_app`."""
    return create_pages(newsletter, min_fill_seconds=min_fill_seconds,
                        mounts=[Mount("/admin", routes=workspace_routes(newsletter)),
                                Mount("/api/v1", routes=api_routes(newsletter))])
