"""The OpenAPI 3.1 document of /api/v1, built from the route table (`api.routes.OPERATIONS`) and
the schemas here. Tests validate it (openapi-spec-validator) and check every recorded response
against it (jsonschema), so it cannot drift from what the handlers answer."""

from __future__ import annotations

from typing import Any

__all__ = ["SCHEMAS", "openapi_document", "ref"]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], *, required: list[str] | None = None, extra: bool = False) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties) if required is None else required,
            "additionalProperties": extra}


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
WHEN = {"type": "string", "format": "date-time"}
MAYBE_WHEN = {"type": ["string", "null"], "format": "date-time"}
MAYBE_STR = {"type": ["string", "null"]}
MAYBE_INT = {"type": ["integer", "null"]}
COUNTS = {"type": "object", "additionalProperties": INT}
SCALAR = {"type": ["string", "integer", "boolean"]}
ATTRIBUTES = {"type": "object", "additionalProperties": SCALAR, "description": "declared attributes: name -> value"}
CAMPAIGN_COUNTS = _object({k: INT for k in ("queued", "sending", "sent", "deferred", "failed", "skipped")})

SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": _object({"code": STR, "message": STR, "field": STR, "column": INT, "scope": STR,
                                        "retry_after": INT}, required=["code", "message"])}),
    "ListSummary": _object({"slug": STR, "name": STR, "description": STR, "languages": {"type": "array", "items": STR},
                            "public": BOOL, "counts": COUNTS,
                            "translations": {"type": "object", "description": "language -> its name and description",
                                             "additionalProperties": {"type": "object", "additionalProperties": STR}},
                            "archived_at": MAYBE_WHEN}, required=["slug", "name", "description", "languages",
                                                                  "public", "counts"]),
    "Lists": _object({"lists": {"type": "array", "items": ref("ListSummary")}}),
    "Person": _object({"email": STR, "name": STR, "language": STR, "status": STR, "attributes": ATTRIBUTES}),
    "People": _object({"subscribers": {"type": "array", "items": ref("Person")}}),
    "NewSubscriber": _object({"email": STR, "name": STR, "language": STR, "lists": {"type": "array", "items": STR},
                              "attributes": ATTRIBUTES}, required=["email", "lists"]),
    "Accepted": _object({"status": {"const": "accepted"}, "message": STR}),
    "PersonRecord": _object({
        "email": STR, "name": STR, "language": STR, "status": STR, "created_at": MAYBE_WHEN, "attributes": ATTRIBUTES,
        "subscriptions": {"type": "array", "items": {"type": "object"}},
        "consent_log": {"type": "array", "items": {"type": "object"}},
        "bounces": {"type": "array", "items": {"type": "object"}},
        "campaigns": {"type": "array", "items": _object({
            "campaign": STR, "status": STR, "language": MAYBE_STR, "sent_at": MAYBE_WHEN, "relay": MAYBE_STR,
            "reply_code": MAYBE_INT, "reply": MAYBE_STR})}}),
    "AttributeChange": _object({"attributes": ATTRIBUTES}),
    "Attributes": _object({"email": STR, "attributes": ATTRIBUTES}),
    "Erased": _object({"erased": BOOL}),
    "Unsubscribe": _object({"list": STR}, required=[]),
    "Unsubscribed": _object({"unsubscribed_from": {"type": "array", "items": STR}}),
    "Subscriptions": _object({"subscriptions": {"type": "array", "items": {
        "type": "object", "required": ["email", "name", "language", "list", "status"],
        "properties": {"email": STR, "name": STR, "language": STR, "list": STR, "status": STR},
        "additionalProperties": STR}}}),
    "Segment": _object({"name": STR, "expression": STR, "description": STR, "created_at": WHEN, "updated_at": WHEN}),
    "Segments": _object({"segments": {"type": "array", "items": ref("Segment")}}),
    "NewSegment": _object({"name": STR, "expression": STR, "description": STR, "replace": BOOL},
                          required=["name", "expression"]),
    "SegmentAudience": _object({
        "name": STR, "expression": STR, "description": STR, "created_at": WHEN, "updated_at": WHEN,
        "audience": _object({"segment": STR, "expression": STR, "list_slug": MAYBE_STR, "total": INT,
                             "by_language": COUNTS, "by_country": COUNTS, "sample": {"type": "array", "items": STR}})}),
    "Deleted": _object({"deleted": STR}),
    "Suppressions": _object({"suppressions": {"type": "array", "items": _object({
        "address": MAYBE_STR, "address_hash": STR, "reason": STR, "at": WHEN, "note": MAYBE_STR})}}),
    "Events": _object({"events": {"type": "array", "items": _object({
        "id": INT, "at": WHEN, "event": STR, "channel": STR, "email": STR, "list_slug": MAYBE_STR,
        "source": MAYBE_STR, "note": MAYBE_STR})}, "next_after": INT}),
    "CampaignSummary": _object({
        "slug": STR, "list": STR, "subject": STR,
        "status": {"enum": ["draft", "sending", "paused", "finished", "cancelled"]},
        "status_reason": MAYBE_STR, "counts": CAMPAIGN_COUNTS, "created_at": WHEN, "started_at": MAYBE_WHEN,
        "finished_at": MAYBE_WHEN}),
    "Campaigns": _object({"campaigns": {"type": "array", "items": ref("CampaignSummary")}}),
    "CampaignDetail": {"allOf": [ref("CampaignSummary")], "type": "object", "required": ["workers"],
                       "properties": {"workers": COUNTS}},
    "NewCampaign": _object({"content": {"type": "object", "additionalProperties": STR,
                                        "description": "file name (<name>.<language>.md) -> its text"},
                            "list": STR, "segment": STR}, required=["content"]),
    "Plan": _object({
        "slug": STR, "subject": STR, "list": STR, "segment": MAYBE_STR, "total": INT, "audience": COUNTS,
        "readers": COUNTS, "variant_of": {"type": "object", "additionalProperties": STR}, "countries": COUNTS,
        "reach": {"type": ["object", "null"]},
        "lint": {"type": "array", "items": _object({"severity": STR, "rule": STR, "language": MAYBE_STR,
                                                     "message": STR})}}),
    "SendRequest": _object({"list": STR, "segment": STR}, required=[]),
    "Sending": {"allOf": [ref("Plan")], "type": "object", "required": ["status"],
                "properties": {"status": {"const": "sending"}}},
    "ScheduleRequest": _object({"at": STR, "zone": STR, "ready_by": STR, "window": STR, "list": STR,
                                "segment": {**STR, "description": "a saved segment's name, looked up when it fires"}},
                               required=["at", "zone"]),
    "Schedule": _object({"id": INT, "slug": STR, "list_slug": MAYBE_STR, "local_at": STR, "zone": STR,
                         "due_at": WHEN, "ready_by": MAYBE_WHEN, "window": MAYBE_STR, "status": STR,
                         "reason": MAYBE_STR, "fired_at": MAYBE_WHEN, "segment": MAYBE_STR}),
    "ProviderReceived": _object({"provider": STR, "reports": INT, "kinds": {"type": "array", "items": STR},
                                 "note": STR}),
    "Report": _object({"slug": STR, "counts": CAMPAIGN_COUNTS,
                       "failures": {"type": "array", "items": _object({
                           "email": MAYBE_STR, "status": STR, "attempts": INT, "reply": MAYBE_STR,
                           "updated_at": MAYBE_WHEN, "relay": MAYBE_STR, "reply_code": MAYBE_INT})},
                       "relays": {"type": "object", "additionalProperties": COUNTS,
                                  "description": "relay -> row status -> rows"},
                       "organisations": INT,
                       "organisations_left": {"type": "array", "items": {"type": "object"}}}),
}
# The allOf schemas above add to a closed schema: open it for them.
SCHEMAS["CampaignDetail"]["allOf"] = [{**SCHEMAS["CampaignSummary"], "additionalProperties": True}]
SCHEMAS["Sending"]["allOf"] = [{**SCHEMAS["Plan"], "additionalProperties": True}]

_ERRORS = {"400": "bad request (not JSON, a bad parameter)", "401": "no valid token", "403": "the token lacks the scope",
           "404": "no such list, subscriber, segment or campaign", "409": "the campaign cannot do that in its state",
           "422": "a value is refused", "429": "over the token's rate limit"}


def openapi_document(operations: list[Any]) -> dict[str, Any]:
    """The document for `operations` (method, path, scope, status, summary, body, answer, query)."""
    paths: dict[str, Any] = {}
    for op in operations:
        entry: dict[str, Any] = {
            "operationId": op.handler.__name__, "summary": op.summary,
            "responses": {str(op.status): {"description": "done", "content": {
                "application/json": {"schema": ref(op.answer)}}}},
        }
        if op.scope is not None:
            entry["security"] = [{"bearer": []}]
            entry["description"] = f"Needs a token with the `{op.scope}` scope."
            for code, why in _ERRORS.items():
                entry["responses"][code] = {"description": why,
                                            "content": {"application/json": {"schema": ref("Error")}}}
        elif op.path.startswith("/providers"):
            entry["security"] = []
            entry["description"] = "Authenticated as the provider documents it (no token)."
            for code in ("403", "413"):
                entry["responses"][code] = {"description": "refused", "content": {
                    "application/json": {"schema": ref("Error")}}}
        if op.body:
            entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(op.body)}}}
        parameters = [{"name": name, "in": "path", "required": True, "schema": STR}
                      for name in _path_names(op.path)]
        parameters += [{"name": name, "in": "query", "required": False, "schema": schema}
                       for name, schema in op.query.items()]
        if parameters:
            entry["parameters"] = parameters
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "newsletter", "version": "1",
                 "description": "Lists, subscribers, segments, campaigns, suppressions and the event log. "
                                "Errors are {\"error\": {\"code\", \"message\"}} with stable codes (docs/api.md)."},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "a token from `newsletter api-tokens create`"}}},
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
