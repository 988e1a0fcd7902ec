"""Typed subscriber attributes: declared in the configuration, checked, stored, imported,
exported, filled in by sign-ups and changed by staff and by the person."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from newsletter.attributes import AttributeType, check_attributes, check_value, parse_attribute_specs
from newsletter.config import load_config
from newsletter.errors import ConfigError, InvalidField
from newsletter.installation import Newsletter
from newsletter.people import lists, profiles, subscriptions
from newsletter.people.csvrows import RejectReason
from newsletter.people.importer import ImportOptions, import_csv
from newsletter.people.rules import ConsentContext
from newsletter.statuses import Channel
from newsletter.tokens import Purpose

DECLARED = {
    "organisation": {"type": "text", "columns": ["organization", "member organisation"], "organisation": True},
    "country": {"type": "country", "signup": True, "preferences": True},
    "role": {"type": "choice", "choices": ["focal-point", "press", "staff"], "preferences": True},
    "staff_count": {"type": "integer", "min": 0, "max": 100000},
    "ratified": {"type": "boolean"},
    "joined_on": {"type": "date", "label": "Member since"},
}
SPECS = parse_attribute_specs(DECLARED)
CTX = ConsentContext(channel=Channel.FORM, ip="192.0.2.7", user_agent="test", source="signup-form")


@pytest.fixture
def newsletter(config, store, clock):
    n = Newsletter(config.with_changes(attributes=SPECS), store, clock=clock)
    with n.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr"], now=clock())
    return n


def by_name(name):
    return next(s for s in SPECS if s.name == name)


# -- declaring and checking ---------------------------------------------------------------------

def test_specs_keep_their_order_type_and_options():
    assert [s.name for s in SPECS] == list(DECLARED)
    assert by_name("joined_on").label == "Member since" and by_name("staff_count").label == "Staff count"
    assert by_name("role").type is AttributeType.CHOICE and by_name("role").choices == ("focal-point", "press", "staff")
    assert by_name("organisation").columns == ("organization", "member organisation")


@pytest.mark.parametrize("table, words", [
    ({"x": {"type": "colour"}}, "type must be one of"),
    ({"x": {"type": "choice"}}, "needs choices"),
    ({"x": {"type": "text", "widget": "big"}}, "unknown key(s) widget"),
    ({"email": {"type": "text"}}, "an attribute name is"),
    ({"Bad Name": {"type": "text"}}, "an attribute name is"),
    ({"x": {"type": "integer", "min": "zero"}}, "min must be a whole number"),
    ({"x": "text"}, "must be a table"),
    ({"a": {"type": "text", "organisation": True}, "b": {"type": "text", "organisation": True}}, "only one"),
])
def test_a_bad_declaration_names_the_attribute_and_what_is_wrong(table, words):
    with pytest.raises(ConfigError) as caught:
        parse_attribute_specs(table)
    assert words in str(caught.value) and caught.value.key == "attributes"


@pytest.mark.parametrize("name, raw, stored", [
    ("country", "fr", "FR"), ("country", "FRA", "FR"), ("country", "France", "FR"), ("country", " ar ", "AR"),
    ("role", "Press", "press"), ("staff_count", " 12 ", 12), ("staff_count", 7, 7),
    ("ratified", "yes", True), ("ratified", "non", False), ("ratified", False, False),
    ("joined_on", "2002-07-01", "2002-07-01"), ("organisation", "  Red de Abogadas  ", "Red de Abogadas"),
    ("organisation", "", None), ("country", None, None),
])
def test_values_are_stored_in_one_form(name, raw, stored):
    assert check_value(by_name(name), raw) == stored


@pytest.mark.parametrize("name, raw, words", [
    ("country", "Narnia", "is not an ISO 3166 country"), ("role", "minister", "is not one of focal-point"),
    ("staff_count", "twelve", "is not a whole number"), ("staff_count", "-1", "less than 0"),
    ("staff_count", True, "is not a whole number"), ("ratified", "perhaps", "is not yes or no"),
    ("joined_on", "01/07/2002", "YYYY-MM-DD"), ("organisation", "a\x00b", "control characters"),
    ("organisation", "x" * 201, "longer than 200"), ("organisation", 5, "is not text"),
])
def test_a_refused_value_says_which_attribute_and_why(name, raw, words):
    with pytest.raises(InvalidField) as caught:
        check_value(by_name(name), raw)
    assert caught.value.field == name and words in caught.value.reason


def test_an_attribute_not_declared_is_refused():
    with pytest.raises(InvalidField, match="there is no attribute 'shoe_size'"):
        check_attributes(SPECS, {"country": "FR", "shoe_size": "42"})


@given(st.text(max_size=40))
def test_a_country_is_a_known_code_or_refused(text):
    try:
        code = check_value(by_name("country"), text)
    except InvalidField:
        return
    assert code is None or (len(code) == 2 and code.isupper())


def test_the_configuration_file_and_the_environment_declare_attributes(tmp_path):
    path = tmp_path / "newsletter.toml"
    path.write_text('[attributes.country]\ntype = "country"\nsignup = true\n\n'
                    '[attributes.role]\ntype = "choice"\nchoices = ["press", "staff"]\n', encoding="utf-8")
    config = load_config(path, environ={})
    assert [(a.name, a.type.value, a.signup) for a in config.attributes] == [("country", "country", True),
                                                                              ("role", "choice", False)]
    env = {"NEWSLETTER_ATTRIBUTES": json.dumps({"region": {"type": "text"}})}
    assert [a.name for a in load_config(path, environ=env).attributes] == ["region"]
    path.write_text('[attributes.role]\ntype = "choice"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="attributes.role: a choice attribute needs choices"):
        load_config(path, environ={})


# -- stored: sign-ups, staff, the person ----------------------------------------------------------

def test_a_sign_up_fills_in_attributes_but_never_overwrites_them(newsletter):
    subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "es", ["asp-daily"], CTX,
                                attributes={"country": "Argentina"})
    assert profiles.attributes_of(newsletter, "ana@example.org") == {"country": "AR"}
    # Anyone can post the form for any address: a second sign-up adds what is missing, changes nothing.
    subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "es", ["asp-daily"], CTX,
                                attributes={"country": "FR", "role": "press"}, public_only=False)
    assert profiles.attributes_of(newsletter, "ana@example.org") == {"country": "AR", "role": "press"}
    # The public form takes only the attributes it offers (signup = true).
    with pytest.raises(InvalidField, match="there is no attribute 'role' \\(known: country\\)"):
        subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "es", ["asp-daily"], CTX,
                                    attributes={"role": "staff"})


def test_a_sign_up_with_a_bad_attribute_records_nothing(newsletter):
    with pytest.raises(InvalidField) as caught:
        subscriptions.record_signup(newsletter, "bea@example.org", "Bea", "en", ["asp-daily"], CTX,
                                    attributes={"country": "Atlantis"})
    assert caught.value.field == "country"
    assert subscriptions.subscription_lines(newsletter) == []


def test_staff_set_and_remove_attributes_and_a_bad_value_changes_nothing(newsletter):
    subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "es", ["asp-daily"], CTX)
    assert profiles.set_attributes(newsletter, "ana@example.org", {"country": "AR", "staff_count": "4"}) == {
        "country": "AR", "staff_count": 4}
    with pytest.raises(InvalidField):
        profiles.set_attributes(newsletter, "ana@example.org", {"country": "CL", "staff_count": "many"})
    assert profiles.set_attributes(newsletter, "ana@example.org", {"country": ""}) == {"staff_count": 4}
    record = subscriptions.person(newsletter, "ana@example.org").as_json()
    assert record["attributes"] == {"staff_count": 4}


def test_the_preferences_page_changes_only_attributes_declared_editable_there(newsletter):
    subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "es", ["asp-daily"], CTX)
    from newsletter.store import people as people_store
    with newsletter.store.session() as session:
        key = people_store.find_subscriber(session, "ana@example.org").key
    token = newsletter.token(Purpose.PREFERENCES, key)
    subscriptions.save_preferences(newsletter, token, CTX, language="es", list_slugs=["asp-daily"], name="Ana",
                                   attributes={"country": "CL", "role": "press"})
    assert subscriptions.preferences(newsletter, token).attributes == {"country": "CL", "role": "press"}
    with pytest.raises(InvalidField, match="staff_count"):
        subscriptions.save_preferences(newsletter, token, CTX, language="es", list_slugs=["asp-daily"], name="Ana",
                                       attributes={"staff_count": "3"})


# -- import and export ---------------------------------------------------------------------------

def test_an_import_reads_attribute_columns_and_rejects_a_bad_cell_by_line(newsletter, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text("email,name,Member Organisation,country,role,notes\n"
                    "ana@example.org,Ana Ruiz,Red de Abogadas,AR,focal-point,met at ASP\n"
                    "jean@example.org,Jean Diallo,Ligue sénégalaise,Senegal,,\n"
                    "kim@example.org,Kim Lee,,Atlantis,press,\n", encoding="utf-8")
    report = import_csv(newsletter, path, ImportOptions(list_slugs=("asp-daily",), confirmed=True,
                                                        consent_note="members' register 2026"))
    assert report.imported == 2 and report.rejected == 1
    assert dict(report.columns.attributes) == {"organisation": 2, "country": 3, "role": 4}
    assert report.columns.ignored == ("notes",)
    [bad] = report.rejected_rows
    assert (bad.line, bad.reason) == (4, RejectReason.INVALID_ATTRIBUTE) and bad.detail.startswith("country:")
    assert profiles.attributes_of(newsletter, "ana@example.org") == {
        "organisation": "Red de Abogadas", "country": "AR", "role": "focal-point"}
    assert profiles.attributes_of(newsletter, "jean@example.org") == {"organisation": "Ligue sénégalaise",
                                                                      "country": "SN"}
    # An import is staff: a second file's values replace the stored ones; empty cells leave them.
    path.write_text("email,country\nana@example.org,CL\njean@example.org,\n", encoding="utf-8")
    import_csv(newsletter, path, ImportOptions(list_slugs=("asp-daily",), confirmed=True, consent_note="fix"))
    assert profiles.attributes_of(newsletter, "ana@example.org")["country"] == "CL"
    assert profiles.attributes_of(newsletter, "jean@example.org")["country"] == "SN"

    header = profiles.export_header(newsletter)
    assert header == ("email", "name", "language", "list", "status", *DECLARED)
    rows = {row[0]: dict(zip(header, row)) for row in profiles.export_lines(newsletter)}
    assert rows["ana@example.org"]["organisation"] == "Red de Abogadas" and rows["ana@example.org"]["ratified"] == ""
    assert rows["jean@example.org"]["country"] == "SN"


def test_the_export_command_writes_attribute_columns_that_import_back(newsletter, tmp_path, monkeypatch):
    subscriptions.record_signup(newsletter, "ana@example.org", "Ana", "es", ["asp-daily"], CTX,
                                attributes={"country": "AR"})
    profiles.set_attributes(newsletter, "ana@example.org", {"ratified": "yes", "organisation": "=cmd"})
    from newsletter import cli

    monkeypatch.setattr(cli.State, "newsletter", lambda self, check_schema=True: newsletter)
    result = CliRunner().invoke(cli.main, ["export"])
    assert result.exit_code == 0, result.output
    [header, row] = list(csv.reader(io.StringIO(result.output)))
    values = dict(zip(header, row))
    assert values["country"] == "AR" and values["ratified"] == "yes" and values["organisation"] == "'=cmd"
    shown = CliRunner().invoke(cli.main, ["attributes", "ana@example.org", "role=staff"])
    assert shown.exit_code == 0 and "role" in shown.output and "staff" in shown.output
    logged = subscriptions.consent_events(newsletter, "ana@example.org")[-1]  # the CLI's change is in the log
    assert (logged.event, logged.channel, logged.source, logged.note) == ("preferences", "admin", "cli",
                                                                         "attributes: role=staff")
    refused = CliRunner().invoke(cli.main, ["attributes", "ana@example.org", "role=minister"])
    assert refused.exit_code == 1 and "role: 'minister' is not one of" in refused.output
    assert "Traceback" not in refused.output
