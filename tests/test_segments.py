"""Segments: the expression language (a real parser; never SQL), its checks against the
installation, what it names on SQLite and PostgreSQL, and a segment send to aiosmtpd."""

from __future__ import annotations

import email
from email import policy

import pytest
from click.testing import CliRunner
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from population import populate
from sqlalchemy import func, select

from newsletter.attributes import parse_attribute_specs
from newsletter.errors import CampaignStateError, SegmentError, UnknownSegment
from newsletter.installation import Newsletter
from newsletter.people import lists, profiles, segments
from newsletter.segment_language import And, Condition, IsSet, Not, Or, parse_expression
from newsletter.sending.launch import launch, prepare_send
from newsletter.sending.options import SendOptions
from newsletter.statuses import CampaignStatus
from newsletter.store import Subscriber
from newsletter.store import segments as stored

SPECS = parse_attribute_specs({
    "organisation": {"type": "text", "organisation": True},
    "country": {"type": "country"},
    "role": {"type": "choice", "choices": ["focal-point", "press", "staff"]},
    "staff_count": {"type": "integer"},
    "ratified": {"type": "boolean"},
    "joined_on": {"type": "date"},
})
DAY_3 = sorted((REPO / "examples" / "asp23").glob("day-3.*.md"))
#: person index -> attributes (people 0..11 on asp-daily; languages cycle en, fr, es, ar)
PEOPLE = {
    0: {"country": "SN", "role": "focal-point", "organisation": "Ligue sénégalaise", "staff_count": 12},
    1: {"country": "SN", "role": "press", "organisation": "Ligue sénégalaise"},
    2: {"country": "CI", "role": "focal-point", "organisation": "Observatoire ivoirien", "ratified": True},
    3: {"country": "EG", "role": "press", "joined_on": "2004-05-01"},
    4: {"country": "AR", "role": "staff", "staff_count": 3, "ratified": False},
    5: {"country": "FR", "organisation": "Ligue française", "joined_on": "1999-02-11"},
    6: {"country": "ML", "role": "focal-point"},
    7: {},
    8: {"country": "CD", "role": "press", "staff_count": 40},
    9: {"country": "KE"},
    10: {"role": "staff"},
    11: {"country": "SN", "ratified": True},
}


@pytest.fixture
def newsletter(config, store, clock):
    n = Newsletter(config.with_changes(attributes=SPECS), store, clock=clock)
    populate(n.store, 12, now=clock())
    with n.store.session() as session:
        lists.create_list(session, "press", "Press releases", languages=["en", "fr"], now=clock())
    populate(n.store, 0, now=clock(), list_slug="press")
    for i, values in PEOPLE.items():
        if values:
            profiles.set_attributes(n, address(i), values)
    return n


def address(i: int) -> str:
    return f"person{i:06d}@example.org"


def named(newsletter, expression: str, list_slug: str | None = None) -> set[int]:
    with newsletter.store.session() as session:
        checked = segments.check_expression(session, newsletter.config, expression)
        list_id = lists.get_list(session, list_slug).id if list_slug else None
        found = stored.matching_addresses(session, list_id=list_id, segment=checked)
    return {int(a[6:12]) for a in found}


# -- the language -------------------------------------------------------------------------------

def test_precedence_not_binds_tightest_then_and_then_or():
    tree = parse_expression('list = asp-daily and not role = press or country in ("SN", CI)')
    assert tree == Or((And((Condition("list", "=", ("asp-daily",), 1), Not(Condition("role", "=", ("press",), 26)))),
                       Condition("country", "in", ("SN", "CI"), 42)))
    assert parse_expression("NOT (Role Is Not Set)") == Not(IsSet("role", True, 6))
    assert parse_expression("staff_count >= -3 and ratified = TRUE") == And((
        Condition("staff_count", ">=", (-3,), 1), Condition("ratified", "=", (True,), 23)))
    assert parse_expression(r'organisation = "Ligue \"LSDH\"" and country not in (SN)').items[1] == Condition(
        "country", "not in", ("SN",), 37)


@pytest.mark.parametrize("text, column, words", [
    ('country = "FR"; DROP TABLE subscribers; --', 15, "unexpected character ';'"),
    ("country = 'FR' OR 1=1", 19, "expected a field"),
    ("role = press' --", 13, "this string is not closed"),
    ("country = ", 11, "found the end"),
    ("country in (SN, CI", 19, "expected ',' or ')'"),
    ("list = asp-daily and", 21, "expected a field"),
    ("(role = press", 14, "expected ')'"),
    ("role == press", 7, "expected a value"),
    ("role press", 6, "expected a comparison"),
    ("role is empty", 9, "expected 'set'"),
    ("role = press country = SN", 14, "expected 'and', 'or' or the end"),
    ("   ", 1, "the expression is empty"),
    ("role = press; SELECT 1", 13, "unexpected character ';'"),
    ("role = `press`", 8, "unexpected character '`'"),
    ("not " * 40 + "role = press", 129, "nested more than 32 deep"),
])
def test_a_malformed_expression_says_where_and_what(text, column, words):
    with pytest.raises(SegmentError) as caught:
        parse_expression(text)
    assert caught.value.column == column and words in caught.value.reason, caught.value.reason


def test_a_very_long_expression_is_refused():
    with pytest.raises(SegmentError, match="longer than 2000"):
        parse_expression(" or ".join(["role = press"] * 200))


SQLISH = st.sampled_from([
    "'", '"', ";", "--", "/*", "*/", "DROP TABLE subscribers", "OR 1=1", "1=1", "UNION SELECT email FROM subscribers",
    "role", "country", "list", "language", "=", "!=", "<", ">=", "in", "not", "and", "or", "is", "set", "(", ")", ",",
    "press", "SN", "asp-daily", "fr", "12", "true", "\\", "%", "_", "$.x", "attributes", "json_extract(", "||",
    "subscribers.email", "' OR '1'='1", '" OR ""="', "\x00", "é", "🙂", " ",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(SQLISH, min_size=1, max_size=12).map(" ".join))
def test_sql_thrown_at_a_segment_is_refused_or_stays_a_value(sqlite_store, config, clock, text):
    """Whatever the text, it is refused with a SegmentError saying where, or it is a filter whose
    every value travels as a bound parameter: running it changes nothing and the SQL text holds
    none of the expression's strings."""
    newsletter = Newsletter(config.with_changes(attributes=SPECS), sqlite_store, clock=clock)
    with newsletter.store.session() as session:
        try:
            checked = segments.check_expression(session, newsletter.config, text)
        except SegmentError as exc:
            assert exc.reason and 1 <= exc.column <= len(text) + 1
            return
        clause = stored.filter_clause(checked)
        sql = str(clause.compile(dialect=sqlite_store.engine.dialect))
        for value in _values(checked.tree):
            if isinstance(value, str) and len(value) > 2:
                assert value not in sql
        stored.matching_addresses(session, list_id=None, segment=checked)
        assert session.scalar(select(func.count()).select_from(Subscriber)) is not None


def _values(tree):
    if isinstance(tree, Condition):
        return list(tree.values)
    if isinstance(tree, IsSet):
        return []
    if isinstance(tree, Not):
        return _values(tree.item)
    return [v for item in tree.items for v in _values(item)]


# -- checked against the installation -------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("shoe_size = 42", "there is no field 'shoe_size' (fields: list, language, organisation, country"),
    ("list = asp-weekly", "there is no list 'asp-weekly'"),
    ("language = de", "'de' is not one of the languages en, fr, es, ar"),
    ("country = Atlantis", "country: 'Atlantis' is not an ISO 3166 country"),
    ("role = minister", "role: 'minister' is not one of focal-point, press, staff"),
    ("role > press", "role is choice: compare it with =, != or in, not >"),
    ("ratified in (true)", "ratified is yes or no"),
    ("staff_count = many", "staff_count: 'many' is not a whole number"),
    ("list is set", "'list' is always set"),
    ("language < fr", "language takes =, !=, in and not in"),
    ("country = ''", "compare with a value"),
])
def test_what_the_installation_does_not_have_is_refused_clearly(newsletter, text, words):
    with newsletter.store.session() as session, pytest.raises(SegmentError) as caught:
        segments.check_expression(session, newsletter.config, text)
    assert words in str(caught.value)


# -- what a segment names (SQLite and PostgreSQL) ----------------------------------------------------

@pytest.mark.parametrize("text, people", [
    ("country = SN", {0, 1, 11}),
    ("country = Senegal or country = 'CIV'", {0, 1, 2, 11}),
    ("country in (SN, CI, ML, CD) and role = focal-point", {0, 2, 6}),
    ("country != SN", set(range(12)) - {0, 1, 11}),  # the people without a country too
    ("not country = SN", set(range(12)) - {0, 1, 11}),
    ("country not in (SN, CI)", set(range(12)) - {0, 1, 2, 11}),
    ("role is not set", {5, 7, 9, 11}),
    ("organisation is set and not role = press", {0, 2, 5}),
    ("staff_count >= 10", {0, 8}),
    ("staff_count < 10", {4}),
    ("ratified = true", {2, 11}),
    ("ratified != true", set(range(12)) - {2, 11}),
    ("joined_on < '2000-01-01'", {5}),
    ("language in (fr, ar) and country is set", {1, 3, 5, 9, 11}),
    ("language = es", {2, 6, 10}),
    ("list = asp-daily", set(range(12))),
    ("list = press", set()),
    ("list != press and role = staff", {4, 10}),
])
def test_a_segment_names_exactly_whom_it_says(newsletter, text, people):
    assert named(newsletter, text) == people


def test_saved_segments_are_created_checked_listed_shown_and_deleted(newsletter):
    segments.create_segment(newsletter, "francophone-africa", "country in (SN, CI, ML, CD) and language = fr",
                            description="Focal points and members in francophone Africa")
    with pytest.raises(SegmentError):
        segments.create_segment(newsletter, "broken", "country = Narnia")
    with pytest.raises(Exception, match="exists already"):
        segments.create_segment(newsletter, "francophone-africa", "country = SN")
    segments.create_segment(newsletter, "francophone-africa", "country in (SN, CI, ML, CD)", replace=True)
    assert [s.name for s in segments.list_segments(newsletter)] == ["francophone-africa"]
    info, audience = segments.show_segment(newsletter, "francophone-africa", list_slug="asp-daily", sample=2)
    assert info.description == "Focal points and members in francophone Africa"
    assert audience.total == 6 and audience.by_country == {"SN": 3, "CD": 1, "CI": 1, "ML": 1}
    assert audience.by_language == {"en": 2, "fr": 2, "es": 2} or sum(audience.by_language.values()) == 6
    assert audience.sample == (address(0), address(1))
    segments.delete_segment(newsletter, "francophone-africa")
    with pytest.raises(UnknownSegment):
        segments.show_segment(newsletter, "francophone-africa")


# -- a segment send -------------------------------------------------------------------------------

def test_a_segment_send_reaches_exactly_the_people_it_names(newsletter, smtp_server):
    segments.create_segment(newsletter, "press-africa", "role = press and country in (SN, EG, CD)")
    prepared = prepare_send(newsletter, DAY_3, segment="press-africa")
    plan = prepared.plan
    assert plan.segment == "press-africa" and plan.total == 3
    assert dict(plan.readers) == {"fr": 1, "ar": 1, "en": 1} and dict(plan.countries) == {"CD": 1, "EG": 1, "SN": 1}
    result = launch(newsletter, prepared, SendOptions(concurrency=2, idle_poll=3600.0))
    assert result.status is CampaignStatus.FINISHED and result.counts.sent == 3
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [address(1), address(3), address(8)]
    languages = {r.rcpt_tos[0]: email.message_from_bytes(r.data, policy=policy.default)["Content-Language"]
                 for r in smtp_server.received}
    assert languages[address(3)] == "ar"
    # The campaign keeps the expression it was sent with; changing the segment changes no send.
    segments.create_segment(newsletter, "press-africa", "role = press", replace=True)
    from newsletter.sending import campaigns

    with newsletter.store.session() as session:
        source = campaigns.get_campaign(session, "asp23-day-3").source
    assert (source["segment"], source["expression"]) == ("press-africa", "role = press and country in (SN, EG, CD)")
    # The same issue to the whole list is another audience: it needs another slug.
    with pytest.raises(CampaignStateError, match="started for the segment 'press-africa', not the whole list"):
        launch(newsletter, prepare_send(newsletter, DAY_3), SendOptions(concurrency=2, idle_poll=3600.0))


def test_a_segment_that_names_someone_who_left_does_not_mail_them(newsletter, smtp_server):
    from newsletter.people import subscriptions
    from newsletter.people.rules import ConsentContext
    from newsletter.statuses import Channel

    subscriptions.unsubscribe_address(newsletter, address(0), ConsentContext(channel=Channel.ADMIN))
    segments.create_segment(newsletter, "senegal", "country = SN")
    prepared = prepare_send(newsletter, DAY_3, segment="senegal")
    assert prepared.plan.total == 2
    launch(newsletter, prepared, SendOptions(concurrency=2, idle_poll=3600.0))
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [address(1), address(11)]


# -- the commands ---------------------------------------------------------------------------------

def test_the_segments_commands_and_send_with_a_segment(newsletter, smtp_server, monkeypatch):
    from newsletter import cli

    monkeypatch.setattr(cli.State, "newsletter", lambda self, check_schema=True: newsletter)
    runner = CliRunner()
    made = runner.invoke(cli.main, ["segments", "create", "senegal", "country = SN", "--description", "Senegal"])
    assert made.exit_code == 0, made.output
    listed = runner.invoke(cli.main, ["segments", "list"])
    assert "senegal" in listed.output and "country = SN" in listed.output
    shown = runner.invoke(cli.main, ["segments", "show", "senegal", "--list", "asp-daily"])
    assert "3 active subscriber(s) of asp-daily" in shown.output and "SN (Senegal) 3" in shown.output
    bad = runner.invoke(cli.main, ["segments", "create", "evil", 'country = "SN"; DROP TABLE subscribers; --'])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert "column 15: unexpected character ';'" in bad.output and "\n                ^" in bad.output
    unknown = runner.invoke(cli.main, ["send", *map(str, DAY_3), "--segment", "nobody", "--dry-run"])
    assert unknown.exit_code == 1 and "there is no segment 'nobody'; `newsletter segments list`" in unknown.output
    dry = runner.invoke(cli.main, ["send", *map(str, DAY_3), "--segment", "senegal", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "segment senegal (country = SN)" in dry.output and "total 3" in dry.output
    assert "per country: SN (Senegal) 3" in dry.output and not smtp_server.received
    deleted = runner.invoke(cli.main, ["segments", "delete", "senegal"])
    assert deleted.exit_code == 0 and runner.invoke(cli.main, ["segments", "list"]).output.strip() == "no segments yet"


def test_a_paused_segment_campaign_resumes_with_its_own_expression_after_the_segment_is_gone(newsletter,
                                                                                              smtp_server):
    from newsletter.sending import campaigns
    from newsletter.sending.launch import prepare_resume

    segments.create_segment(newsletter, "senegal", "country = SN")
    prepared = prepare_send(newsletter, DAY_3, segment="senegal")
    with newsletter.store.session() as session:
        campaigns.start_campaign(session, prepared.slug, "asp-daily", now=newsletter.clock(),
                                 source={"files": list(prepared.files), "segment": "senegal",
                                         "expression": "country = SN"},
                                 languages=prepared.plan.variant_of, segment=prepared.segment, segment_name="senegal")
        campaigns.pause_campaign(session, prepared.slug, "paused by a test")
    segments.delete_segment(newsletter, "senegal")
    resumed = prepare_resume(newsletter, prepared.slug)
    assert (resumed.plan.segment, resumed.plan.expression, resumed.plan.total) == ("senegal", "country = SN", 3)
    result = launch(newsletter, resumed, SendOptions(concurrency=2, idle_poll=3600.0))
    assert result.counts.sent == 3
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [address(0), address(1), address(11)]
