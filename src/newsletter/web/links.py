"""Pages reached through a mailed link: confirm, unsubscribe (with RFC 8058 one-click), block.

GET (and HEAD) only shows a page with a button; the button's POST acts. Mail scanners that
fetch every link therefore never confirm, unsubscribe or block anybody. The one-click POST
(`List-Unsubscribe=One-Click`, form-urlencoded or multipart) needs no cookie and no CSRF
token, commits before it answers 200, and never redirects.

A bad token — tampered, truncated, expired, wrong purpose, or naming nobody — always gets the
same friendly page (status 400) with a way forward.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ..errors import InvalidToken
from ..people import subscriptions as visitor
from ..people.rules import ConsentContext
from ..statuses import Channel
from ..tokens import Purpose
from .forms import read_fields
from .pages import choose_language, render_page
from .security import TOKEN_PAGE_HEADERS, check_csrf, form_origin_allowed, header_text, issue_csrf

__all__ = ["routes", "link_context", "invalid_link", "csrf_refused", "read_form", "token_language"]

log = logging.getLogger(__name__)


def routes() -> list[Route]:
    return [
        Route("/confirm/{token}", confirm_page, methods=["GET"]),
        Route("/confirm/{token}", confirm_submit, methods=["POST"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe_submit, methods=["POST"]),
        Route("/unsubscribe/{token}/undo", undo_submit, methods=["POST"]),
        Route("/block/{token}", block_page, methods=["GET"]),
        Route("/block/{token}", block_submit, methods=["POST"]),
    ]


# -- shared by every token page ---------------------------------------------------------------

def token_language(request: Request, holder: visitor.LinkHolder | None) -> str:
    """The link's language, else the person's, else `?lang=` / Accept-Language."""
    web = request.app.state.web
    link_language = None
    if holder is not None:
        link_language = holder.claims.language or holder.language
    return choose_language(request, web.config.languages, web.config.default_language, link_language)


def link_context(request: Request, channel: Channel, source: str) -> ConsentContext:
    web = request.app.state.web
    return ConsentContext(channel=channel, ip=web.ip(request), user_agent=header_text(request, "user-agent"),
                          source=source)


async def holder_of(request: Request, purpose: Purpose) -> visitor.LinkHolder | None:
    """The person the URL's token names, or None for any bad token."""
    web = request.app.state.web
    try:
        return await web.read(visitor.check_link, web.newsletter, purpose, request.path_params["token"])
    except InvalidToken:
        return None


def invalid_link(request: Request, purpose: Purpose | None = None) -> Response:
    """The one page every bad token gets (the same for tampered, expired and unknown ones)."""
    language = token_language(request, None)
    return render_page(request, "invalid_link.html", language, status_code=400, headers=TOKEN_PAGE_HEADERS,
                       purpose=purpose.value if purpose else "")


def csrf_refused(request: Request, language: str) -> Response:
    return page(request, "csrf_refused.html", language, status_code=403)


async def read_form(request: Request) -> dict[str, Any]:
    """The posted fields (form-urlencoded or multipart; files are refused). Lists under "lists".
    A body we do not read raises `forms.BadRequest`, which the app answers."""
    return await read_fields(request)


def csrf_token(request: Request) -> str:
    web = request.app.state.web
    return issue_csrf(web.secret(), request.path_params["token"], web.newsletter.clock())


def csrf_ok(request: Request, fields: dict[str, Any]) -> bool:
    """Whether a token page's form post came from that page: its CSRF token, and an Origin
    that is ours (or none at all), never `null` or another site's."""
    web = request.app.state.web
    if not form_origin_allowed(request.headers.get("origin"), web.own_origins(request)):
        log.info("a form post refused: Origin %r", request.headers.get("origin"))
        return False
    return check_csrf(web.secret(), request.path_params["token"], fields.get("csrf"), web.newsletter.clock())


async def pressed(request: Request, purpose: Purpose,
                  fields: dict[str, Any]) -> tuple[visitor.LinkHolder, str] | Response:
    """Who pressed a token page's button, and the page's language; or the page to answer with.

    A bad token gets the invalid-link page, a missing or wrong CSRF token the refusal page.
    """
    holder = await holder_of(request, purpose)
    if holder is None:
        return invalid_link(request, purpose)
    language = token_language(request, holder)
    if not csrf_ok(request, fields):
        return csrf_refused(request, language)
    return holder, language


def page(request: Request, template: str, language: str, **context: Any) -> Response:
    """A token page; its links (language switcher, sub-forms) point at the link's own page."""
    path, token = request.url.path, request.path_params["token"]
    context.setdefault("path", path[: path.index(token) + len(token)] if token in path else path)
    return render_page(request, template, language, headers=TOKEN_PAGE_HEADERS, **context)


def preferences_link(request: Request, holder: visitor.LinkHolder, language: str) -> str:
    """A relative link to the person's preferences page (relative: the page is ours)."""
    web = request.app.state.web
    token = web.newsletter.token(Purpose.PREFERENCES, holder.claims.subscriber_key, language=language)
    return f"{request.scope.get('root_path', '')}/preferences/{token}"


# -- confirm ------------------------------------------------------------------------------------

async def confirm_page(request: Request) -> Response:
    holder = await holder_of(request, Purpose.CONFIRM)
    if holder is None:
        return invalid_link(request, Purpose.CONFIRM)
    language = token_language(request, holder)
    # Not the name: the sign-up typed it and nobody has vouched for it yet (as in the mail, #12.11).
    return page(request, "confirm.html", language, name="", csrf=csrf_token(request))


async def confirm_submit(request: Request) -> Response:
    web = request.app.state.web
    fields = await read_form(request)
    checked = await pressed(request, Purpose.CONFIRM, fields)
    if isinstance(checked, Response):
        return checked
    holder, language = checked
    ctx = link_context(request, Channel.LINK, "confirm-page")
    try:
        await web.db(visitor.confirm, web.newsletter, request.path_params["token"], ctx)
    except InvalidToken:
        return invalid_link(request, Purpose.CONFIRM)
    return page(request, "confirmed.html", language, name=holder.name,
                preferences_url=preferences_link(request, holder, language))


# -- unsubscribe -------------------------------------------------------------------------------

async def unsubscribe_page(request: Request) -> Response:
    holder = await holder_of(request, Purpose.UNSUBSCRIBE)
    if holder is None:
        return invalid_link(request, Purpose.UNSUBSCRIBE)
    language = token_language(request, holder)
    return page(request, "unsubscribe.html", language, name=holder.name, csrf=csrf_token(request),
                one_list=bool(holder.claims.list_slug),
                preferences_url=preferences_link(request, holder, language))


async def unsubscribe_submit(request: Request) -> Response:
    web = request.app.state.web
    token = request.path_params["token"]
    fields = await read_form(request)
    if fields.get("List-Unsubscribe") == "One-Click":
        # RFC 8058: no cookie, no CSRF token, no redirect; committed before we answer.
        try:
            await web.one_clicks.submit((token, link_context(request, Channel.ONE_CLICK, "list-unsubscribe-post")))
        except InvalidToken:
            return PlainTextResponse("This unsubscribe link is not valid.\n", status_code=400,
                                     headers=TOKEN_PAGE_HEADERS)
        return PlainTextResponse("Unsubscribed.\n", headers=TOKEN_PAGE_HEADERS)
    checked = await pressed(request, Purpose.UNSUBSCRIBE, fields)
    if isinstance(checked, Response):
        return checked
    holder, language = checked
    try:
        changed = await web.db(visitor.unsubscribe_by_token, web.newsletter, token,
                               link_context(request, Channel.LINK, "unsubscribe-page"))
    except InvalidToken:
        return invalid_link(request, Purpose.UNSUBSCRIBE)
    return page(request, "unsubscribed.html", language, changed=changed, csrf=csrf_token(request),
                preferences_url=preferences_link(request, holder, language))


async def undo_submit(request: Request) -> Response:
    web = request.app.state.web
    fields = await read_form(request)
    checked = await pressed(request, Purpose.UNSUBSCRIBE, fields)
    if isinstance(checked, Response):
        return checked
    holder, language = checked
    try:
        back = await web.db(visitor.undo_unsubscribe, web.newsletter, Purpose.UNSUBSCRIBE,
                            request.path_params["token"], fields["lists"],
                            link_context(request, Channel.LINK, "unsubscribe-undo"))
    except InvalidToken:
        return invalid_link(request, Purpose.UNSUBSCRIBE)
    return page(request, "resubscribed.html", language, back=back,
                preferences_url=preferences_link(request, holder, language))


# -- "this wasn't me" --------------------------------------------------------------------------

async def block_page(request: Request) -> Response:
    holder = await holder_of(request, Purpose.BLOCK)
    if holder is None:
        return invalid_link(request, Purpose.BLOCK)
    return page(request, "block.html", token_language(request, holder), csrf=csrf_token(request))


async def block_submit(request: Request) -> Response:
    web = request.app.state.web
    fields = await read_form(request)
    checked = await pressed(request, Purpose.BLOCK, fields)
    if isinstance(checked, Response):
        return checked
    holder, language = checked
    try:
        await web.db(visitor.block_by_token, web.newsletter, request.path_params["token"],
                     link_context(request, Channel.LINK, "block-page"))
    except InvalidToken:
        return invalid_link(request, Purpose.BLOCK)
    return page(request, "blocked.html", language)
