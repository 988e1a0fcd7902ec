"""The people pages: search, one person (data, consent log, bounces, issues received), edit,
unsubscribe, erase, export; and the CSV import by upload, with a dry run and the per-row report."""

from __future__ import annotations

import json

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ..errors import DeliveryError, ImportFileError, InvalidField, UnknownList, UnknownSubscriber
from ..staff import directory, imports
from ..staff.roles import Action
from ..statuses import SubscriptionStatus
from ..web.attribute_fields import attribute_fields, posted_attributes
from .guard import guarded
from .pages import language_of, render, say, workspace

__all__ = ["ROUTES"]


def _status(value: str | None) -> SubscriptionStatus | None:
    try:
        return SubscriptionStatus(value) if value else None
    except ValueError:
        return None


def _offset(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _gone(request: Request) -> Response:
    return render(request, "person_gone.html", status_code=404, erased=False)


def _person_url(request: Request, key: str, done: str = "") -> str:
    return f"{request.scope.get('root_path', '')}/people/{key}" + (f"?done={done}" if done else "")


@guarded(Action.VIEW_PEOPLE)
async def people_page(request: Request) -> Response:
    ws = workspace(request)
    query = request.query_params
    text, list_slug, status = query.get("q", "")[:320], query.get("list", "") or None, _status(query.get("status"))
    try:
        page = await ws.db(directory.search, ws.newsletter, text, list_slug=list_slug, status=status,
                           offset=_offset(query.get("offset")))
    except UnknownList as exc:
        return render(request, "people.html", status_code=400, page=None, q=text, list="", status="", lists=(),
                      statuses=[s.value for s in SubscriptionStatus], error=say(request, exc))
    return render(request, "people.html", page=page, q=text, list=list_slug or "", status=status.value if status else "",
                  lists=page.lists, statuses=[s.value for s in SubscriptionStatus], error=None)


async def _person(request: Request, *, status_code: int = 200, error: str | None = None,
                  edit: directory.AttributeEdit | None = None) -> Response:
    ws = workspace(request)
    try:
        page = await ws.db(directory.person_page, ws.newsletter, request.path_params["key"])
    except UnknownSubscriber:
        return _gone(request)
    shown = edit.values if edit is not None and edit.problems else page.record.attributes
    fields = attribute_fields(ws.newsletter.config.attributes, language_of(request), shown)
    return render(request, "person.html", status_code=status_code, person=page, record=page.record, error=error,
                  done=request.query_params.get("done", ""), attribute_fields=fields,
                  problems={} if edit is None else {name: say(request, why) for name, why in edit.problems.items()})


@guarded(Action.VIEW_PEOPLE)
async def person_page(request: Request) -> Response:
    return await _person(request)


@guarded(Action.EDIT_PERSON)
async def edit_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    try:
        await ws.db(directory.edit_person, ws.newsletter, request.state.actor, request.path_params["key"],
                    name=str(form.get("name", "")), language=str(form.get("language", "")))
    except UnknownSubscriber:
        return _gone(request)
    except InvalidField as exc:
        return await _person(request, status_code=400, error=say(request, exc))
    return RedirectResponse(_person_url(request, request.path_params["key"], "saved"), status_code=303)


@guarded(Action.EDIT_PERSON)
async def attributes_submit(request: Request) -> Response:
    ws = workspace(request)
    posted = posted_attributes(ws.newsletter.config.attributes, request.state.form)
    try:
        edit = await ws.db(directory.edit_attributes, ws.newsletter, request.state.actor, request.path_params["key"],
                           posted)
    except UnknownSubscriber:
        return _gone(request)
    except InvalidField as exc:
        return await _person(request, status_code=400, error=say(request, exc))
    if edit.problems:
        return await _person(request, status_code=400, error="attributes", edit=edit)
    return RedirectResponse(_person_url(request, request.path_params["key"], "saved"), status_code=303)


@guarded(Action.EDIT_PERSON)
async def lists_submit(request: Request) -> Response:
    ws = workspace(request)
    try:
        await ws.db(directory.add_to_lists, ws.newsletter, request.state.actor, request.path_params["key"],
                    [str(v) for v in request.state.form.getlist("lists")])
    except UnknownSubscriber:
        return _gone(request)
    except UnknownList as exc:
        return await _person(request, status_code=400, error=say(request, exc))
    return RedirectResponse(_person_url(request, request.path_params["key"], "asked"), status_code=303)


@guarded(Action.UNSUBSCRIBE_PERSON)
async def unsubscribe_submit(request: Request) -> Response:
    ws = workspace(request)
    try:
        await ws.db(directory.unsubscribe, ws.newsletter, request.state.actor, request.path_params["key"],
                    str(request.state.form.get("list", "")) or None)
    except UnknownSubscriber:
        return _gone(request)
    except UnknownList as exc:
        return await _person(request, status_code=400, error=say(request, exc))
    return RedirectResponse(_person_url(request, request.path_params["key"], "unsubscribed"), status_code=303)


@guarded(Action.ERASE_PERSON)
async def erase_submit(request: Request) -> Response:
    ws = workspace(request)
    try:
        await ws.db(directory.erase, ws.newsletter, request.state.actor, request.path_params["key"],
                    confirmation=str(request.state.form.get("confirm", "")))
    except UnknownSubscriber:
        return _gone(request)
    except InvalidField:
        return await _person(request, status_code=400, error="confirm-erase")
    return render(request, "person_gone.html", erased=True)


@guarded(Action.EXPORT_PERSON)
async def export_submit(request: Request) -> Response:
    ws = workspace(request)
    try:
        record = await ws.db(directory.export, ws.newsletter, request.state.actor, request.path_params["key"])
    except UnknownSubscriber:
        return _gone(request)
    body = json.dumps(record.as_json(with_bounces=True), ensure_ascii=False, indent=2)
    return Response(body, media_type="application/json; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="person-{request.path_params["key"]}.json"',
                             "Cache-Control": "no-store"})


@guarded(Action.IMPORT_PEOPLE)
async def import_page(request: Request) -> Response:
    ws = workspace(request)
    return render(request, "import.html", lists=await ws.db(directory.list_options, ws.newsletter), report=None,
                  error=None, form={})


@guarded(Action.IMPORT_PEOPLE, uploads=True)
async def import_submit(request: Request) -> Response:
    ws = workspace(request)
    form = request.state.form
    upload = form.get("file")
    options = ()
    echo = {"lists": form.getlist("lists"), "language": form.get("language", ""), "dry_run": bool(form.get("dry_run")),
            "confirmed": bool(form.get("confirmed")), "consent_note": form.get("consent_note", "")}
    if not isinstance(upload, UploadFile) or not upload.filename:
        return render(request, "import.html", status_code=400, lists=options, report=None, error="no-file", form=echo)
    try:
        report = await ws.slow(imports.import_upload, ws.newsletter, request.state.actor, upload.filename, upload.file,
                             list_slugs=tuple(str(v) for v in form.getlist("lists")),
                             language=str(form.get("language", "")) or None, dry_run=echo["dry_run"],
                             confirmed=echo["confirmed"], consent_note=str(form.get("consent_note", "")) or None)
    except (ImportFileError, UnknownList, InvalidField, DeliveryError) as exc:
        return render(request, "import.html", status_code=400, lists=options, report=None, error=say(request, exc),
                      form=echo)
    rejected = [(row, say(request, row.said)) for row in report.rejected_rows]
    return render(request, "import.html", lists=options, report=report, rejected=rejected, error=None, form=echo)


ROUTES = [
    Route("/people", people_page, methods=["GET"], name="people"),
    Route("/people/{key}", person_page, methods=["GET"], name="person"),
    Route("/people/{key}/edit", edit_submit, methods=["POST"]),
    Route("/people/{key}/attributes", attributes_submit, methods=["POST"]),
    Route("/people/{key}/lists", lists_submit, methods=["POST"]),
    Route("/people/{key}/unsubscribe", unsubscribe_submit, methods=["POST"]),
    Route("/people/{key}/erase", erase_submit, methods=["POST"]),
    Route("/people/{key}/export", export_submit, methods=["POST"]),
    Route("/import", import_page, methods=["GET"], name="import"),
    Route("/import", import_submit, methods=["POST"]),
]
