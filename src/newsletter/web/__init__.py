"""The visitor pages (Starlette): sign-up, confirm, unsubscribe, preferences, block.

`create_app(newsletter)` builds the ASGI application of these pages; `newsletter.app.create_app`
mounts the staff workspace and the API beside them, and `newsletter serve` runs that with
uvicorn. The library never imports this package.
"""

from __future__ import annotations

from .app import WebState, create_app

__all__ = ["create_app", "WebState"]
