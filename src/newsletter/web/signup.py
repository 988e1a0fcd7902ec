"""The sign-up form (`GET /subscribe`) and its submission (`POST /subscribe`, form or JSON).

Every valid request gets the same answer, byte for byte — "check your inbox" — whether the
address is new, pending, active, unsubscribed or suppressed, and whether the request was
throttled (honeypot, too fast, forged form token, per-IP or per-address limit, hourly
ceiling). The confirmation mail is queued in the sign-up's transaction and sent by the
server's drainer after the answer (`confirmation_queue`). The answer leaves no sooner than
`signup_answer_ms` after the request arrived (`WebState.hold_answer`), so its time does not
tell what the store knows of the address either (bench/signup_timing.py measures it): the
work that differs by state (writing a new person, or nothing) ends well inside that floor.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..addresses import canonical_mailbox, clean_text, normalise_address
from ..errors import InvalidAddress, InvalidField, UnknownList
from ..people import subscriptions as visitor
from ..people.abuse import FormCheck, check_form_token, client_key, issue_form_token
from ..people.rules import ConsentContext
from ..people.signups import SignupRequest
from ..routine import series
from ..statuses import Channel, DeliveryMode
from .attribute_fields import attribute_fields, posted_attributes
from .forms import BadRequest, is_json, read_fields, read_json
from .pages import choose_language, consent_text, render_page
from .security import form_origin_allowed, header_text

__all__ = ["routes", "cors_headers"]

log = logging.getLogger(__name__)

HONEYPOT = "website"


def routes() -> list[Route]:
    return [
        Route("/subscribe", subscribe_form, methods=["GET"]),
        Route("/subscribe", subscribe_submit, methods=["POST"]),
        Route("/subscribe", subscribe_preflight, methods=["OPTIONS"]),
        Route("/", home, methods=["GET"]),
    ]


async def home(request: Request) -> Response:
    return await subscribe_form(request)


def _language(request: Request) -> str:
    web = request.app.state.web
    return choose_language(request, web.config.languages, web.config.default_language)


async def _form_page(request: Request, language: str, *, values: dict[str, Any] | None = None,
                     error: str | None = None, error_field: str | None = None, status_code: int = 200) -> Response:
    web = request.app.state.web
    lists = await web.read(visitor.public_lists, web.newsletter, language)
    values = {"email": "", "name": "", "language": "", "lists": [], **(values or {})}
    chosen = values.get("lists") or ([lists[0].slug] if len(lists) == 1 else [])
    shown = [a for a in web.config.attributes if a.signup]
    return render_page(
        request, "subscribe.html", language, status_code=status_code,
        attribute_fields=attribute_fields(shown, language, values.get("attributes")),
        lists=lists, values=values, chosen=set(chosen), error=error, error_field=error_field,
        form_token=issue_form_token(web.secret(), web.newsletter.clock()),
        consent=consent_text(web.templates_path, web.config.consent_version, language,
                             web.config.organisation_in(language)),
        consent_version="\u2066" + web.config.consent_version + "\u2069", honeypot=HONEYPOT,
    )


async def subscribe_form(request: Request) -> Response:
    return await _form_page(request, _language(request))


def cors_headers(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    web = request.app.state.web
    if origin and origin.rstrip("/").lower() in web.allowed_origins:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                "Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "600"}
    return {}


async def subscribe_preflight(request: Request) -> Response:
    headers = cors_headers(request)
    return Response(status_code=204 if headers else 403, headers=headers)


def _origin_allowed(request: Request) -> bool:
    """A browser's Origin must be ours or an allowed one (never `null`); requests without one (servers) pass."""
    web = request.app.state.web
    return form_origin_allowed(request.headers.get("origin"), web.own_origins(request), web.allowed_origins)


async def _read(request: Request) -> tuple[dict[str, Any], bool]:
    """The submitted fields and whether they came as JSON. Raises BadRequest for a bad body."""
    if is_json(request):
        data = await read_json(request)
        lists = data.get("lists", [])
        lists = [lists] if isinstance(lists, str) else lists
        if not isinstance(lists, list) or not all(isinstance(s, str) for s in lists):
            raise BadRequest(400, "lists must be a list of list slugs")
        fields = {k: data.get(k) for k in ("email", "name", "language", HONEYPOT, "form_token", "source", "delivery")}
        for key, value in fields.items():
            if value is not None and not isinstance(value, str):
                raise BadRequest(400, f"{key} must be a string")
        attributes = data.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise BadRequest(400, "attributes must be an object of attribute values")
        return {**fields, "lists": lists, "attributes": attributes}, True
    form = await read_fields(request, max_fields=50)
    fields = {k: form.get(k) for k in ("email", "name", "language", HONEYPOT, "form_token", "source", "delivery")}
    attributes = posted_attributes([a for a in request.app.state.web.config.attributes if a.signup], form)
    return {**fields, "lists": form["lists"], "attributes": attributes}, False


async def _accepted(request: Request, language: str, as_json: bool, started: float) -> Response:
    """The one answer to every valid sign-up, given no sooner than the answer floor after it
    arrived (`WebState.hold_answer`), whatever was done or skipped for it."""
    await request.app.state.web.hold_answer(started)
    if as_json:
        return JSONResponse({"status": "ok", "message": "check your inbox to confirm"},
                            headers={**cors_headers(request), "Cache-Control": "no-store"})
    return render_page(request, "subscribe_done.html", language, headers={"Cache-Control": "no-store"})


async def subscribe_submit(request: Request) -> Response:
    web = request.app.state.web
    started = web.monotonic()
    newsletter = web.newsletter
    if not _origin_allowed(request):
        log.info("sign-up refused: Origin %r", request.headers.get("origin"))
        if is_json(request):
            return JSONResponse({"status": "error", "error": "this origin may not post sign-ups"}, status_code=403)
        return render_page(request, "csrf_refused.html", _language(request), status_code=403,
                           headers={"Cache-Control": "no-store"})
    values, as_json = await _read(request)  # a BadRequest is the app's to answer
    language = _language(request)
    if values.get("language") in web.config.languages and not request.query_params.get("lang"):
        language = values["language"]
    ip = web.ip(request)
    now = newsletter.clock()

    async def invalid(message: str, field: str) -> Response:
        """The form again with the reason (the same for every address state: it depends on input only)."""
        if as_json:
            return JSONResponse({"status": "error", "field": field, "error": message}, status_code=422,
                                headers=cors_headers(request))
        return await _form_page(request, language, values=values, status_code=422, error=message, error_field=field)

    if values.get(HONEYPOT):
        log.info("sign-up ignored: honeypot filled (ip %s)", ip)
        return await _accepted(request, language, as_json, started)
    if not as_json or values.get("form_token"):
        check = check_form_token(web.secret(), values.get("form_token"), now, min_seconds=web.min_fill_seconds)
        if check is FormCheck.EXPIRED and not as_json:
            return await _form_page(request, language, values=values, status_code=400,
                                    error="expired", error_field="form")
        if check is not FormCheck.OK:
            log.info("sign-up ignored: form token %s (ip %s)", check.value, ip)
            return await _accepted(request, language, as_json, started)

    try:
        address = normalise_address(values.get("email") or "", check_deliverability=False)
    except InvalidAddress as exc:
        return await invalid(exc.reason, "email")

    client = client_key(ip, ipv6_prefix=web.config.signup_ipv6_prefix)  # an IPv6 client is its /64
    if not web.per_ip.allow(client, now) or not web.per_address.allow(canonical_mailbox(address), now):
        log.warning("sign-up throttled (ip %s): per-IP or per-address limit", ip)
        return await _accepted(request, language, as_json, started)
    if not await web.ceiling.allows(now):
        return await _accepted(request, language, as_json, started)

    try:
        source = clean_text("source", (values.get("source") or ("api" if as_json else "signup-form"))[:200])
    except InvalidField as exc:
        return await invalid(exc.reason, "source")
    ctx = ConsentContext(
        channel=Channel.API if as_json else Channel.FORM, ip=ip,
        user_agent=header_text(request, "user-agent"), source=source,
        consent_version=web.config.consent_version,
    )
    try:
        record = await web.signups.submit(SignupRequest(
            values.get("email") or "", values.get("name") or "", values.get("language") or None,
            tuple(values.get("lists") or ()), ctx, values.get("attributes") or None))
    except InvalidAddress as exc:
        return await invalid(exc.reason, "email")
    except (InvalidField, UnknownList) as exc:
        field = getattr(exc, "field", "lists")
        reason = getattr(exc, "reason", "choose one of the lists offered")
        return await invalid(reason, field)

    if record.due is not None:
        if values.get("delivery") == DeliveryMode.DIGEST.value:  # their choice, kept for when they confirm
            await web.db(series.choose_delivery_for, newsletter, record.due.subscriber_key, record.due.list_slugs,
                         DeliveryMode.DIGEST)
        web.ceiling.note_sent()
        web.drainer.wake()  # the mail is queued (committed): the drainer sends it after this answer
    return await _accepted(request, language, as_json, started)
