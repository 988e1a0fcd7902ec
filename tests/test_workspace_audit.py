"""The audit page: read (filtered, paged) and exported as CSV, by owners only."""

from __future__ import annotations

import csv
import io

from staffing import add_staff, csrf_of, logged_in

from newsletter.staff import audit
from newsletter.staff.audit import Actor
from newsletter.staff.roles import Action, Role


def test_the_audit_page_lists_staff_actions_newest_first_and_filters(newsletter, clock):
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    client = logged_in(newsletter, owner)
    clock.advance(minutes=1)
    client.post("/admin/accounts/invite", data={"csrf": csrf_of(client), "email": "ed@example.org", "role": "editor"})
    page = client.get("/admin/audit")
    assert page.status_code == 200
    rows = page.text.split("<tbody>", 1)[1]
    assert rows.index("accounts.invite") < rows.index("account.login")
    assert "ed@example.org" in rows and "testclient" in rows
    only = client.get("/admin/audit", params={"action": "account.login"}).text.split("<tbody>", 1)[1]
    assert "account.login" in only and "accounts.invite" not in only


def test_the_audit_page_pages_through_a_long_trail(newsletter):
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    for n in range(60):
        audit.note(newsletter, Actor(owner), Action.EXPORT_PERSON, f"person{n}@example.net")
    client = logged_in(newsletter, owner)
    first = client.get("/admin/audit", params={"action": "people.export"}).text
    assert "person59@example.net" in first and "person9@example.net" not in first and 'rel="next"' in first
    second = client.get("/admin/audit", params={"action": "people.export", "offset": "50"}).text
    assert "person9@example.net" in second and 'rel="prev"' in second


def test_the_audit_export_is_a_csv_of_the_filtered_lines_and_is_itself_audited(newsletter):
    owner = add_staff(newsletter, "owner@example.org", Role.OWNER)
    audit.note(newsletter, Actor(owner, "203.0.113.5"), Action.ERASE_PERSON, "gone@example.net", "lists=asp-daily")
    client = logged_in(newsletter, owner)
    response = client.get("/admin/audit.csv", params={"action": "people.erase"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["actor"], r["action"], r["target"], r["detail"], r["ip"]) for r in rows] == [
        ("owner@example.org", "people.erase", "gone@example.net", "lists=asp-daily", "203.0.113.5")]
    (line,) = audit.lines(newsletter, action="audit.export").lines
    assert line.actor == "owner@example.org" and line.detail == "action=people.erase"
