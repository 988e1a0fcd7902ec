"""The workspace speaks en, fr, es and ar: every string of its frame, accounts, people, lists and
dashboard pages (and the staff mails) has a translation in each catalogue, placeholders kept."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from staffing import add_staff, logged_in

from newsletter.staff.roles import Role
from newsletter.statuses import StaffRole

from conftest import REPO

PAGES = ("account", "accounts", "audit", "base", "check", "dashboard", "forbidden", "import", "link_invalid", "lists",
         "segments",
         "login", "people", "person", "person_gone", "reset_request", "set_password", "suppressions", "totp")
FILES = [REPO / "templates" / "workspace" / f"{p}.html" for p in PAGES] + [
    REPO / "templates" / "email" / f"staff_{k}{s}" for k in ("invite", "reset") for s in (".html", ".txt", "_subject.txt")]
OPTIONS = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true", "trim_blocks": "true", "lstrip_blocks": "true"}
PLACEHOLDER = re.compile(r"%\(\w+\)s|%%")


def _msgids() -> list[str]:
    found: list[str] = []
    for path in FILES:
        for _line, message, _comments, _context in extract_from_file("jinja2", str(path), options=OPTIONS):
            message = message[0] if isinstance(message, tuple) else message
            if message and message not in found:
                found.append(message)
    return found + [role.value for role in StaffRole]


@pytest.mark.parametrize("language", ["fr", "es", "ar"])
def test_every_workspace_string_is_translated(language):
    with (REPO / "templates" / "locale" / language / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalogue = read_po(fh, locale=language)
    for msgid in _msgids():
        message = catalogue.get(msgid)
        assert message is not None and message.string, f"{language}: no translation of {msgid!r}"
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(message.string)), msgid


def test_the_workspace_in_french_and_arabic(newsletter):
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    client = logged_in(newsletter, owner)
    french = client.get("/admin/?lang=fr").text
    assert "<h1>Tableau de bord</h1>" in french and "Se déconnecter" in french
    arabic = client.get("/admin/people?lang=ar").text
    assert 'dir="rtl"' in arabic and "<h1>الأشخاص</h1>" in arabic
