"""The preferences page: language, name, lists, leave everything, download my data.

Every form on it carries the page's CSRF token; a POST without a valid one is refused (403)
and changes nothing.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import InvalidField, InvalidToken, UnknownList
from ..people import subscriptions as visitor
from ..routine import series
from ..statuses import DeliveryMode
from ..statuses import Channel
from ..tokens import Purpose
from .links import (
    csrf_ok,
    csrf_refused,
    csrf_token,
    invalid_link,
    link_context,
    page,
    read_form,
    token_language,
)
from .attribute_fields import attribute_fields, posted_attributes
from .security import TOKEN_PAGE_HEADERS

__all__ = ["routes"]


def routes() -> list[Route]:
    return [
        Route("/preferences/{token}", preferences_page, methods=["GET"]),
        Route("/preferences/{token}", preferences_submit, methods=["POST"]),
        Route("/preferences/{token}/unsubscribe", leave_everything, methods=["POST"]),
        Route("/preferences/{token}/delivery", choose_delivery, methods=["POST"]),
        Route("/preferences/{token}/export", export_data, methods=["POST"]),
    ]


async def _load(request: Request) -> visitor.Preferences | None:
    web = request.app.state.web
    try:
        return await web.read(visitor.preferences, web.newsletter, request.path_params["token"])
    except InvalidToken:
        return None


class _Posted(NamedTuple):
    fields: dict[str, Any]
    prefs: visitor.Preferences
    language: str


async def _posted(request: Request) -> _Posted | Response:
    """A form posted on the page: its fields, the person's preferences and the page's language;
    or the response that refuses it (an invalid link; no valid CSRF token, 403)."""
    fields = await read_form(request)
    prefs = await _load(request)
    if prefs is None:
        return invalid_link(request, Purpose.PREFERENCES)
    language = token_language(request, prefs.holder)
    if not csrf_ok(request, fields):
        return csrf_refused(request, language)
    return _Posted(fields, prefs, language)


def _show(request: Request, prefs: visitor.Preferences, language: str, *,
          saved: visitor.PreferenceChanges | None = None,
          error: str | None = None, error_field: str | None = None, left: list[str] | None = None,
          status_code: int = 200) -> Response:
    editable = [a for a in request.app.state.web.config.attributes if a.preferences]
    return page(request, "preferences.html", language, prefs=prefs.in_language(language), csrf=csrf_token(request),
                attribute_fields=attribute_fields(editable, language, prefs.attributes),
                saved=saved, error=error, error_field=error_field, left=left, status_code=status_code)


async def preferences_page(request: Request) -> Response:
    prefs = await _load(request)
    if prefs is None:
        return invalid_link(request, Purpose.PREFERENCES)
    return _show(request, prefs, token_language(request, prefs.holder))


async def preferences_submit(request: Request) -> Response:
    web = request.app.state.web
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    fields, prefs, language = posted
    try:
        saved = await web.db(
            lambda: visitor.save_preferences(
                web.newsletter, request.path_params["token"], link_context(request, Channel.LINK, "preferences-page"),
                language=fields.get("language") or None, list_slugs=fields["lists"], name=fields.get("name"),
                attributes=posted_attributes([a for a in web.config.attributes if a.preferences], fields)))
    except InvalidToken:
        return invalid_link(request, Purpose.PREFERENCES)
    except InvalidField as exc:  # the field's reason (the page words the rest)
        return _show(request, prefs, language, error=exc.reason, error_field=exc.field, status_code=422)
    except UnknownList:  # a list not offered on the page (a tampered form)
        return _show(request, prefs, language, error="lists", error_field="lists", status_code=422)
    prefs = await _load(request) or prefs
    # The page now speaks the language just chosen.
    language = saved.language or language
    return _show(request, prefs, language, saved=saved)


async def choose_delivery(request: Request) -> Response:
    """Each day's mail, or one digest after a session's last day, for every list they are on."""
    web = request.app.state.web
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    fields, prefs, language = posted
    try:
        mode = DeliveryMode(fields.get("delivery") or "")
    except ValueError:  # a tampered form
        return _show(request, prefs, language, error="delivery", error_field="delivery", status_code=422)
    await web.db(series.choose_delivery, web.newsletter, request.path_params["token"], mode)
    prefs = await _load(request) or prefs
    return _show(request, prefs, language, saved=visitor.PreferenceChanges())


async def leave_everything(request: Request) -> Response:
    web = request.app.state.web
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    _fields, prefs, language = posted
    left = await web.db(visitor.unsubscribe_everything, web.newsletter, Purpose.PREFERENCES,
                                   request.path_params["token"],
                                   link_context(request, Channel.LINK, "preferences-page"))
    prefs = await _load(request) or prefs
    return _show(request, prefs, language, left=left)


async def export_data(request: Request) -> Response:
    web = request.app.state.web
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    record = await web.db(visitor.export_by_token, web.newsletter, request.path_params["token"])
    body = json.dumps(record.as_json(), ensure_ascii=False, indent=2) + "\n"
    return Response(body, media_type="application/json", headers={
        **TOKEN_PAGE_HEADERS, "Content-Disposition": 'attachment; filename="my-newsletter-data.json"'})
