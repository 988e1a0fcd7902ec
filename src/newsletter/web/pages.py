"""Rendering the visitor pages: one autoescaping Jinja2 environment per language, and the choice
of language for a request (the link's language, then `?lang=`, then Accept-Language)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..i18n import language_name, negotiate_language, text_direction, translations
from ..resources import find_template_file, template_folders

__all__ = ["page_environment", "choose_language", "render_page", "consent_text"]


@lru_cache(maxsize=16)
def page_environment(templates_path: Path, language: str) -> jinja2.Environment:
    """An autoescaping environment for `language` with its catalogue installed."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in template_folders(templates_path)]),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates are read once per process: no stat of every template file on every page
        # (a changed template takes a restart, as a changed catalogue already does).
        auto_reload=False,
    )
    locale = find_template_file(templates_path, f"locale/{language}") or templates_path / "locale" / language
    env.install_gettext_translations(translations(locale.parent, language), newstyle=True)
    env.globals.update(lang=language, dir=text_direction(language), language_name=language_name)
    return env


def choose_language(request: Request, languages: tuple[str, ...], default: str,
                    link_language: str | None = None) -> str:
    """`?lang=` (the language switcher) wins, then the link's language, then Accept-Language."""
    asked = request.query_params.get("lang", "")
    if asked in languages:
        return asked
    if link_language in languages:
        return link_language  # type: ignore[return-value]
    return negotiate_language(request.headers.get("accept-language"), languages, default)


def render_page(request: Request, template: str, language: str, *, status_code: int = 200,
                headers: dict[str, str] | None = None, background: Any = None, **context: Any) -> HTMLResponse:
    """Render templates/web/<template> in `language` as an HTML response."""
    web = request.app.state.web
    env = page_environment(web.templates_path, language)
    context.setdefault("path", request.url.path)
    html = env.get_template(f"web/{template}").render(
        root=request.scope.get("root_path", ""),
        organisation=web.config.organisation_in(language),
        postal_address=web.config.postal_address,
        languages=web.config.languages,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=headers, background=background)
    response.headers["Content-Language"] = language
    response.headers["Vary"] = "Accept-Language"
    return response


@lru_cache(maxsize=64)
def _read_consent(templates_path: Path, version: str, language: str) -> str:
    for lang in (language, "en"):
        path = find_template_file(templates_path, f"web/consent/{version}/{lang}.txt")
        if path is not None:
            return path.read_text(encoding="utf-8").strip()
    return ""


def consent_text(templates_path: Path, version: str, language: str, organisation: str = "") -> str:
    """The consent text of `version` in `language` (English if not translated), shown verbatim
    but for `{organisation}`, which names the organisation (as `organisation_in(language)`).

    Texts live in templates/web/consent/<version>/<lang>.txt (in templates_dir, else the
    shipped ones) and are never edited once published: a new text gets a new folder and a new
    `consent_version`.
    """
    return _read_consent(templates_path, version, language).replace("{organisation}", organisation)
