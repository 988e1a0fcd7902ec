"""The route table of /api/v1: each operation's method, path, scope, handler and schemas, from
which both the Starlette routes and the OpenAPI document are made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..installation import Newsletter
from . import campaigns, people
from .endpoint import ApiState, endpoint, error_response
from .openapi import INT, STR, openapi_document

__all__ = ["Operation", "OPERATIONS", "api_routes"]


class Operation(NamedTuple):
    method: str
    path: str
    scope: str | None
    handler: Callable[..., Any]
    summary: str
    answer: str
    status: int = 200
    body: str | None = None
    query: dict[str, Any] = {}


LIMIT = {"limit": INT}
OPERATIONS = [
    Operation("GET", "/lists", "read", people.list_lists, "Every list with its counts", "Lists"),
    Operation("GET", "/subscribers", "read", people.search_subscribers, "Search people by address or name",
              "People", query={"q": STR, **LIMIT}),
    Operation("POST", "/subscribers", "subscribers", people.create_subscriber,
              "Sign someone up (double opt-in: they get a confirmation mail)", "Accepted", 202, "NewSubscriber"),
    Operation("GET", "/subscribers/{email}", "read", people.show_subscriber,
              "A person: subscriptions, attributes, consent log, bounces", "PersonRecord"),
    Operation("PATCH", "/subscribers/{email}", "subscribers", people.update_subscriber,
              "Change a person's attributes (an empty value removes one)", "Attributes", body="AttributeChange"),
    Operation("DELETE", "/subscribers/{email}", "subscribers", people.erase_subscriber,
              "Erase a person (the address stays suppressed, as a hash)", "Erased"),
    Operation("POST", "/subscribers/{email}/unsubscribe", "subscribers", people.unsubscribe_subscriber,
              "Unsubscribe from one list, or from all", "Unsubscribed", body="Unsubscribe"),
    Operation("GET", "/subscriptions", "read", people.list_subscriptions,
              "Subscriptions with the people's attributes", "Subscriptions",
              query={"list": STR, "status": STR, **LIMIT}),
    Operation("GET", "/segments", "read", people.list_segments, "Every segment", "Segments"),
    Operation("POST", "/segments", "subscribers", people.create_segment, "Save a segment (checked first)",
              "Segment", 201, "NewSegment"),
    Operation("GET", "/segments/{name}", "read", people.show_segment,
              "A segment and who it names now, per language and country", "SegmentAudience",
              query={"list": STR, "sample": INT}),
    Operation("DELETE", "/segments/{name}", "subscribers", people.delete_segment, "Delete a segment", "Deleted"),
    Operation("GET", "/campaigns", "read", campaigns.list_campaigns, "Every campaign with its counts", "Campaigns"),
    Operation("POST", "/campaigns", "send", campaigns.create_campaign,
              "Submit an issue's content files; answers the plan (nothing is sent)", "Plan", 201, "NewCampaign"),
    Operation("GET", "/campaigns/{slug}", "read", campaigns.show_campaign, "A campaign's status and counts",
              "CampaignDetail"),
    Operation("POST", "/campaigns/{slug}/send", "send", campaigns.send_campaign,
              "Send submitted content (or resume the campaign)", "Sending", 202, "SendRequest"),
    Operation("POST", "/campaigns/{slug}/schedule", "send", campaigns.schedule_campaign,
              "Schedule submitted content for a time in a time zone", "Schedule", 201, "ScheduleRequest"),
    Operation("POST", "/campaigns/{slug}/pause", "send", campaigns.pause_campaign, "Pause a sending campaign",
              "CampaignSummary"),
    Operation("GET", "/campaigns/{slug}/report", "read", campaigns.report_campaign,
              "Who did not get it, and the member organisations left unreachable", "Report"),
    Operation("GET", "/suppressions", "read", people.list_suppressions, "Suppressed addresses, newest first",
              "Suppressions", query={"reason": STR, **LIMIT}),
    Operation("POST", "/providers/{provider}", None, people.provider_webhook,
              "A mail provider's bounce and complaint webhook (ses, postmark, mailgun, sendgrid), verified as the "
              "provider documents it", "ProviderReceived"),
    Operation("GET", "/events", "read", people.list_events,
              "The event log (consent events), oldest first after a cursor", "Events",
              query={"after": INT, **LIMIT}),
]


@endpoint(None)
async def openapi_json(request: Request, newsletter: Newsletter) -> Any:
    return openapi_document(OPERATIONS)


async def _not_found(request: Request) -> Response:
    return error_response(404, "not_found", f"there is no API route {request.url.path}")


def api_routes(newsletter: Newsletter, *, sends: Any = None, fetch: Any = None) -> list[BaseRoute]:
    """The routes to mount at /api/v1. `sends` runs the sends the API starts (default: a
    `BackgroundSends` of the installation); `fetch` gets SNS certificates (default: HTTPS)."""
    from ..editorial.background import BackgroundSends

    state = ApiState(newsletter, sends=sends or BackgroundSends(newsletter), fetch=fetch)

    def bind(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def with_state(request: Request) -> Response:
            request.state.api = state
            return await handler(request)

        return with_state

    routes: list[BaseRoute] = [Route("/openapi.json", bind(openapi_json), methods=["GET"])]
    by_path: dict[str, dict[str, Callable]] = {}
    for op in OPERATIONS:
        by_path.setdefault(op.path, {})[op.method] = op.handler
    for path, handlers in by_path.items():
        async def dispatch(request: Request, handlers: dict[str, Callable] = handlers) -> Response:
            handler = handlers.get(request.method)
            if handler is None:
                return error_response(405, "method_not_allowed", f"{request.method} is not allowed here",
                                      headers={"Allow": ", ".join(sorted(handlers))})
            return await handler(request)

        routes.append(Route(path, bind(dispatch), methods=["GET", "POST", "PATCH", "DELETE", "PUT"]))
    routes.append(Route("/{rest:path}", _not_found, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]))
    return routes
