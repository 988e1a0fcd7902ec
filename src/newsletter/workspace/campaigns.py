"""Sending an issue from the workspace and following it: the send page (audience per language
along the fallback chain, the time it takes, approvals, test-send, the confirmation), the live
progress (a JSON endpoint the page polls; reloading does the same without script), pause,
resume, cancel, retry, the report, and a late translation sent to those who got a fallback.

Each handler parses, makes one library call (`editorial.sends`, `editorial.background`,
`editorial.reports`, `sending.actions`) and renders.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..attributes import country_name
from ..editorial import reports, sends
from ..editorial.background import BackgroundSends
from ..errors import (
    ApprovalRequired,
    CampaignStateError,
    CatchUpUnavailable,
    ContentError,
    DeliveryError,
    InvalidField,
    LintFailed,
    MissingVariant,
    NoAudience,
    ScheduleStateError,
    SegmentError,
    UnknownCampaign,
    UnknownDraft,
    UnknownList,
    UnknownSegment,
)
from ..sending import actions
from ..staff.roles import Action
from .editorial_pages import JSON_HEADERS, PAGE_HEADERS, form_of, redirect
from .guard import guarded
from .pages import render, say, workspace

__all__ = ["ROUTES"]

_NOT_READY = (ContentError, UnknownList, MissingVariant)


def _missing(request: Request, slug: str) -> Response:
    return render(request, "issue_missing.html", status_code=404, slug=slug, headers=PAGE_HEADERS)


async def _send_page(request: Request, *, status_code: int = 200, error: str | None = None,
                     tested: list | None = None, scheduled=None, segment: str | None = None) -> Response:
    ws = workspace(request)
    slug = request.path_params["slug"]
    segment = segment if segment is not None else request.query_params.get("segment", "").strip() or None
    pace = _runner(request).options.pace
    try:
        try:
            review = await ws.db(sends.review_send, ws.newsletter, slug, pace, segment=segment)
        except (UnknownSegment, SegmentError) as exc:
            status_code, error, segment = 400, say(request, exc), None
            review = await ws.db(sends.review_send, ws.newsletter, slug, pace)
    except UnknownDraft:
        return _missing(request, slug)
    except _NOT_READY as exc:
        return render(request, "issue_send.html", status_code=400, slug=slug, review=None, error=say(request, exc),
                      tested=None, headers=PAGE_HEADERS)
    return render(request, "issue_send.html", status_code=status_code, slug=slug, review=review, error=error,
                  tested=tested, scheduled=scheduled, segment=segment, country_name=country_name,
                  me=request.state.staff.email,
                  headers=PAGE_HEADERS)


@guarded(Action.SEND)
async def send_page(request: Request) -> Response:
    return await _send_page(request)


@guarded(Action.TEST_SEND)
async def test_submit(request: Request) -> Response:
    ws = workspace(request)
    slug = request.path_params["slug"]
    form = form_of(request)
    addresses = form.get("addresses", "").replace(",", "\n").splitlines() or [request.state.staff.email]
    try:
        replies = await ws.db(sends.test_send, ws.newsletter, slug, addresses, connect=_runner(request).connect)
    except UnknownDraft:
        return _missing(request, slug)
    except (InvalidField, LintFailed, DeliveryError, *_NOT_READY) as exc:
        return await _send_page(request, status_code=400, error=say(request, exc))
    return await _send_page(request, tested=replies)


@guarded(Action.APPROVE)
async def approve_submit(request: Request) -> Response:
    ws = workspace(request)
    slug = request.path_params["slug"]
    try:
        await ws.db(sends.approve, ws.newsletter, slug, approver=request.state.staff.email,
                    digest=form_of(request).get("digest", ""))
    except UnknownDraft:
        return _missing(request, slug)
    except ApprovalRequired as exc:
        return await _send_page(request, status_code=409, error=say(request, exc))
    return redirect(request, f"/issues/{slug}/send")


def _runner(request: Request) -> BackgroundSends:
    return BackgroundSends.of(workspace(request).newsletter)


@guarded(Action.SEND)
async def send_submit(request: Request) -> Response:
    ws = workspace(request)
    slug = request.path_params["slug"]
    form = form_of(request)
    segment = form.get("segment", "").strip() or None  # the segment whose audience the sender confirmed
    if form.get("confirm") != "yes":
        return await _send_page(request, status_code=400, error="confirm", segment=segment or "")
    try:
        await ws.db(_runner(request).send, slug, form.get("digest", ""), sender=request.state.staff.email,
                    stale_accepted=form.get("stale") == "yes", segment=segment)
    except UnknownDraft:
        return _missing(request, slug)
    except (UnknownSegment, SegmentError) as exc:
        return await _send_page(request, status_code=409, error=say(request, exc), segment="")
    except (ApprovalRequired, InvalidField, LintFailed, CampaignStateError, NoAudience, *_NOT_READY) as exc:
        return await _send_page(request, status_code=409, error=say(request, exc), segment=segment or "")
    return redirect(request, f"/campaigns/{slug}")


@guarded(Action.SCHEDULE)
async def schedule_submit(request: Request) -> Response:
    ws = workspace(request)
    slug = request.path_params["slug"]
    form = form_of(request)
    at = form.get("at", "").replace("T", " ").strip()  # a datetime-local field sends 2027-07-08T19:00
    segment = form.get("segment", "").strip() or None
    try:
        scheduled = await ws.db(sends.schedule_issue, ws.newsletter, slug, at=at, zone=form.get("zone", "").strip(),
                                window=form.get("window", "").strip() or None, segment=segment,
                                sender=request.state.staff.email, stale_accepted=form.get("stale") == "yes")
    except UnknownDraft:
        return _missing(request, slug)
    except (UnknownSegment, SegmentError) as exc:
        return await _send_page(request, status_code=409, error=say(request, exc), segment="")
    except (ApprovalRequired, InvalidField, LintFailed, CampaignStateError, ScheduleStateError, *_NOT_READY) as exc:
        return await _send_page(request, status_code=409, error=say(request, exc), segment=segment or "")
    return await _send_page(request, scheduled=scheduled, segment=segment or "")


@guarded(Action.VIEW_REPORTS)
async def campaign_page(request: Request) -> Response:
    ws = workspace(request)
    slug = request.path_params["slug"]
    try:
        now = await ws.db(reports.progress, ws.newsletter, slug)
    except UnknownCampaign:
        return _missing(request, slug)
    return render(request, "campaign.html", slug=slug, progress=now, error=request.query_params.get("error"),
                  headers=PAGE_HEADERS)


@guarded(Action.VIEW_REPORTS)
async def progress_json(request: Request) -> Response:
    ws = workspace(request)
    try:
        now = await ws.db(reports.progress, ws.newsletter, request.path_params["slug"])
    except UnknownCampaign as exc:
        return JSONResponse({"error": say(request, exc)}, status_code=404, headers=JSON_HEADERS)
    shown = now.as_json()
    if now.said is not None:
        shown["reason"] = say(request, now.said)
    return JSONResponse(shown, headers=JSON_HEADERS)


async def _control(request: Request, call, *args) -> Response:
    ws = workspace(request)
    slug = request.path_params["slug"]
    try:
        await ws.db(call, *args)
    except UnknownCampaign:
        return _missing(request, slug)
    except CampaignStateError as exc:
        return render(request, "campaign.html", status_code=409, slug=slug, error=say(request, exc),
                      progress=await ws.db(reports.progress, ws.newsletter, slug), headers=PAGE_HEADERS)
    return redirect(request, f"/campaigns/{slug}")


@guarded(Action.PAUSE)
async def pause_submit(request: Request) -> Response:
    return await _control(request, actions.pause, workspace(request).newsletter, request.path_params["slug"])


@guarded(Action.RESUME)
async def resume_submit(request: Request) -> Response:
    return await _control(request, _runner(request).resume, request.path_params["slug"])


@guarded(Action.CANCEL)
async def cancel_submit(request: Request) -> Response:
    return await _control(request, actions.cancel, workspace(request).newsletter, request.path_params["slug"])


@guarded(Action.RETRY)
async def retry_submit(request: Request) -> Response:
    return await _control(request, _runner(request).retry, request.path_params["slug"])


@guarded(Action.VIEW_REPORTS)
async def report_page(request: Request) -> Response:
    ws = workspace(request)
    slug = request.path_params["slug"]
    try:
        found = await ws.db(reports.report, ws.newsletter, slug)
    except UnknownCampaign:
        return _missing(request, slug)
    return render(request, "campaign_report.html", slug=slug, report=found, headers=PAGE_HEADERS)


@guarded(Action.SEND)
async def catch_up_submit(request: Request) -> Response:
    ws = workspace(request)
    slug, language = request.path_params["slug"], request.path_params["language"]
    try:
        late = await ws.db(_runner(request).catch_up_language, slug, language, sender=request.state.staff.email)
    except UnknownDraft:
        return _missing(request, slug)
    except (CatchUpUnavailable, LintFailed, *_NOT_READY) as exc:
        return await _send_page(request, status_code=409, error=say(request, exc))
    return redirect(request, f"/campaigns/{late.campaign_slug}")


ROUTES = [
    Route("/issues/{slug}/send", send_page, methods=["GET"]),
    Route("/issues/{slug}/send", send_submit, methods=["POST"]),
    Route("/issues/{slug}/test", test_submit, methods=["POST"]),
    Route("/issues/{slug}/approve", approve_submit, methods=["POST"]),
    Route("/issues/{slug}/schedule", schedule_submit, methods=["POST"]),
    Route("/issues/{slug}/catch-up/{language}", catch_up_submit, methods=["POST"]),
    Route("/campaigns/{slug}", campaign_page, methods=["GET"]),
    Route("/campaigns/{slug}/progress.json", progress_json, methods=["GET"]),
    Route("/campaigns/{slug}/pause", pause_submit, methods=["POST"]),
    Route("/campaigns/{slug}/resume", resume_submit, methods=["POST"]),
    Route("/campaigns/{slug}/cancel", cancel_submit, methods=["POST"]),
    Route("/campaigns/{slug}/retry", retry_submit, methods=["POST"]),
    Route("/campaigns/{slug}/report", report_page, methods=["GET"]),
]
