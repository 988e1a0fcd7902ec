"""The visitor pages over HTTP (Starlette's TestClient), on SQLite and PostgreSQL, with the
confirmation mail going to the real recording SMTP server."""

from __future__ import annotations

import json
import logging
import re
import warnings
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from newsletter.installation import Newsletter
from newsletter.people import lists, subscriptions
from newsletter.people.consent import ConsentContext
from newsletter.statuses import Channel
from newsletter.tokens import Purpose

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from newsletter.app import create_app

HOSTILE = '"><img src=x onerror=alert(1)>'
ADMIN = ConsentContext(channel=Channel.ADMIN)


def make_newsletter(config, store, clock, **changes) -> Newsletter:
    newsletter = Newsletter(config.with_changes(**changes), store, clock=clock)
    return newsletter


def add_lists(newsletter, clock):
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"],
                          description="One summary for each day of the Assembly of States Parties session.", now=clock())
        lists.create_list(session, "alerts", "Campaign alerts", languages=["en", "fr"],
                          description="A few calls to act each year.", now=clock())
        lists.create_list(session, "staff", "Staff only", public=False, now=clock())


@pytest.fixture
def newsletter(config, store, clock):
    newsletter = make_newsletter(config, store, clock, trusted_proxies=("10.0.0.0/8",), signup_per_ip_per_hour=0)
    add_lists(newsletter, clock)
    return newsletter


@pytest.fixture
def client(newsletter):
    with TestClient(create_app(newsletter), client=("10.1.2.3", 40000)) as c:
        yield c


def form_token(client, clock, lang="en") -> str:
    page = client.get(f"/subscribe?lang={lang}")
    token = BeautifulSoup(page.text, "html.parser").find("input", {"name": "form_token"})["value"]
    clock.advance(seconds=5)
    return token


def sign_up(client, clock, email, name="Ana", lists=("asp-daily",), language="en", **extra):
    data = {"form_token": form_token(client, clock), "email": email, "name": name, "language": language,
            "lists": list(lists), "website": "", **extra}
    response = client.post("/subscribe", data=data, headers={"X-Forwarded-For": "203.0.113.7"})
    drain(client)
    return response


def drain(client):
    """Send the confirmation mails queued so far (the server's drainer does it right after the answer)."""
    return client.portal.call(client.app.state.web.drainer.drain)


def link_token(message, purpose: str) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(rf"/{purpose}/(\S+)", text).group(1)


def csrf_of(html: str) -> str:
    return BeautifulSoup(html, "html.parser").find("input", {"name": "csrf"})["value"]


def _key(newsletter, email):
    from newsletter.people import consent
    with newsletter.store.session() as session:
        return consent.find_subscriber(session, email).key


def statuses(newsletter, email) -> dict[str, str]:
    return {s["list"]: s["status"] for s in subscriptions.person(newsletter, email).as_json()["subscriptions"]}


def snapshot(newsletter, email) -> str:
    return json.dumps(subscriptions.person(newsletter, email).as_json(), sort_keys=True)


def active_person(newsletter, client, clock, smtp_server, email="ana@example.org", lists=("asp-daily", "alerts")):
    assert sign_up(client, clock, email, lists=lists).status_code == 200
    token = link_token(smtp_server.to(email)[-1], "confirm")
    page = client.get(f"/confirm/{token}")
    assert client.post(f"/confirm/{token}", data={"csrf": csrf_of(page.text)}).status_code == 200
    return _key(newsletter, email)


# -- sign-up -----------------------------------------------------------------------------------

def test_signup_form_shows_public_lists_descriptions_and_the_consent_text(client, config):
    page = client.get("/subscribe")
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.html["lang"] == "en" and soup.html["dir"] == "ltr"
    boxes = [i["value"] for i in soup.find_all("input", {"name": "lists"})]
    assert boxes == ["alerts", "asp-daily"]  # "staff" is not public
    assert "One summary for each day of the Assembly" in page.text
    consent = (config.templates_path / "web/consent/2026-12/en.txt").read_text().strip()
    assert soup.find(class_="consent-text").get_text() == consent.replace("{organisation}", config.organisation_name)
    assert soup.find("label", {"for": "email"}) and soup.find("label", {"for": "name"})
    french = client.get("/subscribe", headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"})
    assert 'lang="fr"' in french.text and "Abonnez-vous" in french.text
    assert (config.templates_path / "web/consent/2026-12/fr.txt").read_text().strip().replace(
        "{organisation}", config.organisation_name) in french.text


def test_signup_sends_one_confirmation_and_records_proof(newsletter, client, clock, smtp_server):
    response = client.post("/subscribe", data={
        "form_token": form_token(client, clock), "email": "Ana.Ruiz@Example.org", "name": "Ana Ruiz",
        "language": "es", "lists": ["asp-daily", "alerts"]},
        headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.7, 10.0.0.2", "User-Agent": "Firefox/140"})
    assert response.status_code == 200
    drain(client)
    assert "Revise su bandeja de entrada" in response.text  # no ?lang=: the language chosen for the mails
    [mail] = smtp_server.to("ana.ruiz@example.org")
    assert link_token(mail, "confirm") and link_token(mail, "block")
    signup = [e for e in subscriptions.person(newsletter, "ana.ruiz@example.org").as_json()["consent_log"] if e["event"] == "signup"][0]
    # Only the hop the trusted proxy (10/8) saw is believed, not what the client claimed before it.
    assert (signup["ip"], signup["user_agent"], signup["channel"], signup["consent_version"]) == (
        "203.0.113.7", "Firefox/140", "form", "2026-12")
    assert statuses(newsletter, "ana.ruiz@example.org") == {"alerts": "pending", "asp-daily": "pending"}


def test_forwarded_for_is_ignored_from_an_untrusted_peer(config, store, clock, smtp_server):
    newsletter = make_newsletter(config, store, clock)  # no trusted proxies
    add_lists(newsletter, clock)
    with TestClient(create_app(newsletter), client=("192.0.2.50", 1234)) as client:
        sign_up(client, clock, "ip@example.org")
    [signup] = [e for e in subscriptions.person(newsletter, "ip@example.org").as_json()["consent_log"] if e["event"] == "signup"]
    assert signup["ip"] == "192.0.2.50"


def test_identical_responses_for_new_pending_active_unsubscribed_and_suppressed(newsletter, client, clock, smtp_server):
    emails = {state: f"{state}@example.org" for state in ("new", "pending", "active", "unsubscribed", "suppressed")}
    sign_up(client, clock, emails["pending"])
    active_person(newsletter, client, clock, smtp_server, emails["active"], lists=("asp-daily",))
    active_person(newsletter, client, clock, smtp_server, emails["unsubscribed"], lists=("asp-daily",))
    subscriptions.unsubscribe_address(newsletter, emails["unsubscribed"], ADMIN)
    sign_up(client, clock, emails["suppressed"])
    subscriptions.erase(newsletter, emails["suppressed"])
    clock.advance(minutes=11)
    answers = {}
    for state, email in emails.items():
        response = sign_up(client, clock, email, name="Same Name")
        answers[state] = (response.status_code, response.text, response.headers.get("content-type"))
    assert len(set(answers.values())) == 1, {k: v[0] for k, v in answers.items()}
    assert answers["new"][0] == 200


def test_an_invalid_address_gets_the_form_back_with_the_reason(client, clock, smtp_server):
    response = sign_up(client, clock, "ana@@example", name="Ana")
    assert response.status_code == 422
    soup = BeautifulSoup(response.text, "html.parser")
    assert soup.find(role="alert") and "@" in soup.find(role="alert").get_text()
    assert soup.find("input", {"name": "email"})["aria-invalid"] == "true"
    assert soup.find("input", {"name": "name"})["value"] == "Ana"
    assert smtp_server.received == []
    no_list = sign_up(client, clock, "ana@example.org", lists=())
    assert no_list.status_code == 422 and "at least one" in no_list.text
    hidden = sign_up(client, clock, "ana@example.org", lists=("staff",))
    assert hidden.status_code == 422 and smtp_server.received == []


def test_twenty_signups_of_one_address_in_a_minute_send_one_mail(config, store, clock, smtp_server):
    newsletter = make_newsletter(config, store, clock)  # the default limits
    add_lists(newsletter, clock)
    with TestClient(create_app(newsletter)) as client:
        answers = set()
        for _ in range(20):
            response = sign_up(client, clock, "target@example.org")
            answers.add((response.status_code, response.text))
            clock.advance(seconds=1)
    assert len(smtp_server.to("target@example.org")) == 1
    assert len(answers) == 1


def test_robots_are_answered_like_people_but_nothing_happens(newsletter, client, clock, smtp_server):
    normal = sign_up(client, clock, "person@example.org")
    honeypot = sign_up(client, clock, "robot1@example.org", website="http://spam.example")
    fast = client.post("/subscribe", data={"form_token": _fresh_token(client), "email": "robot2@example.org",
                                           "lists": ["asp-daily"]})
    forged = client.post("/subscribe", data={"form_token": "forged.token.value", "email": "robot3@example.org",
                                             "lists": ["asp-daily"]})
    missing = client.post("/subscribe", data={"email": "robot4@example.org", "lists": ["asp-daily"]})
    drain(client)
    assert {r.text for r in (normal, honeypot, fast, forged, missing)} == {normal.text}
    assert [r.rcpt_tos for r in smtp_server.received] == [["person@example.org"]]
    assert subscriptions.count_subscribers(newsletter) == 1


def _fresh_token(client) -> str:
    page = client.get("/subscribe")
    return BeautifulSoup(page.text, "html.parser").find("input", {"name": "form_token"})["value"]


def test_an_expired_form_comes_back_to_be_sent_again(client, clock, smtp_server):
    token = _fresh_token(client)
    clock.advance(days=2)
    response = client.post("/subscribe", data={"form_token": token, "email": "slow@example.org", "name": "Slow",
                                                "lists": ["asp-daily"]})
    drain(client)
    assert response.status_code == 400 and "open for too long" in response.text
    assert 'value="slow@example.org"' in response.text and smtp_server.received == []


def test_the_hourly_ceiling_stops_confirmation_mail_and_says_so(config, store, clock, smtp_server, caplog):
    newsletter = make_newsletter(config, store, clock, signup_hourly_ceiling=2)
    add_lists(newsletter, clock)
    with TestClient(create_app(newsletter)) as client, caplog.at_level(logging.ERROR, "newsletter.web"):
        answers = {sign_up(client, clock, f"p{i}@example.org").text for i in range(4)}
    assert len(answers) == 1
    assert len(smtp_server.received) == 2
    assert subscriptions.count_subscribers(newsletter) == 2
    assert any("CEILING REACHED" in r.getMessage() for r in caplog.records)


def test_json_signup_from_an_allowed_origin(config, store, clock, smtp_server):
    newsletter = make_newsletter(config, store, clock, allowed_origins=("https://www.example.org",))
    add_lists(newsletter, clock)
    with TestClient(create_app(newsletter)) as client:
        preflight = client.options("/subscribe", headers={"Origin": "https://www.example.org",
                                                          "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://www.example.org"
        body = {"email": "web@example.org", "name": "Web", "language": "fr", "lists": ["asp-daily"],
                "source": "website-footer"}
        ok = client.post("/subscribe", json=body, headers={"Origin": "https://www.example.org"})
        assert ok.status_code == 200 and ok.json()["status"] == "ok"
        assert ok.headers["access-control-allow-origin"] == "https://www.example.org"
        foreign = client.post("/subscribe", json={**body, "email": "x@example.org"},
                              headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        bad = client.post("/subscribe", json={**body, "email": "nope"}, headers={"Origin": "https://www.example.org"})
        assert bad.status_code == 422 and bad.json()["field"] == "email"
        assert client.post("/subscribe", content=b"[1,2]", headers={"Content-Type": "application/json"}).status_code == 400
        drain(client)
    assert [r.rcpt_tos for r in smtp_server.received] == [["web@example.org"]]
    [signup] = [e for e in subscriptions.person(newsletter, "web@example.org").as_json()["consent_log"] if e["event"] == "signup"]
    assert (signup["channel"], signup["source"]) == ("api", "website-footer")


# -- confirm, unsubscribe, block ------------------------------------------------------------------

def test_get_and_head_on_links_change_nothing(newsletter, client, clock, smtp_server):
    email = "ana@example.org"
    sign_up(client, clock, email, lists=("asp-daily",))
    mail = smtp_server.to(email)[0]
    confirm, block = link_token(mail, "confirm"), link_token(mail, "block")
    key = _key(newsletter, email)
    unsubscribe = newsletter.token(Purpose.UNSUBSCRIBE, key)
    preferences = newsletter.token(Purpose.PREFERENCES, key)
    before = snapshot(newsletter, email)
    for path in (f"/confirm/{confirm}", f"/block/{block}", f"/unsubscribe/{unsubscribe}", f"/preferences/{preferences}"):
        for _ in range(3):  # a mail scanner fetching every link, repeatedly
            assert client.get(path).status_code == 200
            head = client.head(path)
            assert head.status_code == 200 and head.content == b""
    assert snapshot(newsletter, email) == before
    assert statuses(newsletter, email) == {"asp-daily": "pending"}


def test_confirm_page_button_confirms(newsletter, client, clock, smtp_server):
    sign_up(client, clock, "ana@example.org", name="Ana")
    token = link_token(smtp_server.to("ana@example.org")[0], "confirm")
    page = client.get(f"/confirm/{token}")
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.find("form", method="post").find("button")
    assert client.post(f"/confirm/{token}", data={}).status_code == 403  # no CSRF token
    assert statuses(newsletter, "ana@example.org") == {"asp-daily": "pending"}
    done = client.post(f"/confirm/{token}", data={"csrf": csrf_of(page.text)}, headers={"User-Agent": "Chromium"})
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert statuses(newsletter, "ana@example.org") == {"asp-daily": "active"}
    confirmed = [e for e in subscriptions.person(newsletter, "ana@example.org").as_json()["consent_log"] if e["event"] == "confirmed"]
    assert confirmed[0]["user_agent"] == "Chromium" and confirmed[0]["channel"] == "link"
    # The page links to the preferences, which works.
    href = BeautifulSoup(done.text, "html.parser").find("a", href=re.compile("/preferences/"))["href"]
    assert client.get(href).status_code == 200


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe(newsletter, client, clock, smtp_server, encoding):
    key = active_person(newsletter, client, clock, smtp_server)
    token = newsletter.token(Purpose.UNSUBSCRIBE, key, list_slug="asp-daily")
    client.cookies.clear()
    if encoding == "urlencoded":
        response = client.post(f"/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click",
                               headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)
    else:
        response = client.post(f"/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")},
                               follow_redirects=False)
    assert response.status_code == 200
    assert "location" not in response.headers and "set-cookie" not in response.headers
    # Committed before the answer: a fresh session sees it.
    assert statuses(newsletter, "ana@example.org") == {"alerts": "active", "asp-daily": "unsubscribed"}
    events = [e for e in subscriptions.person(newsletter, "ana@example.org").as_json()["consent_log"] if e["event"] == "unsubscribed"]
    assert [e["channel"] for e in events] == ["one_click"]
    again = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200  # harmless twice


def test_unsubscribe_button_then_undo(newsletter, client, clock, smtp_server):
    key = active_person(newsletter, client, clock, smtp_server)
    token = newsletter.token(Purpose.UNSUBSCRIBE, key)
    page = client.get(f"/unsubscribe/{token}")
    soup = BeautifulSoup(page.text, "html.parser")
    assert len(soup.find_all("button")) == 1 and soup.find("a", href=re.compile("/preferences/"))
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "same-origin"
    assert client.post(f"/unsubscribe/{token}", data={"csrf": "x"}).status_code == 403
    done = client.post(f"/unsubscribe/{token}", data={"csrf": csrf_of(page.text)})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert set(statuses(newsletter, "ana@example.org").values()) == {"unsubscribed"}
    undo = BeautifulSoup(done.text, "html.parser").find("form")
    fields = {i["name"]: i["value"] for i in undo.find_all("input") if i["name"] != "lists"}
    fields["lists"] = [i["value"] for i in undo.find_all("input", {"name": "lists"})]
    back = client.post(undo["action"], data=fields)
    assert back.status_code == 200 and "Welcome back" in back.text
    assert set(statuses(newsletter, "ana@example.org").values()) == {"active"}


def test_this_was_not_me_blocks_the_address(newsletter, client, clock, smtp_server):
    sign_up(client, clock, "victim@example.org")
    token = link_token(smtp_server.to("victim@example.org")[0], "block")
    page = client.get(f"/block/{token}")
    assert page.status_code == 200 and "never write to this address" in page.text
    assert client.post(f"/block/{token}", data={"csrf": csrf_of(page.text)}).status_code == 200
    assert subscriptions.person(newsletter, "victim@example.org").as_json()["status"] == "blocked"
    clock.advance(hours=2)
    sign_up(client, clock, "victim@example.org")
    assert len(smtp_server.to("victim@example.org")) == 1


def test_bad_tokens_get_one_friendly_page(newsletter, client, clock, smtp_server):
    key = active_person(newsletter, client, clock, smtp_server)
    good = newsletter.token(Purpose.UNSUBSCRIBE, key)
    erased_key = active_person(newsletter, client, clock, smtp_server, "gone@example.org")
    unknown = newsletter.token(Purpose.UNSUBSCRIBE, erased_key)
    subscriptions.erase(newsletter, "gone@example.org")
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    wrong_purpose = newsletter.token(Purpose.CONFIRM, key)
    pages = [client.get(f"/unsubscribe/{t}") for t in (tampered, unknown, wrong_purpose, "garbage")]
    assert {(p.status_code, p.text) for p in pages} == {(400, pages[0].text)}
    assert "unsubscribe link at the bottom of any mail" in pages[0].text and 'href="/subscribe' in pages[0].text
    posts = [client.post(f"/unsubscribe/{t}", data={"List-Unsubscribe": "One-Click"}) for t in (tampered, unknown)]
    assert {(p.status_code, p.text) for p in posts} == {(400, posts[0].text)}
    clock.advance(days=8)
    expired = client.get(f"/confirm/{newsletter.token(Purpose.CONFIRM, key)}")
    assert expired.status_code == 200  # issued now, valid
    old = newsletter.token(Purpose.CONFIRM, key)
    clock.advance(days=8)
    assert client.get(f"/confirm/{old}").text == client.get("/confirm/nonsense").text


# -- preferences -------------------------------------------------------------------------------

def test_preferences_change_language_and_lists(newsletter, client, clock, smtp_server):
    key = active_person(newsletter, client, clock, smtp_server, lists=("asp-daily",))
    token = newsletter.token(Purpose.PREFERENCES, key)
    page = client.get(f"/preferences/{token}")
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.find("input", {"value": "asp-daily"}).has_attr("checked")
    assert not soup.find("input", {"value": "alerts"}).has_attr("checked")
    saved = client.post(f"/preferences/{token}", data={"csrf": csrf_of(page.text), "language": "ar",
                                                       "lists": ["alerts"], "name": "Ana R."})
    assert saved.status_code == 200
    assert 'lang="ar"' in saved.text and 'dir="rtl"' in saved.text  # the page now speaks Arabic
    assert statuses(newsletter, "ana@example.org") == {"alerts": "active", "asp-daily": "unsubscribed"}
    person = subscriptions.person(newsletter, "ana@example.org").as_json()
    assert (person["language"], person["name"]) == ("ar", "Ana R.")


def test_a_refused_preferences_form_is_worded_by_the_page_not_the_library(newsletter, client, clock, smtp_server):
    """A list not offered (a tampered form) or a bad name: the page's own words, in the page's
    language; nothing of the library's message (which names CLI commands) reaches the visitor."""
    key = active_person(newsletter, client, clock, smtp_server)
    token = newsletter.token(Purpose.PREFERENCES, key, language="fr")
    page = client.get(f"/preferences/{token}")
    before = snapshot(newsletter, "ana@example.org")
    refused = client.post(f"/preferences/{token}", data={"csrf": csrf_of(page.text), "lists": ["no-such-list"]})
    assert refused.status_code == 422
    assert "Veuillez choisir parmi les listes ci-dessous." in refused.text
    assert "no-such-list" not in refused.text and "newsletter lists" not in refused.text
    too_long = client.post(f"/preferences/{token}", data={"csrf": csrf_of(page.text), "lists": ["asp-daily"],
                                                          "name": "n" * 201})
    assert too_long.status_code == 422 and "at most 200 characters" in too_long.text
    assert snapshot(newsletter, "ana@example.org") == before


def test_a_library_error_behind_a_page_gets_the_visitors_own_page(config, store, clock, caplog):
    """No key configured: the form cannot be signed. The visitor gets the app's page (503, in
    their language), the log gets the library's message; no hint meant for the command line."""
    newsletter = make_newsletter(config, store, clock, secret_key="", secret_key_file=str(Path(config.sink_maildir)
                                                                                          / "no.key"))
    add_lists(newsletter, clock)
    with TestClient(create_app(newsletter)) as client, caplog.at_level(logging.ERROR, "newsletter.web"):
        page = client.get("/subscribe", headers={"Accept-Language": "es"})
    assert page.status_code == 503 and page.headers["content-language"] == "es"
    assert "Esta página no está disponible en este momento" in page.text
    assert "secret" not in page.text and "newsletter init" not in page.text
    assert any("no secret key" in r.getMessage() for r in caplog.records)


def test_preferences_forms_without_their_csrf_token_are_refused(newsletter, client, clock, smtp_server):
    key = active_person(newsletter, client, clock, smtp_server)
    token = newsletter.token(Purpose.PREFERENCES, key)
    other = newsletter.token(Purpose.PREFERENCES, active_person(newsletter, client, clock, smtp_server, "bo@example.org"))
    csrf_for_other_page = csrf_of(client.get(f"/preferences/{other}").text)
    before = snapshot(newsletter, "ana@example.org")
    for path in ("", "/unsubscribe", "/export"):
        assert client.post(f"/preferences/{token}{path}", data={"language": "fr", "lists": []}).status_code == 403
        assert client.post(f"/preferences/{token}{path}",
                           data={"csrf": csrf_for_other_page, "language": "fr", "lists": []}).status_code == 403
    assert snapshot(newsletter, "ana@example.org") == before


def test_preferences_leave_everything_and_download_data(newsletter, client, clock, smtp_server):
    key = active_person(newsletter, client, clock, smtp_server)
    token = newsletter.token(Purpose.PREFERENCES, key)
    csrf = csrf_of(client.get(f"/preferences/{token}").text)
    data = client.post(f"/preferences/{token}/export", data={"csrf": csrf})
    assert data.status_code == 200 and data.headers["content-type"].startswith("application/json")
    assert "attachment" in data.headers["content-disposition"]
    exported = data.json()
    assert exported["email"] == "ana@example.org" and any(e["event"] == "confirmed" for e in exported["consent_log"])
    left = client.post(f"/preferences/{token}/unsubscribe", data={"csrf": csrf})
    assert left.status_code == 200 and "unsubscribed from everything" in left.text
    assert set(statuses(newsletter, "ana@example.org").values()) == {"unsubscribed"}


# -- every page ---------------------------------------------------------------------------------

def test_a_hostile_name_is_escaped_on_every_page(newsletter, client, clock, smtp_server):
    email = "hostile@example.org"
    response = sign_up(client, clock, email, name=HOSTILE, lists=("asp-daily",))
    pages = [response]
    mail = smtp_server.to(email)[0]
    confirm = link_token(mail, "confirm")
    page = client.get(f"/confirm/{confirm}")
    pages += [page, client.post(f"/confirm/{confirm}", data={"csrf": csrf_of(page.text)})]
    key = _key(newsletter, email)
    unsubscribe = newsletter.token(Purpose.UNSUBSCRIBE, key)
    preferences = newsletter.token(Purpose.PREFERENCES, key)
    pages += [client.get(f"/unsubscribe/{unsubscribe}"), client.get(f"/preferences/{preferences}"),
              client.get(f"/block/{link_token(mail, 'block')}")]
    # The form given back with an error shows the typed name too.
    pages.append(sign_up(client, clock, "not an address", name=HOSTILE))
    pages.append(client.get("/subscribe?lang=" + HOSTILE))
    for p in pages:
        assert "<img" not in p.text, p.url
        assert "onerror=alert(1)>" not in p.text or "&gt;" in p.text
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in pages[2].text  # the name is shown, escaped
    assert "onerror" not in pages[1].text  # not before confirming (#12.11)
    html_mail = mail.get_body(("html",)).get_content()
    assert "<img src=x" not in html_mail


def test_security_headers(client, newsletter, clock, smtp_server):
    page = client.get("/subscribe")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    soup = BeautifulSoup(page.text, "html.parser")
    assert not soup.find("script") and not soup.find(style=True) and not soup.find("style")
    token = newsletter.token(Purpose.UNSUBSCRIBE, "whatever-key")
    bad = client.get(f"/unsubscribe/{token}")
    assert bad.headers["cache-control"] == "no-store" and bad.headers["referrer-policy"] == "same-origin"
    css = client.get("/static/web.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert client.get("/healthz").text == "ok"
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and "Page not found" in missing.text
    switcher = BeautifulSoup(client.get("/nowhere/at-all").text, "html.parser").find("nav").find_all("a")
    assert {a["href"].split("?")[0] for a in switcher} == {"/archive"}  # an unknown path is never echoed


def test_pages_speak_the_links_language_then_accept_language(newsletter, client, clock, smtp_server):
    key = active_person(newsletter, client, clock, smtp_server)
    arabic = client.get(f"/unsubscribe/{newsletter.token(Purpose.UNSUBSCRIBE, key, language='ar')}",
                        headers={"Accept-Language": "fr"})
    soup = BeautifulSoup(arabic.text, "html.parser")
    assert soup.html["lang"] == "ar" and soup.html["dir"] == "rtl"
    assert "إلغاء الاشتراك" in soup.find("h1").get_text()
    spanish = client.get("/subscribe", headers={"Accept-Language": "es-MX,es;q=0.8"})
    assert 'lang="es"' in spanish.text and "Suscríbase" in spanish.text
    for language in ("fr", "es", "ar"):
        page = client.get(f"/subscribe?lang={language}")
        assert "Sign up for our updates" not in page.text, language  # every string translated


def test_the_fast_confirmation_is_the_same_mail_as_the_composed_one(newsletter, client, clock, smtp_server):
    from newsletter.mail.compose import render_confirmation

    sign_up(client, clock, "fast@example.org", name=HOSTILE, language="ar", lists=("asp-daily", "alerts"))
    [mail] = smtp_server.to("fast@example.org")
    key = _key(newsletter, "fast@example.org")
    reference = render_confirmation(  # without the name: it is not mailed before it is confirmed (#12.11)
        newsletter.config, "ar", "", confirm_url=newsletter.link(Purpose.CONFIRM, key, language="ar"),
        block_url=newsletter.link(Purpose.BLOCK, key, language="ar"),
        list_names=["ASP daily summaries", "Campaign alerts"])
    assert mail["Subject"] == reference.subject
    assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == reference.text
    html_part = mail.get_body(("html",)).get_content()
    def words(markup):
        return BeautifulSoup(markup, "html.parser").get_text().split()

    assert words(html_part) == words(reference.html)
    assert "<img" not in html_part


# -- archive -------------------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def add_campaign(newsletter, clock, list_slug, slug, files, *, status="finished", kind="daily-summary"):
    from sqlalchemy import select

    from newsletter.statuses import CampaignStatus
    from newsletter.store import Campaign, MailingList

    with newsletter.store.session() as session:
        list_id = session.scalar(select(MailingList.id).where(MailingList.slug == list_slug))
        session.add(Campaign(slug=slug, list_id=list_id, kind=kind, subject=slug, status=CampaignStatus(status),
                             source={"files": [str(f) for f in files]}, created_at=clock(),
                             started_at=clock(), finished_at=clock() if status == "finished" else None))
    clock.advance(days=1)


@pytest.fixture
def archived(newsletter, clock):
    add_campaign(newsletter, clock, "asp-daily", "asp23-day-3", sorted(EXAMPLES.glob("asp23/day-3.*.md")))
    add_campaign(newsletter, clock, "asp-daily", "asp23-day-4", sorted(EXAMPLES.glob("asp23/day-4.*.md")))
    add_campaign(newsletter, clock, "alerts", "asp23-defend-the-court", sorted(EXAMPLES.glob("alerts/*.md")),
                 kind="campaign-alert")
    add_campaign(newsletter, clock, "asp-daily", "asp23-day-5", sorted(EXAMPLES.glob("asp23/day-5.*.md")),
                 status="sending")
    return newsletter


def test_the_archive_lists_finished_issues_per_list_and_language(archived, client):
    page = client.get("/archive", headers={"Accept-Language": "fr"})
    assert page.status_code == 200
    soup = BeautifulSoup(page.text, "html.parser")
    links = [a["href"] for a in soup.find_all("a", href=re.compile(r"^/archive/[^/]+/[^/]+/"))]
    assert "/archive/asp-daily/asp23-day-4/fr" in links and "/archive/asp-daily/asp23-day-3/fr" in links
    assert "/archive/asp-daily/asp23-day-3/ar" in links and "/archive/alerts/asp23-defend-the-court/fr" in links
    assert not any("day-5" in link for link in links)  # still sending: not archived
    assert links.index("/archive/asp-daily/asp23-day-4/fr") < links.index("/archive/asp-daily/asp23-day-3/fr")
    assert "AEP 23, jour 3" in page.text  # the subject in the visitor's language
    only = client.get("/archive/alerts")
    assert only.status_code == 200 and "day-3" not in only.text
    assert client.get("/archive/staff").status_code == 404


def test_an_archived_issue_is_a_web_page_with_nothing_personal(archived, client):
    page = client.get("/archive/asp-daily/asp23-day-3/ar")
    assert page.status_code == 200 and page.headers["content-language"] == "ar"
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.html["dir"] == "rtl"
    assert "[[nl:" not in page.text
    assert "/unsubscribe/" not in page.text and "/preferences/" not in page.text
    csp = page.headers["content-security-policy"]
    assert "script" not in csp and "default-src 'none'" in csp
    # Day 4 has no Spanish variant: the list's fallback (English) is served.
    fallback = client.get("/archive/asp-daily/asp23-day-4", headers={"Accept-Language": "es"})
    assert fallback.status_code == 200 and fallback.headers["content-language"] == "en"
    assert client.get("/archive/asp-daily/asp23-day-5/en").status_code == 404  # not finished
    assert client.get("/archive/asp-daily/nothing/en").status_code == 404
    assert client.get("/archive/asp-daily/asp23-day-3/xx").status_code == 404


def test_an_atom_feed_per_list(archived, client):
    import xml.etree.ElementTree as ET

    feed = client.get("/archive/asp-daily/feed.atom")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(feed.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entries = root.findall("a:entry", ns)
    assert [e.find("a:id", ns).text.rsplit("/", 1)[1] for e in entries] == ["asp23-day-4", "asp23-day-3"]
    assert entries[0].find("a:link", ns).get("href") == "https://news.example.org/archive/asp-daily/asp23-day-4/en"
    assert entries[0].find("a:updated", ns).text.endswith("Z")
    assert client.get("/archive/staff/feed.atom").status_code == 404


def test_every_web_string_is_translated():
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[1] / "templates"
    ids = {m for _, _, m, _, _ in extract_from_dir(str(root / "web"), method_map=[("**.html", "jinja2")],
                                                   options_map={"**.html": {"extensions": "jinja2.ext.i18n"}})}
    assert len(ids) > 50
    for language in ("fr", "es", "ar"):
        with open(root / "locale" / language / "LC_MESSAGES" / "messages.po", "rb") as fh:
            catalog = read_po(fh, locale=language)
        missing = sorted(m for m in ids if not (catalog.get(m) and catalog.get(m).string))
        assert missing == [], language


def test_a_consent_version_without_its_text_is_refused_at_start(config, store, clock):
    from newsletter.errors import ConfigError

    with pytest.raises(ConfigError, match="no consent text for consent_version '2099-01'"):
        create_app(make_newsletter(config, store, clock, consent_version="2099-01"))
