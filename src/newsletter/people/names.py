"""What a reader of a language sees of a list: its name and description in that language. Pure."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["name_in"]


def name_in(translations: Mapping[str, Mapping[str, str]] | None, name: str, description: str,
            language: str | None) -> tuple[str, str]:
    """The (name, description) a reader of `language` sees: the translation's where it has one,
    else the list's own."""
    own = (translations or {}).get(language or "", {})
    return own.get("name") or name, own.get("description") or description
