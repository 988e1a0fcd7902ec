"""The people pages over HTTP, on SQLite and PostgreSQL: search, one person, edit, lists,
unsubscribe, erase, export, CSV import by upload; the consent log names the staff member."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import text
from staffing import add_staff, csrf_of, logged_in

from newsletter.people import subscriptions
from newsletter.people.rules import ConsentContext
from newsletter.staff import audit, directory
from newsletter.staff.roles import Role
from newsletter.statuses import BounceKind, Channel, CampaignStatus, OutboxStatus
from newsletter.store import BounceEvent, Campaign, OutboxRow
from newsletter.tokens import Purpose

FORM = ConsentContext(channel=Channel.FORM, ip="198.51.100.20", source="website-footer")


@pytest.fixture
def desk(newsletter):
    """Two lists, three people (two confirmed), an owner and a sender logged in."""
    subscriptions.create_list(newsletter, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"])
    subscriptions.create_list(newsletter, "alerts", "Campaign alerts", languages=["en", "fr"])
    for email, name, lang, lists, confirm in [
        ("fatou.ndiaye@example.net", "Fatou Ndiaye", "fr", ["asp-daily"], True),
        ("jorge.rivas@example.org", "Jorge Rivas", "es", ["asp-daily", "alerts"], True),
        ("pending.person@example.com", "Pat Pending", "en", ["alerts"], False),
    ]:
        subscriptions.record_signup(newsletter, email, name, lang, lists, FORM)
        if confirm:
            key = directory.search(newsletter, email).people[0].key
            subscriptions.confirm(newsletter, newsletter.token(Purpose.CONFIRM, key), FORM)
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    sender = add_staff(newsletter, "sender@example.org", Role.SENDER)
    return newsletter, logged_in(newsletter, owner), logged_in(newsletter, sender)


def _key(newsletter, email):
    return directory.search(newsletter, email).people[0].key


def test_search_by_part_of_an_address_or_a_name_and_by_list_and_status(desk):
    newsletter, _owner, client = desk
    page = client.get("/admin/people", params={"q": "RIVAS"})
    assert page.status_code == 200 and "jorge.rivas@example.org" in page.text and "fatou" not in page.text
    by_name = client.get("/admin/people", params={"q": "Fatou Nd"}).text
    assert "fatou.ndiaye@example.net" in by_name
    pending = client.get("/admin/people", params={"list": "alerts", "status": "pending"}).text
    assert "pending.person@example.com" in pending and "jorge" not in pending
    assert directory.search(newsletter, "%").total == directory.search(newsletter, "_").total == 0  # not wildcards
    assert client.get("/admin/people", params={"list": "no-such-list"}).status_code == 400


def test_one_persons_page_has_their_data_consent_log_bounces_and_issues(desk, clock):
    newsletter, _owner, client = desk
    key = _key(newsletter, "jorge.rivas@example.org")
    with newsletter.store.session() as session:
        subscriber_id = session.execute(text("SELECT id FROM subscribers WHERE key = :k"), {"k": key}).scalar()
        list_id = session.execute(text("SELECT id FROM lists WHERE slug = 'asp-daily'")).scalar()
        campaign = Campaign(slug="asp24-day-4", list_id=list_id, kind="daily_summary", subject="ASP 24, day 4",
                            status=CampaignStatus.FINISHED, source={}, created_at=clock())
        session.add(campaign)
        session.flush()
        session.add(OutboxRow(campaign_id=campaign.id, subscriber_id=subscriber_id, status=OutboxStatus.SENT,
                              language="es", attempts=1, sent_at=clock(), last_reply="250 2.0.0 Ok: queued"))
        session.add(BounceEvent(subscriber_id=subscriber_id, campaign_id=campaign.id, kind=BounceKind.SOFT,
                                source="dsn", status="4.2.2", reason="mailbox full", outcome="scored 1/5", at=clock()))
    page = client.get(f"/admin/people/{key}")
    assert page.status_code == 200
    for shown in ("Jorge Rivas", "ASP 24, day 4", "asp24-day-4", "250 2.0.0 Ok: queued", "mailbox full",
                  "website-footer", "198.51.100.20", "Campaign alerts"):
        assert shown in page.text, shown
    assert client.get("/admin/people/not-a-key").status_code == 404


def _consent_lines(newsletter, email):
    return subscriptions.consent_events(newsletter, email)


def test_editing_name_and_language_is_in_the_consent_log_under_the_staff_members_name(desk):
    newsletter, _owner, client = desk
    key = _key(newsletter, "fatou.ndiaye@example.net")
    response = client.post(f"/admin/people/{key}/edit", data={"csrf": csrf_of(client), "name": "Fatou N. Ndiaye",
                                                              "language": "ar"})
    assert response.status_code == 303
    record = subscriptions.person(newsletter, "fatou.ndiaye@example.net")
    assert (record.name, record.language) == ("Fatou N. Ndiaye", "ar")
    last = _consent_lines(newsletter, "fatou.ndiaye@example.net")[-1]
    assert (last.event, last.channel, last.source, last.ip) == ("preferences", "admin", "staff:sender@example.org",
                                                                "testclient")
    line = audit.lines(newsletter, action="people.edit").lines[0]
    assert (line.actor, line.target) == ("sender@example.org", "fatou.ndiaye@example.net")
    bad = client.post(f"/admin/people/{key}/edit", data={"csrf": csrf_of(client), "name": "x", "language": "de"})
    assert bad.status_code == 400 and subscriptions.person(newsletter, "fatou.ndiaye@example.net").language == "ar"


def test_adding_a_list_asks_the_person_to_confirm_it(desk, clock):
    newsletter, _owner, client = desk
    clock.advance(minutes=11)  # past the re-send interval of their own sign-up
    key = _key(newsletter, "fatou.ndiaye@example.net")
    response = client.post(f"/admin/people/{key}/lists", data={"csrf": csrf_of(client), "lists": ["alerts"]})
    assert response.status_code == 303
    states = {s.list: s.status for s in subscriptions.person(newsletter, "fatou.ndiaye@example.net").subscriptions}
    assert states == {"asp-daily": "active", "alerts": "pending"}
    lines = _consent_lines(newsletter, "fatou.ndiaye@example.net")
    assert [(e.event, e.source) for e in lines[-2:]] == [("signup", "staff:sender@example.org"),
                                                         ("confirmation_sent", "staff:sender@example.org")]


def test_unsubscribing_one_list_then_every_list_at_once(desk):
    newsletter, _owner, client = desk
    key = _key(newsletter, "jorge.rivas@example.org")
    assert client.post(f"/admin/people/{key}/unsubscribe", data={"csrf": csrf_of(client), "list": "alerts"}
                       ).status_code == 303
    states = {s.list: s.status for s in subscriptions.person(newsletter, "jorge.rivas@example.org").subscriptions}
    assert states == {"asp-daily": "active", "alerts": "unsubscribed"}
    assert client.post(f"/admin/people/{key}/unsubscribe", data={"csrf": csrf_of(client)}).status_code == 303
    states = {s.list: s.status for s in subscriptions.person(newsletter, "jorge.rivas@example.org").subscriptions}
    assert states == {"asp-daily": "unsubscribed", "alerts": "unsubscribed"}
    assert _consent_lines(newsletter, "jorge.rivas@example.org")[-1].source == "staff:sender@example.org"


def test_erasing_needs_the_address_typed_and_keeps_no_address_anywhere(desk):
    newsletter, owner, _sender = desk
    key = _key(newsletter, "fatou.ndiaye@example.net")
    refused = owner.post(f"/admin/people/{key}/erase", data={"csrf": csrf_of(owner), "confirm": "fatou"})
    assert refused.status_code == 400 and subscriptions.person(newsletter, "fatou.ndiaye@example.net")
    done = owner.post(f"/admin/people/{key}/erase", data={"csrf": csrf_of(owner), "confirm": "Fatou.Ndiaye@example.net"})
    assert done.status_code == 200 and "Erased" in done.text
    assert owner.get(f"/admin/people/{key}").status_code == 404
    line = audit.lines(newsletter, action="people.erase").lines[0]
    assert line.actor == "owner@example.org" and line.target.startswith("sha256:")
    exported = "".join(audit.export_csv(newsletter))
    assert "fatou.ndiaye@example.net" not in exported.replace("staff:", "")
    again = subscriptions.record_signup(newsletter, "fatou.ndiaye@example.net", "", "fr", ["asp-daily"], FORM)
    assert again.due is None  # suppressed: never mailed again


def test_exporting_a_person_downloads_their_record_and_is_audited(desk):
    newsletter, owner, _sender = desk
    key = _key(newsletter, "jorge.rivas@example.org")
    response = owner.post(f"/admin/people/{key}/export", data={"csrf": csrf_of(owner)})
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    data = json.loads(response.text)
    assert data["email"] == "jorge.rivas@example.org" and len(data["consent_log"]) >= 3
    assert audit.lines(newsletter, action="people.export").lines[0].target == "jorge.rivas@example.org"


CSV = (
    "email,name,language,lists\n"
    "amal.haddad@example.org,Amal Haddad,ar,asp-daily\n"
    "not-an-address,Broken Row,en,asp-daily\n"
    "jorge.rivas@example.org,Jorge Rivas,es,asp-daily\n"
    "li.wei@example.com,Li Wei,en,no-such-list\n"
)


def _upload(client, dry_run: bool):
    data = {"csrf": csrf_of(client, "/admin/import"), "lists": ["alerts"]}
    if dry_run:
        data["dry_run"] = "1"
    return client.post("/admin/import", data=data, files={"file": ("members 2026.csv", CSV.encode(), "text/csv")})


def test_a_csv_import_by_upload_dry_run_first_then_for_real(desk, smtp_server):
    newsletter, _owner, client = desk
    dry = _upload(client, dry_run=True)
    assert dry.status_code == 200 and "Dry run: nothing was written" in dry.text
    rows = re.findall(r"<tr><td>(\d+)</td><td dir=\"ltr\">([^<]*)</td>", dry.text)
    assert rows == [("3", "not-an-address"), ("5", "li.wei@example.com")]
    assert directory.search(newsletter, "amal").total == 0
    done = _upload(client, dry_run=False)
    assert done.status_code == 200 and "Dry run" not in done.text
    record = subscriptions.person(newsletter, "amal.haddad@example.org")
    assert {s.list: s.status for s in record.subscriptions} == {"asp-daily": "pending", "alerts": "pending"}
    assert record.consent_log[0].source == "import:members-2026.csv by staff:sender@example.org"
    assert [line.detail.split(" ")[0] for line in audit.lines(newsletter, action="people.import").lines] == \
        ["rows=4", "dry"]


def test_an_upload_without_a_file_or_with_no_email_column_changes_nothing(desk):
    newsletter, _owner, client = desk
    none = client.post("/admin/import", data={"csrf": csrf_of(client, "/admin/import")})
    assert none.status_code == 400 and "Choose a CSV file" in none.text
    bad = client.post("/admin/import", data={"csrf": csrf_of(client, "/admin/import")},
                      files={"file": ("x.csv", b"name,language\nAmal,ar\n", "text/csv")})
    assert bad.status_code == 400 and "Nothing was imported" in bad.text


ATTRIBUTE_SPECS = {"organisation": {"type": "text", "organisation": True, "label": "Organisation"},
                   "country": {"type": "country", "label": "Country"},
                   "staff_count": {"type": "integer", "min": 0, "label": "Staff"},
                   "ratified": {"type": "boolean", "label": "Ratified"}}


def _with_attributes(newsletter):
    from newsletter.attributes import parse_attribute_specs

    newsletter.config = newsletter.config.with_changes(attributes=parse_attribute_specs(ATTRIBUTE_SPECS))


def test_a_persons_attributes_are_edited_checked_per_field_logged_and_audited(desk):
    from newsletter.people import profiles

    newsletter, _owner, client = desk
    _with_attributes(newsletter)
    email = "fatou.ndiaye@example.net"
    profiles.set_attributes(newsletter, email, {"organisation": "Ligue sénégalaise", "staff_count": 12})
    key = _key(newsletter, email)
    page = client.get(f"/admin/people/{key}").text
    assert 'id="attributes-form"' in page and 'value="Ligue sénégalaise"' in page and 'value="12"' in page
    bad = client.post(f"/admin/people/{key}/attributes", data={
        "csrf": csrf_of(client), "attr_organisation": "Ligue des droits", "attr_country": "Atlantis",
        "attr_staff_count": "-3", "attr_ratified": "yes"})
    assert bad.status_code == 400 and 'id="attributes-error"' in bad.text and "Nothing was changed: attributes" not in bad.text
    assert "&#39;Atlantis&#39; is not an ISO 3166 country" in bad.text and "-3 is less than 0" in bad.text
    assert 'id="attr-country-error"' in bad.text and 'id="attr-staff_count-error"' in bad.text
    assert 'value="Ligue des droits"' in bad.text and 'value="-3"' in bad.text  # nothing typed is lost
    assert profiles.attributes_of(newsletter, email) == {"organisation": "Ligue sénégalaise", "staff_count": 12}
    done = client.post(f"/admin/people/{key}/attributes", data={
        "csrf": csrf_of(client), "attr_organisation": "", "attr_country": "Senegal", "attr_staff_count": "14",
        "attr_ratified": "yes"})
    assert done.status_code == 303 and done.headers["location"].endswith("?done=saved")
    assert profiles.attributes_of(newsletter, email) == {"country": "SN", "staff_count": 14, "ratified": True}
    last = _consent_lines(newsletter, email)[-1]
    assert (last.event, last.channel, last.source) == ("preferences", "admin", "staff:sender@example.org")
    assert last.note == ("attributes: organisation removed (was Ligue sénégalaise); country=SN; "
                         "staff_count=14 (was 12); ratified=yes")
    line = audit.lines(newsletter, action="people.edit").lines[0]
    assert (line.actor, line.target, line.detail) == ("sender@example.org", email,
                                                      "attributes: organisation, country, staff_count, ratified")
    unchanged = client.post(f"/admin/people/{key}/attributes", data={
        "csrf": csrf_of(client), "attr_country": "SN", "attr_staff_count": "14", "attr_ratified": "yes"})
    assert unchanged.status_code == 303 and _consent_lines(newsletter, email)[-1].note == last.note


def test_segments_are_listed_saved_shown_and_deleted_in_the_workspace(desk):
    from newsletter.people import profiles, segments

    newsletter, _owner, client = desk
    _with_attributes(newsletter)
    profiles.set_attributes(newsletter, "fatou.ndiaye@example.net", {"country": "SN"})
    profiles.set_attributes(newsletter, "jorge.rivas@example.org", {"country": "AR"})
    assert "No segment yet." in client.get("/admin/segments").text
    bad = client.post("/admin/segments", data={"csrf": csrf_of(client, "/admin/segments"), "name": "senegal",
                                               "expression": 'country = "SN"; DROP TABLE subscribers; --'})
    assert bad.status_code == 400 and "column 15: unexpected character" in bad.text
    assert "DROP TABLE subscribers; --</textarea>" in bad.text and segments.list_segments(newsletter) == []
    made = client.post("/admin/segments", data={"csrf": csrf_of(client, "/admin/segments"), "name": "senegal",
                                                "expression": "country = Senegal", "description": "Members in Senegal"})
    assert made.status_code == 303 and made.headers["location"].endswith("/admin/segments?show=senegal&done=saved")
    shown = client.get("/admin/segments?show=senegal").text
    assert '<td data-segment="senegal">1</td>' in shown and "SN</span> Senegal</th><td>1</td>" in shown
    assert audit.lines(newsletter, action="segments.manage").lines[0].detail == "saved: country = Senegal"
    taken = client.post("/admin/segments", data={"csrf": csrf_of(client, "/admin/segments"), "name": "senegal",
                                                 "expression": "country = AR"})
    assert taken.status_code == 400 and "exists already" in taken.text
    replaced = client.post("/admin/segments", data={"csrf": csrf_of(client, "/admin/segments"), "name": "senegal",
                                                    "expression": "country in (SN, AR)", "replace": "yes"})
    assert replaced.status_code == 303 and '<td data-segment="senegal">2</td>' in client.get("/admin/segments").text
    gone = client.post("/admin/segments/senegal/delete", data={"csrf": csrf_of(client, "/admin/segments")})
    assert gone.status_code == 303 and segments.list_segments(newsletter) == []
    assert audit.lines(newsletter, action="segments.manage").lines[0].detail == "deleted"
    assert client.post("/admin/segments/senegal/delete",
                       data={"csrf": csrf_of(client, "/admin/segments")}).status_code == 404


def test_a_segment_is_built_from_conditions_whose_values_stay_values(desk):
    from newsletter.people import profiles, segments

    newsletter, _owner, client = desk
    _with_attributes(newsletter)
    profiles.set_attributes(newsletter, "fatou.ndiaye@example.net", {"country": "SN", "staff_count": 12})
    profiles.set_attributes(newsletter, "jorge.rivas@example.org", {"country": "AR", "staff_count": 3})
    made = client.post("/admin/segments", data={
        "csrf": csrf_of(client, "/admin/segments"), "name": "big-members", "expression": "",
        "field_0": "country", "op_0": "in", "value_0": "SN, AR", "field_1": "staff_count", "op_1": ">=",
        "value_1": "10", "field_2": ""})
    assert made.status_code == 303
    [saved] = segments.list_segments(newsletter)
    assert saved.expression == 'country in ("SN", "AR") and staff_count >= "10"'
    assert '<td data-segment="big-members">1</td>' in client.get("/admin/segments").text
    evil = client.post("/admin/segments", data={
        "csrf": csrf_of(client, "/admin/segments"), "name": "evil", "expression": "",
        "field_0": "organisation", "op_0": "=", "value_0": '" or 1=1; DROP TABLE subscribers; --'})
    assert evil.status_code == 303  # a value, quoted: it names nobody
    assert segments.show_segment(newsletter, "evil")[1].total == 0
    empty = client.post("/admin/segments", data={"csrf": csrf_of(client, "/admin/segments"), "name": "nothing",
                                                 "expression": "", "field_0": "country", "op_0": "=",
                                                 "value_0": " "})
    assert empty.status_code == 400 and "give country a value to compare with" in empty.text
    assert 'name="field_0" id="field-0"><option value=""></option><option value="list">list</option>' in empty.text
    assert '<option value="country" selected>country</option>' in empty.text  # the rows are kept
    none = client.post("/admin/segments", data={"csrf": csrf_of(client, "/admin/segments"), "name": "nothing"})
    assert none.status_code == 400 and "or choose a field for at least one condition" in none.text
