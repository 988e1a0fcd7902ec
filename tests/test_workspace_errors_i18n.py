"""Library errors are shown in the workspace's language (#14): a content field the format refuses,
a slug already taken, a slug of the wrong shape, a segment that is not there, a send to nobody,
an approval of revisions that changed — each provoked through the pages in fr, es and ar, its
translation on the page and its English nowhere; the CLI's words (`str(error)`) stay English.

Over HTTP on SQLite and PostgreSQL, and in real Chromium.
"""

from __future__ import annotations

import html
import re

import pytest
from conftest import REPO, listening_socket
from population import populate
from staffing import PASSWORD, add_staff, csrf_of, logged_in
from test_web_browser import CHROMIUM_ARGS, Server
from test_workspace_issues import DAY_6

from newsletter.app import create_app
from newsletter.editorial import issues
from newsletter.errors import (
    ContentError,
    DraftExists,
    LintFailed,
    MissingSecretKey,
    NoAudience,
    UnknownSegment,
)
from newsletter.installation import Newsletter
from newsletter.mail.lint import Severity, _problem
from newsletter.people import lists, segments
from newsletter.staff.roles import Role
from newsletter.texts import Text

DAY_4 = sorted((REPO / "examples" / "asp23").glob("day-4.*.md"))

#: What each error says on the page, per language (HTML-escaped as the page has it).
SAID = {
    "fr": {
        "day": "asp23-day-6.en.md, ligne 9 : day : nombre entier attendu, reçu &#39;six&#39;",
        "exists": "un numéro &#39;asp23-day-6&#39; existe déjà ; donnez un autre identifiant au nouveau",
        "slug": "slug : lettres minuscules, chiffres et traits d&#39;union attendus (asp23-day-4), reçu &#39;Day 6&#39;",
        "segment": "il n&#39;y a pas de segment &#39;nobody&#39;",
        "nobody": "la liste &#39;asp-daily&#39; n&#39;a aucun abonné confirmé à qui envoyer &#39;asp23-day-4&#39; ; "
                  "rien n&#39;a été envoyé",
        "approval": "asp23-day-4 ne peut pas encore être envoyé : il a changé depuis la version que vous avez "
                    "approuvée ; relisez-le",
    },
    "es": {
        "day": "asp23-day-6.en.md, línea 9: day: se esperaba un número entero, se recibió &#39;six&#39;",
        "exists": "ya existe un número &#39;asp23-day-6&#39;; dé otro identificador al nuevo",
        "slug": "slug: se esperaban minúsculas, cifras y guiones (asp23-day-4), se recibió &#39;Day 6&#39;",
        "segment": "no hay ningún segmento &#39;nobody&#39;",
        "nobody": "la lista &#39;asp-daily&#39; no tiene ningún suscriptor confirmado al que enviar &#39;asp23-day-4&#39;; "
                  "no se envió nada",
        "approval": "asp23-day-4 todavía no se puede enviar: cambió desde la versión que aprobó; vuelva a revisarlo",
    },
    "ar": {
        "day": "asp23-day-6.en.md، السطر 9: day: المتوقَّع عدد صحيح، والوارد &#39;six&#39;",
        "exists": "يوجد بالفعل عدد &#39;asp23-day-6&#39;؛ أعطِ العدد الجديد مُعرِّفًا آخر",
        "slug": "slug: المتوقَّع حروف لاتينية صغيرة وأرقام وشرطات (asp23-day-4)، والوارد &#39;Day 6&#39;",
        "segment": "لا توجد شريحة &#39;nobody&#39;",
        "nobody": "ليس في القائمة &#39;asp-daily&#39; أي مشترك مؤكَّد يُرسَل إليه &#39;asp23-day-4&#39;؛ لم يُرسَل شيء",
        "approval": "لا يمكن إرسال asp23-day-4 بعد: تغيّر منذ النسخة التي وافقت عليها؛ راجعه من جديد",
    },
}
#: The English of the same errors: none of it may be on a page in another language.
ENGLISH = ("expected a whole number", "already exists; give the new one another slug", "expected lower-case letters",
           "there is no segment", "has no confirmed subscriber", "nothing was sent", "cannot be sent yet",
           "it changed since the version you approved")


def _set_up(newsletter: Newsletter, tmp_path) -> None:
    newsletter.config = newsletter.config.with_changes(issues_dir=str(tmp_path / "issues"))
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"],
                          now=newsletter.clock())
        lists.create_list(session, "alerts", "Campaign alerts", languages=["en"], now=newsletter.clock())
    populate(newsletter.store, 4, now=newsletter.clock(), list_slug="asp-daily")
    segments.create_segment(newsletter, "alert-readers", "list = alerts")  # nobody: the list is empty
    issues.import_files(newsletter, DAY_4)


def _error(page: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</p>', page, re.DOTALL)
    assert found, page[:2000]
    return found.group(1)


def _no_english(page: str) -> None:
    shown = [e for e in ENGLISH if e in page]
    assert not shown, f"English on the page: {shown}"


def _choose(client, language: str) -> None:
    """The account's language of the workspace, chosen on the account page."""
    chosen = client.post("/admin/account/language", data={"csrf": csrf_of(client), "language": language})
    assert chosen.status_code == 303


def _post(client, path, data, form_page):
    return client.post(path, data={"csrf": csrf_of(client, form_page), **data})


@pytest.mark.parametrize("language", ["fr", "es", "ar"])
def test_the_errors_of_the_issue_and_send_pages_are_in_the_workspaces_language(newsletter, tmp_path, language):
    _set_up(newsletter, tmp_path)
    member = add_staff(newsletter, "owner@example.org", Role.OWNER)  # writes issues and sends them
    client = logged_in(newsletter, member)
    chosen = client.post("/admin/account/language", data={"csrf": csrf_of(client), "language": language})
    assert chosen.status_code == 303
    said = SAID[language]

    new = "/admin/issues/new"
    day = _post(client, new, {**DAY_6, "day": "six"}, new)
    assert day.status_code == 400 and said["day"] in _error(day.text), _error(day.text)
    _no_english(day.text)
    slug = _post(client, new, {**DAY_6, "slug": "Day 6"}, new)
    assert slug.status_code == 400 and said["slug"] in _error(slug.text), _error(slug.text)
    _no_english(slug.text)
    assert _post(client, new, DAY_6, new).status_code == 303
    exists = _post(client, new, DAY_6, new)
    assert exists.status_code == 400 and said["exists"] in _error(exists.text), _error(exists.text)
    _no_english(exists.text)

    send = "/admin/issues/asp23-day-4/send"
    unknown = client.get(send + "?segment=nobody")
    assert unknown.status_code == 400 and said["segment"] in _error(unknown.text), _error(unknown.text)
    _no_english(unknown.text)
    digest = re.search(r'name="digest" value="([0-9a-f]+)"', client.get(send).text).group(1)
    nobody = _post(client, send, {"digest": digest, "confirm": "yes", "segment": "alert-readers"}, send)
    assert nobody.status_code == 409 and said["nobody"] in _error(nobody.text), _error(nobody.text)
    _no_english(nobody.text)
    changed = _post(client, "/admin/issues/asp23-day-4/approve", {"digest": "0" * len(digest)}, send)
    assert changed.status_code == 409 and said["approval"] in _error(changed.text), _error(changed.text)
    _no_english(changed.text)


#: A file of rows the import refuses, one for each reason: the dry run and the real run report each.
REFUSED = (
    "email,name,language,lists,status\n"
    ",Nobody,en,asp-daily,\n"
    "ana.example.org,Ana,en,asp-daily,\n"
    "amal@example.org,Amal,de,asp-daily,\n"
    "li.wei@example.com,Li Wei,en,no-such-list,\n"
    "jorge@example.org,Jorge,es,asp-daily,later\n"
    "fatou@example.net,Fatou,fr,,\n"
)
#: Why each row was refused (the reason, then what is wrong), per language, by line.
REFUSED_SAID = {
    "fr": {
        2: "adresse manquante: la cellule email est vide",
        3: "adresse invalide: Une adresse électronique doit contenir un @.",
        4: "langue inconnue: &#39;de&#39; ne fait pas partie de en, fr, es, ar",
        5: "liste inconnue: il n&#39;y a pas de liste &#39;no-such-list&#39;",
        6: "statut inconnu: &#39;later&#39; n&#39;est pas un statut connu (active, blocklisted, bounced, cleaned, "
           "complained, pending, unsubscribed, …)",
        7: "aucune liste: la ligne ne nomme aucune liste et aucune liste n&#39;a été choisie pour toutes les lignes",
        "file": "x.csv : la première ligne n&#39;a pas de colonne email (elle contient "
                "[&#39;name&#39;, &#39;language&#39;]) ; commencez le fichier par un en-tête comme "
                "email,name,language,lists",
    },
    "es": {
        2: "falta la dirección: la celda email está vacía",
        3: "dirección no válida: Una dirección de correo debe tener una @.",
        4: "idioma desconocido: &#39;de&#39; no es ninguna de en, fr, es, ar",
        5: "lista desconocida: no hay ninguna lista &#39;no-such-list&#39;",
        6: "estado desconocido: &#39;later&#39; no es un estado conocido (active, blocklisted, bounced, cleaned, "
           "complained, pending, unsubscribed, …)",
        7: "ninguna lista: la fila no nombra ninguna lista y no se eligió ninguna lista para todas las filas",
        "file": "x.csv: la primera línea no tiene columna email (contiene "
                "[&#39;name&#39;, &#39;language&#39;]); empiece el archivo con un encabezado como "
                "email,name,language,lists",
    },
    "ar": {
        2: "العنوان ناقص: خانة email فارغة",
        3: "عنوان غير صالح: يجب أن يحتوي عنوان البريد الإلكتروني على العلامة @.",
        4: "لغة غير معروفة: &#39;de&#39; ليست من بين en, fr, es, ar",
        5: "قائمة غير معروفة: لا توجد قائمة &#39;no-such-list&#39;",
        6: "حالة غير معروفة: &#39;later&#39; ليست حالة معروفة (active, blocklisted, bounced, cleaned, complained, "
           "pending, unsubscribed، …)",
        7: "لا قائمة: لا يذكر الصف أي قائمة، ولم تُختَر قائمة لكل الصفوف",
        "file": "x.csv: ليس في السطر الأول عمود email (نصه [&#39;name&#39;, &#39;language&#39;])؛ "
                "ابدأ الملف بسطر عناوين مثل email,name,language,lists",
    },
}
REFUSED_ENGLISH = ("the email cell is empty", "must have an @-sign", "is not one of", "there is no list",
                   "is not a status we know", "names no list", "the first line has no email column")


@pytest.mark.parametrize("language", ["fr", "es", "ar"])
def test_the_import_page_says_why_each_row_was_refused_in_the_workspaces_language(newsletter, tmp_path, language):
    _set_up(newsletter, tmp_path)
    client = logged_in(newsletter, add_staff(newsletter, "owner@example.org", Role.OWNER))
    _choose(client, language)
    said = REFUSED_SAID[language]
    for dry_run in (True, False):
        data = {"csrf": csrf_of(client, "/admin/import"), **({"dry_run": "1"} if dry_run else {})}
        page = client.post("/admin/import", data=data, files={"file": ("people.csv", REFUSED.encode(), "text/csv")})
        assert page.status_code == 200, page.text[:2000]
        rows = re.findall(r'<tr><td>(\d+)</td><td dir="ltr">[^<]*</td><td>(.*?)</td></tr>', page.text)
        shown = {int(line): re.sub(r'<span dir="auto">(.*?)</span>', r"\1", why) for line, why in rows}
        assert shown == {line: text for line, text in said.items() if line != "file"}
        shown_english = [e for e in REFUSED_ENGLISH if e in page.text]
        assert not shown_english, f"English on the page: {shown_english}"
    no_column = client.post("/admin/import", data={"csrf": csrf_of(client, "/admin/import")},
                            files={"file": ("x.csv", b"name,language\nAmal,ar\n", "text/csv")})
    assert no_column.status_code == 400 and _error(no_column.text).endswith(" " + said["file"]), _error(no_column.text)
    assert "newsletter-import-" not in no_column.text  # the file as it was uploaded, not the server's copy
    assert not [e for e in REFUSED_ENGLISH if e in no_column.text]


#: A raiser of each kind, per language: a catch-up of an issue not sent yet (editorial.catchup), a
#: segment naming a language the installation does not have (people.segments), a content file
#: whose field holds a list (the front matter's kinds of value), a list slug taken (people.lists), an
#: expression left open (segment_language), a send scheduled in a time zone that is not one (routine.timing).
RAISED_SAID = {
    "fr": {"catch-up": "le numéro n&#39;a pas encore été envoyé ; envoyez-le avec cette version",
           "segment": "&#39;de&#39; ne fait pas partie des langues en, fr, es, ar",
           "content": "venue : texte attendu, reçu une liste",
           "list": "slug : une liste &#39;alerts&#39; existe déjà",
           "expression": "« ) » ou « and »/« or » attendu, trouvé la fin",
           "zone": "fuseau horaire : &#39;Mars/Olympus&#39; n&#39;est pas un fuseau horaire IANA comme "
                   "Europe/Amsterdam ou America/New_York"},
    "es": {"catch-up": "el número todavía no se ha enviado; envíelo con esta versión",
           "segment": "&#39;de&#39; no es ninguno de los idiomas en, fr, es, ar",
           "content": "venue: se esperaba texto, se recibió una lista",
           "list": "slug: ya existe una lista &#39;alerts&#39;",
           "expression": "se esperaba &#39;)&#39; o &#39;and&#39;/&#39;or&#39;, se encontró el final",
           "zone": "zona horaria: &#39;Mars/Olympus&#39; no es una zona horaria IANA como Europe/Amsterdam o "
                   "America/New_York"},
    "ar": {"catch-up": "لم يُرسَل العدد بعد؛ أرسله مع هذه النسخة",
           "segment": "&#39;de&#39; ليست من بين اللغات en, fr, es, ar",
           "content": "venue: المتوقَّع نص، والوارد قائمة",
           "list": "slug: توجد قائمة &#39;alerts&#39; بالفعل",
           "expression": "المتوقَّع &#39;)&#39; أو &#39;and&#39;/&#39;or&#39;، والموجود النهاية",
           "zone": "المنطقة الزمنية: &#39;Mars/Olympus&#39; ليست منطقة زمنية IANA مثل Europe/Amsterdam أو "
                   "America/New_York"},
}
RAISED_ENGLISH = ("has not been sent yet", "send it with this version", "is not one of the languages",
                  "expected text, got", "exists already", "found the end", "is not an IANA time zone", "time zone:")


@pytest.mark.parametrize("language", ["fr", "es", "ar"])
def test_a_catch_up_a_segment_and_a_content_file_are_refused_in_the_workspaces_language(newsletter, tmp_path,
                                                                                        language):
    _set_up(newsletter, tmp_path)
    client = logged_in(newsletter, add_staff(newsletter, "owner@example.org", Role.OWNER))
    _choose(client, language)
    said = RAISED_SAID[language]
    send = "/admin/issues/asp23-day-4/send"
    late = _post(client, "/admin/issues/asp23-day-4/catch-up/es", {}, send)
    assert late.status_code == 409 and said["catch-up"] in _error(late.text), _error(late.text)
    segment = _post(client, "/admin/segments", {"name": "germans", "expression": "language = de"}, "/admin/segments")
    assert segment.status_code == 400 and said["segment"] in _error(segment.text), _error(segment.text)
    english = next(path for path in DAY_4 if path.name == "day-4.en.md").read_text(encoding="utf-8")
    listed = english.replace("venue: World Forum, The Hague", "venue: [World Forum, The Hague]")
    content = client.post("/admin/issues/import", data={"csrf": csrf_of(client, "/admin/issues")},
                          files={"files": ("day-4.en.md", listed.encode(), "text/markdown")})
    assert content.status_code == 400 and said["content"] in _error(content.text), _error(content.text)
    taken = _post(client, "/admin/lists", {"slug": "alerts", "name": "Alerts again", "languages": "en"},
                  "/admin/lists")
    assert taken.status_code == 400 and said["list"] in _error(taken.text), _error(taken.text)
    unclosed = _post(client, "/admin/segments", {"name": "open", "expression": "(language = fr"}, "/admin/segments")
    assert unclosed.status_code == 400 and said["expression"] in _error(unclosed.text), _error(unclosed.text)
    mars = _post(client, "/admin/issues/asp23-day-4/schedule", {"at": "2027-07-08T19:00", "zone": "Mars/Olympus"}, send)
    assert mars.status_code == 409 and said["zone"] in _error(mars.text), _error(mars.text)
    for page in (late, segment, content, taken, unclosed, mars):
        assert not [e for e in RAISED_ENGLISH if e in _error(page.text)], _error(page.text)


def test_the_cli_keeps_the_english_and_a_message_the_catalogue_lacks_stays_as_it_is():
    assert str(DraftExists("asp23-day-6")) == "an issue 'asp23-day-6' already exists; give the new one another slug"
    assert str(UnknownSegment("nobody")) == "there is no segment 'nobody'"
    assert str(NoAudience("d4", "asp-daily")) == ("the list 'asp-daily' has no confirmed subscriber to send 'd4' to; "
                                                  "nothing was sent")
    error = ContentError("day-6.en.md", Text.of("expected a whole number, got %(value)s", value="'six'"), line=9,
                         field="day")
    assert str(error) == "day-6.en.md:9: day: expected a whole number, got 'six'"
    assert error.detail == "expected a whole number, got 'six'"  # what the API shows, in English
    from newsletter.i18n import translations

    catalogue = translations(REPO / "templates" / "locale", "fr")
    french = catalogue.gettext
    assert error.said.translated(french) == "day-6.en.md, ligne 9 : day : nombre entier attendu, reçu 'six'"
    secret = MissingSecretKey("/srv/newsletter/secret.key")
    assert str(secret) == ("no secret key: /srv/newsletter/secret.key does not exist and NEWSLETTER_SECRET_KEY is "
                           "not set")
    assert secret.said.translated(french) == ("pas de clé secrète : /srv/newsletter/secret.key n'existe pas et "
                                              "NEWSLETTER_SECRET_KEY n'est pas défini")
    own = ContentError("x.en.md", "a message of the raiser's own, 100% English")
    assert own.said.translated(french) == "x.en.md : a message of the raiser's own, 100% English"
    problem = _problem(Severity.ERROR, "subject", "the subject is missing; add subject: to the file", "fr")
    lint = LintFailed([problem])
    assert str(lint) == "the issue has 1 lint error:\n  - error: [fr] subject: the subject is missing; add subject: " \
        "to the file"
    shown = lint.said.translated(french, catalogue.ngettext)
    assert shown.startswith("le numéro a 1 erreur de vérification :\n  - erreur: [fr] subject: ")
    assert "the subject is missing" not in shown
    assert str(LintFailed([problem, problem])).startswith("the issue has 2 lint errors:\n")
    assert LintFailed([problem, problem]).said.translated(french, catalogue.ngettext).startswith(
        "le numéro a 2 erreurs de vérification :\n")


# -- in Chromium -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def site(config, sqlite_store, tmp_path):
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    newsletter = Newsletter(config.with_changes(base_url=base), sqlite_store)
    _set_up(newsletter, tmp_path)
    for language in SAID:
        add_staff(newsletter, f"owner-{language}@example.org", Role.OWNER)
    app = create_app(newsletter, min_fill_seconds=0)
    app.state.txt_lookup = lambda name: []
    with Server(app, sock):
        yield newsletter, f"{base}/admin"


@pytest.mark.browser
@pytest.mark.parametrize("language", ["fr", "es", "ar"])
def test_three_errors_in_the_browser_in_each_language(browser, site, language):
    """The account's language chosen on the account page; then a field refused, a segment that
    is not there, a send to nobody."""
    _newsletter, base = site
    said = {key: html.unescape(text) for key, text in SAID[language].items()}
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.goto(f"{base}/login?lang=en")
    page.get_by_label("Email address").fill(f"owner-{language}@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/?$"))
    page.goto(f"{base}/account")
    page.locator("#language-form select").select_option(language)
    page.locator("#language-form button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == language

    page.goto(f"{base}/issues/new")
    for name, value in DAY_6.items():
        field = page.locator(f"[name='{name}']")
        if name != "kind" and field.count() == 1 and field.evaluate("e => e.type") != "hidden":
            if field.evaluate("e => e.tagName") == "SELECT":
                field.select_option(value)
            else:
                field.fill(value)
    page.locator("[name='day']").fill("six")
    page.locator("form[method=post] button[type=submit]").last.click()
    page.wait_for_load_state()
    alert = page.get_by_role("alert").inner_text()
    assert said["day"] in alert and "expected a whole number" not in alert, alert

    page.goto(f"{base}/issues/asp23-day-4/send?segment=nobody")
    alert = page.get_by_role("alert").inner_text()
    assert said["segment"] in alert and "there is no segment" not in alert, alert

    page.goto(f"{base}/issues/asp23-day-4/send?segment=alert-readers")
    assert page.locator("#segment-total").inner_text() == "0"
    page.locator("#send-form input[name=confirm]").check()
    page.locator("#send-form button[type=submit]").click()
    page.wait_for_load_state()
    alert = page.get_by_role("alert").inner_text()
    assert said["nobody"] in alert and "has no confirmed subscriber" not in alert, alert
    assert page.locator("html").get_attribute("dir") == ("rtl" if language == "ar" else "ltr")
    context.close()
