"""The REST API: a face, like `cli/`, `web/` and `workspace/`, mounted at /api/v1 by the web app.

Tokens carry scopes (read, subscribers, send) and a rate limit each (`staff.api_tokens`);
handlers parse, make one library call and answer JSON; errors are JSON with stable codes
(`endpoint.ERROR_CODES`); the OpenAPI 3.1 document is served at /api/v1/openapi.json.
See docs/api.md.
"""

from .routes import OPERATIONS, api_routes

__all__ = ["api_routes", "OPERATIONS"]
