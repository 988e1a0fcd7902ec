"""Reach in member organisations: before a send, the organisations and countries it reaches in
a language they read; after it, the organisations with no reachable contact left — from the
ledger and the people's standing, on SQLite and PostgreSQL, with a real SMTP server refusing one."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import REPO
from population import populate

from newsletter.attributes import parse_attribute_specs
from newsletter.installation import Newsletter
from newsletter.people import consent, profiles, subscriptions
from newsletter.people.rules import ConsentContext
from newsletter.sending.launch import launch, prepare_send
from newsletter.sending.options import SendOptions
from newsletter.sending.reach import Reach, campaign_reach
from newsletter.statuses import Channel, SuppressionReason

SPECS = parse_attribute_specs({"organisation": {"type": "text", "organisation": True},
                               "country": {"type": "country"}})
DAY_4 = sorted((REPO / "examples" / "asp23").glob("day-4.*.md"))  # en, fr and ar: Spanish readers get a fallback
#: person index -> (organisation, country); languages cycle en, fr, es, ar
PEOPLE = {0: ("Ligue sénégalaise", "SN"), 1: ("Ligue sénégalaise", "SN"), 2: ("Abogadas por la Justicia", "AR"),
          3: ("Cairo Institute", "EG"), 4: ("Kenya Section", "KE"), 5: ("Kenya Section", "FR"),
          6: ("Abogadas por la Justicia", "AR"), 8: ("Grands Lacs", "CD")}


def address(i: int) -> str:
    return f"person{i:06d}@example.org"


@pytest.fixture
def newsletter(config, store, clock):
    n = Newsletter(config.with_changes(attributes=SPECS), store, clock=clock)
    populate(n.store, 12, now=clock())
    for i, (organisation, country) in PEOPLE.items():
        profiles.set_attributes(n, address(i), {"organisation": organisation, "country": country})
    return n


def test_before_a_send_organisations_and_countries_reached_in_a_language_they_read(newsletter):
    plan = prepare_send(newsletter, DAY_4).plan
    assert plan.variant_of["es"] != "es"
    assert plan.reach == Reach(organisations=5, organisations_in_their_language=4, countries=6,
                               countries_in_their_language=5,
                               only_in_another_language=("Abogadas por la Justicia",))


def test_without_the_attributes_there_is_no_reach_to_count(config, store, clock):
    newsletter = Newsletter(config, store, clock=clock)
    populate(newsletter.store, 3, now=clock())
    assert prepare_send(newsletter, DAY_4).plan.reach is None


def test_after_a_send_the_organisations_left_with_no_reachable_contact(newsletter, smtp_server, clock):
    smtp_server.fail_rcpt[address(8)] = "550 5.1.1 No such user"
    result = launch(newsletter, prepare_send(newsletter, DAY_4), SendOptions(concurrency=2, idle_poll=3600.0))
    assert result.counts.sent == 11 and result.counts.failed == 1
    subscriptions.unsubscribe_address(newsletter, address(3), ConsentContext(channel=Channel.LINK))
    with newsletter.store.session() as session:  # a hard bounce, as bounces.rules records it
        consent.suppress(session, address(4), SuppressionReason.HARD_BOUNCE, now=clock())
    lost, total = campaign_reach(newsletter, "asp23-day-4")
    assert total == 5
    assert [(o.organisation, o.countries, o.contacts, o.unsubscribed, o.suppressed, o.failed) for o in lost] == [
        ("Cairo Institute", ("EG",), 1, 1, 0, 0),
        ("Grands Lacs", ("CD",), 1, 0, 1, 0),  # a 550 at RCPT is a hard bounce: suppressed
    ]
    # Kenya Section lost one contact to a bounce and keeps the other: it is still reached.
    with newsletter.store.session() as session:
        consent.suppress(session, address(5), SuppressionReason.COMPLAINT, now=clock())
    lost, _ = campaign_reach(newsletter, "asp23-day-4")
    assert [o.organisation for o in lost] == ["Cairo Institute", "Grands Lacs", "Kenya Section"]
    assert lost[2].suppressed == 2 and lost[2].countries == ("FR", "KE")
    assert lost[1].contacts == 1 and not lost[1].reachable


def test_the_send_and_the_reach_commands_print_it(newsletter, smtp_server, monkeypatch):
    from newsletter import cli

    monkeypatch.setattr(cli.State, "newsletter", lambda self, check_schema=True: newsletter)
    runner = CliRunner()
    dry = runner.invoke(cli.main, ["send", *map(str, DAY_4), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert ("reaches 5 member organisation(s), 4 in a language they read; 6 countr(y/ies), 5 in a language they "
            "read") in dry.output
    assert "only in another language: Abogadas por la Justicia" in dry.output
    smtp_server.fail_rcpt[address(8)] = "550 5.1.1 No such user"
    assert runner.invoke(cli.main, ["send", *map(str, DAY_4), "--yes"]).exit_code == 0
    shown = runner.invoke(cli.main, ["campaign", "reach", "asp23-day-4"])
    assert shown.exit_code == 0, shown.output
    assert "1 of 5 member organisation(s) have no reachable contact left" in shown.output
    assert "Grands Lacs (CD): 1 contact(s): 0 unsubscribed, 1 bounced, complained or blocked, 0 failed" in shown.output


def test_the_plan_counts_in_one_pass_what_each_count_of_its_own_counts(newsletter, clock):
    """The plan's readers, countries and reach, grouped in one statement, are what the counts of
    their own give — with a suppressed reader (a subscription still active, the person not) and
    a segment."""
    from newsletter.people.lists import languages_in_use
    from newsletter.people.segments import check_expression, country_counts, language_counts
    from newsletter.sending.launch import plan_send
    from newsletter.sending.reach import reach_of

    with newsletter.store.session() as session:
        consent.suppress(session, address(1), SuppressionReason.HARD_BOUNCE, now=clock())
    config = newsletter.config
    with newsletter.store.session() as session:
        list_id = consent.find_subscriber(session, address(0)).subscriptions[0].list_id
        for expression in (None, "country in (SN, AR, KE)"):
            checked = check_expression(session, config, expression) if expression else None
            plan = plan_send(session, config, "asp23-day-4", "asp-daily", ["en", "fr", "ar"],
                             segment=("s", expression, checked) if expression else None)
            readers = (languages_in_use(session, "asp-daily") if checked is None
                       else language_counts(session, checked, list_id=list_id))
            assert dict(plan.readers) == readers
            assert dict(plan.countries) == country_counts(session, config, checked, list_id=list_id)
            assert list(plan.countries) == list(country_counts(session, config, checked, list_id=list_id))
            assert plan.reach == reach_of(session, config, list_id=list_id, segment=checked,
                                          variant_of=plan.variant_of)
        assert plan.countries and plan.reach.organisations
