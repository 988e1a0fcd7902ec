"""Turning content into mail: per-language Jinja2 rendering, CSS inlining, text parts.

Each language gets its own autoescaping Jinja2 environment with its gettext catalogue
installed. An issue is rendered **once per language**: the HTML part through the shared base
layout (`templates/email/base.html`) with its CSS inlined by premailer, the plain-text part
through its own text template, written for reading. Wherever a per-recipient value belongs
(name, address, unsubscribe and preferences links) the result holds a marker from
`personalise`, which the sender fills for each recipient — never re-rendering, never
re-inlining. `RenderedMail.personalised(values)` does that filling for all three parts with
the markers located once per variant (the same result as `personalise.fill` on each part).

A subscriber whose language has no variant gets the first variant along the list's fallback
chain (`variant_for`); the default chain is English.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path
from urllib.parse import quote

import jinja2
from babel.dates import format_date
from premailer import Premailer

from ..config import Config
from ..errors import MissingVariant
from ..i18n import language_name, text_direction, translations
from ..resources import find_template_file, template_folders
from .issue import Issue, Kind, Variant
from .markup import (
    Links,
    isolate_html,
    isolate_text,
    markdown_html,
    markdown_inline_html,
    markdown_text,
    wrap_text,
)
from .personalise import Field, join_filled, marker, split_markers

__all__ = [
    "RenderedMail",
    "DEFAULT_FALLBACK",
    "mail_environment",
    "inline_css",
    "narrow_html",
    "archive_url",
    "variant_for",
    "render_variant",
    "render_issue",
    "render_confirmation",
    "STAFF_MAILS",
    "render_staff_mail",
]

#: The fallback chain of a list that configures none.
DEFAULT_FALLBACK = ("en",)


@dataclass(frozen=True)
class RenderedMail:
    """One mail in one language: subject, plain-text part and CSS-inlined HTML part.

    The parts may hold personalisation markers (`personalise.marker`) for the sender to fill.
    `browser_url` is the issue's page in the web archive ("" for one-off mail).
    """

    language: str
    subject: str
    text: str
    html: str
    preheader: str = ""
    browser_url: str = ""

    @cached_property
    def _split(self) -> tuple[tuple[list[str], list[Field]], ...]:
        # Split once per variant; each recipient then costs one join (no regex scan).
        return split_markers(self.subject), split_markers(self.text), split_markers(self.html)

    def personalised(self, values: Mapping[Field, str]) -> tuple[str, str, str]:
        """(subject, text, html) for one recipient: the same result as `personalise.fill` on
        each part (HTML-escaped in the HTML part), with the markers located only once."""
        (subject, text, html) = self._split
        return (join_filled(*subject, values, html_part=False), join_filled(*text, values, html_part=False),
                join_filled(*html, values, html_part=True))


def _format_day(value: date, language: str) -> str:
    return format_date(value, "long", locale=language)


def _underline(text: str, char: str = "-") -> str:
    return f"{text}\n{char * len(text)}"


@lru_cache(maxsize=32)
def mail_environment(templates_path: Path, language: str) -> jinja2.Environment:
    """An autoescaping environment for `language`, with its translations installed.

    Filters: `md` / `md_inline` (editor Markdown to safe HTML), `md_text` (to plain text,
    collecting links into the context's `links`), `bidi` (isolate Latin runs in RTL; HTML in
    .html templates, LRI…PDI in .txt ones), `day` (a localised date), `underline`.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in template_folders(templates_path)]),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    locale = find_template_file(templates_path, f"locale/{language}") or templates_path / "locale" / language
    env.install_gettext_translations(translations(locale.parent, language), newstyle=True)
    rtl = text_direction(language) == "rtl"

    @jinja2.pass_context
    def md_text(ctx: jinja2.runtime.Context, text: str, indent: str = "", inline: bool = False) -> str:
        return markdown_text(text, ctx["links"], rtl=rtl, inline=inline, indent=indent)

    @jinja2.pass_eval_context
    def bidi(eval_ctx: jinja2.nodes.EvalContext, text: str) -> str:
        return isolate_html(str(text), rtl) if eval_ctx.autoescape else isolate_text(str(text), rtl)

    env.filters.update(
        md=lambda text: markdown_html(text, rtl=rtl),
        md_inline=lambda text: markdown_inline_html(text, rtl=rtl),
        md_text=md_text,
        bidi=bidi,
        day=lambda value: _format_day(value, language),
        underline=_underline,
        wrap=lambda text, first="", rest="": wrap_text(str(text), first, rest),
    )
    env.globals.update(
        lang=language,
        dir=text_direction(language),
        rtl=rtl,
        align="right" if rtl else "left",
        start="right" if rtl else "left",
        end="left" if rtl else "right",
        comma="، " if rtl else ", ",
        language_name=language_name,
        marker={f.value: marker(f) for f in Field},
    )
    return env


def inline_css(html: str) -> str:
    """Move <style> rules into style="" attributes, as mail clients need.

    CSS widths are not copied into width="" attributes: the templates set those themselves
    (Outlook reads the attribute, and a fluid 100% must not replace an image's pixel width).
    """
    return Premailer(
        html,
        disable_basic_attributes=["width", "height"],
        keep_style_tags=False,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        allow_network=False,
    ).transform()


_WIDE = re.compile(r"[^\x00-\xff]")


def narrow_html(html: str, *, share: float = 0.02) -> str:
    """`html` with characters beyond Latin-1 written as character references, when they are few.

    A mostly-Latin page with a handful of wider characters (the preheader's padding, a curly
    apostrophe) would otherwise be held by Python at 2 or 4 bytes per character, which makes
    every per-recipient marker scan several times slower. Pages mostly in another script
    (Arabic) are left alone: references would triple their size.
    """
    wide = _WIDE.findall(html)
    if not wide or len(wide) > share * len(html):
        return html
    return _WIDE.sub(lambda m: f"&#{ord(m.group(0))};", html)


def archive_url(config: Config, list_slug: str, slug: str, language: str) -> str:
    """The issue's page in the web archive: `{base_url}/archive/{list}/{slug}/{lang}`."""
    base = config.base_url.rstrip("/")
    return f"{base}/archive/{quote(list_slug)}/{quote(slug)}/{quote(language)}"


def variant_for(language: str | None, available: Iterable[str],
                fallback_chain: Iterable[str] = DEFAULT_FALLBACK) -> str:
    """The language whose variant a subscriber of `language` gets.

    Their own language when it is `available`, else the first available language along
    `fallback_chain` (a list's languages in fallback order; English by default), else English.
    Raises MissingVariant when none of these is available.
    """
    available = tuple(available)
    chain = tuple(fallback_chain) or DEFAULT_FALLBACK
    for candidate in ((language,) if language else ()) + chain + DEFAULT_FALLBACK:
        if candidate in available:
            return candidate
    raise MissingVariant(language or "", available, chain)


def _footer_context(config: Config, variant: Variant, browser_url: str) -> dict:
    return {
        "organisation": config.organisation_in(variant.language),
        "postal_address": config.postal_address,
        "list_name": variant.list_name,
        "browser_url": browser_url,
        "unsubscribe_url": marker(Field.UNSUBSCRIBE_URL),
        "preferences_url": marker(Field.PREFERENCES_URL),
    }


def render_variant(config: Config, variant: Variant) -> RenderedMail:
    """One language of an issue, rendered once: subject, text part, CSS-inlined HTML part.

    Raises jinja2.TemplateError only for a broken template (not for content: content errors
    are raised when the file is loaded).
    """
    env = mail_environment(config.templates_path, variant.language)
    browser_url = archive_url(config, variant.list, variant.slug, variant.language)
    name = "daily_summary" if variant.kind is Kind.DAILY_SUMMARY else "campaign_alert"
    context = {
        **_footer_context(config, variant, browser_url),
        "subject": variant.subject,
        "preheader": variant.preheader,
        "v": variant,
        "f": variant.fields,
        "image": variant.image,
        "body": variant.body,
    }
    html = narrow_html(inline_css(env.get_template(f"email/{name}.html").render(context)))
    text = env.get_template(f"email/{name}.txt").render(context, links=Links())
    return RenderedMail(variant.language, variant.subject, _tidy_text(text), html,
                        preheader=variant.preheader, browser_url=browser_url)


def render_issue(config: Config, issue: Issue) -> dict[str, RenderedMail]:
    """Every language variant of `issue`, each rendered once, keyed by language."""
    return {language: render_variant(config, variant) for language, variant in issue.variants.items()}


def _tidy_text(text: str) -> str:
    """At most one blank line in a row, no trailing spaces, one final newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n") + "\n"


def render_confirmation(config: Config, language: str, name: str, confirm_url: str, block_url: str,
                        list_names: list[str]) -> RenderedMail:
    """The double opt-in mail: a confirm link, what was asked for, and a "this wasn't me" link.

    Rendered through the same base layout as issues, without marketing content and without
    unsubscribe links (nobody is subscribed yet).
    """
    env = mail_environment(config.templates_path, language)
    context = {
        "organisation": config.organisation_in(language),
        "postal_address": config.postal_address,
        "name": name,
        "confirm_url": confirm_url,
        "block_url": block_url,
        "list_names": list_names,
        "days": config.confirm_days,
        "preheader": "",
    }
    subject = env.get_template("email/confirm_subject.txt").render(context).strip()
    text = env.get_template("email/confirm.txt").render(context)
    html = inline_css(env.get_template("email/confirm.html").render(context, subject=subject))
    return RenderedMail(language, subject, text, html)



#: The workspace's mails: an invitation to an account, a password reset link.
STAFF_MAILS = ("staff_invite", "staff_reset")


def render_staff_mail(config: Config, which: str, language: str, *, name: str, link: str, role: str = "",
                      hours: int = 0) -> RenderedMail:
    """A workspace account's mail (`which` is one of STAFF_MAILS): the link to set a password,
    what it is for and how long it works. Rendered through the same base layout as every mail."""
    if which not in STAFF_MAILS:
        raise ValueError(f"no staff mail {which!r}")
    env = mail_environment(config.templates_path, language)
    context = {"organisation": config.organisation_name, "postal_address": config.postal_address, "name": name,
               "link": link, "role": role, "hours": hours, "preheader": ""}
    subject = env.get_template(f"email/{which}_subject.txt").render(context).strip()
    text = env.get_template(f"email/{which}.txt").render(context)
    html = inline_css(env.get_template(f"email/{which}.html").render(context, subject=subject))
    return RenderedMail(language, subject, text, html)
