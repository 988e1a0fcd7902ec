"""The staff workspace: a face, like `cli/` and `web/`, mounted at /admin.

Handlers parse, make one call to a use case (`newsletter.staff`, `newsletter.people`,
`newsletter.sending`), and render; they never import the store. Every handler is guarded
(`guard.guarded`) or public (`guard.public`); `app.workspace_routes` makes the routes.
"""

from .app import workspace_routes

__all__ = ["workspace_routes"]
