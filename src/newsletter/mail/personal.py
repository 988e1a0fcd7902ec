"""Mail to one subscriber outside a campaign: the welcome after confirming, and a digest of a
session's days (the catch-up of someone who joined late). Rendered once per language and
list, with the same personalisation markers as an issue, for `message.MailSkeleton`.

A welcome is written by the editors, or there is none: a file `<list-slug>.<lang>.md` in the
installation's welcome folder, front matter with a `subject` (and an optional `preheader`),
then Markdown (no raw HTML, as in issues).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from ..config import Config
from ..errors import ContentError
from ..texts import N_, NP_, Text
from .compose import RenderedMail, _tidy_text, inline_css, mail_environment, narrow_html
from .frontmatter import parse_yaml, split_front_matter
from .issue import Variant
from .markup import Links
from .personalise import Field, marker

__all__ = ["WelcomeText", "load_welcome", "render_welcome", "render_digest", "digest_subject", "session_digest_subject",
           "catch_up_intro"]


class WelcomeText(NamedTuple):
    """One language of a list's welcome, as the editors wrote it."""

    language: str
    subject: str
    body: str
    preheader: str = ""


def load_welcome(folder: Path, list_slug: str) -> dict[str, WelcomeText]:
    """The welcome texts written for `list_slug`, by language ({} when none is written).
    Raises ContentError naming the file for one that is wrong."""
    found: dict[str, WelcomeText] = {}
    for path in sorted(Path(folder).glob(f"{list_slug}.*.md")):
        language = path.name[len(list_slug) + 1:-3]
        if not (len(language) == 2 and language.isalpha() and language.islower()):
            continue
        text = path.read_text(encoding="utf-8")
        front, first, body, _ = split_front_matter(str(path), text)
        data, _lines = parse_yaml(str(path), front, first)
        if not isinstance(data, dict) or not isinstance(data.get("subject"), str) or not data["subject"].strip():
            raise ContentError(str(path), Text(N_("a welcome needs a subject: a line such as 'subject: Welcome'")),
                               field="subject")
        unknown = set(data) - {"subject", "preheader"}
        if unknown:
            raise ContentError(str(path), Text.counted(NP_("unknown field %(fields)s; a welcome has a subject and a "
                                                           "preheader",
                                                           "unknown fields %(fields)s; a welcome has a subject and a "
                                                           "preheader"), len(unknown), fields=", ".join(sorted(unknown))),
                               field=sorted(unknown)[0])
        found[language] = WelcomeText(language, data["subject"].strip(), body.strip(),
                                      str(data.get("preheader") or "").strip())
    return found


def _context(config: Config, list_name: str, subject: str, preheader: str = "") -> dict:
    return {"organisation": config.organisation_name, "postal_address": config.postal_address,
            "list_name": list_name, "subject": subject, "preheader": preheader,
            "unsubscribe_url": marker(Field.UNSUBSCRIBE_URL), "preferences_url": marker(Field.PREFERENCES_URL)}


def _render(config: Config, language: str, name: str, context: Mapping) -> tuple[str, str]:
    env = mail_environment(config.templates_path, language)
    html = narrow_html(inline_css(env.get_template(f"email/{name}.html").render(context)))
    text = _tidy_text(env.get_template(f"email/{name}.txt").render(context, links=Links()))
    return text, html


def render_welcome(config: Config, welcome: WelcomeText, list_name: str) -> RenderedMail:
    """The welcome in its language, through the shared layout, unsubscribe links as markers."""
    context = {**_context(config, list_name, welcome.subject, welcome.preheader),
               "body": welcome.body}
    text, html = _render(config, welcome.language, "welcome", context)
    return RenderedMail(welcome.language, welcome.subject, text, html, preheader=welcome.preheader)


def digest_subject(config: Config, language: str, session: str, days: Sequence[int]) -> str:
    """"ASP 23, what you missed: Days 1 to 3" (or "…: Day 3"), in `language`."""
    env = mail_environment(config.templates_path, language)
    if len(days) == 1:
        source = '{{ _("%(session)s, what you missed: Day %(day)s", session=session, day=first) }}'
    else:
        source = '{{ _("%(session)s, what you missed: Days %(first)s to %(last)s", session=session, first=first, last=last) }}'
    return env.from_string(source).render(session=session, first=days[0], last=days[-1]).strip()


def session_digest_subject(config: Config, language: str, session: str, days: Sequence[int]) -> str:
    """"ASP 23: Days 1 to 6", the digest of a session after its last day, in `language`."""
    env = mail_environment(config.templates_path, language)
    source = '{{ _("%(session)s: Days %(first)s to %(last)s", session=session, first=first, last=last) }}'
    return env.from_string(source).render(session=session, first=days[0], last=days[-1]).strip()


def render_digest(config: Config, days: Sequence[Variant], list_name: str, *, subject: str,
                  intro: str = "") -> RenderedMail:
    """Several days of a session (daily-summary variants, all in one language, in order) in one mail."""
    if not days:
        raise ValueError("a digest needs at least one day")
    language = days[0].language
    context = {**_context(config, list_name, subject), "days": list(days), "intro": intro}
    text, html = _render(config, language, "digest", context)
    return RenderedMail(language, subject, text, html)


def catch_up_intro(config: Config, language: str, session: str) -> str:
    """The sentence a catch-up opens with, in `language`."""
    env = mail_environment(config.templates_path, language)
    return env.from_string('{{ _("You joined during %(session)s. Here is what happened before you signed up; '
                           'the next days come as usual.", session=session) }}').render(session=session).strip()
