"""The workspace speaks en, fr, es and ar: every string of every template under
templates/workspace (found by glob), of the staff mails, every string marked with `i18n.N_` in
src/ (form labels, lint messages) and every status the pages show through `_()` has a
translation in each catalogue, placeholders kept, none fuzzy."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from staffing import add_staff, csrf_of, logged_in

from newsletter.editorial.versions import TranslationState
from newsletter.mail.issue import Kind
from newsletter.mail.lint import Severity
from newsletter.people.csvrows import RejectReason
from newsletter.staff import audit
from newsletter.staff.roles import Role
from newsletter.statuses import (
    BounceKind,
    CampaignStatus,
    Channel,
    ConsentKind,
    OutboxStatus,
    StaffRole,
    StaffStatus,
    SubscriberStatus,
    SubscriptionStatus,
    SuppressionReason,
)

from conftest import REPO

TEMPLATES = sorted((REPO / "templates" / "workspace").rglob("*.html"))
MAILS = sorted((REPO / "templates" / "email").glob("staff_*"))
SOURCES = sorted((REPO / "src" / "newsletter").rglob("*.py"))
#: The statuses the workspace's pages show as `_(value)`.
SHOWN = (StaffRole, StaffStatus, TranslationState, Kind, Severity, CampaignStatus, OutboxStatus, BounceKind,
         ConsentKind, Channel, SubscriberStatus, SubscriptionStatus, SuppressionReason, RejectReason)
OPTIONS = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true", "trim_blocks": "true", "lstrip_blocks": "true"}
PLACEHOLDER = re.compile(r"%\(\w+\)s|%%")


def _extracted(method: str, path, **options) -> list[str]:
    found = []
    for _line, message, _comments, _context in extract_from_file(method, str(path), **options):
        message = message[0] if isinstance(message, tuple) else message
        if message:
            found.append(message)
    return found


def _msgids() -> list[str]:
    found: list[str] = []
    for path in TEMPLATES + MAILS:
        found += _extracted("jinja2", path, options=OPTIONS)
    for path in SOURCES:
        found += _extracted("python", path, keywords={"N_": None})
    found += [member.value for enum in SHOWN for member in enum]
    return list(dict.fromkeys(found))


def test_the_extraction_sees_every_page_and_the_marked_python():
    names = {path.name for path in TEMPLATES}
    assert {"issue_edit.html", "issue_send.html", "campaign.html", "campaign_report.html", "issues.html",
            "preview_error.html", "_issue_fields.html", "base.html"} <= names
    msgids = _msgids()
    assert "Days in the session" in msgids  # editorial.forms, marked with N_
    assert "the subject is missing; add subject: to the file" in msgids  # mail.lint, marked with N_
    assert "Approve these revisions" in msgids and "stale" in msgids


@pytest.mark.parametrize("language", ["fr", "es", "ar"])
def test_every_workspace_string_is_translated(language):
    with (REPO / "templates" / "locale" / language / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalogue = read_po(fh, locale=language)
    untranslated, fuzzy, placeholders = [], [], []
    for msgid in _msgids():
        message = catalogue.get(msgid)
        if message is None or not message.string:
            untranslated.append(msgid)
        elif message.fuzzy:
            fuzzy.append(msgid)
        elif sorted(PLACEHOLDER.findall(msgid)) != sorted(PLACEHOLDER.findall(message.string)):
            placeholders.append(msgid)
    assert not untranslated, f"{language}: no translation of {untranslated}"
    assert not fuzzy, f"{language}: fuzzy translations of {fuzzy}"
    assert not placeholders, f"{language}: placeholders not kept in {placeholders}"


def test_the_workspace_in_french_and_arabic(newsletter):
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    client = logged_in(newsletter, owner)
    french = client.get("/admin/?lang=fr").text
    assert "<h1>Tableau de bord</h1>" in french and "Se déconnecter" in french
    arabic = client.get("/admin/people?lang=ar").text
    assert 'dir="rtl"' in arabic and "<h1>الأشخاص</h1>" in arabic


def test_lint_lines_are_shown_in_the_staff_members_language():
    from newsletter.mail.lint import Problem, _problem
    from newsletter.web.pages import page_environment

    problem = _problem(Severity.ERROR, "subject", "the subject is %(length)s characters long; keep it to %(max)s "
                       "(phones show about 40)", "en", length=180, max=150)
    assert problem.message == "the subject is 180 characters long; keep it to 150 (phones show about 40)"
    line = "{{ _(p.text, **dict(p.values)) if p.text else p.message }}"
    french = page_environment(REPO / "templates", "fr").from_string(line).render(p=problem)
    assert french == "l'objet fait 180 caractères ; ne dépassez pas 150 (les téléphones en affichent environ 40)"
    plain = Problem(Severity.ERROR, "unresolved", "bad", "en")  # made by hand: shown as it is
    assert page_environment(REPO / "templates", "ar").from_string(line).render(p=plain) == "bad"


def test_the_language_is_a_setting_of_the_account_remembered_and_audited(newsletter):
    editor = add_staff(newsletter, "editor@example.org", Role.EDITOR)
    client = logged_in(newsletter, editor, headers={"Accept-Language": "en"})
    account = client.get("/admin/account").text
    assert 'id="language-form"' in account and "Not chosen yet" in account
    bad = client.post("/admin/account/language", data={"csrf": csrf_of(client), "language": "de"})
    assert bad.status_code == 400 and audit.lines(newsletter, action="account.language").total == 0
    chosen = client.post("/admin/account/language",
                         data={"csrf": csrf_of(client), "language": "ar", "next": "/admin/people"})
    assert chosen.status_code == 303 and chosen.headers["location"] == "/admin/people"
    assert "nl_staff_lang" not in chosen.headers.get("set-cookie", "")  # the account keeps it, not the browser
    assert 'dir="rtl"' in client.get("/admin/people").text
    [line] = audit.lines(newsletter, action="account.language").lines
    assert (line.actor, line.detail) == ("editor@example.org", "- -> ar")
    # Another browser, another login, an English Accept-Language: the account's language wins.
    elsewhere = logged_in(newsletter, editor, headers={"Accept-Language": "en"})
    page = elsewhere.get("/admin/account").text
    assert '<html lang="ar" dir="rtl">' in page and '<option value="ar" lang="ar" selected>' in page
    assert "fr" in elsewhere.get("/admin/account?lang=fr").headers["content-language"]  # ?lang= still shows one page
    assert '<button type="submit" name="language" value="es" class="link" lang="es">' in page
    # The header's switcher posts to the account too, and brings the member back where they were.
    back = elsewhere.post("/admin/account/language",
                          data={"csrf": csrf_of(elsewhere), "language": "es", "next": "https://evil.example/"})
    assert back.headers["location"] == "/admin/account?done=language"
    assert '<html lang="es" dir="ltr">' in client.get("/admin/").text
    assert audit.lines(newsletter, action="account.language").lines[0].detail == "ar -> es"
