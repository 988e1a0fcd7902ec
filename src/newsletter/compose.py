"""Turning templates into mail: per-language Jinja2 rendering, CSS inlining, text parts.

Each language gets its own autoescaping Jinja2 environment with its gettext catalogue
installed. HTML is rendered once per (mail, language) and its CSS inlined with premailer;
per-recipient values are filled in afterwards by the caller, never by re-rendering.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2
from premailer import Premailer

from .config import Config
from .i18n import language_name, text_direction, translations

__all__ = ["RenderedMail", "mail_environment", "inline_css", "render_confirmation"]


@dataclass(frozen=True)
class RenderedMail:
    """One mail in one language: subject, plain-text part and CSS-inlined HTML part."""

    language: str
    subject: str
    text: str
    html: str


@lru_cache(maxsize=32)
def mail_environment(templates_path: Path, language: str) -> jinja2.Environment:
    """An autoescaping environment for `language`, with its translations installed."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_path)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.install_gettext_translations(translations(templates_path / "locale", language), newstyle=True)
    env.globals.update(
        lang=language,
        dir=text_direction(language),
        align="right" if text_direction(language) == "rtl" else "left",
        language_name=language_name,
    )
    return env


def inline_css(html: str) -> str:
    """Move <style> rules into style="" attributes, as mail clients need."""
    return Premailer(
        html,
        keep_style_tags=False,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        allow_network=False,
    ).transform()


def render_confirmation(config: Config, language: str, name: str, confirm_url: str, block_url: str,
                        list_names: list[str]) -> RenderedMail:
    """The double opt-in mail: a confirm link, what was asked for, and a "this wasn't me" link."""
    env = mail_environment(config.templates_path, language)
    context = {
        "organisation": config.organisation_name,
        "postal_address": config.postal_address,
        "name": name,
        "confirm_url": confirm_url,
        "block_url": block_url,
        "list_names": list_names,
        "days": config.confirm_days,
    }
    subject = env.get_template("email/confirm_subject.txt").render(context).strip()
    text = env.get_template("email/confirm.txt").render(context)
    html = inline_css(env.get_template("email/confirm.html").render(context, subject=subject))
    return RenderedMail(language, subject, text, html)
