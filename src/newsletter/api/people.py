"""API handlers about people: lists, subscribers, subscriptions, segments, suppressions, the event log.

Each parses, makes one library call (in a worker thread) and returns JSON-ready values."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..errors import InvalidField
from ..bounces import providers
from ..installation import Newsletter
from ..people import events, profiles, segments, subscriptions, suppressions
from ..people.rules import ConsentContext
from ..statuses import Channel, SubscriptionStatus, SuppressionReason
from .endpoint import ApiError, endpoint, json_body, raw_body, run

__all__ = ["list_lists", "search_subscribers", "create_subscriber", "show_subscriber", "update_subscriber",
           "erase_subscriber", "unsubscribe_subscriber", "list_subscriptions", "list_segments", "create_segment",
           "show_segment", "delete_segment", "list_suppressions", "list_events", "provider_webhook"]


def _int(request: Request, name: str, default: int, *, low: int = 0, high: int = 1000) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"{name} must be between {low} and {high}")
    return value


def _text(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", f"{name} must be a string", field=name)
    return value


def _object(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        raise ApiError(400, "bad_request", f"{name} must be an object", field=name)
    return value


def _status(request: Request) -> SubscriptionStatus | None:
    raw = request.query_params.get("status")
    try:
        return SubscriptionStatus(raw) if raw else None
    except ValueError:
        raise ApiError(400, "bad_request", f"status must be one of {', '.join(s.value for s in SubscriptionStatus)}")


def _context(request: Request) -> ConsentContext:
    return ConsentContext(channel=Channel.API, ip=request.client.host if request.client else None,
                          user_agent=request.headers.get("user-agent"), source=f"api:{request.state.grant.name}")


@endpoint("read")
async def list_lists(request: Request, newsletter: Newsletter) -> Any:
    return {"lists": [s._asdict() for s in await run(subscriptions.list_summaries, newsletter)]}


@endpoint("read")
async def search_subscribers(request: Request, newsletter: Newsletter) -> Any:
    found = await run(profiles.search_people, newsletter, request.query_params.get("q", ""),
                      limit=_int(request, "limit", 50, low=1))
    return {"subscribers": [p._asdict() for p in found]}


@endpoint("subscribers", status=202)
async def create_subscriber(request: Request, newsletter: Newsletter) -> Any:
    data = await json_body(request)
    lists = data.get("lists")
    if not isinstance(lists, list) or not all(isinstance(s, str) for s in lists):
        raise ApiError(400, "bad_request", "lists must be a list of list slugs", field="lists")
    record = await run(subscriptions.record_signup, newsletter, _text(data, "email", required=True) or "",
                       _text(data, "name") or "", _text(data, "language"), lists, _context(request),
                       public_only=False, attributes=_object(data, "attributes") or None)
    web = getattr(request.app.state, "web", None)
    if record.due is not None and web is not None and web.drainer is not None:
        web.drainer.wake()  # the mail is queued (committed): the visitor pages' drainer sends it
    # The same answer whether the address was new, pending, active or suppressed (as the form's).
    return {"status": "accepted", "message": "a confirmation mail is sent unless none is due"}


@endpoint("read")
async def show_subscriber(request: Request, newsletter: Newsletter) -> Any:
    record = await run(subscriptions.person, newsletter, request.path_params["email"], with_bounces=True)
    return record.as_json(with_bounces=True)


@endpoint("subscribers")
async def update_subscriber(request: Request, newsletter: Newsletter) -> Any:
    data = await json_body(request)
    unknown = set(data) - {"attributes"}
    if unknown:
        raise ApiError(400, "bad_request", f"only attributes can be changed here, not {', '.join(sorted(unknown))}")
    held = await run(subscriptions.change_attributes, newsletter, request.path_params["email"],
                     _object(data, "attributes"), _context(request))
    return {"email": request.path_params["email"], "attributes": held}


@endpoint("subscribers")
async def erase_subscriber(request: Request, newsletter: Newsletter) -> Any:
    erased = await run(subscriptions.erase, newsletter, request.path_params["email"])
    return {"erased": erased}


@endpoint("subscribers")
async def unsubscribe_subscriber(request: Request, newsletter: Newsletter) -> Any:
    data = await json_body(request)
    left = await run(subscriptions.unsubscribe_address, newsletter, request.path_params["email"],
                     _context(request), _text(data, "list"))
    return {"unsubscribed_from": left}


@endpoint("read")
async def list_subscriptions(request: Request, newsletter: Newsletter) -> Any:
    lines = await run(profiles.export_lines, newsletter, list_slug=request.query_params.get("list") or None,
                      status=_status(request))
    names = profiles.export_header(newsletter)
    limit = _int(request, "limit", 1000, low=1, high=100000)
    return {"subscriptions": [dict(zip(names, line)) for line in lines[:limit]]}


@endpoint("read")
async def list_segments(request: Request, newsletter: Newsletter) -> Any:
    return {"segments": [s.__dict__ for s in await run(segments.list_segments, newsletter)]}


@endpoint("subscribers", status=201)
async def create_segment(request: Request, newsletter: Newsletter) -> Any:
    data = await json_body(request)
    replace = data.get("replace", False)
    if not isinstance(replace, bool):
        raise ApiError(400, "bad_request", "replace must be true or false", field="replace")
    saved = await run(segments.create_segment, newsletter, _text(data, "name", required=True) or "",
                      _text(data, "expression", required=True) or "", description=_text(data, "description") or "",
                      replace=replace)
    return saved.__dict__


@endpoint("read")
async def show_segment(request: Request, newsletter: Newsletter) -> Any:
    info, audience = await run(segments.show_segment, newsletter, request.path_params["name"],
                               list_slug=request.query_params.get("list") or None,
                               sample=_int(request, "sample", 0, high=100))
    return {**info.__dict__, "audience": audience.__dict__}


@endpoint("subscribers")
async def delete_segment(request: Request, newsletter: Newsletter) -> Any:
    await run(segments.delete_segment, newsletter, request.path_params["name"])
    return {"deleted": request.path_params["name"]}


@endpoint("read")
async def list_suppressions(request: Request, newsletter: Newsletter) -> Any:
    raw = request.query_params.get("reason")
    try:
        reason = SuppressionReason(raw) if raw else None
    except ValueError:
        raise InvalidField("reason", f"choose one of {', '.join(r.value for r in SuppressionReason)}") from None
    found = await run(suppressions.list_suppressions, newsletter, reason=reason,
                      limit=_int(request, "limit", 100, low=1, high=10000))
    return {"suppressions": [s._asdict() for s in found]}


@endpoint(None)
async def provider_webhook(request: Request, newsletter: Newsletter) -> Any:
    body = await raw_body(request)
    received = await run(providers.receive_webhook, newsletter, request.path_params["provider"],
                         dict(request.headers), body, fetch=request.state.api.fetch)
    return received._asdict()


@endpoint("read")
async def list_events(request: Request, newsletter: Newsletter) -> Any:
    found = await run(events.event_log, newsletter, after=_int(request, "after", 0, high=2**62),
                      limit=_int(request, "limit", 100, low=1))
    return {"events": [e._asdict() for e in found], "next_after": found[-1].id if found else
            _int(request, "after", 0, high=2**62)}
