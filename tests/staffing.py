"""Helpers for the workspace's tests: accounts of every role, logged-in HTTP clients, form tokens.

    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    client = logged_in(newsletter, owner)          # a TestClient on https://testserver with a session
    client.post("/admin/accounts/invite", data={"csrf": csrf_of(client), ...})
"""

from __future__ import annotations

import re
import warnings

from newsletter.installation import Newsletter
from newsletter.staff import accounts
from newsletter.staff.roles import Role

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from newsletter.app import create_app

PASSWORD = "a long night at the venue"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def add_staff(newsletter: Newsletter, email: str, role: Role, *, languages=(), name: str = "",
              password: str = PASSWORD) -> accounts.Member:
    """An active account with this password (invited, then accepted through its link)."""
    invitation = accounts.add_member(newsletter, email, role, name=name, languages=languages)
    token = invitation.link.rsplit("/", 1)[1]
    return accounts.accept_invitation(newsletter, token, password)


def client_for(newsletter: Newsletter, **kwargs) -> TestClient:
    """An HTTP client of the whole app (visitor pages and /admin), over https, not following redirects."""
    kwargs.setdefault("base_url", "https://testserver")
    kwargs.setdefault("follow_redirects", False)
    app = create_app(newsletter, min_fill_seconds=0)
    app.state.txt_lookup = no_dns  # the pre-flight check never asks a real DNS server
    return TestClient(app, **kwargs)


def no_dns(name: str) -> list[str]:
    """A DNS that has no TXT record for anything."""
    return []


def csrf_of(client: TestClient, path: str = "/admin/account") -> str:
    """The form token on `path` (a session's token for guarded pages, the pre-session one for public)."""
    page = client.get(path)
    found = _CSRF.search(page.text)
    assert found, f"no form token on {path} ({page.status_code})"
    return found.group(1)


def log_in(client: TestClient, email: str, password: str = PASSWORD, code: str = ""):
    """Post the login form; returns the response (303 on success)."""
    return client.post("/admin/login", data={"csrf": csrf_of(client, "/admin/login"), "email": email,
                                             "password": password, "code": code})


def logged_in(newsletter: Newsletter, member: accounts.Member, password: str = PASSWORD, **kwargs) -> TestClient:
    client = client_for(newsletter, **kwargs)
    response = log_in(client, member.email, password)
    assert response.status_code == 303, response.text
    return client
