"""The workspace's doors over HTTP, on SQLite and PostgreSQL: CSRF, session fixation, cookies,
login throttling, TOTP, invitation and reset links (expiry and reuse), log out everywhere, and
the security headers. Invitations and reset links arrive through the real recording SMTP server."""

from __future__ import annotations

import re

import pyotp
import pytest
from staffing import PASSWORD, add_staff, client_for, csrf_of, log_in, logged_in

from newsletter.staff import audit, sessions, throttle
from newsletter.staff.roles import Role
from newsletter.workspace.guard import COOKIE


@pytest.fixture
def owner(newsletter):
    return add_staff(newsletter, "owner@example.org", Role.OWNER, name="Amina Diallo")


def _link_in(message) -> str:
    body = message.get_body(("plain",)).get_content()
    return re.search(r"https://news\.example\.org(/admin/\S+)", body).group(1)


def _lines(newsletter, action):
    return [line for line in audit.lines(newsletter, action=action).lines]


# -- CSRF -------------------------------------------------------------------------------------------

def test_a_guarded_post_without_the_sessions_token_changes_nothing(newsletter, owner):
    client = logged_in(newsletter, owner)
    for data in ({}, {"csrf": "forged"}, {"csrf": csrf_of(client_for(newsletter), "/admin/login")}):
        response = client.post("/admin/accounts/invite", data={**data, "email": "x@example.org", "role": "viewer"})
        assert response.status_code == 403 and "did not come from the workspace" in response.text
    assert [m.email for m in newsletter_members(newsletter)] == ["owner@example.org"]
    good = client.post("/admin/accounts/invite", data={"csrf": csrf_of(client), "email": "x@example.org",
                                                       "role": "viewer"})
    assert good.status_code == 200 and "x@example.org" in good.text


def test_an_oversized_workspace_form_is_a_413_and_changes_nothing(newsletter, owner):
    """The guard reads forms through web.forms.read_form: bounded (413), strict UTF-8 (400), a form (415)."""
    from newsletter.web.forms import MAX_FORM, MAX_STAFF_FORM

    client = logged_in(newsletter, owner)
    token = csrf_of(client)
    big = client.post("/admin/accounts/invite", data={"csrf": token, "email": "x@example.org", "role": "viewer",
                                                      "name": "n" * MAX_STAFF_FORM})
    assert big.status_code == 413 and "larger" in big.text
    latin1 = client.post("/admin/accounts/invite", content=f"csrf={token}&email=x@example.org&role=viewer&name=".encode() + b"\xe9",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert latin1.status_code == 400
    as_json = client.post("/admin/accounts/invite", json={"csrf": token, "email": "x@example.org", "role": "viewer"})
    assert as_json.status_code == 415
    login = client_for(newsletter).post("/admin/login", data={"email": "a@example.org", "password": "p" * MAX_FORM})
    assert login.status_code == 413
    assert [m.email for m in newsletter_members(newsletter)] == ["owner@example.org"]


def test_a_post_from_another_sites_page_is_refused_even_with_the_token(newsletter, owner):
    client = logged_in(newsletter, owner)
    token = csrf_of(client)
    for origin in ("https://evil.example", "null"):
        response = client.post("/admin/accounts/invite", headers={"Origin": origin},
                               data={"csrf": token, "email": "x@example.org", "role": "viewer"})
        assert response.status_code == 403
    stranger = client_for(newsletter)
    login = stranger.post("/admin/login", headers={"Origin": "https://evil.example"},
                          data={"csrf": csrf_of(stranger, "/admin/login"), "email": owner.email, "password": PASSWORD})
    assert login.status_code == 403
    ours = client.post("/admin/accounts/invite", headers={"Origin": "https://testserver"},
                       data={"csrf": token, "email": "x@example.org", "role": "viewer"})
    assert ours.status_code == 200


def newsletter_members(newsletter):
    from newsletter.staff import accounts
    return accounts.members(newsletter)


def test_another_sessions_token_is_refused(newsletter, owner):
    sender = add_staff(newsletter, "sender@example.org", Role.SENDER)
    mine, theirs = logged_in(newsletter, owner), logged_in(newsletter, sender)
    response = mine.post("/admin/account/logout-everywhere", data={"csrf": csrf_of(theirs)})
    assert response.status_code == 403
    assert sessions.current(newsletter, mine.cookies.get(COOKIE)) is not None


def test_the_login_form_needs_its_pre_session_token(newsletter, owner):
    client = client_for(newsletter)
    response = client.post("/admin/login", data={"email": owner.email, "password": PASSWORD})
    assert response.status_code == 403 and COOKIE not in response.cookies
    token = csrf_of(client, "/admin/login")
    other = client_for(newsletter)  # another browser, with another pre-session cookie
    csrf_of(other, "/admin/login")
    refused = other.post("/admin/login", data={"csrf": token, "email": owner.email, "password": PASSWORD})
    assert refused.status_code == 403


# -- sessions ---------------------------------------------------------------------------------------

def test_login_makes_a_new_session_and_revokes_the_one_planted_before(newsletter, owner):
    attacker = add_staff(newsletter, "viewer@example.org", Role.VIEWER)
    planted = sessions.login(newsletter, attacker.email, PASSWORD).cookie
    client = client_for(newsletter)
    client.cookies.set(COOKIE, planted, domain="testserver.local", path="/admin")
    assert log_in(client, owner.email).status_code == 303
    fresh = client.cookies.get(COOKIE)
    assert fresh and fresh != planted
    assert sessions.current(newsletter, planted) is None
    assert sessions.current(newsletter, fresh).member.email == owner.email


def test_the_session_cookie_is_httponly_samesite_and_secure_under_https(newsletter, owner):
    response = log_in(client_for(newsletter), owner.email)
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie and "Path=/admin" in cookie
    plain = log_in(client_for(newsletter, base_url="http://testserver"), owner.email)
    assert "Secure" not in plain.headers["set-cookie"]


def test_only_a_hash_of_the_cookie_is_stored(newsletter, owner):
    login = sessions.login(newsletter, owner.email, PASSWORD)
    context = sessions.current(newsletter, login.cookie)
    assert context.session_id == sessions.session_hash(login.cookie) != login.cookie


def test_a_session_ends_when_idle_and_at_its_lifetime(newsletter, owner, clock):
    login = sessions.login(newsletter, owner.email, PASSWORD)
    clock.advance(hours=11)
    assert sessions.current(newsletter, login.cookie) is not None
    clock.advance(hours=11)  # 11 hours since the last request: still within the idle time
    assert sessions.current(newsletter, login.cookie) is not None
    clock.advance(hours=12, seconds=1)
    assert sessions.current(newsletter, login.cookie) is None
    busy = sessions.login(newsletter, owner.email, PASSWORD)
    for _ in range(15):  # 15 × 11:59 is past seven days
        clock.advance(hours=11, minutes=59)
        sessions.current(newsletter, busy.cookie)
    assert sessions.current(newsletter, busy.cookie) is None  # seven days, however busy


def test_log_out_everywhere_ends_every_session_of_the_account(newsletter, owner):
    laptop, phone = logged_in(newsletter, owner), logged_in(newsletter, owner)
    response = phone.post("/admin/account/logout-everywhere", data={"csrf": csrf_of(phone)})
    assert response.status_code == 303
    for client in (laptop, phone):
        assert client.get("/admin/").headers["location"].startswith("/admin/login?next=")
    assert _lines(newsletter, "account.logout_everywhere")[0].detail == "sessions ended=2"


def test_logging_out_ends_the_session_on_the_server(newsletter, owner):
    client = logged_in(newsletter, owner)
    cookie = client.cookies.get(COOKIE)
    assert client.post("/admin/logout", data={"csrf": csrf_of(client)}).status_code == 303
    assert sessions.current(newsletter, cookie) is None


# -- throttling -------------------------------------------------------------------------------------

def test_logins_are_throttled_per_account_the_right_password_too(newsletter, owner, clock):
    client = client_for(newsletter)
    for _ in range(throttle.ACCOUNT_LIMIT):
        assert log_in(client, owner.email, "wrong password here").status_code == 401
    throttled = log_in(client, owner.email)
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    clock.advance(minutes=15, seconds=1)
    assert log_in(client, owner.email).status_code == 303


def test_throttling_and_refusals_say_the_same_for_unknown_addresses(newsletter, owner):
    known, unknown = client_for(newsletter), client_for(newsletter, client=("192.0.2.9", 5000))
    known_pages = [log_in(known, owner.email, "wrong password here") for _ in range(throttle.ACCOUNT_LIMIT + 1)]
    unknown_pages = [log_in(unknown, "nobody@example.org", "wrong password here")
                     for _ in range(throttle.ACCOUNT_LIMIT + 1)]

    def main(page):
        return re.sub(r'value="[^"]*"', "", page.text.split("<main", 1)[1])

    assert [p.status_code for p in known_pages] == [p.status_code for p in unknown_pages] == [401] * 5 + [429]
    assert main(known_pages[0]).replace(owner.email, "X") == main(unknown_pages[0]).replace("nobody@example.org", "X")
    assert main(known_pages[-1]).replace(owner.email, "X") == main(unknown_pages[-1]).replace("nobody@example.org", "X")


def test_logins_are_throttled_per_ip_across_addresses(newsletter, owner):
    client = client_for(newsletter, client=("198.51.100.4", 4000))
    for n in range(throttle.IP_LIMIT):
        assert log_in(client, f"guess{n}@example.org", "wrong password here").status_code == 401
    assert log_in(client, owner.email).status_code == 429
    elsewhere = client_for(newsletter, client=("198.51.100.5", 4000))
    assert log_in(elsewhere, owner.email).status_code == 303


# -- TOTP -------------------------------------------------------------------------------------------

def _enroll(newsletter, client, clock) -> str:
    page = client.get("/admin/account/totp")
    secret = re.search(r'<code class="secret" dir="ltr">([A-Z2-7]+)</code>', page.text).group(1)
    sealed = re.search(r'name="enrollment" value="([^"]+)"', page.text).group(1)
    code = pyotp.TOTP(secret).at(clock())
    done = client.post("/admin/account/totp", data={"csrf": csrf_of(client), "enrollment": sealed, "code": code})
    assert done.status_code == 303, done.text
    return secret


def test_totp_enrolled_logins_need_a_fresh_code(newsletter, owner, clock):
    secret = _enroll(newsletter, logged_in(newsletter, owner), clock)
    clock.advance(seconds=30)
    client = client_for(newsletter)
    assert log_in(client, owner.email).status_code == 401  # no code
    assert log_in(client, owner.email, code="000000" if pyotp.TOTP(secret).at(clock()) != "000000"
                  else "111111").status_code == 401
    code = pyotp.TOTP(secret).at(clock())
    assert log_in(client, owner.email, code=code).status_code == 303
    assert log_in(client_for(newsletter), owner.email, code=code).status_code == 401  # never twice
    clock.advance(seconds=30)
    assert log_in(client_for(newsletter), owner.email, code=pyotp.TOTP(secret).at(clock())).status_code == 303


def test_a_wrong_enrollment_code_turns_nothing_on(newsletter, owner, clock):
    client = logged_in(newsletter, owner)
    page = client.get("/admin/account/totp")
    sealed = re.search(r'name="enrollment" value="([^"]+)"', page.text).group(1)
    response = client.post("/admin/account/totp", data={"csrf": csrf_of(client), "enrollment": sealed,
                                                        "code": "12345"})
    assert response.status_code == 400
    assert not newsletter_members(newsletter)[0].totp_enabled


def test_an_owner_can_require_totp_of_the_roles_that_send(newsletter, owner, clock):
    sender = add_staff(newsletter, "sender@example.org", Role.SENDER)
    editor = add_staff(newsletter, "editor@example.org", Role.EDITOR)
    admin = logged_in(newsletter, owner)
    refused = admin.post("/admin/settings/totp", data={"csrf": csrf_of(admin), "roles": ["editor"]})
    assert refused.status_code == 400
    assert admin.post("/admin/settings/totp", data={"csrf": csrf_of(admin), "roles": ["sender"]}).status_code == 303
    client = logged_in(newsletter, sender)
    assert client.get("/admin/").headers["location"] == "/admin/account/totp"
    assert client.post("/admin/logout", data={"csrf": csrf_of(client, "/admin/account/totp")}).status_code == 303
    client = logged_in(newsletter, sender)
    _enroll(newsletter, client, clock)
    assert client.get("/admin/").status_code == 200
    assert logged_in(newsletter, editor).get("/admin/").status_code == 200  # not required of editors


# -- invitation and reset links ---------------------------------------------------------------------

def test_an_owner_invites_by_mail_and_the_link_works_once(newsletter, owner, smtp_server):
    admin = logged_in(newsletter, owner)
    response = admin.post("/admin/accounts/invite", data={
        "csrf": csrf_of(admin), "email": "traductrice@example.org", "name": "Claire", "role": "translator",
        "languages": ["fr"], "mail_language": "fr"})
    assert response.status_code == 200 and "on its way" in response.text
    (mail,) = smtp_server.to("traductrice@example.org")
    assert mail["Content-Language"] == "fr" and "List-Unsubscribe" not in mail
    link = _link_in(mail)
    guest = client_for(newsletter)
    page = guest.get(link)
    assert page.status_code == 200 and "traductrice@example.org" in page.text
    form = {"csrf": csrf_of(guest, link), "password": PASSWORD, "password_again": PASSWORD}
    assert guest.post(link, data=form).status_code == 303
    assert guest.get(link).status_code == 400
    assert guest.post(link, data={**form, "csrf": csrf_of(guest, "/admin/login")}).status_code == 400
    assert log_in(client_for(newsletter), "traductrice@example.org").status_code == 303
    line = _lines(newsletter, "accounts.invite")[0]
    assert (line.actor, line.target, line.detail) == (owner.email, "traductrice@example.org", "role=translator languages=fr")


def _ask_reset(newsletter, email):
    client = client_for(newsletter)
    return client.post("/admin/reset", data={"csrf": csrf_of(client, "/admin/reset"), "email": email})


def test_a_reset_link_works_once_ends_sessions_and_says_nothing_of_unknown_addresses(newsletter, owner, smtp_server):
    before = logged_in(newsletter, owner)
    known, unknown = _ask_reset(newsletter, owner.email), _ask_reset(newsletter, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.text.split("<main", 1)[1] == unknown.text.split("<main", 1)[1]
    assert smtp_server.to("nobody@example.org") == []
    link = _link_in(smtp_server.to(owner.email)[0])
    client = client_for(newsletter)
    new = "a brand new long password"
    assert client.post(link, data={"csrf": csrf_of(client, link), "password": new, "password_again": new}
                       ).status_code == 303
    assert client.get(link).status_code == 400  # used
    assert before.get("/admin/").status_code == 303  # every session ended
    assert log_in(client_for(newsletter), owner.email, new).status_code == 303
    assert log_in(client_for(newsletter), owner.email).status_code == 401


def test_a_reset_link_expires_after_an_hour_and_a_newer_one_replaces_it(newsletter, owner, smtp_server, clock):
    _ask_reset(newsletter, owner.email)
    first = _link_in(smtp_server.to(owner.email)[-1])
    clock.advance(minutes=61)
    assert client_for(newsletter).get(first).status_code == 400
    _ask_reset(newsletter, owner.email)
    second = _link_in(smtp_server.to(owner.email)[-1])
    _ask_reset(newsletter, owner.email)
    third = _link_in(smtp_server.to(owner.email)[-1])
    client = client_for(newsletter)
    new = "a brand new long password"
    assert client.post(third, data={"csrf": csrf_of(client, third), "password": new, "password_again": new}
                       ).status_code == 303
    assert client.get(second).status_code == 400  # the password changed: every older link is spent


def test_a_tampered_link_gets_the_same_page_as_a_used_one(newsletter, owner):
    client = client_for(newsletter)
    tampered = client.get("/admin/reset/WzEsImFiYyIsMTc5NTQyNDQwMF0.forged")
    nonsense = client.get("/admin/invite/nonsense")
    assert tampered.status_code == nonsense.status_code == 400
    assert tampered.headers["cache-control"] == "no-store"
    assert tampered.headers["referrer-policy"] in ("no-referrer", "same-origin")  # the token never leaves the site


# -- pages ------------------------------------------------------------------------------------------

def test_workspace_pages_send_the_security_headers(newsletter, owner):
    client = logged_in(newsletter, owner)
    for path in ("/admin/login", "/admin/", "/admin/accounts"):
        headers = client.get(path).headers
        assert "default-src 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"


def test_a_refused_post_is_in_the_audit_trail(newsletter, owner):
    viewer = add_staff(newsletter, "viewer@example.org", Role.VIEWER)
    client = logged_in(newsletter, viewer)
    response = client.post("/admin/accounts/revoke", data={"csrf": csrf_of(client), "email": owner.email})
    assert response.status_code == 403
    line = _lines(newsletter, "denied")[0]
    assert (line.actor, line.target, line.detail) == (viewer.email, "/admin/accounts/revoke", "action=accounts.revoke")
    assert newsletter_members(newsletter)[0].status.value == "active"


def test_the_workspace_speaks_arabic_right_to_left(newsletter, owner):
    client = logged_in(newsletter, owner)
    page = client.get("/admin/?lang=ar")
    assert '<html lang="ar" dir="rtl">' in page.text
    assert client.get("/admin/accounts").text.startswith('<!DOCTYPE html>\n<html lang="ar" dir="rtl">')


def test_the_account_page_lists_live_sessions_and_ends_one(newsletter, owner):
    laptop = logged_in(newsletter, owner, headers={"User-Agent": "Laptop browser"})
    phone = logged_in(newsletter, owner, client=("203.0.113.8", 4000), headers={"User-Agent": "Phone browser"})
    page = laptop.get("/admin/account").text
    assert "Laptop browser" in page and "Phone browser" in page and "203.0.113.8" in page
    ref = re.search(r'name="session" value="([0-9a-f]{16})"', page).group(1)
    assert laptop.post("/admin/account/sessions/end", data={"csrf": csrf_of(laptop), "session": ref}
                       ).status_code == 303
    assert phone.get("/admin/").status_code == 303  # the phone's session ended
    assert laptop.get("/admin/").status_code == 200
    stranger = logged_in(newsletter, add_staff(newsletter, "viewer@example.org", Role.VIEWER))
    mine = re.search(r'name="session" value="([0-9a-f]{16})"', logged_in(newsletter, owner).get("/admin/account").text)
    stranger.post("/admin/account/sessions/end", data={"csrf": csrf_of(stranger), "session": mine.group(1)})
    assert laptop.get("/admin/").status_code == 200  # nobody ends another account's sessions
