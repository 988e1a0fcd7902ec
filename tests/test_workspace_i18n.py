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


def _extracted(method: str, path, **options) -> list[str | tuple[str, str]]:
    """The message ids of `path`: a str, or (singular, plural) for a message with plural forms."""
    found = []
    for _line, message, _comments, _context in extract_from_file(method, str(path), **options):
        if isinstance(message, tuple):
            message = message[:2] if len(message) > 1 and message[1] else message[0]
        if message:
            found.append(message)
    return found


def _msgids() -> list[str | tuple[str, str]]:
    found: list[str | tuple[str, str]] = []
    for path in TEMPLATES + MAILS:
        found += _extracted("jinja2", path, options=OPTIONS)
    for path in SOURCES:
        found += _extracted("python", path, keywords={"N_": None, "NP_": (1, 2)})
    found += [member.value for enum in SHOWN for member in enum]
    return list(dict.fromkeys(found))


def _placeholders_kept(msgid: str | tuple[str, str], strings: str | tuple[str, ...]) -> bool:
    """Each translation has the msgid's placeholders; a plural form may say its count (`%(n)s`)
    in words instead ("ثانية واحدة"), but has no placeholder the msgid lacks."""
    if isinstance(msgid, str):
        return sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(strings))
    wanted = sorted(PLACEHOLDER.findall(msgid[0]))
    return all(sorted(PLACEHOLDER.findall(form)) in (wanted, sorted(set(wanted) - {"%(n)s"})) for form in strings)


def test_the_extraction_sees_every_page_and_the_marked_python():
    names = {path.name for path in TEMPLATES}
    assert {"issue_edit.html", "issue_send.html", "campaign.html", "campaign_report.html", "issues.html",
            "preview_error.html", "_issue_fields.html", "base.html"} <= names
    msgids = _msgids()
    assert "Days in the session" in msgids  # editorial.forms, marked with N_
    assert "the subject is missing; add subject: to the file" in msgids  # mail.lint, marked with N_
    assert "Approve these revisions" in msgids and "stale" in msgids
    assert ("about %(n)s second at the configured pace", "about %(n)s seconds at the configured pace") in msgids
    assert ("the issue has %(n)s lint error:\n%(lines)s", "the issue has %(n)s lint errors:\n%(lines)s") in msgids


@pytest.mark.parametrize("language", ["fr", "es", "ar"])
def test_every_workspace_string_is_translated(language):
    with (REPO / "templates" / "locale" / language / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalogue = read_po(fh, locale=language)
    untranslated, fuzzy, placeholders, plurals = [], [], [], []
    for msgid in _msgids():
        message = catalogue.get(msgid if isinstance(msgid, str) else msgid[0])
        if message is None or not message.string or not all(message.string):
            untranslated.append(msgid)
        elif message.fuzzy:
            fuzzy.append(msgid)
        elif isinstance(msgid, tuple) != message.pluralizable or (
                message.pluralizable and (message.id != msgid or len(message.string) != catalogue.num_plurals)):
            plurals.append(msgid)
        elif not _placeholders_kept(msgid, message.string):
            placeholders.append(msgid)
    assert not untranslated, f"{language}: no translation of {untranslated}"
    assert not plurals, f"{language}: plural forms missing or not {catalogue.num_plurals} in {plurals}"
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


@pytest.mark.parametrize(("language", "counts"), [
    ("en", {1: "try again in 1 minute", 2: "try again in 2 minutes", 0: "try again in 0 minutes"}),
    ("fr", {0: "réessayez dans 0 minute", 1: "réessayez dans 1 minute", 2: "réessayez dans 2 minutes"}),
    ("es", {1: "en 1 minuto", 2: "en 2 minutos"}),
    # Arabic's six forms: zero, one, two, few (3–10), many (11–99), other (100, 101, 102…).
    ("ar", {0: "بعد 0 دقيقة", 1: "بعد دقيقة واحدة", 2: "بعد دقيقتين", 3: "بعد 3 دقائق", 10: "بعد 10 دقائق",
            11: "بعد 11 دقيقة", 100: "بعد 100 دقيقة", 103: "بعد 103 دقائق"}),
])
def test_a_counted_text_takes_the_languages_own_plural_form(language, counts):
    from newsletter.i18n import translations
    from newsletter.texts import NP_, Text

    catalogue = translations(REPO / "templates" / "locale", language)
    forms = NP_("too many failed logins: try again in %(n)s minute", "too many failed logins: try again in %(n)s minutes")
    for n, ending in counts.items():
        text = Text.counted(forms, n)
        shown = text.translated(catalogue.gettext, catalogue.ngettext)
        assert shown.endswith(ending), (n, shown)
        if language == "en":
            assert str(text) == shown


def test_a_text_kept_as_json_comes_back_whole_and_still_translates():
    from newsletter.i18n import translations
    from newsletter.texts import N_, NP_, Text

    nested = Text.of(N_("the campaign was %(status)s while sending"), status=Text("cancelled"))
    counted = Text.counted(NP_("%(n)s row queued again", "%(n)s rows queued again"), 3)
    catalogue = translations(REPO / "templates" / "locale", "fr")
    for text in (nested, counted, Text("paused by an administrator")):
        back = Text.from_json(text.to_json())
        assert str(back) == str(text)
        assert back.translated(catalogue.gettext, catalogue.ngettext) == text.translated(catalogue.gettext,
                                                                                      catalogue.ngettext)
    assert Text.from_json(counted.to_json()).translated(catalogue.gettext, catalogue.ngettext) == \
        "3 lignes remises en file"
    assert Text.from_json(nested.to_json()).translated(catalogue.gettext) == \
        "la campagne est passée à l'état annulée pendant l'envoi"
