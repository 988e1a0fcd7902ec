"""Route by role: every workspace route and method, for every role and for no session, allowed
or refused as this file's own table says — direct POSTs that skip the pages included.

The routes come from `workspace_routes` itself, so a route added later is walked as it comes;
its action must be in EXPECTED (a new action without a row fails here), and a route used
without a session must be in PUBLIC. The table is written out here, not read from
`staff.roles.POLICY`, so that a change of policy is a change of this test too.
"""

from __future__ import annotations

import re
import shutil

import pytest
from staffing import PASSWORD, add_staff, client_for, log_in

from newsletter.config import Config
from newsletter.installation import Newsletter
from newsletter.staff import sessions
from newsletter.staff.roles import Action, Role
from newsletter.store import open_store
from newsletter.workspace import workspace_routes
from newsletter.workspace.guard import COOKIE

from conftest import REPO

ALL = {"owner", "sender", "editor", "translator", "viewer"}
OWNER = {"owner"}
SENDERS = {"owner", "sender"}
WRITERS = {"owner", "editor"}

#: Who may take each action (a translator: in their own languages only, for language-bound ones).
EXPECTED: dict[str, set[str]] = {
    "dashboard.view": ALL,
    "reports.view": ALL,
    "lists.view": ALL,
    "issues.view": ALL,
    "issues.preview": ALL,
    "account.self": ALL,
    "accounts.view": OWNER,
    "accounts.invite": OWNER,
    "accounts.revoke": OWNER,
    "accounts.change_role": OWNER,
    "settings.change": OWNER,
    "audit.view": OWNER,
    "audit.export": OWNER,
    "people.view": SENDERS,
    "people.edit": SENDERS,
    "people.unsubscribe": SENDERS,
    "people.erase": OWNER,
    "people.export": OWNER,
    "people.import": SENDERS,
    "suppressions.view": SENDERS,
    "suppressions.lift": OWNER,
    "lists.manage": OWNER,
    "segments.manage": SENDERS,
    "issues.write": WRITERS,
    "issues.translate": WRITERS | {"translator"},
    "issues.test_send": WRITERS | {"sender"},
    "campaigns.approve": SENDERS,
    "campaigns.send": SENDERS,
    "campaigns.schedule": SENDERS,
    "campaigns.pause": SENDERS,
    "campaigns.resume": SENDERS,
    "campaigns.cancel": SENDERS,
    "campaigns.retry": SENDERS,
}

#: The routes used without a session (method, path as declared).
PUBLIC = {
    ("GET", "/login"), ("POST", "/login"),
    ("GET", "/invite/{token}"), ("POST", "/invite/{token}"),
    ("GET", "/reset"), ("POST", "/reset"),
    ("GET", "/reset/{token}"), ("POST", "/reset/{token}"),
}

TRANSLATOR_LANGUAGES = ["fr"]
_PARAM = re.compile(r"{([a-zA-Z_]\w*)(?::(\w+))?}")


def _routes():
    newsletter = Newsletter(Config(database_url="sqlite:///:memory:", templates_dir=str(REPO / "templates"),
                                   secret_key="route-table-only-0123456789abcdef"))
    found = []
    for route in workspace_routes(newsletter):
        if not hasattr(route, "methods"):  # the static files' mount
            assert route.path == "/static", f"unexpected mount {route.path}"
            continue
        for method in sorted(route.methods - {"HEAD"}):
            found.append((method, route.path, route.endpoint.guard))
    return found


ROUTES = _routes()
WHO = [None, *(role.value for role in Role)]


def _concrete(path: str, language: str | None, guard) -> str:
    def fill(match: re.Match) -> str:
        name, convertor = match.group(1), match.group(2)
        if guard.language == name:
            return language or "fr"
        return "1" if convertor == "int" else "sample"

    return "/admin" + _PARAM.sub(fill, path)


@pytest.fixture(scope="module")
def staffed(sqlite_template, tmp_path_factory):
    """An installation with one active account per role, and a logged-in client for each."""
    folder = tmp_path_factory.mktemp("roles")
    shutil.copy(sqlite_template, folder / "store.db")
    # loopback only: the pre-flight check's one-click and relay checks find nothing listening
    config = Config(database_url=f"sqlite:///{folder / 'store.db'}", base_url="http://127.0.0.1:9",
                    templates_dir=str(REPO / "templates"), secret_key="route-by-role-secret-0123456789",
                    smtp_url="smtp://127.0.0.1:9?starttls=off&timeout=1", sink_maildir=str(folder / "mail"))
    newsletter = Newsletter(config, open_store(config.database_url))
    add_staff(newsletter, "owner@example.org", Role.OWNER)
    members = {role.value: (add_staff(newsletter, f"{role.value}@example.org", role,
                                      languages=TRANSLATOR_LANGUAGES if role is Role.TRANSLATOR else ())
                            if role is not Role.OWNER else None) for role in Role}
    clients = {}

    def client(who: str | None):
        """A client logged in as `who` (logged in again when a request ended its session)."""
        if who not in clients:
            clients[who] = client_for(newsletter)
        c = clients[who]
        if who is not None and sessions.current(newsletter, c.cookies.get(COOKIE)) is None:
            c.cookies.clear()
            assert log_in(c, f"{who}@example.org", PASSWORD).status_code == 303
        return c

    yield newsletter, client, members
    for c in clients.values():
        c.close()
    newsletter.store.dispose()


def test_every_action_has_its_row_and_every_route_is_classified():
    assert set(EXPECTED) == {a.value for a in Action}, "add the new action's roles to EXPECTED"
    for method, path, guard in ROUTES:
        if guard.action is None:
            assert (method, path) in PUBLIC, f"{method} {path} is public: add it to PUBLIC if it must be"
        else:
            assert (method, path) not in PUBLIC
    assert PUBLIC <= {(m, p) for m, p, _ in ROUTES}, "a PUBLIC route is gone"


def _csrf_of_session(newsletter, client) -> str:
    context = sessions.current(newsletter, client.cookies.get(COOKIE))
    return context.csrf if context else ""


def _cases():
    for method, path, guard in ROUTES:
        for who in WHO:
            languages = [None]
            if guard.language is not None:
                languages = ["fr", "en"]
            for language in languages:
                yield pytest.param(method, path, guard, who, language,
                                   id=f"{method} {path} as {who or 'nobody'}" + (f" in {language}" if language else ""))


@pytest.mark.parametrize("method, path, guard, who, language", list(_cases()))
def test_route_by_role(staffed, method, path, guard, who, language):
    newsletter, client_as, _members = staffed
    client = client_as(who)
    url = _concrete(path, language, guard)
    if method == "GET":
        response = client.get(url, params={guard.language: language} if guard.language and language else None)
    else:
        data = {"csrf": _csrf_of_session(newsletter, client) if who else ""}
        if guard.language and language:
            data[guard.language] = language
        response = client.request(method, url, data=data)
    to_login = response.status_code == 303 and "/admin/login?next=" in response.headers.get("location", "")

    if guard.action is None:  # public: reached without a session; a POST without its form token is refused
        if method == "GET":
            assert response.status_code < 500 and response.status_code != 403
        else:
            assert response.status_code == 403
        return
    if who is None:
        if method == "GET":
            assert to_login, (response.status_code, response.headers)
        else:
            assert response.status_code == 403 and not to_login
        return
    may = who in EXPECTED[guard.action.value]
    if may and who == "translator" and guard.language is not None:
        may = language in TRANSLATOR_LANGUAGES
    if may:
        assert response.status_code != 403 and not to_login and response.status_code < 500, response.text[:500]
    else:
        assert response.status_code == 403, (response.status_code, response.text[:300])
        assert "Your role does not allow this" in response.text
