"""Issues written in the workspace (`newsletter.editorial`): revisions, translation state,
round trip with content files, the two-person rule and the send through the one path, on
SQLite and PostgreSQL against the recording SMTP server."""

from __future__ import annotations

import dataclasses
import email
from email import policy

import pytest
from conftest import REPO
from population import populate

from newsletter.editorial import issues, sends
from newsletter.editorial.versions import TranslationState
from newsletter.errors import (
    ApprovalRequired,
    CampaignStateError,
    ContentError,
    DraftExists,
    EditConflict,
    InvalidField,
    UnknownDraft,
    UnknownList,
)
from newsletter.mail.content import load_issue
from newsletter.people import lists
from newsletter.sending import actions
from newsletter.sending.options import SendOptions
from newsletter.statuses import CampaignStatus

DAY_4 = sorted((REPO / "examples" / "asp23").glob("day-4.*.md"))  # en, fr and ar
EXAMPLES = [sorted((REPO / "examples" / "asp23").glob(f"{day}.*.md")) for day in ("day-3", "day-4", "day-5")] + [
    sorted((REPO / "examples" / "alerts").glob("*.md"))]


@pytest.fixture
def newsletter(newsletter, tmp_path):
    installed = newsletter
    installed.config = newsletter.config.with_changes(issues_dir=str(tmp_path / "issues"))
    with installed.store.session() as session:
        for slug in ("asp-daily", "alerts"):
            lists.create_list(session, slug, slug, languages=["en", "fr", "es", "ar"], now=newsletter.clock())
    return installed


def fast(**changes) -> SendOptions:
    return SendOptions(concurrency=2, idle_poll=3600.0, **changes)


def english(view):
    return view.versions["en"]


def test_every_save_is_a_revision_and_a_stale_translation_shows_what_changed(newsletter, clock):
    view = issues.import_files(newsletter, DAY_4, author="editor@example.org")
    assert view.slug == "asp23-day-4" and view.source_language == "en"
    states = {s.language: s.state for s in view.languages}
    assert states == {"en": TranslationState.SOURCE, "fr": TranslationState.CURRENT,
                      "ar": TranslationState.CURRENT, "es": TranslationState.MISSING}
    en = english(view)
    changed = dict(en.front_matter, lead="Cooperation decided the day: states that do not arrest suspects "
                                         "leave victims waiting.\n")
    clock.advance(minutes=5)
    saved = issues.save_version(newsletter, "asp23-day-4", "en", front_matter=changed, body=en.body, parent=en.number,
                                author="editor@example.org")
    assert saved.number == en.number + 1 and saved.based_on is None
    after = issues.show_issue(newsletter, "asp23-day-4")
    fr = after.state_of("fr")
    assert fr.state is TranslationState.STALE and after.state_of("ar").state is TranslationState.STALE
    assert fr.changed_fields == ("lead",)
    assert any(line.sign == "+" and "leave victims waiting" in line.text for line in fr.changes)
    assert any(line.sign == "-" and "Cooperation was the theme" in line.text for line in fr.changes)
    assert [v.number for v in issues.history(newsletter, "asp23-day-4", "en")] == [2, 1]
    # The translator brings French up to date: it is current again, Arabic is still stale.
    fr_version = after.versions["fr"]
    issues.save_version(newsletter, "asp23-day-4", "fr", front_matter=fr_version.front_matter,
                        body=fr_version.body + "\nMerci.", parent=fr_version.number, author="tr@example.org")
    last = issues.show_issue(newsletter, "asp23-day-4")
    assert last.state_of("fr").state is TranslationState.CURRENT
    assert last.state_of("ar").state is TranslationState.STALE
    assert last.versions["fr"].based_on_number == 2


def test_a_translation_made_from_an_older_source_revision_stays_stale(newsletter):
    view = issues.import_files(newsletter, DAY_4)
    first_en = english(view)
    issues.save_version(newsletter, "asp23-day-4", "en", front_matter=dict(first_en.front_matter, subject="Day 4"),
                        body=first_en.body, parent=1)
    fr = view.versions["fr"]
    # The translator had the first English revision open while the editor saved the second.
    issues.save_version(newsletter, "asp23-day-4", "fr", front_matter=fr.front_matter, body=fr.body + " ",
                        parent=fr.number, based_on=first_en.id)
    state = issues.show_issue(newsletter, "asp23-day-4").state_of("fr")
    assert state.state is TranslationState.STALE and state.changed_fields == ("subject",)


def test_bad_input_is_refused_naming_the_field_and_writes_nothing(newsletter):
    view = issues.import_files(newsletter, DAY_4)
    en = english(view)
    broken = dict(en.front_matter, day="four")
    with pytest.raises(ContentError) as caught:
        issues.save_version(newsletter, "asp23-day-4", "en", front_matter=broken, body="", parent=en.number)
    assert caught.value.field == "day"
    with pytest.raises(EditConflict) as conflict:
        issues.save_version(newsletter, "asp23-day-4", "en", front_matter=en.front_matter, body="x", parent=None)
    assert conflict.value.current == 1
    with pytest.raises(InvalidField):
        issues.save_version(newsletter, "asp23-day-4", "de", front_matter=en.front_matter, body="", parent=None)
    with pytest.raises(UnknownDraft):
        issues.show_issue(newsletter, "asp23-day-9")
    with pytest.raises(DraftExists):
        issues.create_issue(newsletter, slug="asp23-day-4", kind="daily-summary", list_slug="asp-daily")
    with pytest.raises(UnknownList):
        issues.create_issue(newsletter, slug="asp23-day-6", kind="daily-summary", list_slug="asp-dialy")
    with pytest.raises(InvalidField) as kind:
        issues.create_issue(newsletter, slug="asp23-day-6", kind="summary", list_slug="asp-daily")
    assert kind.value.field == "kind"
    assert [v.number for v in issues.history(newsletter, "asp23-day-4", "en")] == [1]
    assert [v.slug for v in issues.list_issues(newsletter)] == ["asp23-day-4"]


def test_an_issue_created_from_form_values_is_a_content_file_the_cli_reads(newsletter, tmp_path):
    front = {"subject": "ASP 23, Day 6: what the Assembly decided", "preheader": "Resolutions and the budget.",
             "list_name": "ASP daily summaries", "session": "ASP 23", "day": 6, "total_days": 6,
             "date": "2024-12-07", "venue": "World Forum, The Hague",
             "lead": "The Assembly closed with the budget adopted and the resolutions passed.",
             "highlights": ["The budget for 2025 was adopted.", "Dear {{ name }}, thank you for following us."]}
    view = issues.create_issue(newsletter, slug="asp23-day-6", kind="daily-summary", list_slug="asp-daily",
                               front_matter=front, body="See you at ASP 24.", author="editor@example.org")
    assert view.state_of("en").state is TranslationState.SOURCE
    files = issues.export_files(newsletter, "asp23-day-6", tmp_path / "out")
    assert [f.name for f in files] == ["asp23-day-6.en.md"]
    loaded = load_issue(files)
    fields = loaded.variants["en"].fields
    assert fields.day == 6 and str(fields.date) == "2024-12-07" and fields.highlights[1].startswith("Dear [[nl:")
    assert "date: 2024-12-07\n" in files[0].read_text()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda files: files[0].name.split(".")[0])
def test_import_then_export_is_identical_in_meaning(newsletter, tmp_path, example):
    view = issues.import_files(newsletter, example)
    out = issues.export_files(newsletter, view.slug, tmp_path / "out")
    before, after = load_issue(example), load_issue(out)
    assert before.slug == after.slug and before.languages == after.languages
    for language in before.languages:
        assert dataclasses.replace(before.variants[language], path="") == \
               dataclasses.replace(after.variants[language], path="")
    # Taking the exported files in again changes nothing: no new revision.
    again = issues.import_files(newsletter, out)
    assert again.revision_set == view.revision_set
    assert issues.mail_issue(again) == dataclasses.replace(after, variants={
        lang: dataclasses.replace(v, path=f"{view.slug}.{lang}.md") for lang, v in after.variants.items()})


def test_the_two_person_rule_needs_another_sender_to_approve_the_exact_revisions(newsletter, smtp_server, clock):
    newsletter.config = newsletter.config.with_changes(two_person_lists=("asp-daily",))
    populate(newsletter.store, 8, now=clock())
    issues.import_files(newsletter, DAY_4)
    send = sends.prepare_issue_send(newsletter, "asp23-day-4")
    assert send.view.needs_second_approval and not send.approved_for("sender1@example.org")
    with pytest.raises(ApprovalRequired):
        sends.send_issue(newsletter, send, fast(), sender="sender1@example.org")
    sends.approve(newsletter, "asp23-day-4", approver="sender1@example.org", digest=send.revisions.digest)
    with pytest.raises(ApprovalRequired) as own:
        sends.send_issue(newsletter, send, fast(), sender="sender1@example.org")
    assert "your own" in str(own.value)
    # A save after the approval: the approval was of other revisions, and the prepared send is refused.
    en = english(send.view)
    issues.save_version(newsletter, "asp23-day-4", "en", front_matter=en.front_matter, body=en.body + " Thanks.",
                        parent=en.number)
    with pytest.raises(ApprovalRequired) as stale:
        sends.approve(newsletter, "asp23-day-4", approver="sender2@example.org", digest=send.revisions.digest)
    assert "changed" in str(stale.value)
    with pytest.raises(ApprovalRequired):
        sends.send_issue(newsletter, send, fast(), sender="sender2@example.org")
    assert actions.overview(newsletter) == [] and not smtp_server.received
    send = sends.prepare_issue_send(newsletter, "asp23-day-4")
    sends.approve(newsletter, "asp23-day-4", approver="sender2@example.org", digest=send.revisions.digest)
    result = sends.send_issue(newsletter, send, fast(), sender="sender1@example.org")
    assert result.status is CampaignStatus.FINISHED and result.counts.sent == 8
    view = issues.show_issue(newsletter, "asp23-day-4")
    assert view.sent_revisions == send.revisions and view.sent_at is not None
    bodies = [email.message_from_bytes(r.data, policy=policy.default) for r in smtp_server.received]
    english_mail = next(m for m in bodies if m["Content-Language"] == "en")
    assert "Thanks." in english_mail.get_body(("plain",)).get_content()


def test_test_send_goes_to_the_addresses_given_and_records_nothing(newsletter, smtp_server):
    issues.import_files(newsletter, DAY_4)
    send = sends.prepare_issue_send(newsletter, "asp23-day-4")
    replies = sends.send_issue_test(newsletter, send, ["editor@example.net", " "])
    assert sorted(lang for _, lang, _ in replies) == ["ar", "en", "fr"]
    assert all(m["Subject"].startswith("[TEST] ") for m in smtp_server.to("editor@example.net"))
    with pytest.raises(InvalidField):
        sends.send_issue_test(newsletter, send, [""])
    assert actions.overview(newsletter) == []


def test_a_translation_that_lands_after_the_send_goes_to_its_readers_who_got_a_fallback_once(
        newsletter, smtp_server, clock):
    from newsletter.editorial import catchup
    from newsletter.errors import CatchUpUnavailable
    from newsletter.people.rules import ConsentContext
    from newsletter.people.subscriptions import unsubscribe_address
    from newsletter.statuses import Channel

    populate(newsletter.store, 12, now=clock())  # languages en, fr, es, ar in turn: 3 read Spanish
    view = issues.import_files(newsletter, DAY_4)
    with pytest.raises(CatchUpUnavailable):
        catchup.prepare_catch_up(newsletter, "asp23-day-4", "es")  # not sent yet
    sends.send_issue(newsletter, sends.prepare_issue_send(newsletter, "asp23-day-4"), fast())
    spanish_readers = {f"person{i:06d}@example.org" for i in (2, 6, 10)}
    assert {m["Content-Language"] for a in spanish_readers for m in smtp_server.to(a)} != {"es"}
    with pytest.raises(CatchUpUnavailable) as no_version:
        catchup.prepare_catch_up(newsletter, "asp23-day-4", "es")
    assert "no es version" in str(no_version.value)
    with pytest.raises(CatchUpUnavailable):
        catchup.prepare_catch_up(newsletter, "asp23-day-4", "fr")  # French went with the issue
    en = english(view)
    spanish = dict(en.front_matter, subject="AEP 23, día 4: #NGOVoices en el plenario de cooperación",
                   list_name="Resúmenes diarios de la AEP")
    issues.save_version(newsletter, "asp23-day-4", "es", front_matter=spanish, body="Gracias por leernos.",
                        parent=None, author="traductora@example.org")
    # One of them left in the meantime: nobody who left is mailed again.
    unsubscribe_address(newsletter, "person000006@example.org", ConsentContext(Channel.ADMIN, source="test"))
    smtp_server.received.clear()
    late = catchup.prepare_catch_up(newsletter, "asp23-day-4", "es")
    assert late.readers == 3 and late.campaign_slug == "asp23-day-4-es"
    result = catchup.send_catch_up(newsletter, late, fast())
    assert result.counts.sent == 2 and result.counts.skipped == 1
    got = {r.rcpt_tos[0]: email.message_from_bytes(r.data, policy=policy.default) for r in smtp_server.received}
    assert set(got) == spanish_readers - {"person000006@example.org"}
    assert {m["Content-Language"] for m in got.values()} == {"es"}
    assert all("Gracias por leernos." in m.get_body(("plain",)).get_content() for m in got.values())
    with pytest.raises(CatchUpUnavailable) as again:
        catchup.prepare_catch_up(newsletter, "asp23-day-4", "es")
    assert "already sent" in str(again.value)
    with pytest.raises(CatchUpUnavailable):
        catchup.send_catch_up(newsletter, late, fast())
    assert len(smtp_server.received) == 2


def test_the_preview_is_the_wire_message_per_reader_language_with_its_direction_and_lint(newsletter, clock):
    from newsletter.editorial import preview
    populate(newsletter.store, 8, now=clock())
    view = issues.import_files(newsletter, DAY_4)
    send = sends.prepare_issue_send(newsletter, "asp23-day-4")
    shown, lint = preview.preview_send(newsletter, send)
    by_language = {p.language: p for p in shown}
    assert set(by_language) == {"en", "fr", "es", "ar"}
    assert by_language["ar"].direction == "rtl" and by_language["en"].direction == "ltr"
    assert by_language["es"].fallback and by_language["es"].variant in ("en", "fr")
    assert "Cooperation was the theme" in by_language["en"].html and 'dir="rtl"' in by_language["ar"].html
    assert by_language["en"].subject == send.prepared.rendered["en"].subject
    assert any(p.rule == "missing-variant" for p in lint.warnings)
    audience = sends.audience_of(send)
    assert audience.total == 8 and {line.language: line.readers for line in audience.lines} == {
        "en": 2, "fr": 2, "es": 2, "ar": 2}
    assert [line.fallback for line in audience.lines if line.language == "es"] == [True] and audience.seconds > 0
    # A version being typed is shown as readers would get it, and checked like a save.
    en = view.versions["en"]
    typed = preview.preview_draft(newsletter, "asp23-day-4", "en", body=en.body,
                                  front_matter=dict(en.front_matter, lead="Typed a moment ago, not saved."))
    assert "Typed a moment ago, not saved." in typed.html and "Typed a moment ago" in typed.text
    with pytest.raises(ContentError):
        preview.preview_draft(newsletter, "asp23-day-4", "en", front_matter=dict(en.front_matter, day=0), body="")
    assert [v.number for v in issues.history(newsletter, "asp23-day-4", "en")] == [1]


@pytest.mark.parametrize("example", [EXAMPLES[1][0], EXAMPLES[3][0], EXAMPLES[3][1]], ids=lambda p: p.name)
def test_the_form_holds_every_field_of_a_content_file(newsletter, example):
    from newsletter.editorial import forms
    view = issues.import_files(newsletter, [example])
    version = next(iter(view.versions.values()))
    values = forms.form_values(view.kind, version.front_matter)
    assert values["subject"] and ("news-0-title" in values) == (view.kind == "daily-summary")
    back = forms.front_matter_from_form(view.kind, values)
    assert back == _stripped(version.front_matter)
    saved = issues.save_version(newsletter, view.slug, version.language, front_matter=back, body=version.body,
                                parent=version.number)
    assert issues.mail_issue(issues.show_issue(newsletter, view.slug)).variants[version.language] == \
        issues.mail_issue(view).variants[version.language]
    assert saved.number == 2


def _stripped(value):
    if isinstance(value, dict):
        return {k: _stripped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stripped(v) for v in value]
    return value.strip() if isinstance(value, str) else value


def test_a_form_with_a_wrong_value_is_refused_by_the_content_loader_naming_the_field(newsletter):
    from newsletter.editorial import forms
    form = {"subject": "ASP 23, Day 6", "session": "ASP 23", "day": "four", "total_days": "6",
            "date": "2024-12-07", "venue": "The Hague", "lead": "The last day.", "news-0-title": "",
            "news-0-date": "", "news-0-link": "", "news-0-summary": "", "highlights": "One\r\n\r\nTwo\r\n"}
    front = forms.front_matter_from_form("daily-summary", form)
    assert front["highlights"] == ["One", "Two"] and "news" not in front and front["total_days"] == 6
    with pytest.raises(ContentError) as caught:
        issues.create_issue(newsletter, slug="asp23-day-6", kind="daily-summary", list_slug="asp-daily",
                            front_matter=front)
    assert caught.value.field == "day" and "whole number" in str(caught.value)
    assert issues.list_issues(newsletter) == []


def test_the_report_names_who_did_not_get_it_and_the_hard_bounce_by_language(newsletter, smtp_server, clock):
    from newsletter.editorial import reports
    populate(newsletter.store, 8, now=clock())
    smtp_server.fail_rcpt["person000003@example.org"] = "550 5.1.1 No such user"
    issues.import_files(newsletter, DAY_4)
    sends.send_issue(newsletter, sends.prepare_issue_send(newsletter, "asp23-day-4"), fast())
    done = reports.progress(newsletter, "asp23-day-4")
    assert done.done and done.counts.sent == 7 and done.counts.failed == 1
    assert done.as_json()["sent"] == 7 and done.as_json()["status"] == "finished" and done.seconds_left == 0
    got = reports.report(newsletter, "asp23-day-4")
    assert [(r.email, r.language, r.status.value) for r in got.not_reached] == [
        ("person000003@example.org", "ar", "failed")]
    assert "No such user" in got.not_reached[0].reason
    assert [(b.email, b.language, b.kind.value) for b in got.bounces] == [("person000003@example.org", "ar", "hard")]
    # By the language sent: the Spanish readers got English.
    assert got.by_language["ar"] == {"sent": 1, "failed": 1} and got.by_language["en"] == {"sent": 4}


def test_a_send_behind_a_page_runs_in_its_thread_and_is_paused_and_resumed_from_the_ledger(
        newsletter, smtp_server, clock):
    from newsletter.editorial import reports
    from newsletter.editorial.background import BackgroundSends
    populate(newsletter.store, 6, now=clock())
    issues.import_files(newsletter, DAY_4)
    runner = BackgroundSends(newsletter, fast())
    runner.start(sends.prepare_issue_send(newsletter, "asp23-day-4"), sender="sender@example.org")
    result = runner.wait("asp23-day-4", timeout=60)
    assert result.status is CampaignStatus.FINISHED and reports.progress(newsletter, "asp23-day-4").counts.sent == 6
    assert issues.show_issue(newsletter, "asp23-day-4").sent_at is not None
    with pytest.raises(CampaignStateError):
        runner.resume("asp23-day-4")  # finished: nothing to resume
    with pytest.raises(CampaignStateError) as again:  # said at once, not in the thread
        runner.start(sends.prepare_issue_send(newsletter, "asp23-day-4"), sender="sender@example.org")
    assert "went out already" in str(again.value) and len(smtp_server.received) == 6


def test_a_stale_translation_goes_out_only_when_the_sender_says_so(newsletter, smtp_server, clock):
    from newsletter.editorial.background import BackgroundSends
    populate(newsletter.store, 4, now=clock())
    view = issues.import_files(newsletter, DAY_4)
    en = english(view)
    issues.save_version(newsletter, "asp23-day-4", "en", front_matter=dict(en.front_matter, subject="Day 4, again"),
                        body=en.body, parent=en.number)
    runner = BackgroundSends(newsletter, fast())
    digest = issues.show_issue(newsletter, "asp23-day-4").revision_set.digest
    with pytest.raises(InvalidField) as caught:
        runner.send("asp23-day-4", digest, sender="sender@example.org")
    assert caught.value.field == "stale" and "fr, ar are translated from an older en version" in str(caught.value)
    assert actions.overview(newsletter) == []
    runner.send("asp23-day-4", digest, sender="sender@example.org", stale_accepted=True)
    assert runner.wait("asp23-day-4", timeout=60).counts.sent == 4
