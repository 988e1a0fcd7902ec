"""Translations of interface strings (gettext catalogues) and text direction.

Catalogues live in `templates/locale/<lang>/LC_MESSAGES/messages.po` and are compiled in
memory with Babel when first used, so there is no build step and no .mo file to forget.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel.core import Locale, UnknownLocaleError, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from .texts import N_  # the one marker, re-exported for the modules that mark texts here

__all__ = ["N_", "translations", "text_direction", "negotiate_language", "language_name", "RTL_LANGUAGES"]

RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})


@lru_cache(maxsize=64)
def translations(locale_dir: Path, language: str) -> NullTranslations:
    """The compiled catalogue for `language` (English source strings when there is none)."""
    po = Path(locale_dir) / language / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def text_direction(language: str) -> str:
    """"rtl" for right-to-left languages, else "ltr"."""
    return "rtl" if language.split("-")[0] in RTL_LANGUAGES else "ltr"


def negotiate_language(accept_language: str | None, available: tuple[str, ...], default: str) -> str:
    """The best of `available` for an Accept-Language header, else `default`."""
    if not accept_language:
        return default
    preferred = []
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            preferred.append((q, tag.strip().replace("-", "_")))
    preferred.sort(key=lambda item: -item[0])
    found = negotiate_locale([t for _, t in preferred], list(available), sep="_")
    if found:
        return found
    for _, tag in preferred:  # "fr_CA" -> "fr"
        base = tag.split("_")[0].lower()
        if base in available:
            return base
    return default


@lru_cache(maxsize=256)
def language_name(language: str) -> str:
    """The language's own name for itself ("Français", "العربية"). Cached: Babel parses the
    locale data on every call, and every page's language switcher asks for each language."""
    try:
        return Locale.parse(language).get_display_name(language).capitalize()
    except (UnknownLocaleError, ValueError):
        return language
