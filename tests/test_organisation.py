"""The organisation as configured, in each language: the consent text names it, pages and mail
show its name in the reader's language; and a templates_dir holding only what it changes."""

from __future__ import annotations

import re
import warnings

import pytest
from bs4 import BeautifulSoup
from conftest import REPO

from newsletter.config import load_config
from newsletter.errors import ConfigError
from newsletter.installation import Newsletter
from newsletter.people import lists, subscriptions
from newsletter.people.rules import ConsentContext
from newsletter.statuses import Channel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from newsletter.app import create_app

FORM = ConsentContext(channel=Channel.FORM)
NAMES = (("ar", "شبكة العدالة الدولية"), ("fr", "Réseau pour la justice internationale"))


def installation(config, store, clock, **changes) -> Newsletter:
    newsletter = Newsletter(config.with_changes(signup_per_ip_per_hour=0, **changes), store, clock=clock)
    with store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"], now=clock())
    return newsletter


def test_the_consent_text_and_the_pages_name_the_configured_organisation(config, sqlite_store, clock):
    newsletter = installation(config, sqlite_store, clock, organisation_name="International Justice Network",
                              organisation_names=NAMES)
    with TestClient(create_app(newsletter)) as client:
        def page(lang):
            return BeautifulSoup(client.get(f"/subscribe?lang={lang}").text, "html.parser")

        english, french, arabic, spanish = page("en"), page("fr"), page("ar"), page("es")
        assert "we, International Justice Network, send you" in english.find(class_="consent-text").get_text()
        assert "Coalition" not in english.find(class_="consent-text").get_text()
        assert "nous, Réseau pour la justice internationale, vous envoyions" in french.find(class_="consent-text").get_text()
        assert "شبكة العدالة الدولية" in arabic.find(class_="consent-text").get_text()
        assert "International Justice Network" in spanish.find(class_="consent-text").get_text()  # no Spanish name
        assert french.find(class_="org").get_text(strip=True) == "Réseau pour la justice internationale"
        assert english.find(class_="org").get_text(strip=True) == "International Justice Network"


def test_the_confirmation_mail_names_the_organisation_in_the_readers_language(config, sqlite_store, clock, smtp_server):
    newsletter = installation(config, sqlite_store, clock, organisation_names=NAMES)
    subscriptions.subscribe(newsletter, "jean@example.org", "Jean", "fr", ["asp-daily"], FORM)
    subscriptions.subscribe(newsletter, "ana@example.org", "Ana", "es", ["asp-daily"], FORM)
    [jean] = smtp_server.to("jean@example.org")
    assert "Réseau pour la justice internationale" in jean["Subject"]
    assert "Réseau pour la justice internationale" in jean.get_body(("plain",)).get_content()
    [ana] = smtp_server.to("ana@example.org")
    assert config.organisation_name in ana.get_body(("plain",)).get_content()


def test_a_templates_dir_may_hold_only_the_templates_it_changes(config, sqlite_store, clock, smtp_server, tmp_path):
    custom = tmp_path / "our-templates"
    (custom / "email").mkdir(parents=True)
    shipped = (REPO / "templates" / "email" / "confirm.txt").read_text(encoding="utf-8")
    (custom / "email" / "confirm.txt").write_text("Our own words first.\n" + shipped, encoding="utf-8")
    newsletter = installation(config, sqlite_store, clock, templates_dir=str(custom))
    with TestClient(create_app(newsletter)) as client:
        page = client.get("/subscribe?lang=fr")
        assert page.status_code == 200 and "Abonnez-vous" in page.text  # shipped page, shipped French catalogue
        assert client.get("/static/" + re.search(r'/static/([^"]+\.css)', page.text).group(1)).status_code == 200
    subscriptions.subscribe(newsletter, "jean@example.org", "Jean", "fr", ["asp-daily"], FORM)
    [mail] = smtp_server.to("jean@example.org")
    text = mail.get_body(("plain",)).get_content()
    assert text.startswith("Our own words first.") and "/confirm/" in text
    assert mail["Subject"].startswith("Veuillez confirmer")  # the shipped subject, translated


def test_settings_for_the_organisation_and_templates_are_checked(tmp_path):
    toml = tmp_path / "newsletter.toml"
    toml.write_text('organisation_name = "IJN"\n[organisation_names]\nfr = "Réseau"\nar = "شبكة"\n', encoding="utf-8")
    config = load_config(toml, environ={})
    assert (config.organisation_in("fr"), config.organisation_in("ar"), config.organisation_in("es")) == (
        "Réseau", "شبكة", "IJN")
    assert load_config(toml, environ={"NEWSLETTER_ORGANISATION_NAMES": '{"es": "Red"}'}).organisation_in("es") == "Red"
    toml.write_text('[organisation_names]\nde = "Netzwerk"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="organisation_names: de"):
        load_config(toml, environ={})
    toml.write_text('templates_dir = "nowhere"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="templates_dir"):
        load_config(toml, environ={})
