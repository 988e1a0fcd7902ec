"""Lists managed after they are made: renamed, described, shown or hidden, archived, deleted; and
their names and descriptions per language, as readers see them on the sign-up form, in the
confirmation mail, on the preferences page and in the archive."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from newsletter.cli import main
from newsletter.errors import InvalidField, ListArchived, UnknownList
from newsletter.people import lists, subscriptions
from newsletter.people.importer import ImportOptions, import_csv
from newsletter.people.rules import ConsentContext
from newsletter.sending.launch import plan_send
from newsletter.statuses import Channel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from newsletter.app import create_app

FORM = ConsentContext(channel=Channel.FORM, source="website-footer")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def newsletter(newsletter, clock):
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"],
                          description="One summary for each day of the session.", now=clock())
        lists.create_list(session, "alerts", "Campaign alerts", languages=["en", "fr"], now=clock())
    return newsletter.__class__(newsletter.config.with_changes(signup_per_ip_per_hour=0, signup_min_seconds=0),
                                newsletter.store, clock=clock)


def in_french(newsletter):
    subscriptions.rename_list(newsletter, "asp-daily", "Résumés quotidiens de l'AEP", language="fr")
    subscriptions.describe_list(newsletter, "asp-daily", "Un résumé de chaque journée de la session.", language="fr")
    subscriptions.rename_list(newsletter, "asp-daily", "ملخصات يومية", language="ar")


def confirm_link(mail) -> str:
    return re.search(r"/confirm/(\S+)", mail.get_body(("plain",)).get_content()).group(1)


def test_renaming_and_describing_in_a_language_keeps_the_lists_own(newsletter):
    in_french(newsletter)
    summary = subscriptions.rename_list(newsletter, "asp-daily", "ASP daily digests")
    assert summary.name == "ASP daily digests" and summary.description == "One summary for each day of the session."
    assert summary.translations == {"fr": {"name": "Résumés quotidiens de l'AEP",
                                           "description": "Un résumé de chaque journée de la session."},
                                    "ar": {"name": "ملخصات يومية"}}
    assert subscriptions.rename_list(newsletter, "asp-daily", "", language="ar").translations.keys() == {"fr"}
    with pytest.raises(InvalidField, match="language"):
        subscriptions.rename_list(newsletter, "asp-daily", "x", language="de")
    with pytest.raises(InvalidField, match="needs a name"):
        subscriptions.rename_list(newsletter, "asp-daily", "  ")
    with pytest.raises(UnknownList):
        subscriptions.describe_list(newsletter, "nope", "x")


def test_readers_see_the_list_in_their_language_on_the_form_and_in_the_confirmation(newsletter, smtp_server, clock):
    in_french(newsletter)
    french = {c.slug: c for c in subscriptions.public_lists(newsletter, "fr")}
    assert (french["asp-daily"].name, french["asp-daily"].description) == (
        "Résumés quotidiens de l'AEP", "Un résumé de chaque journée de la session.")
    assert french["alerts"].name == "Campaign alerts"  # no translation: its own name
    assert {c.slug: c.name for c in subscriptions.public_lists(newsletter, "es")}["asp-daily"] == "ASP daily summaries"
    with TestClient(create_app(newsletter)) as client:
        page = BeautifulSoup(client.get("/subscribe?lang=fr").text, "html.parser")
        labels = [label.get_text(strip=True) for label in page.select("label[for^=list-]")]
        assert "Résumés quotidiens de l'AEP" in labels and "ASP daily summaries" not in labels
        assert "ملخصات يومية" in client.get("/subscribe?lang=ar").text
    subscriptions.subscribe(newsletter, "jean@example.org", "Jean", "fr", ["asp-daily"], FORM)
    subscriptions.subscribe(newsletter, "amina@example.org", "Amina", "ar", ["asp-daily"], FORM)
    subscriptions.subscribe(newsletter, "ana@example.org", "Ana", "es", ["asp-daily"], FORM)
    assert "Résumés quotidiens de l'AEP" in smtp_server.to("jean@example.org")[0].get_body(("plain",)).get_content()
    assert "ملخصات يومية" in smtp_server.to("amina@example.org")[0].get_body(("plain",)).get_content()
    assert "ASP daily summaries" in smtp_server.to("ana@example.org")[0].get_body(("plain",)).get_content()


def test_the_preferences_page_and_the_archive_name_the_list_in_the_readers_language(newsletter, smtp_server, clock):
    from test_web import add_campaign

    in_french(newsletter)
    subscriptions.subscribe(newsletter, "jean@example.org", "Jean", "fr", ["asp-daily"], FORM)
    subscriptions.confirm(newsletter, confirm_link(smtp_server.to("jean@example.org")[0]),
                          ConsentContext(channel=Channel.LINK))
    add_campaign(newsletter, clock, "asp-daily", "asp23-day-3", sorted(EXAMPLES.glob("asp23/day-3.*.md")))
    with newsletter.store.session() as session:
        from newsletter.people import consent
        key = consent.find_subscriber(session, "jean@example.org").key
    from newsletter.tokens import Purpose
    with TestClient(create_app(newsletter)) as client:
        prefs = client.get(f"/preferences/{newsletter.token(Purpose.PREFERENCES, key, language='fr')}")
        labels = [label.get_text(strip=True) for label in
                  BeautifulSoup(prefs.text, "html.parser").select("label[for^=list-]")]
        assert "Résumés quotidiens de l'AEP" in labels
        def headings(lang):
            page = BeautifulSoup(client.get(f"/archive?lang={lang}").text, "html.parser")
            return [h.get_text(strip=True) for h in page.select("h2[id^=list-]")]

        assert headings("fr") == ["Résumés quotidiens de l'AEP"] and headings("en") == ["ASP daily summaries"]


def test_a_private_list_leaves_the_form_and_a_public_one_comes_back(newsletter):
    assert {c.slug for c in subscriptions.public_lists(newsletter)} == {"asp-daily", "alerts"}
    assert not subscriptions.set_list_public(newsletter, "alerts", False).public
    assert {c.slug for c in subscriptions.public_lists(newsletter)} == {"asp-daily"}
    with pytest.raises(UnknownList):
        subscriptions.record_signup(newsletter, "a@example.org", "", "en", ["alerts"], FORM)
    subscriptions.record_signup(newsletter, "a@example.org", "", "en", ["alerts"], FORM, public_only=False)
    subscriptions.set_list_public(newsletter, "alerts", True)
    assert {c.slug for c in subscriptions.public_lists(newsletter)} == {"asp-daily", "alerts"}


def test_an_archived_list_keeps_its_subscriptions_and_takes_nobody_new(newsletter, config, tmp_path, clock):
    subscriptions.record_signup(newsletter, "a@example.org", "", "en", ["alerts", "asp-daily"], FORM)
    summary = subscriptions.archive_list(newsletter, "alerts")
    assert summary.archived_at == clock() and summary.counts["pending"] == 1
    assert {c.slug for c in subscriptions.public_lists(newsletter)} == {"asp-daily"}
    with pytest.raises(UnknownList) as refused:  # the public form says no more than of a list that never was
        subscriptions.record_signup(newsletter, "b@example.org", "", "en", ["alerts"], FORM)
    assert not isinstance(refused.value, ListArchived)
    with pytest.raises(ListArchived):
        subscriptions.record_signup(newsletter, "b@example.org", "", "en", ["alerts"], FORM, public_only=False)
    path = tmp_path / "people.csv"
    path.write_text("email,lists\nc@example.org,alerts\n")
    with pytest.raises(ListArchived):
        import_csv(newsletter, path, ImportOptions(list_slugs=("alerts",)))
    assert import_csv(newsletter, path, ImportOptions(list_slugs=("asp-daily",))).rejected == 1  # its lists cell
    with newsletter.store.session() as session, pytest.raises(ListArchived):
        plan_send(session, newsletter.config, "asp23-defend-the-court", "alerts", ["en"])
    assert [s.list for s in subscriptions.person(newsletter, "a@example.org").subscriptions] == ["alerts", "asp-daily"]
    back = subscriptions.archive_list(newsletter, "alerts", archived=False)
    assert back.archived_at is None and "alerts" in {c.slug for c in subscriptions.public_lists(newsletter)}


def test_deleting_a_list_deletes_its_subscriptions_and_says_so_in_each_consent_log(newsletter, clock):
    for email in ("a@example.org", "b@example.org"):
        subscriptions.record_signup(newsletter, email, "", "en", ["alerts", "asp-daily"], FORM)
    subscriptions.unsubscribe_address(newsletter, "b@example.org", ConsentContext(channel=Channel.LINK), "alerts")
    clock.advance(hours=1)
    deleted = subscriptions.delete_list(newsletter, "alerts", ConsentContext(channel=Channel.ADMIN, source="cli"))
    assert deleted.subscriptions == {"pending": 1, "unsubscribed": 1}
    assert "alerts" not in {s.slug for s in subscriptions.list_summaries(newsletter)}
    with pytest.raises(UnknownList):
        subscriptions.list_summary(newsletter, "alerts")
    a = subscriptions.person(newsletter, "a@example.org")
    assert [s.list for s in a.subscriptions] == ["asp-daily"]
    assert (a.consent_log[-1].event, a.consent_log[-1].note) == ("unsubscribed",
                                                                 "the list alerts (Campaign alerts) was deleted")
    b = subscriptions.person(newsletter, "b@example.org")
    assert [e.event for e in b.consent_log].count("unsubscribed") == 1  # had left already: no second line
    # The consent log still names it, so the slug is not given to another list.
    with newsletter.store.session() as session, pytest.raises(InvalidField, match="was deleted"):
        lists.create_list(session, "alerts", "Other alerts", now=clock())
    # A list nothing ever named goes altogether.
    with newsletter.store.session() as session:
        lists.create_list(session, "typo-list", "Made by mistake", now=clock())
    assert subscriptions.delete_list(newsletter, "typo-list").subscriptions == {}
    with newsletter.store.session() as session:
        lists.create_list(session, "typo-list", "Made again", now=clock())


def test_cli_manages_lists(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    run("init")
    run("lists", "create", "asp-daily", "ASP daily summaries")
    run("lists", "create", "alerts", "Campaign alerts")
    assert "in fr: Résumés quotidiens" in run("lists", "rename", "asp-daily", "Résumés quotidiens", "--language", "fr")
    assert "Un résumé par jour" in run("lists", "describe", "asp-daily", "Un résumé par jour", "--language", "fr")
    assert "public: no" in run("lists", "private", "alerts")
    assert "(not public)" in run("lists")
    assert "public: yes" in run("lists", "public", "alerts")
    run("subscribe", "a@example.org", "--list", "alerts")
    assert "archived; its 0 active and 1 pending subscriptions are kept" in run("lists", "archive", "alerts")
    assert "(archived)" in run("lists")
    refused = runner.invoke(main, ["subscribe", "b@example.org", "--list", "alerts"])
    assert refused.exit_code == 1 and "the list 'alerts' is archived" in refused.output
    assert "back" in run("lists", "archive", "alerts", "--undo")
    out = run("lists", "delete", "alerts", "--yes")
    assert "deleted the list alerts (Campaign alerts); its subscriptions were deleted (1 pending)" in out
    assert "alerts" not in run("lists")
