"""The issue pages: the list, a new issue from a form, one issue's translation state, the editor
of one language with its live preview, and the preview of every language at 375 and 600 px.

Each handler parses, makes one library call (`editorial.issues`, `editorial.preview`) and
renders; the guard has checked the role (a translator edits only their languages) and CSRF.
"""

from __future__ import annotations

import html

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..editorial import forms, issues, preview
from ..errors import ContentError, DraftExists, EditConflict, InvalidField, MissingVariant, UnknownDraft, UnknownList
from ..people import subscriptions
from ..staff.roles import Action
from .editorial_pages import PAGE_HEADERS, form_of, frame, redirect
from .guard import guarded
from .pages import render, say, workspace

__all__ = ["ROUTES"]

KINDS = ("daily-summary", "campaign-alert")


def _missing(request: Request, slug: str) -> Response:
    return render(request, "issue_missing.html", status_code=404, slug=slug, headers=PAGE_HEADERS)


def _number(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


@guarded(Action.VIEW_ISSUES)
async def issues_page(request: Request) -> Response:
    ws = workspace(request)
    return render(request, "issues.html", issues=await ws.db(issues.list_issues, ws.newsletter), error=None,
                  headers=PAGE_HEADERS)


async def _new_form(request: Request, kind: str, values: dict[str, str], error: str | None = None,
                    field: str | None = None, status_code: int = 200) -> Response:
    ws = workspace(request)
    lists = await ws.db(subscriptions.list_summaries, ws.newsletter)
    return render(request, "issue_new.html", status_code=status_code, kind=kind, kinds=KINDS, lists=lists,
                  fields=forms.fields_of(kind), values=values, error=error, error_field=field,
                  rows=forms.GROUP_ROWS, headers=PAGE_HEADERS)


@guarded(Action.WRITE_ISSUE)
async def new_issue_page(request: Request) -> Response:
    kind = request.query_params.get("kind", KINDS[0])
    return await _new_form(request, kind if kind in KINDS else KINDS[0], {})


@guarded(Action.WRITE_ISSUE)
async def new_issue_submit(request: Request) -> Response:
    ws = workspace(request)
    form = form_of(request)
    try:
        view = await ws.db(issues.create_from_form, ws.newsletter, form, author=request.state.staff.email)
    except (InvalidField, UnknownList, DraftExists, ContentError) as exc:
        kind = form.get("kind", "")
        return await _new_form(request, kind if kind in KINDS else KINDS[0], form, say(request, exc),
                               getattr(exc, "field", None), 400)
    return redirect(request, f"/issues/{view.slug}")


@guarded(Action.WRITE_ISSUE, uploads=True)
async def import_submit(request: Request) -> Response:
    """Content files sent from the browser: a new issue, or new revisions of the one they name."""
    ws = workspace(request)
    uploads = {u.filename: await u.read() for u in request.state.form.getlist("files")
               if isinstance(u, UploadFile) and u.filename}
    try:
        view = await ws.db(issues.import_uploads, ws.newsletter, uploads, author=request.state.staff.email)
    except (ContentError, InvalidField, UnknownList, DraftExists) as exc:
        listed = await ws.db(issues.list_issues, ws.newsletter)
        unknown = exc if isinstance(exc, UnknownList) and exc.content and exc.known is not None else None
        return render(request, "issues.html", status_code=400, issues=listed, error=say(request, exc),
                      unknown_list=unknown, headers=PAGE_HEADERS)
    return redirect(request, f"/issues/{view.slug}")


@guarded(Action.VIEW_ISSUES)
async def export_download(request: Request) -> Response:
    """The issue's content files, zipped: what `newsletter send` and `preview` read."""
    ws = workspace(request)
    slug = request.path_params["slug"]
    try:
        data = await ws.db(issues.export_zip, ws.newsletter, slug)
    except UnknownDraft:
        return _missing(request, slug)
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{slug}.zip"', "Cache-Control": "no-store"})


@guarded(Action.VIEW_ISSUES)
async def issue_page(request: Request) -> Response:
    ws = workspace(request)
    slug = request.path_params["slug"]
    try:
        view = await ws.db(issues.show_issue, ws.newsletter, slug)
    except UnknownDraft:
        return _missing(request, slug)
    return render(request, "issue.html", view=view, headers=PAGE_HEADERS)


def _editor_page(request: Request, ed: preview.Editor, *, values: dict[str, str] | None = None,
                 body: str | None = None, error: str | None = None, field: str | None = None,
                 status_code: int = 200, saved: int | None = None) -> Response:
    kind = ed.view.kind
    return render(request, "issue_edit.html", status_code=status_code, ed=ed, view=ed.view, language=ed.language,
                  fields=forms.fields_of(kind), rows=forms.GROUP_ROWS,
                  values=values if values is not None else forms.form_values(kind, ed.front_matter),
                  body=ed.body if body is None else body, error=error, error_field=field, saved=saved,
                  state=ed.view.state_of(ed.language), headers=PAGE_HEADERS)


@guarded(Action.TRANSLATE, language="language")
async def edit_page(request: Request) -> Response:
    ws = workspace(request)
    slug, language = request.path_params["slug"], request.path_params["language"]
    try:
        ed = await ws.db(preview.editor, ws.newsletter, slug, language)
    except (UnknownDraft, InvalidField):
        return _missing(request, slug)
    return _editor_page(request, ed, saved=_number(request.query_params.get("saved")))


@guarded(Action.TRANSLATE, language="language")
async def edit_submit(request: Request) -> Response:
    ws = workspace(request)
    slug, language = request.path_params["slug"], request.path_params["language"]
    form = form_of(request)
    try:
        saved = await ws.db(issues.save_form, ws.newsletter, slug, language, form, author=request.state.staff.email)
    except UnknownDraft:
        return _missing(request, slug)
    except (ContentError, EditConflict, InvalidField) as exc:
        # Nothing was saved, and nothing typed is lost: the form comes back as it was sent.
        ed = await ws.db(preview.editor, ws.newsletter, slug, language)
        return _editor_page(request, ed, values=form, body=form.get("body", ""), error=say(request, exc),
                            field=getattr(exc, "field", None),
                            status_code=409 if isinstance(exc, EditConflict) else 400)
    return redirect(request, f"/issues/{slug}/edit/{language}?saved={saved.number}")


@guarded(Action.PREVIEW)
async def draft_preview(request: Request) -> Response:
    """The version being typed, as its readers would get it (the editor's frame; nothing saved)."""
    ws = workspace(request)
    slug, language = request.path_params["slug"], request.path_params["language"]
    try:
        shown = await ws.db(preview.preview_form, ws.newsletter, slug, language, form_of(request))
    except UnknownDraft:
        return _missing(request, slug)
    except (ContentError, InvalidField) as exc:
        return frame(render(request, "preview_error.html", error=say(request, exc)).body.decode())
    return frame(shown.html)


@guarded(Action.PREVIEW)
async def preview_page(request: Request) -> Response:
    ws = workspace(request)
    slug = request.path_params["slug"]
    try:
        shown = await ws.db(preview.preview_issue, ws.newsletter, slug)
    except UnknownDraft:
        return _missing(request, slug)
    except (ContentError, UnknownList, MissingVariant) as exc:
        return render(request, "issue_preview.html", status_code=400, slug=slug, shown=None, error=say(request, exc),
                      headers=PAGE_HEADERS)
    return render(request, "issue_preview.html", slug=slug, shown=shown, error=None, widths=(375, 600),
                  headers=PAGE_HEADERS)


@guarded(Action.PREVIEW)
async def preview_frame(request: Request) -> Response:
    """One reader language's HTML part, as the wire message carries it, for a frame."""
    ws = workspace(request)
    slug, language = request.path_params["slug"], request.path_params["language"]
    try:
        shown = await ws.db(preview.preview_language, ws.newsletter, slug, language)
    except UnknownDraft:
        return _missing(request, slug)
    except (ContentError, UnknownList, MissingVariant) as exc:
        return HTMLResponse(html.escape(say(request, exc)), status_code=400, headers={"Cache-Control": "no-store"})
    return frame(shown.html)


ROUTES = [
    Route("/issues", issues_page, methods=["GET"], name="issues"),
    Route("/issues/new", new_issue_page, methods=["GET"]),
    Route("/issues/new", new_issue_submit, methods=["POST"]),
    Route("/issues/import", import_submit, methods=["POST"]),
    Route("/issues/{slug}", issue_page, methods=["GET"]),
    Route("/issues/{slug}/export", export_download, methods=["GET"]),
    Route("/issues/{slug}/edit/{language}", edit_page, methods=["GET"]),
    Route("/issues/{slug}/edit/{language}", edit_submit, methods=["POST"]),
    Route("/issues/{slug}/draft/{language}", draft_preview, methods=["POST"]),
    Route("/issues/{slug}/preview", preview_page, methods=["GET"]),
    Route("/issues/{slug}/preview/{language}", preview_frame, methods=["GET"]),
]
