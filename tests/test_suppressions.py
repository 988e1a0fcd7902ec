"""The suppression list seen, lifted and imported; an address lifted may opt in again; `show`
on an erased address says so."""

from __future__ import annotations

import re
from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from newsletter.cli import main
from newsletter.errors import InvalidField, NotSuppressed, SuppressedAddress, UnknownSubscriber
from newsletter.people import consent, lists, subscriptions, suppressions
from newsletter.people.rules import ConsentContext
from newsletter.statuses import Channel, SuppressionReason
from newsletter.store import BounceScore, SuppressionLift

FORM = ConsentContext(channel=Channel.FORM, ip="203.0.113.9", source="website-footer")


@pytest.fixture
def newsletter(newsletter, clock):
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"], now=clock())
    return newsletter


def sign_up_and_confirm(newsletter, smtp_server, email: str) -> list[str]:
    """Sign up through the double opt-in and follow the link mailed; the lists confirmed."""
    before = len(smtp_server.to(email))
    result = subscriptions.subscribe(newsletter, email, "", "en", ["asp-daily"], FORM)
    if result.confirmation is None:
        return []
    mails = smtp_server.to(email)
    assert len(mails) == before + 1
    token = re.search(r"/confirm/(\S+)", mails[-1].get_body(("plain",)).get_content()).group(1)
    return subscriptions.confirm(newsletter, token, ConsentContext(channel=Channel.LINK))


def standing(newsletter, email: str) -> str:
    return subscriptions.person(newsletter, email).subscriptions[0].status


def test_the_list_shows_reasons_dates_and_the_address_when_a_person_has_it(newsletter, smtp_server, clock):
    assert sign_up_and_confirm(newsletter, smtp_server, "kofi@example.net") == ["asp-daily"]
    with newsletter.store.session() as session:
        consent.suppress(session, "kofi@example.net", SuppressionReason.HARD_BOUNCE, now=clock(),
                         note="550 5.1.1 user unknown")
    clock.advance(days=1)
    subscriptions.erase(newsletter, "gone@example.org")
    lines = suppressions.list_suppressions(newsletter)
    assert [(line.address, line.reason) for line in lines] == [(None, "erased"), ("kofi@example.net", "hard_bounce")]
    assert lines[1].note == "550 5.1.1 user unknown" and lines[0].at > lines[1].at
    assert suppressions.count_suppressions(newsletter) == {"erased": 1, "hard_bounce": 1}
    assert [line.reason for line in suppressions.list_suppressions(newsletter, reason=SuppressionReason.ERASED)] == \
        ["erased"]


def test_an_erased_address_can_opt_in_again_once_lifted(newsletter, smtp_server, clock):
    assert sign_up_and_confirm(newsletter, smtp_server, "ana@example.org") == ["asp-daily"]
    subscriptions.erase(newsletter, "ana@example.org")
    clock.advance(hours=1)
    assert sign_up_and_confirm(newsletter, smtp_server, "ana@example.org") == []  # suppressed: no mail at all
    lifted = suppressions.lift(newsletter, "Ana@Example.org", "erased by mistake: she asked for her data, not erasure")
    assert (lifted.reason, lifted.person_kept) == ("erased", False)
    clock.advance(hours=1)
    assert sign_up_and_confirm(newsletter, smtp_server, "ana@example.org") == ["asp-daily"]
    assert standing(newsletter, "ana@example.org") == "active"
    with newsletter.store.session() as session:
        [kept] = session.scalars(select(SuppressionLift)).all()
    assert kept.reason is SuppressionReason.ERASED and "asked for her data" in kept.why


def test_a_suppressed_person_lifted_is_mailed_only_after_a_new_confirmed_opt_in(newsletter, smtp_server, clock):
    assert sign_up_and_confirm(newsletter, smtp_server, "kofi@example.net") == ["asp-daily"]
    with newsletter.store.session() as session:
        kofi = consent.find_subscriber(session, "kofi@example.net")
        session.add(BounceScore(subscriber_id=kofi.id, score=5, last_counted_on=date(2026, 11, 22),
                                last_bounce_at=clock()))
        consent.suppress(session, "kofi@example.net", SuppressionReason.SOFT_BOUNCES, now=clock())
    clock.advance(hours=1)
    lifted = suppressions.lift(newsletter, "kofi@example.net", "his mailbox is fixed", ConsentContext(
        channel=Channel.ADMIN, source="cli"))
    assert lifted.person_kept
    record = subscriptions.person(newsletter, "kofi@example.net")
    assert record.status == "active" and standing(newsletter, "kofi@example.net") == "unsubscribed"
    assert (record.consent_log[-1].event, record.consent_log[-1].channel) == ("lifted", "admin")
    assert "soft_bounces" in record.consent_log[-1].note and "his mailbox is fixed" in record.consent_log[-1].note
    with newsletter.store.session() as session:
        assert session.get(BounceScore, record_id(session, "kofi@example.net")) is None
    clock.advance(hours=1)
    assert sign_up_and_confirm(newsletter, smtp_server, "kofi@example.net") == ["asp-daily"]
    assert standing(newsletter, "kofi@example.net") == "active"


def record_id(session, email: str) -> int:
    return consent.find_subscriber(session, email).id


def test_lifting_needs_a_reason_and_a_suppression(newsletter):
    subscriptions.erase(newsletter, "gone@example.org")
    with pytest.raises(InvalidField, match="reason"):
        suppressions.lift(newsletter, "gone@example.org", "  ")
    with pytest.raises(NotSuppressed):
        suppressions.lift(newsletter, "never@example.org", "no reason to")
    assert suppressions.count_suppressions(newsletter) == {"erased": 1}


def test_showing_an_erased_address_says_it_was_erased(newsletter, clock):
    subscriptions.erase(newsletter, "gone@example.org")
    with pytest.raises(SuppressedAddress) as shown:
        subscriptions.person(newsletter, "Gone@example.org")
    assert "was erased on 2026-11-23" in str(shown.value) and isinstance(shown.value, UnknownSubscriber)
    with pytest.raises(UnknownSubscriber) as unknown:
        subscriptions.person(newsletter, "never@example.org")
    assert not isinstance(unknown.value, SuppressedAddress)


def test_importing_a_suppression_list(newsletter, smtp_server, tmp_path):
    assert sign_up_and_confirm(newsletter, smtp_server, "ana@example.org") == ["asp-daily"]
    subscriptions.erase(newsletter, "gone@example.org")
    path = tmp_path / "unsubscribed.csv"
    path.write_text("Email Address,status\nana@example.org,\ngone@example.org,\nnot-an-address,\n"
                    "amina@example.org,cleaned\nANA@example.org,\n", encoding="utf-8")
    dry = suppressions.import_suppressions(newsletter, path, reason=SuppressionReason.UNSUBSCRIBED, dry_run=True)
    assert (dry.added, dry.already, dry.people) == (2, 2, 1)
    assert standing(newsletter, "ana@example.org") == "active"
    report = suppressions.import_suppressions(newsletter, path, reason=SuppressionReason.UNSUBSCRIBED)
    assert (report.rows, report.added, report.already, report.people) == (5, 2, 2, 1)
    assert [(r.line, r.email) for r in report.rejected] == [(4, "not-an-address")]
    reasons = {line.address_hash[:8]: line.reason for line in suppressions.list_suppressions(newsletter)}
    assert sorted(reasons.values()) == ["erased", "hard_bounce", "unsubscribed"]
    ana = subscriptions.person(newsletter, "ana@example.org")
    assert ana.status == "suppressed" and standing(newsletter, "ana@example.org") == "unsubscribed"
    assert ana.consent_log[-1].source == "import:unsubscribed.csv"
    assert sign_up_and_confirm(newsletter, smtp_server, "amina@example.org") == []


def test_cli_suppressions_list_lift_import_and_show(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner()
    runner.invoke(main, ["init"])
    runner.invoke(main, ["lists", "create", "asp-daily", "ASP daily summaries"])
    assert runner.invoke(main, ["suppressions"]).output.strip() == "no suppressions"
    runner.invoke(main, ["erase", "gone@example.org", "--yes"])
    (tmp_path / "cleaned.csv").write_text("email\nbounced@example.org\n", encoding="utf-8")
    imported = runner.invoke(main, ["suppressions", "import", "cleaned.csv", "--reason", "hard_bounce"])
    assert imported.exit_code == 0 and "suppressed                  1" in imported.output, imported.output
    listed = runner.invoke(main, ["suppressions", "list"]).output
    assert "2 suppressed: 1 erased, 1 hard_bounce" in listed and "(hash " in listed and "cleaned.csv" in listed
    shown = runner.invoke(main, ["show", "gone@example.org"])
    assert shown.exit_code == 1 and "it was erased on" in shown.output and "Traceback" not in shown.output
    refused = runner.invoke(main, ["suppressions", "lift", "gone@example.org"])
    assert refused.exit_code == 2 and "--reason" in refused.output
    lifted = runner.invoke(main, ["suppressions", "lift", "gone@example.org", "--reason", "erased by mistake"])
    assert lifted.exit_code == 0 and "is lifted" in lifted.output and "may sign up again" in lifted.output
    again = runner.invoke(main, ["suppressions", "lift", "gone@example.org", "--reason", "twice"])
    assert again.exit_code == 1 and "is not suppressed" in again.output and "suppressions list" in again.output
