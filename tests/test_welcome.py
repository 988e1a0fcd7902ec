"""Welcome and catch-up mail (`routine.welcome`): planned from confirmations, sent once
through the one message builder, retried, counted; on SQLite and PostgreSQL against the
recording SMTP server with an injected clock."""

from __future__ import annotations

import re

import pytest
from conftest import REPO
from population import populate

from newsletter.people import subscriptions
from newsletter.people.consent import ConsentContext
from newsletter.routine.welcome import count_personal_mail, plan_personal_mail, send_personal_mail
from newsletter.sending.launch import launch, prepare_send
from newsletter.sending.options import SendOptions
from newsletter.statuses import Channel
from newsletter.tokens import Purpose

FORM = ConsentContext(channel=Channel.FORM, ip="203.0.113.7", user_agent="test", source="website-footer")
EXAMPLES = REPO / "examples" / "asp23"


def join(newsletter, email, language, *, name="Reader"):
    """Sign up and confirm through the visitor's use cases; returns the person's key."""
    record = subscriptions.record_signup(newsletter, email, name, language, ["asp-daily"], FORM)
    token = newsletter.token(Purpose.CONFIRM, record.due.subscriber_key, language=language)
    assert subscriptions.confirm(newsletter, token, FORM) == ["asp-daily"]
    return record.due.subscriber_key


def write_welcome(folder, language, subject, body):
    folder.mkdir(exist_ok=True)
    (folder / f"asp-daily.{language}.md").write_text(f"---\nsubject: {subject}\n---\n{body}\n", encoding="utf-8")


@pytest.fixture
def welcoming(newsletter, tmp_path):
    folder = tmp_path / "welcome"
    write_welcome(folder, "en", "Welcome to the ASP daily summaries",
                  "Each evening of a session you get **one mail** with the day's news.")
    write_welcome(folder, "fr", "Bienvenue aux résumés quotidiens de l'AEP",
                  "Chaque soir de session, vous recevez **un courriel** avec les nouvelles du jour.")
    newsletter.config = newsletter.config.with_changes(welcome_dir=str(folder), catch_up="off")
    populate(newsletter.store, 0, now=newsletter.clock())  # the list, in en, fr, es, ar
    newsletter.clock.advance(days=3)  # the population is not new
    return newsletter


def test_a_welcome_in_the_readers_language_once(welcoming, smtp_server):
    newsletter = welcoming
    join(newsletter, "ana@example.org", "fr", name="Ana")
    join(newsletter, "rosa@example.org", "es", name="Rosa")  # no Spanish welcome: the list's chain
    assert plan_personal_mail(newsletter) == 2
    assert plan_personal_mail(newsletter) == 0
    assert send_personal_mail(newsletter).sent == 2
    assert plan_personal_mail(newsletter) == 0 and send_personal_mail(newsletter).sent == 0
    [ana] = smtp_server.to("ana@example.org")
    [rosa] = smtp_server.to("rosa@example.org")
    assert ana["Subject"] == "Bienvenue aux résumés quotidiens de l'AEP" and ana["Content-Language"] == "fr"
    assert rosa["Subject"] == "Welcome to the ASP daily summaries" and rosa["Content-Language"] == "en"
    assert "List-Unsubscribe" in ana and "List-Unsubscribe-Post" in ana and "Precedence" not in ana
    html = ana.get_body(("html",)).get_content()
    assert "<strong>un courriel</strong>" in html and "/unsubscribe/" in html
    assert count_personal_mail(newsletter) == {"welcome": {"sent": 2}}


def test_no_welcome_unless_it_is_written(newsletter, smtp_server, tmp_path):
    newsletter.config = newsletter.config.with_changes(welcome_dir=str(tmp_path / "nowhere"), catch_up="off")
    populate(newsletter.store, 0, now=newsletter.clock())
    join(newsletter, "ana@example.org", "fr")
    assert plan_personal_mail(newsletter) == 0 and send_personal_mail(newsletter).sent == 0
    assert not smtp_server.received


def test_a_deferred_welcome_is_retried_and_a_reader_who_left_is_not_mailed(welcoming, smtp_server, clock):
    newsletter = welcoming
    join(newsletter, "ana@example.org", "fr")
    key = join(newsletter, "omar@example.org", "ar")
    smtp_server.fail_rcpt["ana@example.org"] = ["451 4.3.0 mailbox busy"]
    plan_personal_mail(newsletter)
    subscriptions.unsubscribe_by_token(newsletter, newsletter.token(Purpose.UNSUBSCRIBE, key, list_slug="asp-daily"),
                                       ConsentContext(channel=Channel.LINK))
    first = send_personal_mail(newsletter)
    assert (first.sent, first.deferred, first.skipped) == (0, 1, 1)
    assert send_personal_mail(newsletter).deferred == 0  # not due yet
    clock.advance(minutes=5)
    assert send_personal_mail(newsletter).sent == 1
    assert len(smtp_server.to("ana@example.org")) == 1 and not smtp_server.to("omar@example.org")
    assert count_personal_mail(newsletter) == {"welcome": {"sent": 1, "skipped": 1}}


# ----------------------------------------------------------------------------------- catch-up

def session_days(tmp_path, days, total=6):
    """Days of one session, in every language, from Day 3's text (day number, date and slug changed)."""
    folder = tmp_path / "asp"
    folder.mkdir(exist_ok=True)
    made = {}
    for day in days:
        for path in EXAMPLES.glob("day-3.*.md"):
            text = path.read_text(encoding="utf-8")
            text = re.sub(r"(?m)^slug: asp23-day-3$", f"slug: asp23-day-{day}", text)
            text = re.sub(r"(?m)^day: 3$", f"day: {day}", text)
            text = re.sub(r"(?m)^total_days: 6$", f"total_days: {total}", text)
            (folder / path.name.replace("day-3", f"day-{day}")).write_text(text, encoding="utf-8")
        made[day] = sorted(folder.glob(f"day-{day}.*.md"))
    return made


def send_days(newsletter, clock, made):
    for day, files in made.items():
        launch(newsletter, prepare_send(newsletter, files), SendOptions(concurrency=2, idle_poll=3600.0))
        clock.advance(days=1)


def test_a_reader_who_confirms_on_day_4_gets_days_1_to_3_in_arabic_once(newsletter, smtp_server, clock, tmp_path):
    populate(newsletter.store, 4, now=clock())
    clock.advance(hours=1)
    send_days(newsletter, clock, session_days(tmp_path, [1, 2, 3]))
    assert len(smtp_server.received) == 12
    join(newsletter, "layla@example.org", "ar", name="Layla")
    assert plan_personal_mail(newsletter) == 1 and plan_personal_mail(newsletter) == 0
    assert send_personal_mail(newsletter).sent == 1
    assert len(smtp_server.received) == 13  # nobody else got anything
    [mail] = smtp_server.to("layla@example.org")
    assert mail["Content-Language"] == "ar" and mail["Subject"] == "ASP 23، ما فاتك: الأيام من 1 إلى 3"
    html = mail.get_body(("html",)).get_content()
    assert all(f"اليوم {n} من 6" in html for n in (1, 2, 3)) and "انضممت إلينا خلال ASP 23" in html
    assert "List-Unsubscribe" in mail and mail["Precedence"] == "bulk"
    assert count_personal_mail(newsletter) == {"catch-up": {"sent": 1}}


def test_the_latest_day_only_and_none_once_the_session_is_over(newsletter, smtp_server, clock, tmp_path):
    newsletter.config = newsletter.config.with_changes(catch_up="latest")
    populate(newsletter.store, 2, now=clock())
    clock.advance(hours=1)
    made = session_days(tmp_path, [1, 2, 3], total=3)
    send_days(newsletter, clock, {1: made[1], 2: made[2]})
    join(newsletter, "ana@example.org", "fr")
    assert plan_personal_mail(newsletter) == 1 and send_personal_mail(newsletter).sent == 1
    [mail] = smtp_server.to("ana@example.org")
    assert mail["Subject"] == "ASP 23, ce que vous avez manqué : jour 2"
    send_days(newsletter, clock, {3: made[3]})  # the last day: the session is over
    join(newsletter, "rosa@example.org", "es")
    assert plan_personal_mail(newsletter) == 0 and send_personal_mail(newsletter).sent == 0
    assert not smtp_server.to("rosa@example.org")
