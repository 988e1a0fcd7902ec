"""The public archive: `/archive` (every list's sent issues), `/archive/{list}` (one list),
`/archive/{list}/{slug}[/{lang}]` (one issue as a web page: the "view in browser" link of
every mail) and `/archive/{list}/feed.atom` (an Atom feed per list).

An issue page is the mail's own HTML (inline styles, as mail needs), so its response relaxes
the style policy to allow inline styles and https images; scripts stay forbidden.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..addresses import has_control
from ..errors import ContentError, MissingVariant, UnknownIssue
from ..mail.compose import archive_url
from ..routine import series
from ..sending import archive
from .pages import choose_language, render_page

__all__ = ["routes", "ISSUE_CSP"]

log = logging.getLogger(__name__)

ISSUE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
             "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
ATOM = "http://www.w3.org/2005/Atom"


def routes() -> list[Route]:
    return [
        Route("/archive", archive_index, methods=["GET"]),
        Route("/archive/{list_slug}", archive_index, methods=["GET"]),
        Route("/archive/{list_slug}/feed.atom", archive_feed, methods=["GET"]),
        Route("/archive/{list_slug}/{slug}", archive_issue, methods=["GET"]),
        Route("/archive/{list_slug}/{slug}/{language}", archive_issue, methods=["GET"]),
    ]


def _entries(config, issues: list[archive.ArchivedIssue], language: str) -> list[dict]:
    """Per issue: subject in the visitor's language (or the list's fallback) and its languages."""
    entries = []
    for item in issues:
        try:
            page = archive.render_archived(config, item, language)
        except (ContentError, MissingVariant) as exc:
            log.warning("archive: %s/%s cannot be shown: %s", item.list_slug, item.slug, exc)
            continue
        entries.append({"issue": item, "subject": page.subject, "language": page.language,
                        "preheader": page.preheader, "languages": page.languages})
    return entries


def _refuse_controls(request: Request) -> None:
    """A path with control characters names no list and no issue (and never reaches the store:
    PostgreSQL refuses a NUL)."""
    if any(has_control(v) for v in request.path_params.values() if isinstance(v, str)):
        raise HTTPException(404)


async def archive_index(request: Request) -> Response:
    _refuse_controls(request)
    web = request.app.state.web
    language = choose_language(request, web.config.languages, web.config.default_language)
    list_slug = request.path_params.get("list_slug")
    issues = await web.read(archive.archive_of, web.newsletter, list_slug)
    if list_slug is not None and not issues:
        return render_page(request, "not_found.html", language, status_code=404,
                           path=request.scope.get("root_path", "") + "/archive")
    entries = _entries(web.config, issues, language)
    sessions = await web.read(_sessions_of, web.newsletter, issues)
    groups: dict[str, dict] = {}
    for entry in entries:
        item = entry["issue"]
        groups.setdefault(item.list_slug, {"slug": item.list_slug, "name": item.list_name_in(language), "entries": [],
                                           "sessions": {}})
        label = sessions.get((item.list_slug, item.slug))
        if label is None:
            groups[item.list_slug]["entries"].append(entry)
        else:  # the issues of one session together, under its name
            groups[item.list_slug]["sessions"].setdefault(label, []).append(entry)
    return render_page(request, "archive.html", language, groups=list(groups.values()), one_list=list_slug,
                       quote=quote)


def _sessions_of(newsletter, issues: list[archive.ArchivedIssue]) -> dict[tuple[str, str], tuple[str, str]]:
    """(list, issue slug) -> (session name, where and when) for the issues that belong to a session."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for list_slug in {item.list_slug for item in issues}:
        slugs = [item.slug for item in issues if item.list_slug == list_slug]
        for slug, label in series.archive_groups(newsletter, list_slug, slugs).items():
            found[(list_slug, slug)] = label
    return found


async def archive_issue(request: Request) -> Response:
    _refuse_controls(request)
    web = request.app.state.web
    params = request.path_params
    asked = params.get("language")
    if asked is not None and asked not in web.config.languages:
        language = choose_language(request, web.config.languages, web.config.default_language)
        return render_page(request, "not_found.html", language, status_code=404,
                           path=request.scope.get("root_path", "") + "/archive")
    language = asked or choose_language(request, web.config.languages, web.config.default_language)
    try:
        item = await web.read(archive.archived_issue, web.newsletter, params["list_slug"], params["slug"])
        page = archive.render_archived(web.config, item, language)
    except (UnknownIssue, ContentError, MissingVariant) as exc:
        if not isinstance(exc, UnknownIssue):
            log.warning("archive: %s cannot be shown: %s", request.url.path, exc)
        return render_page(request, "not_found.html", language, status_code=404,
                           path=request.scope.get("root_path", "") + "/archive")
    return HTMLResponse(page.html, headers={
        "Content-Security-Policy": ISSUE_CSP, "Content-Language": page.language,
        "Cache-Control": "public, max-age=300", "Vary": "Accept-Language",
    })


def _when(at: datetime | None) -> str:
    return (at or datetime(1970, 1, 1, tzinfo=timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def archive_feed(request: Request) -> Response:
    _refuse_controls(request)
    web = request.app.state.web
    config = web.config
    list_slug = request.path_params["list_slug"]
    issues = await web.read(archive.archive_of, web.newsletter, list_slug)
    language = request.query_params.get("lang", "")
    if language not in config.languages:
        language = issues[0].list_languages[0] if issues and issues[0].list_languages else config.default_language
    if not issues:
        return Response("no such archive\n", status_code=404, media_type="text/plain")
    base = config.base_url.rstrip("/")
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": language})
    ET.SubElement(feed, f"{{{ATOM}}}id").text = f"{base}/archive/{quote(list_slug)}"
    ET.SubElement(feed, f"{{{ATOM}}}title").text = f"{issues[0].list_name} – {config.organisation_name}"
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = _when(issues[0].sent_at)
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=f"{base}/archive/{quote(list_slug)}/feed.atom")
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=f"{base}/archive/{quote(list_slug)}")
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = config.organisation_name
    for entry in _entries(config, issues, language):
        item = entry["issue"]
        url = archive_url(config, item.list_slug, item.slug, entry["language"])
        node = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(node, f"{{{ATOM}}}id").text = f"{base}/archive/{quote(item.list_slug)}/{quote(item.slug)}"
        ET.SubElement(node, f"{{{ATOM}}}title").text = entry["subject"]
        ET.SubElement(node, f"{{{ATOM}}}updated").text = _when(item.sent_at)
        ET.SubElement(node, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=url, hreflang=entry["language"])
        if entry["preheader"]:
            ET.SubElement(node, f"{{{ATOM}}}summary").text = entry["preheader"]
    body = ET.tostring(feed, encoding="unicode", xml_declaration=False)
    return Response('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n",
                    media_type="application/atom+xml; charset=utf-8",
                    headers={"Cache-Control": "public, max-age=300"})
