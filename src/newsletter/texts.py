"""Texts people read, kept translatable until they are shown: the `N_` marker and `Text`.

A `Text` is a catalogue msgid (marked with `N_`, `%(name)s` placeholders) and the values that go
in; `str()` of it is the English. The library's errors carry one (`NewsletterError.text`,
`.values`), as lint's problems do, so that a face can show them in its reader's language: the
workspace translates at render time (`workspace.pages.say`), the CLI prints `str(error)`.

Ground values only: no catalogue is read here (that is `i18n`, which loads Babel), so that
naming an error stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

__all__ = ["N_", "NP_", "Text", "text_of"]


def N_(message: str) -> str:
    """Mark `message` for the catalogues and return it unchanged: it is translated where it is
    shown (a template's `_(...)`, `workspace.pages.say`), in the reader's language.
    `tests/test_workspace_i18n.py` finds every marked string in src/ and holds each language's
    catalogue to it."""
    return message


def NP_(singular: str, plural: str) -> tuple[str, str]:
    """Mark a message that has plural forms (`%(n)s` is the count): the catalogues hold each
    language's forms for it (Arabic has six), `Text.counted` chooses among them."""
    return singular, plural


class Text(NamedTuple):
    """A text to show: `template` (a catalogue msgid) and `values`, each a str or a Text of its
    own (translated too). Without values the template is shown as it is (no `%` formatting).
    A counted text (`Text.counted`) also has `plural`, and its value `n` chooses the form."""

    template: str
    values: tuple[tuple[str, object], ...] = ()
    plural: str = ""

    @classmethod
    def of(cls, template: str, **values: object) -> Text:
        return cls(template, tuple(values.items()))

    @classmethod
    def counted(cls, forms: tuple[str, str], n: int, **values: object) -> Text:
        """A text with plural forms (`NP_(singular, plural)`) for the count `n`."""
        return cls(forms[0], (("n", n), *values.items()), forms[1])

    def __str__(self) -> str:
        if not self.values:
            return self.template
        template = self.plural if self.plural and self._count() != 1 else self.template
        return template % {key: str(value) for key, value in self.values}

    def translated(self, gettext: Callable[[str], str],
                   ngettext: Callable[[str, str, int], str] | None = None) -> str:
        """The text in the language of `gettext` (and `ngettext`, for a counted text): the
        template translated (kept as it is when the catalogue does not have it), then each value,
        a Text translated in turn. Without `ngettext` a counted text takes its English form."""
        if self.plural:
            shown = (ngettext(self.template, self.plural, self._count()) if ngettext
                     else self.plural if self._count() != 1 else self.template)
        else:
            shown = gettext(self.template) if self.template else ""
        if not self.values:
            return shown
        return shown % {key: value.translated(gettext, ngettext) if isinstance(value, Text) else str(value)
                        for key, value in self.values}

    def _count(self) -> int:
        return int(dict(self.values)["n"])

    def to_json(self) -> dict:
        """The text as JSON values, for a column (`from_json` gives it back)."""
        return {"template": self.template, "plural": self.plural,
                "values": [[key, value.to_json() if isinstance(value, Text) else str(value)]
                           for key, value in self.values]}

    @classmethod
    def from_json(cls, data: dict) -> Text:
        """The text `to_json` made; a value that is a text of its own comes back as one."""
        return cls(data["template"], tuple((key, cls.from_json(value) if isinstance(value, dict) else value)
                                           for key, value in data.get("values", ())), data.get("plural", ""))


def text_of(said: str | Text) -> Text:
    """A reason or message given by a raiser as a Text: a str becomes a Text of its own, translated
    when the catalogues have it (raisers mark those with `N_`) and shown as it is otherwise."""
    return said if isinstance(said, Text) else Text(str(said))
