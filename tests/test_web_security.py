"""The visitor pages under attack (issue #12): each test is one hole that was found, on SQLite
and PostgreSQL, through the real app (Starlette's TestClient) and the recording SMTP server."""

from __future__ import annotations

import warnings

import pytest
from bs4 import BeautifulSoup
from test_web import (
    ADMIN,
    active_person,
    add_lists,
    csrf_of,
    drain,
    form_token,
    link_token,
    make_newsletter,
    sign_up,
    snapshot,
    statuses,
)

from newsletter.people import subscriptions
from newsletter.tokens import Purpose

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from newsletter.web import create_app


@pytest.fixture
def newsletter(config, store, clock):
    newsletter = make_newsletter(config, store, clock, trusted_proxies=("10.0.0.0/8",), signup_per_ip_per_hour=0)
    add_lists(newsletter, clock)
    return newsletter


@pytest.fixture
def client(newsletter):
    with TestClient(create_app(newsletter), client=("10.1.2.3", 40000)) as c:
        yield c


# -- 1. preferences: private lists ---------------------------------------------------------------

def test_preferences_refuse_a_private_list_exactly_like_an_unknown_one(newsletter, client, clock, smtp_server):
    key = active_person(newsletter, client, clock, smtp_server, lists=("asp-daily",))
    token = newsletter.token(Purpose.PREFERENCES, key)
    page = client.get(f"/preferences/{token}")
    assert BeautifulSoup(page.text, "html.parser").find("input", {"value": "staff"}) is None
    before = snapshot(newsletter, "ana@example.org")
    csrf = csrf_of(page.text)
    private = client.post(f"/preferences/{token}", data={"csrf": csrf, "lists": ["asp-daily", "staff"]})
    unknown = client.post(f"/preferences/{token}", data={"csrf": csrf, "lists": ["asp-daily", "no-such-list"]})
    assert private.status_code == unknown.status_code == 422
    assert private.text == unknown.text and "staff" not in private.text
    assert snapshot(newsletter, "ana@example.org") == before
    assert statuses(newsletter, "ana@example.org") == {"asp-daily": "active"}


def test_a_private_list_the_person_is_on_stays_theirs_to_keep_or_leave(newsletter, client, clock, smtp_server):
    key = active_person(newsletter, client, clock, smtp_server, lists=("asp-daily",))
    subscriptions.subscribe(newsletter, "ana@example.org", "", None, ["staff"], ADMIN)  # staff put her on it
    token = newsletter.token(Purpose.PREFERENCES, key)
    page = client.get(f"/preferences/{token}")
    assert BeautifulSoup(page.text, "html.parser").find("input", {"value": "staff"}) is not None
    kept = client.post(f"/preferences/{token}", data={"csrf": csrf_of(page.text), "lists": ["staff"]})
    assert kept.status_code == 200
    assert statuses(newsletter, "ana@example.org") == {"asp-daily": "unsubscribed", "staff": "active"}
    left = client.post(f"/preferences/{token}", data={"csrf": csrf_of(page.text), "lists": ["asp-daily"]})
    assert left.status_code == 200
    back = client.post(f"/preferences/{token}", data={"csrf": csrf_of(page.text), "lists": ["staff"]})
    assert back.status_code == 200  # a list she was on once is still offered to her
    assert statuses(newsletter, "ana@example.org") == {"asp-daily": "unsubscribed", "staff": "active"}


# -- 2. Origin: null and foreign origins -------------------------------------------------------

FOREIGN = ("null", "https://evil.example", "http://testserver.evil.example", "https://news.example.org.evil.example")


def _signup_data(client, clock, email):
    return {"form_token": form_token(client, clock), "email": email, "name": "", "language": "en",
            "lists": ["asp-daily"], "website": ""}


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_signup_from_a_null_or_foreign_origin_is_refused(newsletter, client, clock, smtp_server, origin):
    refused = client.post("/subscribe", data=_signup_data(client, clock, "victim@example.org"),
                          headers={"Origin": origin})
    drain(client)
    assert refused.status_code == 403 and "did not come from our page" in refused.text
    as_json = client.post("/subscribe", json={"email": "victim@example.org", "lists": ["asp-daily"]},
                          headers={"Origin": origin})
    drain(client)
    assert as_json.status_code == 403 and as_json.json()["status"] == "error"
    assert subscriptions.consent_events(newsletter, "victim@example.org") == []
    assert smtp_server.to("victim@example.org") == []


@pytest.mark.parametrize("origin", [None, "http://testserver", "https://news.example.org", "HTTPS://NEWS.example.org/"])
def test_a_signup_from_our_own_origin_or_none_goes_through(newsletter, client, clock, smtp_server, origin):
    headers = {"Origin": origin} if origin else {}
    ok = client.post("/subscribe", data=_signup_data(client, clock, "nadia@example.org"), headers=headers)
    drain(client)
    assert ok.status_code == 200 and len(smtp_server.to("nadia@example.org")) == 1


@pytest.mark.parametrize("origin", ["null", "https://evil.example"])
def test_token_page_forms_from_a_null_or_foreign_origin_change_nothing(newsletter, client, clock, smtp_server,
                                                                       origin):
    key = active_person(newsletter, client, clock, smtp_server)
    prefs = newsletter.token(Purpose.PREFERENCES, key)
    unsubscribe = newsletter.token(Purpose.UNSUBSCRIBE, key)
    csrf_prefs = csrf_of(client.get(f"/preferences/{prefs}").text)
    csrf_unsub = csrf_of(client.get(f"/unsubscribe/{unsubscribe}").text)
    before = snapshot(newsletter, "ana@example.org")
    posts = [(f"/preferences/{prefs}", {"csrf": csrf_prefs, "lists": [], "language": "fr"}),
             (f"/preferences/{prefs}/unsubscribe", {"csrf": csrf_prefs}),
             (f"/preferences/{prefs}/export", {"csrf": csrf_prefs}),
             (f"/unsubscribe/{unsubscribe}", {"csrf": csrf_unsub}),
             (f"/unsubscribe/{unsubscribe}/undo", {"csrf": csrf_unsub, "lists": ["asp-daily"]}),
             (f"/block/{newsletter.token(Purpose.BLOCK, key)}", {"csrf": csrf_unsub})]
    for path, data in posts:
        response = client.post(path, data=data, headers={"Origin": origin})
        assert response.status_code == 403, path
    assert snapshot(newsletter, "ana@example.org") == before
    # The same form from our own page acts.
    own = client.post(f"/preferences/{prefs}", data={"csrf": csrf_prefs, "lists": ["alerts"]},
                      headers={"Origin": "http://testserver"})
    assert own.status_code == 200 and statuses(newsletter, "ana@example.org")["asp-daily"] == "unsubscribed"


@pytest.mark.parametrize("origin", [None, "null", "https://mail.example.net"])
def test_the_one_click_post_needs_no_origin_and_minds_none(newsletter, client, clock, smtp_server, origin):
    """RFC 8058: the mail client (or its provider's server) posts with no cookie, no CSRF token
    and whatever Origin it has, or none; the token alone decides."""
    key = active_person(newsletter, client, clock, smtp_server)
    token = newsletter.token(Purpose.UNSUBSCRIBE, key)
    headers = {"Origin": origin} if origin else {}
    done = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}, headers=headers)
    assert done.status_code == 200
    assert set(statuses(newsletter, "ana@example.org").values()) == {"unsubscribed"}


def test_token_pages_tell_the_browser_to_post_with_their_real_origin(newsletter, client, clock, smtp_server):
    """Under `Referrer-Policy: no-referrer` a browser posts our own forms with `Origin: null`."""
    key = active_person(newsletter, client, clock, smtp_server)
    for purpose in (Purpose.PREFERENCES, Purpose.UNSUBSCRIBE, Purpose.BLOCK):
        page = client.get(f"/{purpose.value}/{newsletter.token(purpose, key)}")
        assert page.headers["referrer-policy"] == "same-origin" and page.headers["cache-control"] == "no-store"


# -- 3. limits on the canonical mailbox --------------------------------------------------------

def test_twenty_sub_addresses_from_one_ip_put_one_mail_in_the_mailbox(config, store, clock, smtp_server):
    newsletter = make_newsletter(config, store, clock)  # the default limits
    add_lists(newsletter, clock)
    with TestClient(create_app(newsletter)) as client:
        answers = set()
        for n in range(20):
            response = sign_up(client, clock, f"victim+{n}@example.org")
            answers.add((response.status_code, response.text))
            clock.advance(seconds=1)
    assert len(answers) == 1
    assert len(smtp_server.messages()) == 1 and "victim+0@example.org" in smtp_server.messages()[0]["To"]


def test_the_resend_limits_count_every_address_of_one_mailbox(newsletter, clock, smtp_server):
    """Without the web's in-memory limits: the store's re-send limits (one per 10 minutes, three
    a week) count `victim+tag@` and Gmail's dotted spellings as the one mailbox they reach."""
    def due(email: str) -> bool:
        return subscriptions.record_signup(newsletter, email, "", None, ["asp-daily"], ADMIN).due is not None

    assert due("victim+1@example.org")
    assert not due("victim+2@example.org") and not due("victim@example.org") and not due("VICTIM+3@example.org")
    assert due("other+1@example.org")  # another mailbox keeps its own count
    assert due("v.ictim@gmail.com") and not due("victim@gmail.com") and not due("vic.tim+x@googlemail.com")
    clock.advance(minutes=11)
    assert due("victim+4@example.org")
    clock.advance(minutes=11)
    assert due("victim+5@example.org")
    clock.advance(minutes=11)
    assert not due("victim+6@example.org")  # three a week
    person = subscriptions.person(newsletter, "victim+4@example.org").as_json()
    assert person["email"] == "victim+4@example.org"  # stored as given


def test_sub_addresses_in_one_group_commit_share_one_mail(newsletter, clock):
    from newsletter.people.rules import ConsentContext
    from newsletter.people.signups import SignupRequest
    from newsletter.statuses import Channel

    ctx = ConsentContext(channel=Channel.FORM, ip="203.0.113.7")
    records = subscriptions.record_signups(newsletter, [
        SignupRequest(f"victim+{n}@example.org", "", None, ("asp-daily",), ctx) for n in range(5)])
    assert [r.due is not None for r in records] == [True, False, False, False, False]


# -- 4. IPv6 limits per prefix -----------------------------------------------------------------

def _signups_from(client, clock, ips_and_emails) -> None:
    for ip, email in ips_and_emails:
        data = {"form_token": form_token(client, clock), "email": email, "name": "", "language": "en",
                "lists": ["asp-daily"], "website": ""}
        assert client.post("/subscribe", data=data, headers={"X-Forwarded-For": ip}).status_code == 200
    drain(client)


@pytest.mark.parametrize("prefix, mailed", [(64, 20 + 1), (128, 30 + 1)])
def test_ipv6_clients_are_limited_per_network(config, store, clock, smtp_server, prefix, mailed):
    """30 addresses of one /64 are one client (the default limit is 20 an hour); another /64 is
    another; `signup_ipv6_prefix = 128` counts each address alone."""
    newsletter = make_newsletter(config, store, clock, trusted_proxies=("10.0.0.0/8",), signup_ipv6_prefix=prefix)
    add_lists(newsletter, clock)
    with TestClient(create_app(newsletter), client=("10.1.2.3", 40000)) as client:
        _signups_from(client, clock, [(f"2001:db8:1:2::{n + 1:x}", f"p{n}@example.org") for n in range(30)])
        _signups_from(client, clock, [("2001:db8:1:3::1", "elsewhere@example.org")])
    assert len(smtp_server.messages()) == mailed
    assert len(smtp_server.to("elsewhere@example.org")) == 1


@pytest.mark.parametrize("ip, key", [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
    (None, "?"),
])
def test_the_client_key_of_an_ip(ip, key):
    from newsletter.people.abuse import client_key

    assert client_key(ip) == key
    assert client_key("2001:db8:1:2:aaaa::1", ipv6_prefix=48) == "2001:db8:1::/48"


# -- 5. control characters in what the web stores ----------------------------------------------

CONTROLLED = ["web\x1b[2J", "footer\n2026-11-23 confirmed via link", "tab\there", "c1\x9b31m", "bell\x07"]


@pytest.mark.parametrize("source", CONTROLLED)
def test_a_source_with_control_characters_is_refused_and_nothing_stored(newsletter, client, clock, smtp_server,
                                                                        source):
    form = client.post("/subscribe", data={**_signup_data(client, clock, "ana@example.org"), "source": source})
    assert form.status_code == 422 and "control characters" in form.text
    as_json = client.post("/subscribe", json={"email": "ana@example.org", "lists": ["asp-daily"], "source": source})
    assert as_json.status_code == 422 and as_json.json()["field"] == "source"
    drain(client)
    assert subscriptions.consent_events(newsletter, "ana@example.org") == []


def test_a_clean_source_is_kept(newsletter, client, clock, smtp_server):
    ok = client.post("/subscribe", data={**_signup_data(client, clock, "ana@example.org"), "source": "website-footer"})
    assert ok.status_code == 200
    assert {e.source for e in subscriptions.consent_events(newsletter, "ana@example.org")} == {"website-footer"}


def test_a_user_agent_with_control_characters_is_kept_as_escapes(newsletter, client, clock, smtp_server):
    """A header is evidence, not the visitor's typing: kept, its controls escaped (refusing it
    would make an unsubscription fail)."""
    key = active_person(newsletter, client, clock, smtp_server)
    token = newsletter.token(Purpose.UNSUBSCRIBE, key)
    done = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"},
                       headers={"User-Agent": b"Mail\x9b31m/1.0"})
    assert done.status_code == 200
    agents = {e.user_agent for e in subscriptions.consent_events(newsletter, "ana@example.org")}
    assert any((a or "").endswith("\\x9b31m/1.0") for a in agents) and not any("\x9b" in (a or "") for a in agents)


@pytest.mark.parametrize("slug", ["asp-daily\x1b[2J", "asp\x00daily", "staff\n"])
def test_a_list_slug_with_control_characters_is_an_unknown_list(newsletter, client, clock, smtp_server, slug):
    signup = client.post("/subscribe", data={**_signup_data(client, clock, "ana@example.org"), "lists": [slug]})
    assert signup.status_code == 422
    as_json = client.post("/subscribe", json={"email": "ana@example.org", "lists": [slug]})
    assert as_json.status_code == 422 and as_json.json()["field"] == "lists"
    key = active_person(newsletter, client, clock, smtp_server, "bo@example.org", lists=("asp-daily",))
    token = newsletter.token(Purpose.PREFERENCES, key)
    before = snapshot(newsletter, "bo@example.org")
    prefs = client.post(f"/preferences/{token}", data={"csrf": csrf_of(client.get(f"/preferences/{token}").text),
                                                       "lists": ["asp-daily", slug]})
    assert prefs.status_code == 422 and snapshot(newsletter, "bo@example.org") == before


# -- 6. NUL bytes, deep JSON, oversized and malformed forms ------------------------------------

def _no_traceback(caplog) -> None:
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]


@pytest.fixture
def quiet_client(newsletter):
    """A client that gets the app's answer to a failure rather than the exception."""
    with TestClient(create_app(newsletter), client=("10.1.2.3", 40000), raise_server_exceptions=False) as c:
        yield c


def test_nul_bytes_get_their_own_answer_on_both_databases(newsletter, quiet_client, clock, smtp_server, caplog):
    client = quiet_client
    data = _signup_data(client, clock, "ana@example.org")
    assert client.post("/subscribe", data={**data, "source": "web\x00"}).status_code == 422
    assert client.post("/subscribe", data={**data, "lists": ["asp\x00daily"]}).status_code == 422
    assert client.post("/subscribe", data={**data, "name": "A\x00"}).status_code == 422
    assert client.post("/subscribe", data={**data, "email": "ana\x00@example.org"}).status_code == 422
    assert client.post("/subscribe", json={"email": "ana@example.org", "lists": ["asp-daily"],
                                           "source": "\u0000"}).status_code == 422
    for path in ("/archive/asp%00daily", "/archive/asp-daily/day%00-1", "/archive/asp%00/feed.atom",
                 "/archive/asp-daily/day-1/e%00"):
        assert client.get(path).status_code == 404, path
    assert client.get("/confirm/abc%00def").status_code == 400
    key = active_person(newsletter, client, clock, smtp_server, "bo@example.org")
    token = newsletter.token(Purpose.PREFERENCES, key)
    csrf = csrf_of(client.get(f"/preferences/{token}").text)
    assert client.post(f"/preferences/{token}", data={"csrf": csrf, "name": "B\x00", "lists": []}).status_code == 422
    assert client.post(f"/preferences/{token}", data={"csrf": csrf, "language": "f\x00r"}).status_code == 422
    assert subscriptions.consent_events(newsletter, "ana@example.org") == []
    _no_traceback(caplog)


@pytest.mark.parametrize("body", ["[" * 5000, '{"a":' * 3000, "[" * 5000 + "]" * 5000])
def test_deeply_nested_json_is_a_400_with_a_json_error(quiet_client, body, caplog):
    response = quiet_client.post("/subscribe", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["status"] == "error"
    _no_traceback(caplog)


@pytest.mark.parametrize("body, reason", [
    (b"\xff\xfe", "not valid UTF-8"), (b'{"email": "ana@example.org"', "could not be read"),
    (b'"just a string"', "send a JSON object"), (b'{"email": 5}', "email must be a string"),
])
def test_malformed_json_says_what_is_wrong(quiet_client, body, reason):
    response = quiet_client.post("/subscribe", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and reason in response.json()["error"]


def test_oversized_bodies_are_a_413_with_a_page_or_json(newsletter, quiet_client, clock, smtp_server, caplog):
    client = quiet_client
    big = client.post("/subscribe", data={**_signup_data(client, clock, "ana@example.org"), "name": "n" * 100_000})
    assert big.status_code == 413 and "This form could not be read" in big.text and "larger" in big.text
    assert "Page not found" not in big.text
    as_json = client.post("/subscribe", content=b'{"email": "' + b"a" * 20_000 + b'"}',
                          headers={"Content-Type": "application/json"})
    assert as_json.status_code == 413 and as_json.json()["status"] == "error"

    def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(100):
            yield b"name=" + b"n" * 1000 + b"&"
    streamed = client.post("/subscribe", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert streamed.status_code == 413
    key = active_person(newsletter, client, clock, smtp_server, "bo@example.org")
    token = newsletter.token(Purpose.PREFERENCES, key)
    assert client.post(f"/preferences/{token}", data={"name": "n" * 100_000}).status_code == 413
    assert subscriptions.consent_events(newsletter, "ana@example.org") == []
    _no_traceback(caplog)


@pytest.mark.parametrize("content_type, body, status", [
    ("multipart/form-data", b"--x\r\nnonsense", 400),  # no boundary
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--\r\n", 400),
    ("multipart/form-data; boundary=x",
     b'--x\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\nv\r\n--x--\r\n', 400),  # a file
    ("application/x-www-form-urlencoded", b"&".join(b"f%d=1" % i for i in range(200)), 400),  # too many fields
    ("text/plain", b"email=ana@example.org", 415),
])
def test_malformed_forms_get_their_status_and_a_page_that_says_so(quiet_client, content_type, body, status, caplog):
    response = quiet_client.post("/subscribe", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert "This form could not be read" in response.text and "Page not found" not in response.text
    _no_traceback(caplog)


@pytest.mark.parametrize("text", ["Org\x9b31m", "Org\x7f", "Org\u2028forged line", "Org\x1b[2J"])
def test_a_text_attribute_with_control_characters_is_refused(text):
    from newsletter.attributes import AttributeSpec, AttributeType, check_value
    from newsletter.errors import InvalidField

    with pytest.raises(InvalidField, match="control characters"):
        check_value(AttributeSpec("organisation", AttributeType.TEXT, "Organisation"), text)


# -- 8. the answer's time does not depend on the address's state -------------------------------

def test_every_valid_signup_is_held_to_the_same_floor_whatever_the_state(config, store, clock, smtp_server):
    """The code path, not a stopwatch (bench/signup_timing.py measures): every accepted answer
    — new, pending, active, unsubscribed, suppressed, blocked, throttled — waits once, until
    the floor after the request arrived, and only after the store's work is done."""
    newsletter = make_newsletter(config, store, clock, signup_answer_ms=250, trusted_proxies=("10.0.0.0/8",),
                                 signup_per_ip_per_hour=0)
    add_lists(newsletter, clock)
    app = create_app(newsletter)
    web = app.state.web
    holds: list[tuple[str, float, int]] = []
    web.monotonic = lambda: 1000.0  # the request arrives, and is answered, "at once"

    current = ""

    async def sleep(delay: float) -> None:
        holds.append((current, delay, len(subscriptions.consent_events(newsletter, current)) if current else 0))
    web.sleep = sleep
    with TestClient(app, client=("10.1.2.3", 40000)) as client:
        active_person(newsletter, client, clock, smtp_server, "active@example.org", lists=("asp-daily",))
        sign_up(client, clock, "pending@example.org")
        key = active_person(newsletter, client, clock, smtp_server, "left@example.org", lists=("asp-daily",))
        client.post(f"/unsubscribe/{newsletter.token(Purpose.UNSUBSCRIBE, key)}", data={"List-Unsubscribe": "One-Click"})
        subscriptions.erase(newsletter, "gone@example.org")
        key = active_person(newsletter, client, clock, smtp_server, "blocked@example.org", lists=("asp-daily",))
        client.post(f"/block/{newsletter.token(Purpose.BLOCK, key)}", data={
            "csrf": csrf_of(client.get(f"/block/{newsletter.token(Purpose.BLOCK, key)}").text)})
        holds.clear()
        answers = set()
        states = ["new@example.org", "pending@example.org", "active@example.org", "left@example.org",
                  "gone@example.org", "blocked@example.org"] + ["pending@example.org"] * 6  # the last ones throttled
        for current in states:
            clock.advance(minutes=1)
            response = sign_up(client, clock, current)
            answers.add((response.status_code, response.text))
    assert len(answers) == 1
    assert [(email, delay) for email, delay, _ in holds] == [(email, 0.25) for email in states]
    # Held after the store's work: a new address is in the log when its answer waits.
    assert holds[0][2] > 0


# -- 10. the self-service export hands no IP or user agent to a forwarded link's reader -----------

def test_the_preferences_export_leaves_out_ips_and_user_agents(newsletter, client, clock, smtp_server):
    key = active_person(newsletter, client, clock, smtp_server)
    token = newsletter.token(Purpose.PREFERENCES, key)
    page = client.get(f"/preferences/{token}")
    data = client.post(f"/preferences/{token}/export", data={"csrf": csrf_of(page.text)},
                       headers={"User-Agent": "ForwardedReader/1.0"})
    assert data.status_code == 200
    exported = data.json()
    assert exported["email"] == "ana@example.org" and exported["consent_log"]
    assert all("ip" not in e and "user_agent" not in e for e in exported["consent_log"])
    assert "203.0.113.7" not in data.text and "testclient" not in data.text and "withheld" in exported
    assert {e["event"] for e in exported["consent_log"]} >= {"signup", "confirmed"}
    # Staff still have the whole record.
    held = subscriptions.person(newsletter, "ana@example.org").as_json()
    assert any(e["ip"] == "203.0.113.7" for e in held["consent_log"]) and "withheld" not in held


# -- 11. the confirmation mail echoes nothing the sign-up typed ----------------------------------

def test_the_confirmation_mail_does_not_echo_the_unverified_name(newsletter, client, clock, smtp_server):
    name = "Win a prize at https://evil.example/claim \u202eredro\u202c now"
    assert sign_up(client, clock, "stranger@example.org", name=name).status_code == 200
    [mail] = smtp_server.to("stranger@example.org")
    text, html = mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()
    for part in (text, html, str(mail["To"]), mail.as_string()):
        assert "evil.example" not in part and "\u202e" not in part and "prize" not in part
    assert mail["To"].addresses[0].display_name == "" and mail["To"].addresses[0].addr_spec == "stranger@example.org"
    assert "Hello," in text
    assert subscriptions.person(newsletter, "stranger@example.org").name == name  # kept, for after confirming
    page = client.get(f"/confirm/{link_token(mail, 'confirm')}")  # nor does the page the mail leads to
    assert page.status_code == 200 and "evil.example" not in page.text and "\u202e" not in page.text


# -- 12. HSTS, a client leaving mid-body, invalid UTF-8 ----------------------------------------

def test_hsts_is_sent_when_base_url_is_https_and_only_then(config, store, clock, smtp_server):
    cases = [("https://news.example.org", 31536000, "max-age=31536000"), ("https://news.example.org", 600, "max-age=600"),
             ("https://news.example.org", 0, None), ("http://news.example.org", 31536000, None)]
    for base_url, max_age, expected in cases:
        newsletter = make_newsletter(config, store, clock, base_url=base_url, hsts_max_age=max_age)
        with TestClient(create_app(newsletter)) as client:
            for path in ("/subscribe", "/confirm/not-a-token", "/nowhere"):
                assert client.get(path).headers.get("strict-transport-security") == expected, (base_url, path)


def test_invalid_utf8_in_a_form_is_refused_not_stored_as_a_replacement(newsletter, quiet_client, clock, smtp_server):
    client = quiet_client
    token = form_token(client, clock)
    urlencoded = f"form_token={token}&email=ana%FF@example.org&lists=asp-daily&language=en".encode()
    raw = f"form_token={token}&email=ana@example.org&lists=asp-daily&name=Ana".encode() + b"\xff"
    multipart = (b'--b\r\nContent-Disposition: form-data; name="email"\r\n\r\nana\xff@example.org\r\n'
                 b'--b\r\nContent-Disposition: form-data; name="form_token"\r\n\r\n' + token.encode() +
                 b'\r\n--b\r\nContent-Disposition: form-data; name="lists"\r\n\r\nasp-daily\r\n--b--\r\n')
    for body, kind in ((urlencoded, "application/x-www-form-urlencoded"), (raw, "application/x-www-form-urlencoded"),
                       (multipart, "multipart/form-data; boundary=b")):
        response = client.post("/subscribe", content=body, headers={"Content-Type": kind})
        assert response.status_code == 400 and "This form could not be read" in response.text, kind
    drain(client)
    assert smtp_server.messages() == []
    assert subscriptions.count_subscribers(newsletter) == 0


def test_a_client_that_leaves_mid_body_is_one_log_line(config, sqlite_store, clock, caplog):
    """A real server (uvicorn on loopback): a request that stops half-way, the connection closed."""
    import logging
    import socket
    import threading
    import time

    import uvicorn
    from conftest import listening_socket

    newsletter = make_newsletter(config, sqlite_store, clock)
    add_lists(newsletter, clock)
    sock = listening_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(newsletter), log_level="info", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    with caplog.at_level(logging.INFO):
        thread.start()
        while not server.started:
            time.sleep(0.02)
        for path in ("/subscribe", f"/unsubscribe/{newsletter.token(Purpose.UNSUBSCRIBE, 'k')}"):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded"
                          f"\r\nContent-Length: 1000\r\n\r\nemail=ana%40exam".encode())
                time.sleep(0.3)
        time.sleep(0.3)
        server.should_exit = True
        thread.join(10)
    left = [r for r in caplog.records if "left before sending the whole request" in r.getMessage()]
    assert len(left) == 2 and "{token}" in left[1].getMessage()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], \
        [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
