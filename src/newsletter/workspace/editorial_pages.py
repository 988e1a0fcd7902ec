"""What the editorial pages share: their headers (a little script of our own, previews in
frames of our own), the email frame's sandbox, and the typed values they read from a form."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

__all__ = ["PAGE_HEADERS", "FRAME_HEADERS", "JSON_HEADERS", "redirect", "form_of"]

#: The editorial pages: our own script and styles, our own preview frames, fetches to us only.
PAGE_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; frame-src 'self'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "Cache-Control": "no-store",
}
#: A mail shown in a frame: its own inline styles and remote images, no script, no form, framed
#: only by our own pages.
FRAME_HEADERS = {
    "Content-Security-Policy": ("sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
                                "style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'self'; "
                                "base-uri 'none'; form-action 'none'"),
    "X-Frame-Options": "SAMEORIGIN",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
JSON_HEADERS = {"Cache-Control": "no-store"}


def redirect(request: Request, path: str) -> Response:
    """303 to `path` under the workspace's mount."""
    return RedirectResponse(f"{request.scope.get('root_path', '')}{path}", status_code=303)


def frame(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers=FRAME_HEADERS)


def form_of(request: Request) -> dict[str, str]:
    """The POST's form (parsed by the guard) as text values."""
    form = getattr(request.state, "form", None)
    return {k: str(v) for k, v in form.multi_items()} if form is not None else {}
