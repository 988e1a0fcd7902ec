"""Send now to a segment from the workspace (#14): the send page shows the chosen segment's
audience per language and per country above the send form, the form carries the segment, and
exactly the list's subscribers the segment names get the issue. A segment that is gone or no
longer reads is refused (409) with nothing sent; so is one that names nobody.

Over HTTP on SQLite and PostgreSQL, and in real Chromium against uvicorn and aiosmtpd.
"""

from __future__ import annotations

import re

import pytest
from conftest import REPO, listening_socket
from population import populate
from staffing import PASSWORD, add_staff, csrf_of, logged_in
from test_web_browser import CHROMIUM_ARGS, Server

from newsletter.app import create_app
from newsletter.attributes import parse_attribute_specs
from newsletter.editorial import issues
from newsletter.editorial.background import BackgroundSends
from newsletter.installation import Newsletter
from newsletter.people import lists, profiles, segments
from newsletter.sending.options import SendOptions
from newsletter.staff.roles import Role
from newsletter.store import Campaign, OutboxRow, Subscriber

DAY_4 = sorted((REPO / "examples" / "asp23").glob("day-4.*.md"))
COUNTRY = parse_attribute_specs({"country": {"type": "country"}})
#: person index -> country; populate gives person i the language ("en", "fr", "es", "ar")[i % 4]
COUNTRIES = {0: "SN", 1: "SN", 2: "CI", 3: "FR", 5: "CI", 6: "FR"}
WEST_AFRICA = {"person000000@example.org", "person000001@example.org", "person000002@example.org",
               "person000005@example.org"}


def _set_up(newsletter: Newsletter, tmp_path) -> None:
    newsletter.config = newsletter.config.with_changes(issues_dir=str(tmp_path / "issues"), attributes=COUNTRY)
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"],
                          now=newsletter.clock())
        lists.create_list(session, "alerts", "Campaign alerts", languages=["en", "fr"], now=newsletter.clock())
    populate(newsletter.store, 8, now=newsletter.clock())
    for i, code in COUNTRIES.items():
        profiles.set_attributes(newsletter, f"person{i:06d}@example.org", {"country": code})
    segments.create_segment(newsletter, "west-africa", "country in (SN, CI)")
    segments.create_segment(newsletter, "alert-readers", "list = alerts")  # nobody of asp-daily is on it
    issues.import_files(newsletter, DAY_4)


def _outbox(newsletter: Newsletter, slug: str) -> set[str]:
    with newsletter.store.session() as session:
        campaign = session.query(Campaign).filter_by(slug=slug).one_or_none()
        if campaign is None:
            return set()
        return {email for (email,) in session.query(Subscriber.email).join(OutboxRow, OutboxRow.subscriber_id ==
                                                                            Subscriber.id)
                .filter(OutboxRow.campaign_id == campaign.id)}


@pytest.fixture
def sender(newsletter, tmp_path):
    _set_up(newsletter, tmp_path)
    BackgroundSends.of(newsletter).options = SendOptions(concurrency=2, idle_poll=3600.0)
    return newsletter, logged_in(newsletter, add_staff(newsletter, "sender@example.org", Role.SENDER))


def _confirm(client, page: str, segment: str | None):
    review = client.get(page + (f"?segment={segment}" if segment else "")).text
    digest = re.search(r'name="digest" value="([0-9a-f]+)"', review).group(1)
    data = {"csrf": csrf_of(client, page), "digest": digest, "confirm": "yes"}
    return review, {**data, "segment": segment} if segment else data


def test_send_now_to_a_segment_mails_exactly_its_members(sender, smtp_server):
    newsletter, client = sender
    page = "/admin/issues/asp23-day-4/send"
    review, data = _confirm(client, page, "west-africa")
    # The segment's audience stands above the send form, and the form carries the segment.
    audience, form = review.index('id="segment-audience"'), review.index('id="send-form"')
    assert audience < form and 'id="segment-total">4<' in review
    assert "SN</span> Senegal</th><td>2</td>" in review and "CI</span> Côte d&#39;Ivoire</th><td>2</td>" in review
    assert '<input type="hidden" name="segment" value="west-africa">' in review[form:]
    assert "Send to the 4 readers of asp-daily that the segment west-africa names now" in review
    assert 'id="total">8<' in review  # the whole list's audience is still shown for what it is
    sent = client.post(page, data=data)
    assert sent.status_code == 303 and sent.headers["location"] == "/admin/campaigns/asp23-day-4"
    assert BackgroundSends.of(newsletter).wait("asp23-day-4", timeout=60).counts.sent == 4
    assert {r.rcpt_tos[0] for r in smtp_server.received} == WEST_AFRICA
    assert _outbox(newsletter, "asp23-day-4") == WEST_AFRICA
    with newsletter.store.session() as session:
        campaign = session.query(Campaign).filter_by(slug="asp23-day-4").one()
        assert campaign.source["segment"] == "west-africa" and campaign.source["audience"] == 4


def test_a_segment_gone_unreadable_or_naming_nobody_is_refused_with_nothing_sent(sender, smtp_server):
    newsletter, client = sender
    page = "/admin/issues/asp23-day-4/send"
    _review, data = _confirm(client, page, "west-africa")
    segments.delete_segment(newsletter, "west-africa")  # between the look and the send
    gone = client.post(page, data=data)
    assert gone.status_code == 409 and "there is no segment &#39;west-africa&#39;" in gone.text
    assert 'id="send-form"' in gone.text and 'name="segment"' not in gone.text.split('id="send-form"')[1][:400]
    segments.create_segment(newsletter, "senegal", "country = SN")
    _review, data = _confirm(client, page, "senegal")
    newsletter.config = newsletter.config.with_changes(attributes=())  # country is no longer declared
    unreadable = client.post(page, data=data)
    assert unreadable.status_code == 409 and "segment expression, column 1" in unreadable.text
    nobody = client.post(page, data={**data, "segment": "alert-readers"})
    assert nobody.status_code == 409 and "has no confirmed subscriber" in nobody.text
    assert smtp_server.received == [] and _outbox(newsletter, "asp23-day-4") == set()


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
    add_staff(newsletter, "sender@example.org", Role.SENDER)
    BackgroundSends.of(newsletter).options = SendOptions(concurrency=2, idle_poll=3600.0)
    app = create_app(newsletter, min_fill_seconds=0)
    app.state.txt_lookup = lambda name: []
    with Server(app, sock):
        yield newsletter, f"{base}/admin"


@pytest.mark.browser
def test_a_sender_sends_now_to_a_segment_in_the_browser(browser, site, smtp_server):
    newsletter, base = site
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.goto(f"{base}/login?lang=en")
    page.get_by_label("Email address").fill("sender@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/admin/?$"))
    page.goto(f"{base}/issues/asp23-day-4/send")
    page.get_by_label("Audience of a segment").select_option("west-africa")
    page.get_by_role("button", name="Show its audience").click()
    page.wait_for_url(re.compile(r"segment=west-africa"))
    assert page.locator("#segment-total").inner_text() == "4"
    assert "Senegal" in page.locator("#segment-countries").inner_text()
    page.get_by_label("Send to the 4 readers of asp-daily that the segment west-africa names now").check()
    page.locator("#send-form").get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/admin/campaigns/asp23-day-4$"))
    assert BackgroundSends.of(newsletter).wait("asp23-day-4", timeout=60).counts.sent == 4
    assert {r.rcpt_tos[0] for r in smtp_server.received} == WEST_AFRICA
    page.reload()
    page.wait_for_function("document.querySelector('[data-field=\"sent\"]').textContent.trim() === '4'")
    context.close()
