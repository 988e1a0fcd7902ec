"""The workspace in a real browser: headless Chromium (Playwright) against uvicorn on loopback,
the invitation going through the recording SMTP server. Logging in (and out), accounts, the
people pages and the import, by keyboard and mouse, in English and Arabic, on a laptop and a
phone, with JavaScript off.

Screenshots land in test-output/workspace/ (docs/screenshots/ holds copies for docs/workspace.md).
"""

from __future__ import annotations

import re

import pytest
from conftest import REPO, listening_socket
from staffing import PASSWORD
from test_web_browser import CHROMIUM_ARGS, Server

from newsletter.app import create_app
from newsletter.installation import Newsletter
from newsletter.people import subscriptions
from newsletter.people.rules import ConsentContext
from newsletter.staff import accounts, audit
from newsletter.staff.roles import Role
from newsletter.statuses import Channel
from newsletter.tokens import Purpose

pytestmark = pytest.mark.browser

SHOTS = REPO / "test-output" / "workspace"
FORM = ConsentContext(channel=Channel.FORM, ip="198.51.100.20", source="website-footer")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def site(config, sqlite_store, smtp_server):
    """(newsletter, base URL of the workspace, the owner's set-password link) with a server running."""
    sock = listening_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    newsletter = Newsletter(config.with_changes(base_url=base), sqlite_store)
    subscriptions.create_list(newsletter, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"],
                              description="One summary for each day of the Assembly of States Parties session.")
    subscriptions.create_list(newsletter, "alerts", "Campaign alerts", languages=["en", "fr"])
    for email, name, lang, lists in [("fatou.ndiaye@example.net", "Fatou Ndiaye", "fr", ["asp-daily"]),
                                     ("jorge.rivas@example.org", "Jorge Rivas", "es", ["asp-daily", "alerts"]),
                                     ("amal.haddad@example.org", "أمل حداد", "ar", ["asp-daily"])]:
        subscriptions.record_signup(newsletter, email, name, lang, lists, FORM)
    invitation = accounts.add_member(newsletter, "coordinator@example.org", Role.OWNER, name="Amina Diallo")
    SHOTS.mkdir(parents=True, exist_ok=True)
    app = create_app(newsletter, min_fill_seconds=0)
    app.state.txt_lookup = lambda name: []
    with Server(app, sock):
        yield newsletter, f"{base}/admin", invitation.link


def _context(browser, **kwargs):
    kwargs.setdefault("viewport", {"width": 1100, "height": 900})
    kwargs.setdefault("locale", "en-GB")
    return browser.new_context(**kwargs)


def _set_password(page, link: str, name: str | None = None) -> None:
    page.goto(link)
    if name is not None:
        page.get_by_label("Your name").fill(name)
    page.get_by_label("Password (at least 12 characters)").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    page.get_by_role("button", name="Save my password").click()
    page.wait_for_url(re.compile(r"/admin/login"))


def _log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login?lang=en")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_the_owner_sets_a_password_logs_in_and_invites_a_sender(browser, site, smtp_server):
    newsletter, base, link = site
    context = _context(browser)
    page = context.new_page()
    _set_password(page, link, name="Amina Diallo")
    page.get_by_label("Email address").fill("coordinator@example.org")
    page.get_by_label("Password", exact=True).fill("not the password at all")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "The address, password or code is not right."
    page.screenshot(path=str(SHOTS / "login-refused-en.png"))
    _log_in(page, base, "coordinator@example.org")
    page.wait_for_url(f"{base}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Dashboard"
    cookie = next(c for c in context.cookies() if c["name"] == "nl_staff")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/admin"
    page.screenshot(path=str(SHOTS / "dashboard-en.png"), full_page=True)

    page.get_by_role("link", name="Accounts").click()
    page.get_by_label("Email address").fill("sender@example.org")
    page.locator("#invite-name").fill("Sam Okafor")
    page.locator("#invite-role").select_option("sender")
    page.get_by_role("button", name="Invite").click()
    assert "on its way" in page.get_by_role("status").inner_text()
    page.screenshot(path=str(SHOTS / "accounts-en.png"), full_page=True)
    (mail,) = smtp_server.to("sender@example.org")
    mailed = re.search(r"(http://127\.0\.0\.1:\d+/admin/invite/\S+)", mail.get_body(("plain",)).get_content()).group(1)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/admin/login"))
    page.goto(f"{base}/accounts")
    assert "/admin/login?next=/admin/accounts" in page.url  # the session is gone on the server

    sender = _context(browser).new_page()
    _set_password(sender, mailed)
    _log_in(sender, base, "sender@example.org")
    sender.wait_for_url(f"{base}/")
    assert sender.get_by_role("link", name="Accounts").count() == 0  # not an owner
    sender.goto(f"{base}/accounts")
    assert sender.get_by_role("heading", level=1).inner_text() == "Not allowed"
    context.close()


def _owner_page(browser, site, **kwargs):
    newsletter, base, link = site
    accounts.accept_invitation(newsletter, link.rsplit("/", 1)[1], PASSWORD)
    context = _context(browser, **kwargs)
    page = context.new_page()
    _log_in(page, base, "coordinator@example.org")
    page.wait_for_url(f"{base}/")
    return context, page


def test_people_search_a_person_edit_and_unsubscribe_with_javascript_off(browser, site):
    newsletter, base, _link = site
    key = subscriptions.person(newsletter, "jorge.rivas@example.org")
    context, page = _owner_page(browser, site, java_script_enabled=False)
    page.get_by_role("link", name="People").click()
    page.get_by_label("Address or name contains").fill("rivas")
    page.get_by_role("button", name="Search").click()
    assert page.locator("tbody tr").count() == 1
    page.get_by_role("link", name="jorge.rivas@example.org").click()
    assert page.get_by_role("heading", level=1).inner_text() == "jorge.rivas@example.org"
    page.get_by_label("Name", exact=True).fill("Jorge A. Rivas")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_role("status").inner_text() == "Saved."
    page.locator("form[action$='/unsubscribe']").filter(has=page.locator("input[value='alerts']")) \
        .get_by_role("button", name="Unsubscribe").click()
    assert page.get_by_role("status").inner_text() == "Unsubscribed, at once."
    page.screenshot(path=str(SHOTS / "person-en.png"), full_page=True)
    record = subscriptions.person(newsletter, "jorge.rivas@example.org")
    assert record.name == "Jorge A. Rivas"
    assert {s.list: s.status for s in record.subscriptions}["alerts"] == "unsubscribed"
    assert record.consent_log[-1].source == "staff:coordinator@example.org"
    assert [line.action for line in audit.lines(newsletter).lines[:2]] == ["people.unsubscribe", "people.edit"]
    assert key.email == "jorge.rivas@example.org"
    context.close()


def test_a_csv_upload_dry_run_then_import(browser, site, tmp_path):
    newsletter, base, _link = site
    csv_file = tmp_path / "members.csv"
    csv_file.write_text("email,name,language\nli.wei@example.com,Li Wei,en\nnot-an-address,Broken,en\n")
    context, page = _owner_page(browser, site)
    page.goto(f"{base}/import")
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_label("Campaign alerts").check()
    page.get_by_role("button", name="Upload").click()
    assert page.get_by_role("heading", name="Dry run: nothing was written").is_visible()
    assert page.locator("table tbody tr").first.inner_text().split("\t")[:2] == ["3", "not-an-address"]
    page.screenshot(path=str(SHOTS / "import-dry-run-en.png"), full_page=True)
    page.get_by_role("link", name="Import a file").click()
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_label("Campaign alerts").check()
    page.get_by_label("Dry run: check every row and report, write nothing").uncheck()
    page.get_by_role("button", name="Upload").click()
    assert page.get_by_role("heading", name="Imported").is_visible()
    assert subscriptions.person(newsletter, "li.wei@example.com").subscriptions[0].status == "pending"
    context.close()


def test_the_workspace_in_arabic_on_a_phone_by_keyboard(browser, site):
    _newsletter, base, _link = site
    context, page = _owner_page(browser, site, viewport={"width": 375, "height": 800}, locale="ar", is_mobile=True)
    page.goto(f"{base}/people?lang=ar")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"
    page.screenshot(path=str(SHOTS / "people-ar-phone.png"), full_page=True)
    page.goto(f"{base}/")  # the language is remembered
    assert page.evaluate("document.documentElement.lang") == "ar"
    page.set_viewport_size({"width": 1100, "height": 900})
    page.screenshot(path=str(SHOTS / "dashboard-ar.png"), full_page=True)
    context.close()


def test_a_page_kept_open_across_log_out_everywhere_changes_nothing(browser, site):
    newsletter, base, _link = site
    context, laptop = _owner_page(browser, site)
    phone = _context(browser).new_page()
    _log_in(phone, base, "coordinator@example.org")
    phone.wait_for_url(f"{base}/")
    key = subscriptions.person(newsletter, "fatou.ndiaye@example.net")
    laptop.goto(f"{base}/people?q=fatou")
    laptop.get_by_role("link", name="fatou.ndiaye@example.net").click()
    phone.goto(f"{base}/account")
    phone.get_by_role("button", name="Log out everywhere").click()
    laptop.get_by_label("Name", exact=True).fill("Someone Else")
    laptop.get_by_role("button", name="Save").click()
    assert laptop.get_by_role("heading", level=1).inner_text() == "Not allowed"
    assert subscriptions.person(newsletter, "fatou.ndiaye@example.net").name == key.name
    context.close()


def test_a_language_switch_link_keeps_the_page(browser, site):
    _newsletter, base, _link = site
    context = _context(browser)
    page = context.new_page()
    page.goto(f"{base}/login")
    page.get_by_role("link", name="Français").click()
    assert page.url.endswith("/admin/login?lang=fr")
    assert page.evaluate("document.documentElement.lang") == "fr"
    context.close()


def test_once_logged_in_the_language_switch_is_the_accounts_setting(browser, site):
    _newsletter, base, _link = site
    context, page = _owner_page(browser, site)
    page.goto(f"{base}/people")
    page.get_by_role("button", name="Français").click()  # a form: it works without a script of ours
    page.wait_for_url(f"{base}/people")
    assert page.evaluate("document.documentElement.lang") == "fr"
    context.close()
    # Another browser, which asked for English at the login page: the account's French wins.
    other = _context(browser).new_page()
    _log_in(other, base, "coordinator@example.org")
    other.wait_for_url(f"{base}/")
    assert other.evaluate("document.documentElement.lang") == "fr"
    assert other.get_by_role("heading", level=1).inner_text() == "Tableau de bord"
    other.context.close()


# A token for a link that is not the workspace's cannot open a workspace page.
def test_a_visitor_link_token_opens_nothing_in_the_workspace(browser, site):
    newsletter, base, _link = site
    token = newsletter.token(Purpose.PREFERENCES, "somebody")
    context = _context(browser)
    page = context.new_page()
    response = page.goto(f"{base}/reset/{token}")
    assert response.status == 400
    context.close()


def test_a_persons_attributes_and_a_segment_are_edited_in_the_browser(browser, site):
    from newsletter.attributes import parse_attribute_specs
    from newsletter.people import profiles, segments

    newsletter, base, _link = site
    newsletter.config = newsletter.config.with_changes(attributes=parse_attribute_specs({
        "organisation": {"type": "text", "label": "Organisation", "organisation": True},
        "country": {"type": "country", "label": "Country"},
        "staff_count": {"type": "integer", "label": "Staff count", "min": 0}}))
    context, page = _owner_page(browser, site)
    page.get_by_role("link", name="People").click()
    page.get_by_role("link", name="jorge.rivas@example.org").click()
    page.get_by_label("Organisation").fill("Abogadas por la Justicia")
    page.get_by_label("Country").select_option("AR")
    page.get_by_label("Staff count").fill("a dozen")
    page.get_by_role("button", name="Save the attributes").click()
    assert "Nothing was changed: correct the fields marked below." in page.get_by_role("alert").inner_text()
    assert "'a dozen' is not a whole number" in page.locator("#attr-staff_count-error").inner_text()
    assert page.get_by_label("Organisation").input_value() == "Abogadas por la Justicia"  # nothing typed is lost
    assert page.get_by_label("Country").input_value() == "AR"
    assert profiles.attributes_of(newsletter, "jorge.rivas@example.org") == {}
    page.get_by_label("Staff count").fill("12")
    page.get_by_role("button", name="Save the attributes").click()
    assert page.get_by_role("status").inner_text() == "Saved."
    assert page.get_by_label("Staff count").input_value() == "12"
    assert profiles.attributes_of(newsletter, "jorge.rivas@example.org") == {
        "organisation": "Abogadas por la Justicia", "country": "AR", "staff_count": 12}
    record = subscriptions.person(newsletter, "jorge.rivas@example.org")
    assert record.consent_log[-1].source == "staff:coordinator@example.org"
    assert record.consent_log[-1].note.startswith("attributes: organisation=Abogadas por la Justicia; country=AR")
    page.get_by_role("link", name="Segments").click()
    page.get_by_label("Name (lower-case letters, digits and hyphens)").fill("argentina")
    page.get_by_label("Expression").fill("country = Argentina")
    page.get_by_role("button", name="Save", exact=True).click()
    assert page.get_by_role("status").inner_text() == "Saved."
    assert page.locator("td[data-segment='argentina']").inner_text() == "1"
    assert "AR Argentina" in page.locator("#audience-countries").inner_text()
    assert segments.list_segments(newsletter)[0].expression == "country = Argentina"
    page.screenshot(path=str(SHOTS / "segments-en.png"), full_page=True)
    context.close()
