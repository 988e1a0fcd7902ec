"""The optional attribute fields on the sign-up form and the preferences page, over HTTP."""

from __future__ import annotations

import warnings

import pytest
from bs4 import BeautifulSoup
from test_attributes import SPECS
from test_web import active_person, csrf_of, form_token, make_newsletter
from test_web import add_lists as add_web_lists

from newsletter.people import profiles
from newsletter.tokens import Purpose

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from newsletter.app import create_app


@pytest.fixture
def newsletter(config, store, clock):
    n = make_newsletter(config, store, clock, trusted_proxies=("10.0.0.0/8",), signup_per_ip_per_hour=0,
                        attributes=SPECS)
    add_web_lists(n, clock)
    return n


@pytest.fixture
def client(newsletter):
    with TestClient(create_app(newsletter), client=("10.1.2.3", 40000)) as c:
        yield c


def test_the_form_offers_only_sign_up_attributes_with_countries_named_in_its_language(client, clock):
    soup = BeautifulSoup(client.get("/subscribe?lang=fr").text, "html.parser")
    names = [s["name"] for s in soup.find_all(["input", "select"]) if s.get("name", "").startswith("attr_")]
    assert names == ["attr_country"]
    options = {o["value"]: o.text for o in soup.find("select", {"name": "attr_country"}).find_all("option")}
    assert options["DE"] == "Allemagne" and options["CI"] == "Côte d’Ivoire" and options[""] == ""
    es = BeautifulSoup(client.get("/subscribe?lang=es").text, "html.parser")
    assert es.find("option", {"value": "DE"}).text == "Alemania"


def test_a_sign_up_keeps_its_country_and_ignores_attributes_the_form_does_not_offer(newsletter, client, clock):
    data = {"form_token": form_token(client, clock), "email": "awa@example.org", "name": "Awa", "language": "fr",
            "lists": ["asp-daily"], "website": "", "attr_country": "SN", "attr_role": "staff"}
    assert client.post("/subscribe", data=data).status_code == 200
    assert profiles.attributes_of(newsletter, "awa@example.org") == {"country": "SN"}


def test_a_bad_country_gets_the_form_back_with_the_field_marked(newsletter, client, clock):
    data = {"form_token": form_token(client, clock), "email": "awa@example.org", "lists": ["asp-daily"],
            "website": "", "attr_country": "Atlantis"}
    answer = client.post("/subscribe", data=data)
    assert answer.status_code == 422
    soup = BeautifulSoup(answer.text, "html.parser")
    assert soup.find("select", {"name": "attr_country"})["aria-invalid"] == "true"
    assert "Atlantis" in soup.find(id="form-error").text


def test_a_json_sign_up_gives_attributes_in_an_object(newsletter, client, clock):
    answer = client.post("/subscribe", json={"email": "li@example.org", "lists": ["asp-daily"],
                                             "attributes": {"country": "China"}})
    assert answer.status_code == 200, answer.text
    assert profiles.attributes_of(newsletter, "li@example.org") == {"country": "CN"}
    refused = client.post("/subscribe", json={"email": "mo@example.org", "lists": ["asp-daily"],
                                              "attributes": {"role": "press"}})
    assert refused.status_code == 422 and refused.json()["field"] == "role"


def test_the_preferences_page_edits_its_attributes(newsletter, client, clock, smtp_server):
    key = active_person(newsletter, client, clock, smtp_server, lists=("asp-daily",))
    token = newsletter.token(Purpose.PREFERENCES, key)
    page = client.get(f"/preferences/{token}")
    soup = BeautifulSoup(page.text, "html.parser")
    assert [s["name"] for s in soup.find_all("select") if s["name"].startswith("attr_")] == ["attr_country",
                                                                                           "attr_role"]
    saved = client.post(f"/preferences/{token}", data={"csrf": csrf_of(page.text), "language": "en",
                                                       "lists": ["asp-daily"], "attr_country": "KE",
                                                       "attr_role": "press"})
    assert saved.status_code == 200
    assert profiles.attributes_of(newsletter, "ana@example.org") == {"country": "KE", "role": "press"}
    again = BeautifulSoup(saved.text, "html.parser")
    assert again.find("select", {"name": "attr_country"}).find("option", selected=True)["value"] == "KE"
    cleared = client.post(f"/preferences/{token}", data={"csrf": csrf_of(saved.text), "language": "en",
                                                         "lists": ["asp-daily"], "attr_country": "",
                                                         "attr_role": "press"})
    assert cleared.status_code == 200
    assert profiles.attributes_of(newsletter, "ana@example.org") == {"role": "press"}
