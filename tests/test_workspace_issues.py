"""The issue pages of the workspace over HTTP: write from a form, translate only one's languages,
stale translations with the change shown, previews from the wire message, test-send, the
two-person rule, the send in the background with its progress as JSON, and the report."""

from __future__ import annotations

import re

import pytest
from conftest import REPO
from population import populate
from staffing import add_staff, csrf_of, logged_in

from newsletter.editorial import issues
from newsletter.editorial.background import BackgroundSends
from newsletter.people import lists
from newsletter.sending.options import SendOptions
from newsletter.staff.roles import Role

DAY_4 = sorted((REPO / "examples" / "asp23").glob("day-4.*.md"))

DAY_6 = {"kind": "daily-summary", "slug": "asp23-day-6", "list": "asp-daily", "language": "en",
         "subject": "ASP 23, Day 6: what the Assembly decided", "preheader": "The budget, the resolutions.",
         "list_name": "ASP daily summaries", "session": "ASP 23", "day": "6", "total_days": "6",
         "date": "2024-12-07", "venue": "World Forum, The Hague",
         "lead": "The Assembly closed with the budget adopted.", "highlights": "The budget was adopted.\nThanks.",
         "news-0-date": "2024-12-07", "news-0-title": "The budget", "news-0-summary": "Adopted late at night.",
         "news-0-link": "https://www.coalitionfortheicc.org/news/asp23-budget", "body": "See you at ASP 24."}


@pytest.fixture
def newsrooms(newsletter, tmp_path):
    newsletter.config = newsletter.config.with_changes(issues_dir=str(tmp_path / "issues"))
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"],
                          now=newsletter.clock())
    BackgroundSends.of(newsletter).options = SendOptions(concurrency=2, idle_poll=3600.0)
    people = {
        "editor": add_staff(newsletter, "editor@example.org", Role.EDITOR),
        "fr": add_staff(newsletter, "traductrice@example.org", Role.TRANSLATOR, languages=["fr"]),
        "sender1": add_staff(newsletter, "sender1@example.org", Role.SENDER),
        "sender2": add_staff(newsletter, "sender2@example.org", Role.SENDER),
        "viewer": add_staff(newsletter, "viewer@example.org", Role.VIEWER),
    }
    return newsletter, people


def post(client, path, data, *, form_page=None):
    return client.post(path, data={"csrf": csrf_of(client, form_page or path), **data})


def test_write_from_a_form_translate_only_ones_language_and_see_what_went_stale(newsrooms):
    newsletter, people = newsrooms
    editor = logged_in(newsletter, people["editor"])
    assert "Slug" in editor.get("/admin/issues/new").text
    bad = post(editor, "/admin/issues/new", {**DAY_6, "day": "six"}, form_page="/admin/issues/new")
    assert bad.status_code == 400 and "whole number" in bad.text
    assert 'value="World Forum, The Hague"' in bad.text  # nothing typed is lost
    made = post(editor, "/admin/issues/new", DAY_6, form_page="/admin/issues/new")
    assert made.status_code == 303 and made.headers["location"].endswith("/admin/issues/asp23-day-6")

    translator = logged_in(newsletter, people["fr"])
    assert translator.get("/admin/issues/asp23-day-6/edit/en").status_code == 403
    page = translator.get("/admin/issues/asp23-day-6/edit/fr")
    assert page.status_code == 200 and "The Assembly closed with the budget adopted." in page.text  # from English
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    based_on = re.search(r'name="based_on" value="(\d+)"', page.text).group(1)
    refused = translator.post("/admin/issues/asp23-day-6/edit/en", data={**DAY_6, "csrf": csrf, "parent": "1"})
    assert refused.status_code == 403
    french = {**DAY_6, "subject": "AEP 23, jour 6 : ce que l'Assemblée a décidé", "lead": "L'Assemblée a adopté le budget.",
              "csrf": csrf, "parent": "", "based_on": based_on}
    saved = translator.post("/admin/issues/asp23-day-6/edit/fr", data=french)
    assert saved.status_code == 303 and "saved=1" in saved.headers["location"]
    # The translator's live preview: what they typed, in a sandboxed frame of its own.
    shown = translator.post("/admin/issues/asp23-day-6/draft/fr", data={**french, "lead": "Encore en cours."})
    assert shown.status_code == 200 and "Encore en cours." in shown.text
    assert "sandbox" in shown.headers["content-security-policy"] and shown.headers["x-frame-options"] == "SAMEORIGIN"

    english = issues.show_issue(newsletter, "asp23-day-6").versions["en"]
    change = {**DAY_6, "lead": "The Assembly closed with the budget adopted at 3 a.m.", "parent": str(english.number)}
    assert post(editor, "/admin/issues/asp23-day-6/edit/en", change).status_code == 303
    overview = editor.get("/admin/issues/asp23-day-6").text
    assert 'id="lang-fr" class="state-stale"' in overview
    assert "adopted at 3 a.m." in overview and 'class="d ddel"' in overview
    # Two editors at once: the one who saved second is told, and keeps their text.
    conflict = post(editor, "/admin/issues/asp23-day-6/edit/en", {**change, "lead": "Mine."})
    assert conflict.status_code == 409 and "Mine." in conflict.text
    viewer = logged_in(newsletter, people["viewer"])
    assert viewer.get("/admin/issues/asp23-day-6").status_code == 200
    assert viewer.get("/admin/issues/asp23-day-6/edit/fr").status_code == 403
    assert post(viewer, "/admin/issues/new", DAY_6, form_page="/admin/issues").status_code == 403


def test_preview_test_send_approve_send_progress_and_report(newsrooms, smtp_server, clock):
    newsletter, people = newsrooms
    newsletter.config = newsletter.config.with_changes(two_person_lists=("asp-daily",))
    populate(newsletter.store, 8, now=clock())
    smtp_server.fail_rcpt["person000005@example.org"] = "550 5.1.1 No such user"
    issues.import_files(newsletter, DAY_4, author="editor@example.org")

    editor = logged_in(newsletter, people["editor"])
    page = editor.get("/admin/issues/asp23-day-4/preview")
    assert page.status_code == 200
    assert page.text.count('width="375"') == 4 and page.text.count('width="600"') == 4
    assert "script-src 'self'" in page.headers["content-security-policy"]
    arabic = editor.get("/admin/issues/asp23-day-4/preview/ar")
    assert arabic.status_code == 200 and 'dir="rtl"' in arabic.text
    spanish = editor.get("/admin/issues/asp23-day-4/preview/es")  # no Spanish: what its readers get
    assert spanish.status_code == 200
    tested = post(editor, "/admin/issues/asp23-day-4/test", {"addresses": "editor@example.org"},
                  form_page="/admin/issues/asp23-day-4/preview")
    assert tested.status_code == 200 and "Test messages sent" in tested.text
    assert len(smtp_server.to("editor@example.org")) == 3
    assert editor.get("/admin/issues/asp23-day-4/send").status_code == 403

    first, second = logged_in(newsletter, people["sender1"]), logged_in(newsletter, people["sender2"])
    review = first.get("/admin/issues/asp23-day-4/send").text
    assert 'id="total">8<' in review and "(fallback)" in review and "Waiting for a second sender" in review
    digest = re.search(r'name="digest" value="([0-9a-f]+)"', review).group(1)
    refused = post(first, "/admin/issues/asp23-day-4/send", {"digest": digest, "confirm": "yes"},
                   form_page="/admin/issues/asp23-day-4/send")
    assert refused.status_code == 409 and "second sender" in refused.text
    assert post(second, "/admin/issues/asp23-day-4/approve", {"digest": digest},
                form_page="/admin/issues/asp23-day-4/send").status_code == 303
    sent = post(first, "/admin/issues/asp23-day-4/send", {"digest": digest, "confirm": "yes"},
                form_page="/admin/issues/asp23-day-4/send")
    assert sent.status_code == 303 and sent.headers["location"].endswith("/admin/campaigns/asp23-day-4")
    result = BackgroundSends.of(newsletter).wait("asp23-day-4", timeout=60)
    assert result.counts.sent == 7, result
    status = first.get("/admin/campaigns/asp23-day-4/progress.json").json()
    assert status["done"] and status["sent"] == 7 and status["failed"] == 1
    viewer = logged_in(newsletter, people["viewer"])
    report = viewer.get("/admin/campaigns/asp23-day-4/report").text
    assert "person000005@example.org" in report and "No such user" in report and ">hard<" in report
    assert post(viewer, "/admin/campaigns/asp23-day-4/retry", {}, form_page="/admin/campaigns/asp23-day-4"
                ).status_code == 403


EDITORIAL_TEMPLATES = ("_issue_fields.html", "campaign.html", "campaign_report.html", "issue.html", "issue_edit.html",
                       "issue_missing.html", "issue_new.html", "issue_preview.html", "issue_send.html", "issues.html",
                       "preview_error.html")


@pytest.mark.parametrize("language", ["fr", "es", "ar"])
def test_every_string_of_the_issue_pages_is_translated(language):
    """The templates' strings, the form's field labels and the states and statuses they show."""
    from babel.messages.pofile import read_po
    from jinja2.ext import babel_extract

    from newsletter.editorial import forms
    from newsletter.editorial.versions import TranslationState
    from newsletter.statuses import BounceKind, CampaignStatus, OutboxStatus

    wanted = set()
    for name in EDITORIAL_TEMPLATES:
        with (REPO / "templates" / "workspace" / name).open("rb") as fh:
            for _, _, message, _ in babel_extract(fh, ("_", "gettext"), [], {"extensions": "jinja2.ext.i18n"}):
                text = message if isinstance(message, str) else (message[0] if message else None)
                if text:
                    wanted.add(text)
    for kind in ("daily-summary", "campaign-alert"):
        wanted.add(kind)
        for f in forms.fields_of(kind):
            wanted |= {f.label, *(label for _, label, _ in f.parts)}
    wanted |= {s.value for s in TranslationState} | {s.value for s in OutboxStatus} | {k.value for k in BounceKind}
    wanted |= {s.value for s in CampaignStatus}
    wanted |= {"error", "warning", "Issues"}
    with (REPO / "templates" / "locale" / language / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale=language)
    assert len(wanted) > 100
    assert sorted(m for m in wanted if not (catalog.get(m) and catalog.get(m).string)) == []


def _until(condition, timeout: float = 60.0) -> None:
    import time
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_pause_resume_from_the_pages_and_a_late_translation_to_those_who_got_a_fallback(
        newsrooms, smtp_server, clock):
    from newsletter.sending.pacing import Pace

    from newsletter.installation import utc_now

    newsletter, people = newsrooms
    newsletter.clock = utc_now  # the pace is kept in real time
    populate(newsletter.store, 8, now=clock())
    issues.import_files(newsletter, DAY_4)  # en, fr, ar: the Spanish readers get a fallback
    runner = BackgroundSends.of(newsletter)
    runner.options = SendOptions(concurrency=1, pace=Pace(rate=4.0), idle_poll=3600.0)
    sender = logged_in(newsletter, people["sender1"])
    review = sender.get("/admin/issues/asp23-day-4/send").text
    assert "One sender is enough" in review
    digest = re.search(r'name="digest" value="([0-9a-f]+)"', review).group(1)
    assert post(sender, "/admin/issues/asp23-day-4/send", {"digest": digest, "confirm": "yes"},
                form_page="/admin/issues/asp23-day-4/send").status_code == 303
    _until(lambda: sender.get("/admin/campaigns/asp23-day-4/progress.json").json().get("sent", 0) >= 1)
    paused = post(sender, "/admin/campaigns/asp23-day-4/pause", {}, form_page="/admin/campaigns/asp23-day-4")
    assert paused.status_code == 303
    runner.wait("asp23-day-4", timeout=60)
    now = sender.get("/admin/campaigns/asp23-day-4/progress.json").json()
    assert now["status"] == "paused" and 1 <= now["sent"] < 8
    assert 'action="/admin/campaigns/asp23-day-4/resume"' in sender.get("/admin/campaigns/asp23-day-4").text
    # Why it is paused is said in the page's language, live too; the CLI and the API keep the English.
    assert now["reason"] == "paused by an administrator"
    assert "mise en pause par un administrateur" in sender.get("/admin/campaigns/asp23-day-4?lang=fr").text
    assert sender.get("/admin/campaigns/asp23-day-4/progress.json").json()["reason"] == "mise en pause par un administrateur"
    assert "أوقفها أحد المسؤولين مؤقتًا" in sender.get("/admin/?lang=ar").text
    with newsletter.store.reading() as session:
        from newsletter.sending.campaigns import get_campaign
        assert get_campaign(session, "asp23-day-4").status_reason == "paused by an administrator"
    sender.get("/admin/?lang=en")
    assert post(sender, "/admin/campaigns/asp23-day-4/resume", {},
                form_page="/admin/campaigns/asp23-day-4").status_code == 303
    runner.wait("asp23-day-4", timeout=60)
    done = sender.get("/admin/campaigns/asp23-day-4/progress.json").json()
    assert done["status"] == "finished" and done["sent"] == 8
    assert len({r.rcpt_tos[0] for r in smtp_server.received}) == len(smtp_server.received) == 8  # nobody twice

    # Spanish lands after the send: its readers who got English get Spanish, once.
    english = issues.show_issue(newsletter, "asp23-day-4").versions["en"]
    issues.save_version(newsletter, "asp23-day-4", "es", body="Gracias por leernos.", parent=None,
                        front_matter=dict(english.front_matter, subject="AEP 23, día 4: la cooperación"))
    offer = sender.get("/admin/issues/asp23-day-4/send").text
    assert 'action="/admin/issues/asp23-day-4/catch-up/es"' in offer
    late = post(sender, "/admin/issues/asp23-day-4/catch-up/es", {}, form_page="/admin/issues/asp23-day-4/send")
    assert late.status_code == 303 and late.headers["location"].endswith("/admin/campaigns/asp23-day-4-es")
    runner.wait("asp23-day-4-es", timeout=60)
    spanish = [r for r in smtp_server.received if b"Content-Language: es" in r.data]
    assert sorted(r.rcpt_tos[0] for r in spanish) == ["person000002@example.org", "person000006@example.org"]
    again = post(sender, "/admin/issues/asp23-day-4/catch-up/es", {}, form_page="/admin/issues/asp23-day-4/send")
    assert again.status_code == 409 and "already sent" in again.text


def test_content_files_in_and_out_through_the_browser(newsrooms):
    import io
    import zipfile

    from newsletter.mail.content import parse_variant

    newsletter, people = newsrooms
    editor = logged_in(newsletter, people["editor"])
    files = [("files", (p.name, p.read_bytes(), "text/markdown")) for p in DAY_4]
    taken = editor.post("/admin/issues/import", data={"csrf": csrf_of(editor, "/admin/issues")}, files=files)
    assert taken.status_code == 303 and taken.headers["location"].endswith("/admin/issues/asp23-day-4")
    download = editor.get("/admin/issues/asp23-day-4/export")
    assert download.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    assert archive.namelist() == ["asp23-day-4.ar.md", "asp23-day-4.en.md", "asp23-day-4.fr.md"]
    for path in DAY_4:
        exported = parse_variant(path.name, archive.read(f"asp23-day-4.{path.name.split('.')[1]}.md").decode())
        assert exported == parse_variant(path.name, path.read_text())
    broken = editor.post("/admin/issues/import", data={"csrf": csrf_of(editor, "/admin/issues")},
                         files=[("files", ("day-4.en.md", b"\xff\xfe not text", "text/markdown"))])
    assert broken.status_code == 400 and "not UTF-8" in broken.text
    translator = logged_in(newsletter, people["fr"])
    refused = translator.post("/admin/issues/import", data={"csrf": csrf_of(translator, "/admin/issues")}, files=files)
    assert refused.status_code == 403


def test_a_sender_schedules_an_issue_in_the_venues_time_from_its_send_page(newsrooms):
    from newsletter.routine.schedules import list_schedules

    newsletter, people = newsrooms
    populate(newsletter.store, 4, now=newsletter.clock())
    issues.import_files(newsletter, DAY_4)
    sender = logged_in(newsletter, people["sender1"])
    page = "/admin/issues/asp23-day-4/send"
    assert 'id="schedule-form"' in sender.get(page).text
    unknown = post(sender, "/admin/issues/asp23-day-4/schedule", {"at": "2027-01-15T19:00", "zone": "Europe/Den_Haag"},
                   form_page=page)
    assert unknown.status_code == 409 and "Europe/Den_Haag" in unknown.text and list_schedules(newsletter) == []
    done = post(sender, "/admin/issues/asp23-day-4/schedule", {"at": "2027-01-15T19:00", "zone": "Europe/Amsterdam"},
                form_page=page)
    assert done.status_code == 200 and 'id="scheduled"' in done.text and "2027-01-15 18:00 UTC" in done.text
    [scheduled] = list_schedules(newsletter)
    assert scheduled.slug == "asp23-day-4" and scheduled.zone == "Europe/Amsterdam"
    assert scheduled.due_at.isoformat().startswith("2027-01-15T18:00")  # 19:00 in The Hague in winter
    viewer = logged_in(newsletter, people["viewer"])
    refused = viewer.post("/admin/issues/asp23-day-4/schedule", data={"csrf": csrf_of(viewer, "/admin/issues"),
                                                                      "at": "2027-01-16T19:00", "zone": "UTC"})
    assert refused.status_code == 403 and len(list_schedules(newsletter)) == 1


def test_content_files_naming_a_misspelt_list_are_refused_with_the_lists_there_are(newsrooms):
    newsletter, people = newsrooms
    editor = logged_in(newsletter, people["editor"])
    files = [("files", (p.name, p.read_bytes().replace(b"\nlist: asp-daily\n", b"\nlist: asp-dialy\n"), "text/markdown"))
             for p in DAY_4]
    assert b"list: asp-dialy" in files[0][1][1]
    refused = editor.post("/admin/issues/import", data={"csrf": csrf_of(editor, "/admin/issues")}, files=files)
    assert refused.status_code == 400
    assert "there is no list &#39;asp-dialy&#39;" in refused.text
    assert "Did you mean asp-daily?" in refused.text and "The lists there are: asp-daily." in refused.text
    assert "Correct list: in the files" in refused.text and "front matter, or create the list first." in refused.text
    assert issues.list_issues(newsletter) == []


def test_a_sender_schedules_an_issue_to_a_segment_after_seeing_its_audience(newsrooms):
    from newsletter.attributes import parse_attribute_specs
    from newsletter.people import profiles, segments
    from newsletter.routine.schedules import list_schedules

    newsletter, people = newsrooms
    newsletter.config = newsletter.config.with_changes(attributes=parse_attribute_specs({"country": {"type": "country"}}))
    populate(newsletter.store, 6, now=newsletter.clock())
    for i, code in [(0, "SN"), (1, "SN"), (2, "CI"), (3, "FR")]:
        profiles.set_attributes(newsletter, f"person{i:06d}@example.org", {"country": code})
    segments.create_segment(newsletter, "west-africa", "country in (SN, CI)")
    issues.import_files(newsletter, DAY_4)
    sender = logged_in(newsletter, people["sender1"])
    page = "/admin/issues/asp23-day-4/send"
    first = sender.get(page).text
    assert '<option value="west-africa">west-africa</option>' in first and 'id="segment-audience"' not in first
    shown = sender.get(page + "?segment=west-africa")
    assert shown.status_code == 200 and 'id="segment-total">3<' in shown.text
    assert "SN</span> Senegal</th><td>2</td>" in shown.text and "CI</span> Côte d&#39;Ivoire</th><td>1</td>" in shown.text
    assert 'id="total">6<' in shown.text  # the send-now audience stays the whole list
    unknown = sender.get(page + "?segment=nobody")
    assert unknown.status_code == 400 and "there is no segment &#39;nobody&#39;" in unknown.text
    done = post(sender, "/admin/issues/asp23-day-4/schedule",
                {"at": "2027-01-15T19:00", "zone": "Europe/Amsterdam", "segment": "west-africa"}, form_page=page)
    assert done.status_code == 200 and 'id="scheduled"' in done.text
    [scheduled] = list_schedules(newsletter)
    assert scheduled.segment == "west-africa"
    segments.delete_segment(newsletter, "west-africa")
    after = sender.get(page).text
    assert 'id="schedules"' in after and "its segment &#39;west-africa&#39; no longer exists" in after


def test_the_campaign_page_is_there_as_soon_as_the_send_is_answered(newsrooms, smtp_server, clock):
    """The send runs in a thread of its own, but its campaign (the row, the start of its ledger) is
    made before the POST is answered: the page asked for at once never says "No such issue".
    Thirty issues, each sent and looked at straight away."""
    newsletter, people = newsrooms
    populate(newsletter.store, 4, now=clock())
    texts = {path.name: path.read_text(encoding="utf-8") for path in DAY_4}
    sender = logged_in(newsletter, people["sender1"])
    runner = BackgroundSends.of(newsletter)
    for n in range(30):
        slug = f"asp23-day-4-take-{n}"
        issues.import_uploads(newsletter, {name: text.replace("slug: asp23-day-4", f"slug: {slug}").encode()
                                           for name, text in texts.items()})
        review = sender.get(f"/admin/issues/{slug}/send").text
        digest = re.search(r'name="digest" value="([0-9a-f]+)"', review).group(1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', review).group(1)
        sent = sender.post(f"/admin/issues/{slug}/send", data={"csrf": csrf, "digest": digest, "confirm": "yes"})
        assert sent.status_code == 303, sent.text
        page = sender.get(f"/admin/campaigns/{slug}")
        assert page.status_code == 200 and "data-field=\"sent\"" in page.text, (n, page.status_code)
        assert sender.get(f"/admin/campaigns/{slug}/progress.json").status_code == 200
    for n in range(30):
        assert runner.wait(f"asp23-day-4-take-{n}", timeout=60).counts.sent == 4
    assert len(smtp_server.received) == 30 * 4
