"""The visitor pages under attack (issue #12): each test is one hole that was found, on SQLite
and PostgreSQL, through the real app (Starlette's TestClient) and the recording SMTP server."""

from __future__ import annotations

import warnings

import pytest
from bs4 import BeautifulSoup
from test_web import ADMIN, active_person, add_lists, csrf_of, make_newsletter, snapshot, statuses

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
