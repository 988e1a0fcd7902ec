"""The one send-an-issue path (`sending.launch`), the campaign units of work (`sending.actions`)
and what a stopped send says, on SQLite and PostgreSQL against the recording SMTP server."""

from __future__ import annotations

import dataclasses
import email
import threading
from email import policy

import pytest
from conftest import REPO
from population import populate

from newsletter.demo import DemoResult, _send_issue
from newsletter.errors import CampaignStateError, LintFailed, UnknownCampaign, UnknownList
from newsletter.mail.lint import LintReport, Problem, Severity
from newsletter.people import lists
from newsletter.sending import actions, campaigns
from newsletter.sending.launch import launch, list_readers, prepare_resume, prepare_send
from newsletter.sending.options import SendOptions
from newsletter.statuses import CampaignStatus

DAY_3 = sorted((REPO / "examples" / "asp23").glob("day-3.*.md"))
DAY_4 = sorted((REPO / "examples" / "asp23").glob("day-4.*.md"))  # en, fr and ar: no Spanish


def fast(**changes) -> SendOptions:
    return SendOptions(concurrency=2, idle_poll=3600.0, **changes)


def languages_received(server) -> dict[str, str]:
    """recipient -> Content-Language of what they got."""
    return {r.rcpt_tos[0]: str(email.message_from_bytes(r.data, policy=policy.default)["Content-Language"])
            for r in server.received}


def make_list(newsletter, languages):
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=languages, now=newsletter.clock())


def test_prepare_plans_along_the_lists_chain_and_writes_nothing(newsletter, smtp_server):
    make_list(newsletter, ["fr", "en"])
    populate(newsletter.store, 8, now=newsletter.clock())
    prepared = prepare_send(newsletter, [str(p) for p in DAY_4])
    assert prepared.plan.variant_of["es"] == "fr" and prepared.plan.variant_of["ar"] == "ar"
    assert prepared.plan.audience == {"en": 2, "fr": 4, "ar": 2} and prepared.plan.total == 8
    assert prepared.existing is None and not prepared.resumes
    # Spanish readers are told about in the lint, and get the French variant.
    assert any(p.rule == "missing-variant" and p.language == "es" for p in prepared.lint.warnings)
    assert prepared.subject == prepared.rendered["en"].subject
    assert actions.overview(newsletter) == []
    result = launch(newsletter, prepared, fast())
    assert result.status is CampaignStatus.FINISHED and result.counts.sent == 8 and result.slug == "asp23-day-4"
    got = languages_received(smtp_server)
    assert {got[f"person{i:06d}@example.org"] for i in (2, 6)} == {"fr"}  # the Spanish readers


def test_the_demo_sends_along_the_lists_fallback_chain(newsletter, smtp_server, tmp_path):
    make_list(newsletter, ["fr", "en"])
    populate(newsletter.store, 8, now=newsletter.clock())
    said = []
    result = DemoResult(folder=tmp_path, web_url=newsletter.config.base_url)
    _send_issue(newsletter, DAY_4, result, tmp_path / "preview", said.append)
    assert result.campaign == "asp23-day-4" and result.outcome["sent"] == 8
    got = languages_received(smtp_server)
    assert got["person000002@example.org"] == got["person000006@example.org"] == "fr"
    assert got["person000001@example.org"] == "fr" and got["person000003@example.org"] == "ar"


def test_launch_with_lint_errors_starts_nothing(newsletter, smtp_server):
    populate(newsletter.store, 4, now=newsletter.clock())
    prepared = prepare_send(newsletter, DAY_3)
    broken = dataclasses.replace(prepared, lint=LintReport((Problem(Severity.ERROR, "unresolved", "bad", "en"),)))
    with pytest.raises(LintFailed):
        launch(newsletter, broken, fast())
    assert actions.overview(newsletter) == [] and not smtp_server.received


def test_prepare_names_an_unknown_list(newsletter):
    with pytest.raises(UnknownList):
        prepare_send(newsletter, DAY_3, list_slug="nowhere")
    with pytest.raises(UnknownList):
        list_readers(newsletter, "nowhere")


def test_list_readers_answers_the_previews_question(newsletter):
    make_list(newsletter, ["es", "en"])
    populate(newsletter.store, 6, now=newsletter.clock())
    readers = list_readers(newsletter, "asp-daily")
    assert readers.fallback_chain == ("es", "en")
    assert readers.languages == {"en": 2, "fr": 2, "es": 1, "ar": 1}
    assert list(readers.languages.values()) == [2, 2, 1, 1]  # most readers first


def test_a_send_stopped_from_another_thread_pauses_and_resumes(newsletter, smtp_server):
    populate(newsletter.store, 12, now=newsletter.clock())
    prepared = prepare_send(newsletter, DAY_3)

    def stop_at_once(control):
        assert control.slug == "asp23-day-3"
        stopper = threading.Thread(target=control.stop, args=("held by the editor",))
        stopper.start()
        stopper.join()

    result = launch(newsletter, prepared, fast(), on_start=stop_at_once)
    assert result.paused and result.reason == "held by the editor" and result.counts.sent == 0
    again = prepare_resume(newsletter, "asp23-day-3")
    assert again.resumes and again.files == prepared.files and again.plan.list_slug == "asp-daily"
    result = launch(newsletter, again, fast())
    assert result.status is CampaignStatus.FINISHED and len(smtp_server.received) == 12


def test_stop_reasons_say_what_happened_and_name_no_command(newsletter, smtp_server):
    emails = populate(newsletter.store, 30, now=newsletter.clock())
    prepared = prepare_send(newsletter, DAY_3)
    smtp_server.fail_mail = "550 5.7.1 Sender address rejected"
    refused = launch(newsletter, prepared, fast())
    assert refused.paused and refused.reason.startswith("the relay refused the sender: 550 5.7.1")
    smtp_server.fail_mail = None
    for address in emails:
        smtp_server.fail_data[address] = "554 5.7.1 Policy rejection"
    failing = launch(newsletter, prepared, fast(failure_window=10))
    assert failing.paused and "of the last 10 messages failed, more than 50%" in failing.reason
    smtp_server.fail_data.clear()
    queued_again = actions.retry(newsletter, "asp23-day-3")
    detail = actions.detail(newsletter, "asp23-day-3")
    assert queued_again > 1 and detail.summary.status_reason == f"{queued_again} rows queued again"
    for reason in (refused.reason, failing.reason, detail.summary.status_reason):
        assert "newsletter" not in reason and "`" not in reason and "resume" not in reason
    assert launch(newsletter, prepared, fast()).status is CampaignStatus.FINISHED
    with pytest.raises(CampaignStateError) as finished:
        launch(newsletter, prepared, fast())
    assert finished.value.slug == "asp23-day-3" and finished.value.status == "finished"
    assert "newsletter" not in str(finished.value)


def test_a_deferred_pause_carries_when_to_resume(newsletter, smtp_server, clock):
    emails = populate(newsletter.store, 4, now=clock())
    smtp_server.fail_rcpt[emails[1]] = ["451 4.3.0 later"]
    result = launch(newsletter, prepare_send(newsletter, DAY_3), fast(wait_for_deferred=False))
    assert result.paused and result.counts.deferred == 1
    assert result.next_due == clock() + SendOptions().defer_base
    assert "newsletter" not in result.reason and "deferred" in result.reason


def test_the_campaign_units_of_work(newsletter, smtp_server):
    populate(newsletter.store, 5, now=newsletter.clock())
    smtp_server.fail_data["person000003@example.org"] = "554 5.7.1 Rejected"
    launch(newsletter, prepare_send(newsletter, DAY_3), fast())
    [summary] = actions.overview(newsletter)
    assert (summary.slug, summary.status, summary.counts.sent, summary.counts.failed) == \
        ("asp23-day-3", CampaignStatus.FINISHED, 4, 1)
    report = actions.report(newsletter, "asp23-day-3")
    assert [(f.email, f.status.value) for f in report.failures] == [("person000003@example.org", "failed")]
    assert actions.detail(newsletter, "asp23-day-3").holders == {}
    with pytest.raises(CampaignStateError):
        actions.pause(newsletter, "asp23-day-3")
    assert actions.retry(newsletter, "asp23-day-3") == 1
    assert actions.pause(newsletter, "asp23-day-3").status is CampaignStatus.PAUSED
    cancelled = actions.cancel(newsletter, "asp23-day-3")
    assert cancelled.skipped_now == 1 and cancelled.counts.skipped == 1 and cancelled.counts.sent == 4
    with pytest.raises(UnknownCampaign):
        actions.detail(newsletter, "nope")
    with pytest.raises(CampaignStateError, match="only a paused campaign can be resumed"):
        prepare_resume(newsletter, "asp23-day-3")
    with newsletter.store.session() as session:
        assert campaigns.get_campaign(session, "asp23-day-3").status is CampaignStatus.CANCELLED


def test_retry_due_sends_what_is_due_and_never_what_a_person_paused(newsletter, smtp_server, clock):
    from newsletter.sending.launch import retry_due

    emails = populate(newsletter.store, 4, now=clock())
    smtp_server.fail_rcpt[emails[1]] = ["451 4.3.0 later"]
    first = launch(newsletter, prepare_send(newsletter, DAY_3), fast(wait_for_deferred=False))
    assert first.paused and first.counts.deferred == 1
    assert retry_due(newsletter, clock(), fast()) == []  # not due yet
    clock.advance(minutes=6)
    [(slug, result)] = retry_due(newsletter, options=fast())
    assert slug == "asp23-day-3" and result.status is CampaignStatus.FINISHED and result.sent_now == 1
    assert len(smtp_server.to(emails[1])) == 1 and len(smtp_server.received) == 4
    assert retry_due(newsletter, clock(), fast()) == []


def test_retry_due_leaves_a_campaign_a_person_paused_while_it_waited(newsletter, smtp_server, clock):
    from newsletter.sending.launch import retry_due

    emails = populate(newsletter.store, 3, now=clock())
    smtp_server.fail_rcpt[emails[0]] = ["451 4.3.0 later"]
    launch(newsletter, prepare_send(newsletter, DAY_3), fast(wait_for_deferred=False))
    actions.pause(newsletter, "asp23-day-3")
    clock.advance(hours=1)
    assert retry_due(newsletter, options=fast()) == []
    assert actions.detail(newsletter, "asp23-day-3").summary.status_reason == str(actions.PAUSED_BY_ADMINISTRATOR)
