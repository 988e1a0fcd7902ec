"""Translation state: which languages follow the source's newest revision, and what changed
in the source since a translation was made (difflib over the content files). Pure."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from .versions import DiffLine, LanguageState, TranslationState, Version

__all__ = ["source_changes", "changed_fields", "language_states"]


def source_changes(before: Version, after: Version, *, context: int = 1) -> tuple[DiffLine, ...]:
    """The line diff of the source language's content file from `before` to `after`."""
    lines = difflib.unified_diff(before.text().splitlines(), after.text().splitlines(), lineterm="", n=context)
    out = []
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        sign = "@" if line.startswith("@@") else line[:1]
        out.append(DiffLine(sign, line if sign == "@" else line[1:]))
    return tuple(out)


def changed_fields(before: Version, after: Version) -> tuple[str, ...]:
    """The front-matter keys (and "body") whose values differ between two versions."""
    keys = list(dict.fromkeys([*before.front_matter, *after.front_matter]))
    changed = [k for k in keys if before.front_matter.get(k) != after.front_matter.get(k)]
    if before.body != after.body:
        changed.append("body")
    return tuple(changed)


def language_states(languages: Iterable[str], source_language: str, current: Mapping[str, Version],
                    based_on: Mapping[int, Version]) -> tuple[LanguageState, ...]:
    """The state of each language: `current` holds each language's newest version, `based_on`
    the source revisions translations were made from (by id)."""
    source = current.get(source_language)
    states = []
    for language in languages:
        version = current.get(language)
        if version is None:
            states.append(LanguageState(language, TranslationState.MISSING, None))
        elif language == source_language:
            states.append(LanguageState(language, TranslationState.SOURCE, version))
        elif source is None or version.based_on == source.id:
            states.append(LanguageState(language, TranslationState.CURRENT, version))
        else:
            before = based_on.get(version.based_on) if version.based_on is not None else None
            if before is None:
                states.append(LanguageState(language, TranslationState.STALE, version))
            else:
                states.append(LanguageState(language, TranslationState.STALE, version,
                                            changed_fields(before, source), source_changes(before, source)))
    return tuple(states)
