"""Session series (`routine.series`): a session's days as "Day N of M", the archive grouped by
session, and readers who take the daily summaries as one digest after the last day — on the
form, the preferences page and in the ledger; SQLite and PostgreSQL, recording SMTP server."""

from __future__ import annotations

import warnings

import pytest
from bs4 import BeautifulSoup
from population import populate
from test_web import add_lists, csrf_of, link_token, sign_up
from test_welcome import join, send_days, session_days

from newsletter.errors import InvalidField, UnknownList
from newsletter.routine import series
from newsletter.routine.welcome import (
    count_personal_mail,
    plan_personal_mail,
    send_personal_mail,
)
from newsletter.statuses import CampaignStatus, DeliveryMode
from newsletter.tokens import Purpose

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from newsletter.app import create_app


def test_a_session_lists_its_days_as_day_n_of_m(newsletter, smtp_server, clock, tmp_path):
    populate(newsletter.store, 2, now=clock())
    made = series.create_session(newsletter, "asp23", "ASP 23", "asp-daily", venue="World Forum, The Hague",
                                 zone="Europe/Amsterdam", first_day="2024-12-02", last_day="2024-12-07")
    assert made.total_days == 6 and made.days == ()
    clock.advance(hours=1)
    send_days(newsletter, clock, session_days(tmp_path, [1, 2]))
    [view] = series.list_sessions(newsletter, "asp-daily")
    assert [(d.number, d.total, d.slug, d.status) for d in view.days] == [
        (1, 6, "asp23-day-1", CampaignStatus.FINISHED), (2, 6, "asp23-day-2", CampaignStatus.FINISHED)]
    assert series.archive_groups(newsletter, "asp-daily", ["asp23-day-2", "other"]) == {
        "asp23-day-2": ("ASP 23", "World Forum, The Hague, 2024-12-02 – 2024-12-07")}


@pytest.mark.parametrize("changes, field", [
    ({"slug": "ASP 23"}, "slug"), ({"name": " "}, "name"), ({"zone": "Hague/Centre"}, "time zone"),
    ({"first_day": "2 December"}, "first day"), ({"last_day": "2024-12-01"}, "last day"),
])
def test_a_bad_session_is_refused(newsletter, clock, changes, field):
    populate(newsletter.store, 0, now=clock())
    args = {**dict(slug="asp23", name="ASP 23", list_slug="asp-daily", zone="Europe/Amsterdam",
                   first_day="2024-12-02", last_day="2024-12-07"), **changes}
    with pytest.raises(InvalidField) as refused:
        series.create_session(newsletter, args.pop("slug"), args.pop("name"), args.pop("list_slug"), **args)
    assert refused.value.field == field
    assert series.list_sessions(newsletter) == []


def test_a_session_name_taken_and_an_unknown_list(newsletter, clock):
    populate(newsletter.store, 0, now=clock())
    series.create_session(newsletter, "asp23", "ASP 23", "asp-daily", zone="Europe/Amsterdam",
                          first_day="2024-12-02", last_day="2024-12-07")
    with pytest.raises(InvalidField, match="exists already"):
        series.create_session(newsletter, "asp23", "ASP 23", "asp-daily", zone="Europe/Amsterdam",
                              first_day="2024-12-02", last_day="2024-12-07")
    with pytest.raises(UnknownList):
        series.create_session(newsletter, "asp24", "ASP 24", "nowhere", zone="Europe/Amsterdam",
                              first_day="2025-12-01", last_day="2025-12-06")


def test_a_digest_reader_gets_one_mail_after_the_last_day_and_no_daily_ones(newsletter, smtp_server, clock,
                                                                            tmp_path):
    daily = populate(newsletter.store, 4, now=clock())
    clock.advance(hours=1)
    key = join(newsletter, "omar@example.org", "ar", name="Omar")
    series.choose_delivery_for(newsletter, key, ["asp-daily"], DeliveryMode.DIGEST)
    clock.advance(hours=1)
    made = session_days(tmp_path, [1, 2, 3], total=3)
    send_days(newsletter, clock, {1: made[1], 2: made[2]})
    assert plan_personal_mail(newsletter) == 0  # the session is not over, and no catch-up for a digest reader
    send_days(newsletter, clock, {3: made[3]})
    assert not smtp_server.to("omar@example.org")
    assert all(len(smtp_server.to(address)) == 3 for address in daily)
    assert plan_personal_mail(newsletter) == 1 and plan_personal_mail(newsletter) == 0
    assert send_personal_mail(newsletter).sent == 1
    [digest] = smtp_server.to("omar@example.org")
    assert digest["Subject"] == "ASP 23: الأيام من 1 إلى 3" and digest["Content-Language"] == "ar"
    html = digest.get_body(("html",)).get_content()
    assert all(f"اليوم {n} من 3" in html for n in (1, 2, 3)) and "انضممت" not in html
    assert len(smtp_server.received) == 13
    assert count_personal_mail(newsletter) == {"digest": {"sent": 1}}


# ------------------------------------------------------------------------------- the visitor pages

@pytest.fixture
def client(newsletter, clock):
    newsletter.config = newsletter.config.with_changes(trusted_proxies=("10.0.0.0/8",), signup_per_ip_per_hour=0)
    add_lists(newsletter, clock)
    with TestClient(create_app(newsletter), client=("10.1.2.3", 40000)) as c:
        yield c


def _confirm(client, smtp_server, email):
    token = link_token(smtp_server.to(email)[-1], "confirm")
    page = client.get(f"/confirm/{token}")
    assert client.post(f"/confirm/{token}", data={"csrf": csrf_of(page.text)}).status_code == 200


def test_the_signup_form_takes_the_digest_choice(newsletter, client, clock, smtp_server, tmp_path):
    form = BeautifulSoup(client.get("/subscribe").text, "html.parser")
    assert form.find("input", {"name": "delivery", "value": "daily"}).has_attr("checked")
    assert sign_up(client, clock, "ana@example.org", delivery="digest").status_code == 200
    assert sign_up(client, clock, "rosa@example.org").status_code == 200
    _confirm(client, smtp_server, "ana@example.org")
    _confirm(client, smtp_server, "rosa@example.org")
    clock.advance(hours=1)
    send_days(newsletter, clock, session_days(tmp_path, [1]))
    assert len(smtp_server.to("rosa@example.org")) == 2  # her confirmation, then Day 1
    assert len(smtp_server.to("ana@example.org")) == 1  # her confirmation only


def test_the_preferences_page_switches_between_daily_and_digest(newsletter, client, clock, smtp_server):
    assert sign_up(client, clock, "ana@example.org").status_code == 200
    _confirm(client, smtp_server, "ana@example.org")
    from test_web import _key
    token = newsletter.token(Purpose.PREFERENCES, _key(newsletter, "ana@example.org"))
    page = client.get(f"/preferences/{token}")
    soup = BeautifulSoup(page.text, "html.parser")
    assert soup.find("input", {"id": "delivery-daily"}).has_attr("checked")
    saved = client.post(f"/preferences/{token}/delivery", data={"csrf": csrf_of(page.text), "delivery": "digest"})
    assert saved.status_code == 200 and "Your preferences are saved." in saved.text
    assert BeautifulSoup(saved.text, "html.parser").find("input", {"id": "delivery-digest"}).has_attr("checked")
    assert series.delivery_of(newsletter, token) is DeliveryMode.DIGEST
    tampered = client.post(f"/preferences/{token}/delivery", data={"csrf": csrf_of(page.text), "delivery": "hourly"})
    assert tampered.status_code == 422 and series.delivery_of(newsletter, token) is DeliveryMode.DIGEST
    refused = client.post(f"/preferences/{token}/delivery", data={"csrf": "forged", "delivery": "daily"})
    assert refused.status_code == 403 and series.delivery_of(newsletter, token) is DeliveryMode.DIGEST


def test_the_archive_groups_a_lists_issues_by_session(newsletter, client, clock, smtp_server, tmp_path):
    populate(newsletter.store, 1, now=clock())
    series.create_session(newsletter, "asp23", "ASP 23", "asp-daily", venue="World Forum, The Hague",
                          zone="Europe/Amsterdam", first_day="2024-12-02", last_day="2024-12-07")
    clock.advance(hours=1)
    send_days(newsletter, clock, session_days(tmp_path, [1, 2]))
    soup = BeautifulSoup(client.get("/archive/asp-daily").text, "html.parser")
    heading = soup.find("h3", string="ASP 23")
    assert heading is not None and "World Forum, The Hague" in heading.find_next("p").text
    assert len(heading.find_next("ul").find_all("li")) == 2


def test_the_sessions_commands(tmp_path, monkeypatch, smtp_server):
    from click.testing import CliRunner

    from newsletter.cli import main

    monkeypatch.chdir(tmp_path)
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    run = lambda *args: CliRunner().invoke(main, list(args))  # noqa: E731
    assert run("init").exit_code == 0 and run("lists", "create", "asp-daily", "ASP daily summaries").exit_code == 0
    assert "no sessions" in run("sessions").output
    made = run("sessions", "add", "asp23", "--name", "ASP 23", "--list", "asp-daily", "--venue", "World Forum",
               "--tz", "Europe/Amsterdam", "--first", "2024-12-02", "--last", "2024-12-07")
    assert made.exit_code == 0 and "session asp23: ASP 23 on asp-daily, 2024-12-02 to 2024-12-07 (6 days)" in made.output
    assert "asp23: ASP 23 (asp-daily) — World Forum, 2024-12-02 to 2024-12-07, 6 day(s)" in run("sessions", "list").output
    wrong = run("sessions", "add", "asp24", "--name", "ASP 24", "--list", "asp-daily", "--tz", "Europe/Amsterdam",
                "--first", "2025-12-06", "--last", "2025-12-01")
    assert wrong.exit_code == 1 and "last day: 2025-12-01 is before the first day 2025-12-06" in wrong.output
