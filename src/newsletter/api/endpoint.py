"""What every API handler shares: the token and its scope, the rate limit, JSON in and out, and
the one translation of library errors into JSON errors with stable codes.

An error is always `{"error": {"code": "...", "message": "...", ...}}`; the codes are part of
the API (docs/api.md lists them) and never change meaning.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import (
    ApiAccessDenied,
    CampaignStateError,
    ContentError,
    DeliveryError,
    InvalidAddress,
    InvalidField,
    LintFailed,
    MissingVariant,
    NewsletterError,
    NoAudience,
    ScheduleStateError,
    SegmentError,
    StoreError,
    UnknownCampaign,
    UnknownList,
    UnknownSchedule,
    UnknownSegment,
    UnknownSubscriber,
    WebhookRefused,
)
from ..installation import Newsletter, store_failure
from ..people.abuse import RateLimiter
from ..staff.api_tokens import TokenGrant, authenticate
from ..web.forms import BadRequest, read_body

__all__ = ["ERROR_CODES", "ApiError", "ApiState", "encode", "endpoint", "error_response", "json_body", "raw_body", "run"]

log = logging.getLogger(__name__)
MAX_BODY = 4_000_000

#: error class -> (HTTP status, code); the first match (in order) wins.
ERROR_CODES: tuple[tuple[type[NewsletterError], int, str], ...] = (
    (InvalidAddress, 422, "invalid_address"),
    (InvalidField, 422, "invalid_field"),
    (SegmentError, 422, "invalid_segment"),
    (ContentError, 422, "invalid_content"),
    (LintFailed, 422, "lint_failed"),
    (MissingVariant, 422, "missing_variant"),
    (UnknownList, 404, "unknown_list"),
    (UnknownSubscriber, 404, "unknown_subscriber"),
    (UnknownSegment, 404, "unknown_segment"),
    (UnknownCampaign, 404, "unknown_campaign"),
    (UnknownSchedule, 404, "unknown_schedule"),
    (CampaignStateError, 409, "campaign_state"),
    (ScheduleStateError, 409, "schedule_state"),
    (NoAudience, 409, "no_audience"),
    (DeliveryError, 502, "relay_unusable"),
    (StoreError, 503, "store_unavailable"),
    (WebhookRefused, 403, "webhook_refused"),
)


class ApiError(Exception):
    """An answer other than the library's errors: bad JSON, a rate limit, an unknown route."""

    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra


@dataclass
class ApiState:
    """The API's part of the app (each request's `request.state.api`): the installation and the per-token limits."""

    newsletter: Newsletter
    #: token id -> its limiter (made on first use with the token's own rate)
    limiters: dict[int, RateLimiter] = field(default_factory=dict)
    #: the sends the API started (`editorial.background.BackgroundSends`)
    sends: Any = None
    #: how SNS certificates and subscription URLs are fetched (None: over HTTPS)
    fetch: Any = None

    def allow(self, grant: TokenGrant) -> bool:
        limiter = self.limiters.get(grant.id)
        if limiter is None or limiter.limit != grant.per_minute:
            limiter = self.limiters[grant.id] = RateLimiter(grant.per_minute, timedelta(minutes=1))
        return limiter.allow(str(grant.id), self.newsletter.clock())


def encode(value: Any) -> Any:
    """JSON-ready values: datetimes and dates in ISO 8601, enums as their values, tuples as lists."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "value") and type(value).__module__ == "newsletter.statuses":
        return value.value
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [encode(v) for v in value]
    return value


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})


def _library_error(exc: NewsletterError) -> JSONResponse:
    if isinstance(exc, ApiAccessDenied):
        if exc.scope == "token":
            return error_response(401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"})
        return error_response(403, "missing_scope", str(exc), scope=exc.scope)
    for cls, status, code in ERROR_CODES:
        if isinstance(exc, cls):
            extra: dict[str, Any] = {}
            message = str(exc)
            if isinstance(exc, (InvalidField, ContentError)) and getattr(exc, "field", None):
                extra["field"] = exc.field
            if isinstance(exc, SegmentError):
                extra["column"] = exc.column
            if isinstance(exc, ContentError):  # the server's paths are not the client's business
                message = (f"line {exc.line}: " if exc.line else "") + (f"{exc.field}: " if exc.field else "") \
                    + exc.detail
            if isinstance(exc, StoreError):
                message = "the database cannot be used just now; try again later"
            return error_response(status, code, message, **extra)
    log.error("API request failed: %s", exc)
    return error_response(500, "internal", "the request could not be done")


async def run(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A blocking library call, in a worker thread."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))


async def raw_body(request: Request) -> bytes:
    """The request's body, read bounded (`web.forms.read_body`: 413 from Content-Length before a
    byte is read, or as soon as the stream goes past `MAX_BODY`). Raises ApiError(413
    `too_large`, 400 `bad_request`)."""
    try:
        return await read_body(request, MAX_BODY)
    except BadRequest as refused:
        code = "too_large" if refused.status == 413 else "bad_request"
        raise ApiError(refused.status, code, f"the request is larger than {MAX_BODY} bytes"
                       if refused.status == 413 else refused.reason) from None


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object ({} for an empty body), read by `raw_body`. Raises ApiError(413
    `too_large`, 400 `bad_request`)."""
    body = await raw_body(request)
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except RecursionError:
        raise ApiError(400, "bad_request", "the body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_request", f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return data


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


Handler = Callable[[Request, Newsletter], Awaitable[Any]]


def endpoint(scope: str | None, *, status: int = 200) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler: check the token has `scope` (None: public) and is within its rate, run
    it, answer its value as JSON with `status`, and every error as a JSON error."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def answer(request: Request) -> Response:
            state: ApiState = request.state.api
            try:
                if scope is not None:
                    grant = await run(authenticate, state.newsletter, _bearer(request))
                    if scope not in grant.scopes:
                        raise ApiAccessDenied(scope)
                    if not state.allow(grant):
                        raise ApiError(429, "rate_limited", f"more than {grant.per_minute} requests a minute",
                                       retry_after=60)
                    request.state.grant = grant
                result = await handler(request, state.newsletter)
            except ApiError as exc:
                headers = {"Retry-After": "60"} if exc.status == 429 else None
                return error_response(exc.status, exc.code, str(exc), headers=headers, **exc.extra)
            except NewsletterError as exc:
                return _library_error(exc)
            except Exception as exc:
                failure = store_failure(exc)
                if failure is None:
                    raise
                return _library_error(failure)
            if isinstance(result, Response):
                return result
            return JSONResponse(encode(result), status_code=status, headers={"Cache-Control": "no-store"})

        answer.scope = scope  # type: ignore[attr-defined]
        return answer

    return wrap
