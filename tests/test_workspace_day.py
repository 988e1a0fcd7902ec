"""A staff day in a real browser: headless Chromium (Playwright) against uvicorn on loopback,
the mail going to the recording SMTP server, scripted to refuse one reader (a hard bounce).

An owner invites an editor, two translators and two senders; the editor writes Day 4 in
English from the form; the translators write French and Arabic (and cannot touch English);
the editor changes the English lead and French and Arabic show as stale; a sender previews
every language at 375 and 600 px and test-sends; a second sender approves; the send runs while
the progress page updates without reloading; the report lists the hard bounce.

The screenshots of docs/workspace.md (English and Arabic) are written by this test.
"""

from __future__ import annotations

import os
import re
import time

import pytest
from conftest import REPO, listening_socket
from population import populate
from staffing import PASSWORD, add_staff
from test_web_browser import CHROMIUM_ARGS, Server

from newsletter.app import create_app
from newsletter.editorial.background import BackgroundSends
from newsletter.installation import Newsletter
from newsletter.people import lists
from newsletter.sending.options import SendOptions
from newsletter.sending.pacing import Pace
from newsletter.staff.roles import Role

pytestmark = pytest.mark.browser

DOCS_SHOTS = REPO / "docs" / "workspace"
BOUNCING = "person000006@example.org"
LINK = re.compile(r"https?://[^\s<>\"]+/admin/invite/[A-Za-z0-9_.\-]+")

ENGLISH = {
    "subject": "ASP 23, Day 4: #NGOVoices in the cooperation plenary",
    "preheader": "Why state support and cooperation decide whether the Court can do its work.",
    "list_name": "ASP daily summaries", "session": "ASP 23", "day": "4", "total_days": "6",
    "date": "2024-12-05", "venue": "World Forum, The Hague",
    "lead": "Cooperation was the theme of Thursday's plenary: without states that arrest suspects and "
            "protect witnesses, the Court cannot act.",
    "highlights": "ULAG spoke for the Coalition in the first segment.\n"
                  "Speakers called on states to defend the Court against sanctions.",
    "news-0-date": "2024-12-05", "news-0-title": "Cooperation is vital for the Court",
    "news-0-link": "https://www.coalitionfortheicc.org/news/asp23-cooperation-plenary",
    "news-0-summary": "ULAG described what cooperation means for victims who wait for justice.",
    "tomorrow": "Closing session of the Assembly.",
}
FRENCH = {"subject": "AEP 23, jour 4 : #NGOVoices à la plénière sur la coopération",
          "list_name": "Résumés quotidiens de l'AEP", "session": "AEP 23", "venue": "World Forum, La Haye",
          "lead": "La coopération était le thème de la plénière de jeudi : sans États qui arrêtent les suspects "
                  "et protègent les témoins, la Cour ne peut pas agir.",
          "news-0-title": "La coopération est vitale pour la Cour",
          "highlights": "ULAG a parlé au nom de la Coalition lors du premier segment.\n"
                        "Les orateurs ont appelé les États à défendre la Cour contre les sanctions.",
          "news-0-summary": "ULAG a décrit ce que la coopération signifie pour les victimes qui attendent justice.",
          "tomorrow": "Séance de clôture de l'Assemblée.",
          "body": "Lisez le texte intégral de l'intervention et partagez-le."}
ARABIC = {"subject": "جمعية الدول الأطراف ٢٣، اليوم ٤: أصوات المنظمات في الجلسة العامة حول التعاون",
          "list_name": "الملخصات اليومية لجمعية الدول الأطراف", "session": "جمعية الدول الأطراف ٢٣",
          "venue": "المنتدى العالمي، لاهاي",
          "lead": "كان التعاون موضوع الجلسة العامة يوم الخميس: من دون دول تعتقل المشتبه بهم وتحمي الشهود، "
                  "لا تستطيع المحكمة أن تعمل.",
          "news-0-title": "التعاون حيوي للمحكمة",
          "highlights": "تحدثت المجموعة الاستشارية القانونية الأوكرانية باسم التحالف في الجزء الأول.\n"
                        "دعا المتحدثون الدول إلى الدفاع عن المحكمة في وجه العقوبات.",
          "news-0-summary": "وصفت المجموعة ما يعنيه التعاون للضحايا الذين ينتظرون العدالة.",
          "tomorrow": "الجلسة الختامية للجمعية.",
          "body": "اقرأوا النص الكامل للمداخلة وشاركوه."}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def workspace_site(config, sqlite_store, smtp_server, tmp_path):
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    newsletter = Newsletter(config.with_changes(base_url=base, two_person_lists=("asp-daily",),
                                                issues_dir=str(tmp_path / "issues")), sqlite_store)
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "ar", "es"],
                          now=newsletter.clock())
    populate(newsletter.store, 12, now=newsletter.clock())
    # Slow enough for the progress page to be seen moving.
    BackgroundSends.of(newsletter).options = SendOptions(concurrency=1, pace=Pace(rate=3.0), idle_poll=3600.0)
    smtp_server.fail_rcpt[BOUNCING] = "550 5.1.1 <person000006@example.org>: no such mailbox here"
    DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
    with Server(create_app(newsletter, min_fill_seconds=0), sock):
        yield newsletter, base


def shot(page, name: str, *, full_page: bool = True) -> None:
    """docs/workspace/NAME.png, replaced whole: written beside it first, so that a reader (another
    xdist worker copying the checkout, a person) never sees half a picture."""
    target = DOCS_SHOTS / f"{name}.png"
    partial = target.with_name(f".{name}.{os.getpid()}.png")
    page.screenshot(path=str(partial), full_page=full_page)
    os.replace(partial, target)


def person(browser, base: str, email: str, *, width: int = 1280):
    context = browser.new_context(base_url=base, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto("/admin/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/admin/?(\?.*)?$"))
    return page


def accept_invitation(browser, base: str, link: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(link)
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    context.close()


def until(condition, timeout: float = 60.0) -> int:
    """Wait (polling from here: the page's policy allows no script of Playwright's) until
    `condition()`; returns how many looks it took."""
    deadline = time.monotonic() + timeout
    looks = 0
    while not condition():
        looks += 1
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return looks


def fill_form(page, values: dict[str, str]) -> None:
    for name, value in values.items():
        page.fill(f"[name='{name}']", value)


def test_the_staff_day(workspace_site, browser, smtp_server):
    newsletter, base = workspace_site
    add_staff(newsletter, "coordinator@example.org", Role.OWNER, name="Amina Diallo")  # `newsletter users add`
    owner = person(browser, base, "coordinator@example.org")

    # The owner invites an editor, two translators and two senders; each sets a password.
    team = [("editor@example.org", "editor", None), ("traductrice@example.org", "translator", "fr"),
            ("mutarjim@example.org", "translator", "ar"), ("sender@example.org", "sender", None),
            ("second@example.org", "sender", None)]
    for email, role, language in team:
        owner.goto("/admin/accounts")
        owner.fill("#invite-email", email)
        owner.select_option("#invite-role", role)
        if language:
            owner.check(f"#invite ~ form input[name=languages][value={language}]")
        owner.click("#invite ~ form button[type=submit]")
        owner.wait_for_selector("[role=status]")
        mail = smtp_server.to(email)[-1]
        link = LINK.search(mail.get_body(("plain",)).get_content()).group(0)
        accept_invitation(browser, base, link)

    # The editor writes Day 4 in English, from the form.
    editor = person(browser, base, "editor@example.org")
    editor.goto("/admin/issues/new")
    editor.fill("#f-slug", "asp23-day-4")
    fill_form(editor, ENGLISH)
    editor.fill("#f-body", "Read the full text of the intervention, and share it.")
    editor.click("form.editor-form button[type=submit]")
    editor.wait_for_url("**/admin/issues/asp23-day-4")
    assert editor.get_attribute("#lang-en .state", "data-state") == "source"
    assert editor.get_attribute("#lang-fr .state", "data-state") == "missing"

    # The translators write French and Arabic, and cannot touch English.
    for email, language, text, name in (("traductrice@example.org", "fr", FRENCH, "editor-fr"),
                                        ("mutarjim@example.org", "ar", ARABIC, "editor-ar")):
        translator = person(browser, base, email)
        refused = translator.goto("/admin/issues/asp23-day-4/edit/en")
        assert refused.status == 403
        # The workspace speaks the translator's language (Arabic right to left).
        translator.goto(f"/admin/issues/asp23-day-4/edit/{language}?lang={language}")
        assert translator.input_value("#f-lead") == ENGLISH["lead"]  # starts from the English text
        fill_form(translator, text)
        # The live preview follows the typing, without a click.
        translator.frame_locator("#preview").locator(f"text={text['news-0-title']}").wait_for()
        translator.click("button[name=save]")
        translator.wait_for_url(re.compile(r"saved=1"))
        if language == "ar":
            assert translator.get_attribute("#f-lead", "dir") == "rtl"
            translator.frame_locator("#preview").locator(f"text={ARABIC['news-0-title']}").wait_for()
            shot(translator, "editor-ar", full_page=False)
        translator.context.close()

    # The editor changes the English lead: French and Arabic are stale, with the change shown.
    editor.goto("/admin/issues/asp23-day-4/edit/en")
    editor.fill("#f-lead", ENGLISH["lead"] + " Our members reminded the Assembly that these obligations hold "
                                             "in every situation.")
    editor.frame_locator("#preview").locator("text=in every situation").wait_for()
    shot(editor, "editor-en", full_page=False)
    editor.click("button[name=save]")
    editor.wait_for_url(re.compile(r"saved=2"))
    editor.goto("/admin/issues/asp23-day-4")
    assert editor.get_attribute("#lang-fr .state", "data-state") == "stale"
    assert editor.get_attribute("#lang-ar .state", "data-state") == "stale"
    assert "in every situation" in editor.inner_text("pre.diff .dadd")
    shot(editor, "issue-stale")

    # A sender previews every language at 375 and 600 px, and test-sends to themself.
    sender = person(browser, base, "sender@example.org")
    sender.goto("/admin/issues/asp23-day-4/preview")
    for language in ("en", "fr", "ar", "es"):
        for width in (375, 600):
            frame = sender.locator(f"#preview-{language} iframe[width='{width}']")
            frame.scroll_into_view_if_needed()
            assert frame.bounding_box()["width"] == pytest.approx(width, abs=2)
            shown = sender.frame_locator(f"#preview-{language} iframe[width='{width}']")
            shown.locator("table").first.wait_for()
    arabic = sender.frame_locator("#preview-ar iframe[width='375']")
    assert arabic.locator("[dir=rtl]").first.is_visible()
    sender.set_viewport_size({"width": 1100, "height": 1100})
    for language in ("ar", "en"):
        sender.evaluate(f"document.getElementById('h-{language}').scrollIntoView()")
        sender.wait_for_timeout(300)
        shot(sender, f"preview-{language}", full_page=False)
    sender.goto("/admin/issues/asp23-day-4/send")
    sender.click("#test-form button[type=submit]")
    sender.wait_for_selector("#tested")
    tests = [m for m in smtp_server.to("sender@example.org") if m["Subject"].startswith("[TEST] ")]
    assert sorted(m["Content-Language"] for m in tests) == ["ar", "en", "fr"]
    assert sender.is_visible("#waiting") and not sender.is_visible("#send-form")
    shot(sender, "send")

    # A second sender approves the exact revisions; the first sends; the progress page updates.
    second = person(browser, base, "second@example.org")
    second.goto("/admin/issues/asp23-day-4/send")
    second.click("#approve-form button[type=submit]")
    second.wait_for_selector("#approvals li")
    sender.goto("/admin/issues/asp23-day-4/send")
    # French and Arabic are stale: sending them as they are is said in so many words.
    assert "fr, ar" in sender.inner_text("#send-form")
    sender.check("#send-form input[name=stale]")
    sender.check("#send-form input[name=confirm]")
    sender.click("#send-form button[type=submit]")
    sender.wait_for_url("**/admin/campaigns/asp23-day-4")
    # The campaign is made before the send is answered: its page is there at once, never "No such issue".
    assert sender.query_selector("[data-field=sent]"), sender.content()
    sender.evaluate("window.notReloaded = true")
    counts = []

    def finished() -> bool:
        counts.append(sender.inner_text("[data-field=sent]"))
        return sender.get_attribute("#progress", "data-status") == "finished"

    until(finished)
    assert any(c not in ("0", "11") for c in counts), counts  # seen moving, not only the start and the end
    assert int(sender.get_attribute("#progress", "data-updates")) >= 2
    assert sender.evaluate("window.notReloaded === true")
    assert sender.inner_text("[data-field=sent]") == "11" and sender.inner_text("[data-field=failed]") == "1"
    # The actions follow the status without a reload: a finished send offers no pause or cancel,
    # and the hard bounce can be retried.
    sender.wait_for_selector("#actions[data-status=finished]")
    actions = sender.inner_text("#actions")
    assert "Pause" not in actions and "Cancel" not in actions and "Retry the failed" in actions, actions
    assert sender.evaluate("window.notReloaded === true")
    shot(sender, "progress")

    # The report lists the hard bounce the relay gave, by person and language.
    sender.click("text=Report")
    sender.wait_for_url("**/report")
    row = sender.locator("#bounces tbody tr")
    assert BOUNCING in row.inner_text() and "hard" in row.inner_text()
    assert BOUNCING in sender.inner_text("#not-reached")
    assert "550" in sender.inner_text("#not-reached") and ":" in sender.locator("#not-reached tbody td").nth(4).inner_text()
    assert "11" in sender.inner_text("#by-relay")  # the one relay of smtp_url took the 11 sent
    shot(sender, "report")
    # And the workspace reads right to left in Arabic.
    sender.goto("/admin/campaigns/asp23-day-4/report?lang=ar")
    assert sender.get_attribute("html", "dir") == "rtl"
    shot(sender, "report-ar")

    # The Arabic workspace around English content: the page reads right to left, the English issue
    # keeps its own direction in the editor and in the live preview.
    editor.goto("/admin/issues/asp23-day-4/edit/en?lang=ar")
    assert editor.get_attribute("html", "dir") == "rtl"
    assert editor.get_attribute("#f-lead", "dir") == "ltr"
    preview = editor.frame_locator("#preview")
    preview.locator("text=in every situation").wait_for()
    assert preview.locator("html").get_attribute("dir") == "ltr"
    assert preview.locator("html").get_attribute("lang") == "en"
    shot(editor, "editor-en-in-ar", full_page=False)

    # The other main screens in Arabic (another browser of the second sender, so the first keeps English).
    arabic = person(browser, base, "second@example.org")
    for path, name in (("/admin/?lang=ar", "dashboard-ar"), ("/admin/issues/asp23-day-4/send?lang=ar", "send-ar"),
                       ("/admin/campaigns/asp23-day-4?lang=ar", "progress-ar")):
        arabic.goto(path)
        assert arabic.get_attribute("html", "dir") == "rtl"
        shot(arabic, name)
    assert arabic.get_attribute("#progress", "data-status") == "finished"
    assert arabic.inner_text("[data-field=status]") == "انتهت"
    arabic.goto("/admin/people?lang=ar")
    arabic.click(f"text={BOUNCING}")
    arabic.wait_for_url("**/admin/people/**")
    assert arabic.get_attribute("html", "dir") == "rtl"
    shot(arabic, "person-ar")
