"""API handlers about campaigns: create from content, schedule, send, pause, status, report."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..installation import Newsletter
from ..routine.schedules import schedule_send
from ..sending import actions
from ..sending.launch import Prepared
from ..sending.reach import campaign_outcome
from ..sending.submitted import prepare_submitted, submit_content, submitted_files
from ..texts import N_, Text
from .endpoint import ApiError, endpoint, json_body, run
from .people import _object, _text

__all__ = [
    "create_campaign",
    "list_campaigns",
    "pause_campaign",
    "report_campaign",
    "schedule_campaign",
    "send_campaign",
    "show_campaign",
]


def _summary(s: Any) -> dict[str, Any]:
    return {"slug": s.slug, "list": s.list_slug, "subject": s.subject, "status": s.status,
            "status_reason": s.status_reason, "counts": s.counts._asdict(), "created_at": s.created_at,
            "started_at": s.started_at, "finished_at": s.finished_at}


def _plan(prepared: Prepared) -> dict[str, Any]:
    plan = prepared.plan
    return {"slug": prepared.slug, "subject": prepared.subject, "list": plan.list_slug, "segment": plan.segment,
            "total": plan.total, "audience": dict(plan.audience), "readers": dict(plan.readers),
            "variant_of": dict(plan.variant_of), "countries": dict(plan.countries),
            "reach": plan.reach._asdict() if plan.reach else None,
            "lint": [{"severity": p.severity.value, "rule": p.rule, "language": p.language, "message": p.message}
                     for p in prepared.lint.problems]}


@endpoint("read")
async def list_campaigns(request: Request, newsletter: Newsletter) -> Any:
    return {"campaigns": [_summary(s) for s in await run(actions.overview, newsletter)]}


@endpoint("send", status=201)
async def create_campaign(request: Request, newsletter: Newsletter) -> Any:
    data = await json_body(request)
    content = _object(data, "content")
    if not all(isinstance(v, str) for v in content.values()):
        raise ApiError(400, "bad_request", "content maps file names to their text", field="content")
    prepared = await run(submit_content, newsletter, content, list_slug=_text(data, "list"),
                         segment=_text(data, "segment"))
    return _plan(prepared)


@endpoint("read")
async def show_campaign(request: Request, newsletter: Newsletter) -> Any:
    found = await run(actions.detail, newsletter, request.path_params["slug"])
    return {**_summary(found.summary), "workers": found.holders}


@endpoint("send", status=202)
async def send_campaign(request: Request, newsletter: Newsletter) -> Any:
    data = await json_body(request)
    prepared = await run(prepare_submitted, newsletter, request.path_params["slug"], list_slug=_text(data, "list"),
                         segment=_text(data, "segment"))
    # The campaign is in the store before the answer (a GET of it right after never 404s); the
    # mailing goes on in the sends' thread.
    await run(request.state.api.sends.launch, prepared)
    return {**_plan(prepared), "status": "sending"}


@endpoint("send", status=201)
async def schedule_campaign(request: Request, newsletter: Newsletter) -> Any:
    data = await json_body(request)
    files = await run(submitted_files, newsletter, request.path_params["slug"])
    view = await run(schedule_send, newsletter, files, at=_text(data, "at", required=True) or "",
                     zone=_text(data, "zone", required=True) or "", list_slug=_text(data, "list"),
                     segment=_text(data, "segment"), ready_by=_text(data, "ready_by"), window=_text(data, "window"))
    return view._asdict()


@endpoint("send")
async def pause_campaign(request: Request, newsletter: Newsletter) -> Any:
    return _summary(await run(actions.pause, newsletter, request.path_params["slug"], Text(N_("paused through the API"))))


@endpoint("read")
async def report_campaign(request: Request, newsletter: Newsletter) -> Any:
    outcome = await run(campaign_outcome, newsletter, request.path_params["slug"])
    return {"slug": outcome.report.slug, "counts": outcome.report.counts._asdict(),
            "failures": [f._asdict() for f in outcome.report.failures],
            "relays": outcome.report.by_relay,
            "organisations": outcome.organisations,
            "organisations_left": [o._asdict() for o in outcome.organisations_left]}
