"""The lists and suppressions pages over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from staffing import add_staff, csrf_of, logged_in

from newsletter.people import consent, subscriptions
from newsletter.people.rules import ConsentContext
from newsletter.staff import audit
from newsletter.staff.roles import Role
from newsletter.statuses import Channel, SuppressionReason

FORM = ConsentContext(channel=Channel.FORM, ip="198.51.100.20", source="website-footer")


@pytest.fixture
def owner_client(newsletter):
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    return logged_in(newsletter, owner)


def test_an_owner_creates_a_list_and_edits_it_with_names_per_language(newsletter, owner_client):
    client = owner_client
    created = client.post("/admin/lists", data={"csrf": csrf_of(client), "slug": "asp-daily",
                                                "name": "ASP daily summaries", "description": "One a day.",
                                                "languages": ["en", "fr"], "public": "1"})
    assert created.status_code == 303
    edited = client.post("/admin/lists/asp-daily", data={
        "csrf": csrf_of(client), "name": "ASP daily summaries", "description": "One summary for each day.",
        "languages": ["en", "fr", "ar"], "name_fr": "Résumés quotidiens de l'AEP",
        "description_fr": "Un résumé pour chaque jour.", "name_ar": "الملخصات اليومية"})
    assert edited.status_code == 303
    summary = subscriptions.list_summary(newsletter, "asp-daily")
    assert summary.languages == ["en", "fr", "ar"] and not summary.public
    page = client.get("/admin/lists?lang=fr").text
    assert "Résumés quotidiens de l&#39;AEP" in page and "Un résumé pour chaque jour." in page
    assert "الملخصات اليومية" in client.get("/admin/lists?lang=ar").text
    assert [line.detail.split(":")[0] for line in audit.lines(newsletter, action="lists.manage").lines] == \
        ["edited", "created"]


def test_bad_list_fields_change_nothing(newsletter, owner_client):
    client = owner_client
    subscriptions.create_list(newsletter, "alerts", "Campaign alerts", languages=["en"])
    for data in ({"slug": "Bad Slug", "name": "x", "languages": ["en"]}, {"slug": "alerts", "name": "x",
                                                                            "languages": ["en"]}):
        assert client.post("/admin/lists", data={"csrf": csrf_of(client), **data}).status_code == 400
    refused = client.post("/admin/lists/alerts", data={"csrf": csrf_of(client), "name": "", "languages": ["en"]})
    assert refused.status_code == 400
    assert client.post("/admin/lists/alerts", data={"csrf": csrf_of(client), "name": "A", "languages": ["de"]}
                       ).status_code == 400
    assert subscriptions.list_summary(newsletter, "alerts").name == "Campaign alerts"
    assert client.post("/admin/lists/nope", data={"csrf": csrf_of(client), "name": "A", "languages": ["en"]}
                       ).status_code == 400


def test_suppressions_are_listed_and_lifted_with_a_reason(newsletter, owner_client):
    client = owner_client
    subscriptions.create_list(newsletter, "alerts", "Campaign alerts", languages=["en"])
    subscriptions.record_signup(newsletter, "mistaken@example.org", "Mis Taken", "en", ["alerts"], FORM)
    subscriptions.erase(newsletter, "erased@example.org")
    subscriptions.unsubscribe_address(newsletter, "mistaken@example.org", FORM)

    with newsletter.store.session() as session:
        consent.suppress(session, "mistaken@example.org", SuppressionReason.HARD_BOUNCE,
                         now=newsletter.clock())
    page = client.get("/admin/suppressions")
    assert page.status_code == 200 and "mistaken@example.org" in page.text and "erased@example.org" not in page.text
    assert client.post("/admin/suppressions/lift", data={"csrf": csrf_of(client), "address": "mistaken@example.org",
                                                         "why": ""}).status_code == 400
    lifted = client.post("/admin/suppressions/lift", data={"csrf": csrf_of(client), "address": "mistaken@example.org",
                                                           "why": "the relay misreported a full disk as unknown user"})
    assert lifted.status_code == 200 and "is lifted" in lifted.text
    assert "mistaken@example.org" not in client.get("/admin/suppressions").text
    last = subscriptions.consent_events(newsletter, "mistaken@example.org")[-1]
    assert (last.event, last.source) == ("lifted", "staff:owner@example.org")
    assert audit.lines(newsletter, action="suppressions.lift").lines[0].target == "mistaken@example.org"
    again = client.post("/admin/suppressions/lift", data={"csrf": csrf_of(client), "address": "mistaken@example.org",
                                                          "why": "twice"})
    assert again.status_code == 400 and "not suppressed" in again.text
