"""The visitor pages in a real browser: headless Chromium (Playwright) against a real uvicorn
server on loopback, with the confirmation mail going through the real recording SMTP server.

Screenshots of every page land in test-output/web/.
"""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest
import uvicorn
from conftest import REPO, listening_socket
from test_email_layout_browser import (
    CONTRAST_JS,  # WCAG AA: every visible text at least 4.5:1
)

from newsletter.installation import Newsletter
from newsletter.people import lists, subscriptions
from newsletter.people.consent import ConsentContext
from newsletter.statuses import Channel
from newsletter.tokens import Purpose
from newsletter.web import create_app

pytestmark = pytest.mark.browser

SHOTS = REPO / "test-output" / "web"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


class Server:
    """uvicorn serving an app in a thread, on a socket already bound (conftest.listening_socket)."""

    def __init__(self, app, sock: socket.socket):
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def site(config, sqlite_store, smtp_server):
    """(newsletter, base URL) with a server running; the mails' links point at it."""
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    newsletter = Newsletter(config.with_changes(base_url=base), sqlite_store)
    with newsletter.store.session() as session:
        now = newsletter.clock()
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"],
                          description="One summary for each day of the Assembly of States Parties session.", now=now)
        lists.create_list(session, "alerts", "Campaign alerts", languages=["en", "fr"],
                          description="A few calls to act each year.", now=now)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with Server(create_app(newsletter, min_fill_seconds=0), sock):
        yield newsletter, base


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 900}, locale="en-GB")
    page = context.new_page()
    yield page
    context.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_for_mail(smtp_server, address: str, count: int = 1):
    deadline = time.monotonic() + 10
    while len(smtp_server.to(address)) < count:
        assert time.monotonic() < deadline, f"no mail for {address}"
        time.sleep(0.05)
    return smtp_server.to(address)[count - 1]


def link_in(mail, purpose: str) -> str:
    return re.search(rf"(http://\S+/{purpose}/\S+)", mail.get_body(("plain",)).get_content()).group(1)


def statuses(newsletter, email) -> dict[str, str]:
    return {s["list"]: s["status"] for s in subscriptions.person(newsletter, email).as_json()["subscriptions"]}


def active_person(newsletter, smtp_server, email: str) -> str:
    from concurrent.futures import ThreadPoolExecutor

    # Playwright's sync API owns this thread's event loop; the library call gets its own thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(subscriptions.subscribe, newsletter, email, "Karim", "en", ["asp-daily"],
                    ConsentContext(channel=Channel.CLI)).result()
    token = link_in(wait_for_mail(smtp_server, email), "confirm").rsplit("/", 1)[1]
    subscriptions.confirm(newsletter, token, ConsentContext(channel=Channel.LINK))
    from newsletter.people import consent

    with newsletter.store.session() as session:
        return consent.find_subscriber(session, email).key


def test_sign_up_then_confirm_in_the_browser(site, page, smtp_server):
    newsletter, base = site
    page.goto(f"{base}/subscribe")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"  # a keyboard user can skip the header
    page.get_by_label("Email address").fill("nadia@example.org")
    page.get_by_label("Your name (optional)").fill("Nadia")
    page.get_by_label("Language of the mails").select_option("fr")
    page.get_by_label("ASP daily summaries").check()
    shot(page, "01-subscribe")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Check your inbox"
    shot(page, "02-check-your-inbox")

    mail = wait_for_mail(smtp_server, "nadia@example.org")
    assert mail["Subject"].startswith("Veuillez confirmer")
    page.goto(link_in(mail, "confirm"))  # the page speaks the link's language
    assert page.evaluate("document.documentElement.lang") == "fr"
    shot(page, "03-confirm")
    assert statuses(newsletter, "nadia@example.org") == {"asp-daily": "pending"}  # opening the link is not enough
    page.get_by_role("button", name="Confirmer mon abonnement").click()
    page.wait_for_load_state()
    assert "Vous êtes abonné" in page.get_by_role("heading", level=1).inner_text()
    shot(page, "04-confirmed")
    assert statuses(newsletter, "nadia@example.org") == {"asp-daily": "active"}


def test_unsubscribe_in_the_browser_and_undo(site, page, smtp_server):
    newsletter, base = site
    key = active_person(newsletter, smtp_server, "karim@example.org")
    page.goto(newsletter.link(Purpose.UNSUBSCRIBE, key, list_slug="asp-daily", language="en"))
    buttons = page.get_by_role("button")
    assert buttons.count() == 1
    assert page.get_by_role("link", name=re.compile("change your language and lists")).count() == 1
    shot(page, "05-unsubscribe")
    buttons.click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
    assert statuses(newsletter, "karim@example.org") == {"asp-daily": "unsubscribed"}
    shot(page, "06-unsubscribed")
    page.get_by_role("button", name="Undo").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Welcome back"
    assert statuses(newsletter, "karim@example.org") == {"asp-daily": "active"}


def test_preferences_change_language_and_lists_in_the_browser(site, page, smtp_server):
    newsletter, base = site
    key = active_person(newsletter, smtp_server, "lea@example.org")
    page.goto(newsletter.link(Purpose.PREFERENCES, key, language="en"))
    shot(page, "07-preferences")
    page.get_by_label("Language of the mails").select_option("es")
    page.get_by_label("ASP daily summaries").uncheck()
    page.get_by_label("Campaign alerts").check()
    page.get_by_role("button", name="Save my preferences").click()
    page.wait_for_load_state()
    assert page.evaluate("document.documentElement.lang") == "es"
    assert page.get_by_role("status").inner_text().strip() == "Sus preferencias se han guardado."
    shot(page, "08-preferences-saved")
    person = subscriptions.person(newsletter, "lea@example.org").as_json()
    assert person["language"] == "es"
    assert statuses(newsletter, "lea@example.org") == {"alerts": "active", "asp-daily": "unsubscribed"}


def test_a_page_of_no_origin_cannot_sign_up_its_visitors(site, page, smtp_server):
    """A `data:` page (or a sandboxed frame) posts with `Origin: null`: refused, nothing stored,
    even with a genuine form token fetched from our form."""
    from urllib.parse import quote

    newsletter, base = site
    page.goto(f"{base}/subscribe")
    token = page.locator("input[name=form_token]").get_attribute("value")
    fields = {"form_token": token, "email": "victim@example.org", "lists": "asp-daily", "language": "en"}
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    page.goto("data:text/html," + quote(f'<form method="post" action="{base}/subscribe">{inputs}'
                                         '<button>Win a prize</button></form>'))
    page.get_by_role("button", name="Win a prize").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Please try again"
    assert subscriptions.consent_events(newsletter, "victim@example.org") == []


def test_arabic_pages_render_right_to_left(site, page, smtp_server):
    newsletter, base = site
    page.goto(f"{base}/subscribe?lang=ar")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert page.evaluate("getComputedStyle(document.querySelector('main')).direction") == "rtl"
    main = page.locator("main").bounding_box()
    heading = page.get_by_role("heading", level=1)
    box = heading.evaluate("h => { const r = document.createRange(); r.selectNodeContents(h); "
                           "const b = r.getBoundingClientRect(); return {left: b.left, right: b.right}; }")
    # The heading's text hugs the right edge of the page, not the left.
    assert (main["x"] + main["width"]) - box["right"] < box["left"] - main["x"]
    assert "اشترك في مستجداتنا" in heading.inner_text()
    shot(page, "09-subscribe-ar")
    key = active_person(newsletter, smtp_server, "salma@example.org")
    page.goto(newsletter.link(Purpose.UNSUBSCRIBE, key, language="ar"))
    assert page.evaluate("document.documentElement.dir") == "rtl"
    shot(page, "10-unsubscribe-ar")


def test_pages_fit_a_phone_screen(site, browser):
    newsletter, base = site
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    try:
        for lang in ("en", "ar"):
            page.goto(f"{base}/subscribe?lang={lang}")
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            assert page.evaluate(CONTRAST_JS) == []
            # Every field has a label a screen reader announces.
            assert page.evaluate("[...document.querySelectorAll('input:not([type=hidden]), select')]"
                                 ".filter(e => !e.labels.length).map(e => e.name)") == []
            shot(page, f"11-phone-subscribe-{lang}")
        page.goto(f"{base}/confirm/not-a-token")
        assert page.get_by_role("heading", level=1).inner_text() == "This link does not work"
        assert page.evaluate(CONTRAST_JS) == []
        shot(page, "12-phone-invalid-link")
    finally:
        context.close()


def test_archive_pages(site, page):
    from sqlalchemy import select

    from newsletter.statuses import CampaignStatus
    from newsletter.store import Campaign, MailingList

    newsletter, base = site
    with newsletter.store.session() as session:
        list_id = session.scalar(select(MailingList.id).where(MailingList.slug == "asp-daily"))
        now = newsletter.clock()
        session.add(Campaign(slug="asp23-day-3", list_id=list_id, kind="daily-summary", subject="Day 3",
                             status=CampaignStatus.FINISHED, created_at=now, finished_at=now,
                             source={"files": [str(p) for p in sorted((REPO / "examples/asp23").glob("day-3.*.md"))]}))
    page.goto(f"{base}/archive?lang=ar")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    shot(page, "13-archive-ar")
    page.get_by_role("link", name=re.compile("23")).first.click()
    page.wait_for_load_state()
    assert page.url.endswith("/archive/asp-daily/asp23-day-3/ar")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    shot(page, "14-archive-issue-ar")
