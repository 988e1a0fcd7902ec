"""Scheduled sends (`routine.schedules`, fired by `routine.scheduler.fire_due`): the venue's
wall time across the clock changes, the overdue guard, the "ready" mode, the send window and
several services on one store, with an injected clock and the recording SMTP server, on SQLite
and PostgreSQL."""

from __future__ import annotations

import shutil
import threading
from datetime import datetime, timedelta, timezone

import pytest
from conftest import REPO, Clock
from population import populate

from newsletter.errors import CampaignStateError, InvalidField, ScheduleStateError, UnknownSchedule
from newsletter.installation import Newsletter
from newsletter.people import lists
from newsletter.routine.scheduler import WINDOW_CLOSED, fire_due
from newsletter.routine.schedules import (
    cancel_schedule,
    list_schedules,
    release_schedule,
    schedule_send,
    show_schedule,
)
from newsletter.sending import actions, campaigns
from newsletter.sending.options import SendOptions
from newsletter.statuses import CampaignStatus, ScheduleStatus
from newsletter.store import open_store

EXAMPLES = REPO / "examples" / "asp23"
AMSTERDAM = "Europe/Amsterdam"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def fast(**changes) -> SendOptions:
    return SendOptions(**{"concurrency": 2, "idle_poll": 3600.0, **changes})


@pytest.fixture
def day3(tmp_path):
    """Day 3's four languages, copied where a test may add or remove some."""
    folder = tmp_path / "content"
    folder.mkdir()
    for path in EXAMPLES.glob("day-3.*.md"):
        shutil.copy(path, folder / path.name)
    return folder


def schedule_day3(newsletter, day3, at, **options):
    return schedule_send(newsletter, [day3 / "day-3.en.md"], at=at, zone=options.pop("zone", AMSTERDAM), **options)


def run_until(newsletter, clock, end, step=timedelta(minutes=30)):
    """Pass after pass, the clock moving by `step`: the moments at which something was fired."""
    fired = []
    while clock.now <= end:
        if any(f.outcome in (ScheduleStatus.DONE, ScheduleStatus.SENDING) for f in fire_due(newsletter, options=fast())):
            fired.append(clock.now)
        clock.now += step
    return fired


@pytest.mark.parametrize("at, expected", [
    ("2027-01-14 19:00", utc(2027, 1, 14, 18)),   # winter: UTC+1
    ("2027-07-08 19:00", utc(2027, 7, 8, 17)),    # summer: UTC+2
])
def test_seven_in_the_evening_in_the_hague_fires_once_at_its_utc_moment(newsletter, smtp_server, clock, day3,
                                                                        at, expected):
    populate(newsletter.store, 8, now=clock())
    view = schedule_day3(newsletter, day3, at)
    assert view.due_at == expected and view.status is ScheduleStatus.WAITING and view.slug == "asp23-day-3"
    clock.now = expected - timedelta(minutes=1)
    assert fire_due(newsletter, options=fast()) == []
    assert not smtp_server.received
    clock.now = expected
    [fired] = fire_due(newsletter, options=fast())
    assert fired.outcome is ScheduleStatus.DONE and fired.result.counts.sent == 8
    clock.now = expected + timedelta(minutes=1)
    assert fire_due(newsletter, options=fast()) == []
    assert len(smtp_server.received) == 8
    assert show_schedule(newsletter, view.id).status is ScheduleStatus.DONE
    assert list_schedules(newsletter) == [] and len(list_schedules(newsletter, everything=True)) == 1


@pytest.mark.parametrize("made, at, expected", [
    (utc(2027, 3, 27, 12), "2027-03-28 19:00", utc(2027, 3, 28, 17)),   # the clocks go forward at 01:00 UTC
    (utc(2027, 10, 30, 12), "2027-10-31 19:00", utc(2027, 10, 31, 18)),  # and back at 01:00 UTC
])
def test_across_the_night_the_clocks_change(newsletter, smtp_server, clock, day3, made, at, expected):
    clock.now = made
    populate(newsletter.store, 4, now=clock())
    schedule_day3(newsletter, day3, at)
    assert run_until(newsletter, clock, expected + timedelta(hours=3)) == [expected]
    assert len(smtp_server.received) == 4


def test_wall_times_the_zone_skips_or_repeats(newsletter, clock, day3):
    populate(newsletter.store, 1, now=clock())
    with pytest.raises(InvalidField, match="does not happen in Europe/Amsterdam") as skipped:
        schedule_day3(newsletter, day3, "2027-03-28 02:30")
    assert skipped.value.field == "at"
    twice = schedule_day3(newsletter, day3, "2027-10-31 02:30")  # happens twice: the first one
    assert twice.due_at == utc(2027, 10, 31, 0, 30)


def test_bad_schedules_are_refused_and_nothing_is_kept(newsletter, clock, day3):
    populate(newsletter.store, 1, now=clock())
    for kwargs, field in [({"zone": "Europe/Atlantis"}, "time zone"), ({"zone": "../etc/passwd"}, "time zone"),
                          ({"at": "tomorrow at seven"}, "at"), ({"at": "2020-01-01 19:00"}, "at"),
                          ({"ready_by": "2027-01-14 18:00"}, "ready by"), ({"window": "7-22h"}, "window")]:
        args = {"at": "2027-01-14 19:00", **kwargs}
        with pytest.raises(InvalidField) as refused:
            schedule_day3(newsletter, day3, **args)
        assert refused.value.field == field
    assert list_schedules(newsletter, everything=True) == []
    with pytest.raises(UnknownSchedule):
        show_schedule(newsletter, 99)


def test_started_ten_minutes_late_it_sends(newsletter, smtp_server, clock, day3):
    populate(newsletter.store, 4, now=clock())
    view = schedule_day3(newsletter, day3, "2027-01-14 19:00")
    clock.now = view.due_at + timedelta(minutes=10)  # the service was stopped before, and starts now
    [fired] = fire_due(newsletter, options=fast())
    assert fired.outcome is ScheduleStatus.DONE and len(smtp_server.received) == 4


def test_started_three_hours_late_it_waits_for_a_senders_go(newsletter, smtp_server, clock, day3):
    populate(newsletter.store, 4, now=clock())
    view = schedule_day3(newsletter, day3, "2027-01-14 19:00")
    with pytest.raises(ScheduleStateError, match="only a held send waits for go"):
        release_schedule(newsletter, view.id)
    clock.now = view.due_at + timedelta(hours=3)
    [held] = fire_due(newsletter, options=fast())
    assert held.outcome is ScheduleStatus.HELD and "3 h 0 min after its time" in held.reason
    clock.advance(minutes=5)
    assert fire_due(newsletter, options=fast()) == [] and not smtp_server.received
    assert show_schedule(newsletter, view.id).status is ScheduleStatus.HELD
    assert "newsletter" not in held.reason
    assert release_schedule(newsletter, view.id).status is ScheduleStatus.WAITING
    [fired] = fire_due(newsletter, options=fast())
    assert fired.outcome is ScheduleStatus.DONE and len(smtp_server.received) == 4


def test_a_held_or_waiting_send_can_be_cancelled_a_fired_one_cannot(newsletter, smtp_server, clock, day3):
    populate(newsletter.store, 2, now=clock())
    view = schedule_day3(newsletter, day3, "2027-01-14 19:00")
    with pytest.raises(ScheduleStateError, match="already sends asp23-day-3"):
        schedule_day3(newsletter, day3, "2027-01-15 19:00")
    assert cancel_schedule(newsletter, view.id).status is ScheduleStatus.CANCELLED
    clock.now = view.due_at
    assert fire_due(newsletter, options=fast()) == [] and not smtp_server.received
    again = schedule_day3(newsletter, day3, "2027-01-15 19:00")
    clock.now = again.due_at
    fire_due(newsletter, options=fast())
    with pytest.raises(ScheduleStateError, match="only a send that has not fired can be cancelled"):
        cancel_schedule(newsletter, again.id)
    with pytest.raises(CampaignStateError, match="cannot be scheduled again"):
        schedule_day3(newsletter, day3, "2027-01-16 19:00")


def test_ready_mode_waits_for_every_language_until_its_deadline(newsletter, smtp_server, clock, day3):
    populate(newsletter.store, 8, now=clock())
    arabic = (day3 / "day-3.ar.md").read_text(encoding="utf-8")
    (day3 / "day-3.ar.md").unlink()
    view = schedule_day3(newsletter, day3, "2027-01-14 19:00", ready_by="2027-01-14 21:00")
    clock.now = view.due_at
    assert fire_due(newsletter, options=fast()) == []
    assert show_schedule(newsletter, view.id).reason == "waiting for ar until its deadline"
    clock.advance(minutes=40)
    (day3 / "day-3.ar.md").write_text(arabic, encoding="utf-8")  # the translation comes in
    [fired] = fire_due(newsletter, options=fast())
    assert fired.outcome is ScheduleStatus.DONE and set(fired.result.counts._asdict()) and \
        fired.result.counts.sent == 8
    assert {m["Content-Language"] for m in smtp_server.messages()} == {"en", "fr", "es", "ar"}


def test_ready_mode_at_its_deadline_goes_along_the_fallback_chain(newsletter, smtp_server, clock, day3):
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en", "fr", "es", "ar"],
                          now=clock())
    populate(newsletter.store, 8, now=clock())
    (day3 / "day-3.ar.md").unlink()
    view = schedule_day3(newsletter, day3, "2027-01-14 19:00", ready_by="2027-01-14 21:00")
    clock.now = view.due_at + timedelta(hours=1, minutes=59)
    assert fire_due(newsletter, options=fast()) == []
    clock.now = view.ready_by
    [fired] = fire_due(newsletter, options=fast())
    assert fired.outcome is ScheduleStatus.DONE and fired.result.counts.sent == 8
    assert "ar" not in {m["Content-Language"] for m in smtp_server.messages()}


def test_content_broken_after_scheduling_fails_the_schedule_and_sends_nothing(newsletter, smtp_server, clock, day3):
    populate(newsletter.store, 2, now=clock())
    view = schedule_day3(newsletter, day3, "2027-01-14 19:00")
    (day3 / "day-3.fr.md").write_text("---\nkind: nonsense\n---\n", encoding="utf-8")
    clock.now = view.due_at
    [failed] = fire_due(newsletter, options=fast())
    assert failed.outcome is ScheduleStatus.FAILED and not smtp_server.received
    assert show_schedule(newsletter, view.id).reason.startswith("nothing was sent: ")
    assert actions.overview(newsletter) == []


def test_the_send_window_holds_the_start_and_pauses_at_its_end(newsletter, smtp_server, clock, day3):
    populate(newsletter.store, 12, now=clock())
    view = schedule_day3(newsletter, day3, "2027-01-14 06:00", window="07:00-22:00")
    clock.now = view.due_at
    assert fire_due(newsletter, options=fast()) == []
    assert show_schedule(newsletter, view.id).reason == "waiting for its send window (07:00-22:00, Europe/Amsterdam)"
    opening = utc(2027, 1, 14, 6)  # 07:00 in Amsterdam
    closing = utc(2027, 1, 14, 21)

    class ClosingClock(Clock):
        """Past the window's end once the relay has taken three messages."""

        def __call__(self):
            return closing if len(smtp_server.received) >= 3 else self.now

    newsletter.clock = ClosingClock(opening)
    [fired] = fire_due(newsletter, options=fast(concurrency=1, batch_size=1, progress_every=0.0))
    assert fired.outcome is ScheduleStatus.SENDING and fired.reason == str(WINDOW_CLOSED)
    assert 3 <= len(smtp_server.received) < 12
    assert actions.detail(newsletter, "asp23-day-3").summary.status is CampaignStatus.PAUSED
    with newsletter.store.session() as session:  # the English reworded: the kept message id still tells
        campaigns.get_campaign(session, "asp23-day-3").status_reason = "the window shut (an older wording)"
    newsletter.clock = clock
    clock.now = utc(2027, 1, 15, 5, 30)  # 06:30 the next morning: still closed
    assert fire_due(newsletter, options=fast()) == []
    clock.now = utc(2027, 1, 15, 6)
    [resumed] = fire_due(newsletter, options=fast())
    assert resumed.outcome is ScheduleStatus.DONE and len(smtp_server.received) == 12
    assert len({r.rcpt_tos[0] for r in smtp_server.received}) == 12


def test_two_services_on_one_postgresql_store_send_it_once(config, pg_url, smtp_server, day3):
    clock = Clock(utc(2027, 1, 1, 9))
    stores = [open_store(pg_url), open_store(pg_url)]
    from conftest import _pg_store
    _pg_store(pg_url).dispose()
    services = [Newsletter(config, store, clock=clock) for store in stores]
    try:
        populate(stores[0], 40, now=clock())
        view = schedule_day3(services[0], day3, "2027-01-14 19:00")
        clock.now = view.due_at
        barrier = threading.Barrier(2)
        results: list = [None, None]

        def service(i: int) -> None:
            barrier.wait()
            results[i] = fire_due(services[i], worker=f"service-{i}", options=fast())

        threads = [threading.Thread(target=service, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fired = [f for r in results for f in r]
        assert len(fired) == 1 and fired[0].outcome is ScheduleStatus.DONE
        recipients = [r.rcpt_tos[0] for r in smtp_server.received]
        assert len(recipients) == 40 and len(set(recipients)) == 40
    finally:
        for store in stores:
            store.dispose()


# ------------------------------------------------------------------------------------------ the CLI

@pytest.fixture
def workdir(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    for key in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def cli(*args):
    from click.testing import CliRunner

    from newsletter.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_schedule_commands(workdir, day3):
    assert cli("init").exit_code == 0
    assert cli("lists", "create", "asp-daily", "ASP daily summaries").exit_code == 0
    made = cli("schedule", *sorted(day3.glob("day-3.*.md")), "--at", "2030-07-08 19:00", "--tz", AMSTERDAM,
               "--window", "07:00-22:00")
    assert made.exit_code == 0, made.output
    assert "scheduled 1: asp23-day-3 to asp-daily at 2030-07-08 19:00 Europe/Amsterdam (2030-07-08 17:00 UTC)" \
        in made.output
    listed = cli("schedule", "list").output
    assert "asp23-day-3" in listed and "2030-07-08 17:00 UTC  waiting (window 07:00-22:00)" in listed
    twice = cli("schedule", day3 / "day-3.en.md", "--at", "2030-07-09 19:00", "--tz", AMSTERDAM)
    assert twice.exit_code == 1 and "already sends asp23-day-3" in twice.output and \
        "`newsletter schedule cancel 1`" in twice.output
    assert "scheduled send 1 (asp23-day-3) cancelled" in cli("schedule", "cancel", "1").output
    assert cli("schedule", "list").output.strip() == "nothing scheduled"
    assert "cancelled" in cli("schedule", "list", "--all").output
    for args, message in [
        (["--at", "2030-07-08 19:00", "--tz", "Mars/Olympus"], "time zone: 'Mars/Olympus' is not an IANA time zone"),
        (["--at", "8 July", "--tz", AMSTERDAM], "at: '8 July' is not a date and time like 2027-07-08 19:00"),
    ]:
        refused = cli("schedule", day3 / "day-3.en.md", *args)
        assert refused.exit_code == 1 and message in refused.output and "Traceback" not in refused.output
    unknown = cli("schedule", "go", "42")
    assert unknown.exit_code == 1 and "there is no scheduled send 42; `newsletter schedule list --all`" in unknown.output
    held = cli("schedule", "go", "1")
    assert held.exit_code == 1 and "is cancelled: only a held send waits for go" in held.output


# ------------------------------------------------------------------------------------- to a segment

SEGMENT_SPECS = {"country": {"type": "country"}, "role": {"type": "choice", "choices": ["focal-point", "press"]}}
#: person index -> attributes (people 0..9 on asp-daily; languages cycle en, fr, es, ar)
SEGMENT_PEOPLE = {0: {"country": "SN", "role": "press"}, 1: {"country": "SN", "role": "focal-point"},
                  2: {"country": "CI", "role": "press"}, 3: {"country": "EG", "role": "press"},
                  4: {"country": "FR", "role": "press"}, 5: {"country": "CI"}, 7: {"role": "press"}}


@pytest.fixture
def segmented(config, store, clock):
    from newsletter.attributes import parse_attribute_specs
    from newsletter.people import profiles

    n = Newsletter(config.with_changes(attributes=parse_attribute_specs(SEGMENT_SPECS)), store, clock=clock)
    populate(n.store, 10, now=clock())
    for i, values in SEGMENT_PEOPLE.items():
        profiles.set_attributes(n, person(i), values)
    return n


def person(i: int) -> str:
    return f"person{i:06d}@example.org"


def recipients(smtp_server) -> list[str]:
    return sorted(r.rcpt_tos[0] for r in smtp_server.received)


def test_a_scheduled_segment_send_reaches_exactly_the_people_the_segment_names(segmented, smtp_server, clock, day3):
    from newsletter.people import segments

    segments.create_segment(segmented, "press-africa", "role = press and country in (SN, CI, EG)")
    view = schedule_day3(segmented, day3, "2027-01-14 19:00", segment="press-africa")
    assert view.segment == "press-africa" and list_schedules(segmented)[0].segment == "press-africa"
    clock.now = view.due_at
    [fired] = fire_due(segmented, options=fast())
    assert fired.outcome is ScheduleStatus.DONE and fired.result.counts.sent == 3
    assert recipients(smtp_server) == [person(0), person(2), person(3)]
    with segmented.store.session() as session:
        source = campaigns.get_campaign(session, "asp23-day-3").source
    assert (source["segment"], source["expression"]) == ("press-africa", "role = press and country in (SN, CI, EG)")


def test_a_segment_changed_before_the_time_is_read_when_it_fires(segmented, smtp_server, clock, day3):
    from newsletter.people import segments

    segments.create_segment(segmented, "senegal", "country = SN")
    view = schedule_day3(segmented, day3, "2027-01-14 19:00", segment="senegal")
    segments.create_segment(segmented, "senegal", "country in (SN, CI)", replace=True)
    clock.now = view.due_at
    [fired] = fire_due(segmented, options=fast())
    assert fired.outcome is ScheduleStatus.DONE
    assert recipients(smtp_server) == [person(0), person(1), person(2), person(5)]


def test_a_segment_deleted_before_the_time_fails_the_schedule_and_mails_nobody(segmented, smtp_server, clock, day3):
    from newsletter.errors import UnknownSegment
    from newsletter.people import segments

    with pytest.raises(UnknownSegment):
        schedule_day3(segmented, day3, "2027-01-14 19:00", segment="nobody")
    segments.create_segment(segmented, "senegal", "country = SN")
    view = schedule_day3(segmented, day3, "2027-01-14 19:00", segment="senegal")
    segments.delete_segment(segmented, "senegal")
    [waiting] = list_schedules(segmented)
    assert waiting.status is ScheduleStatus.WAITING and "its segment 'senegal' no longer exists" in waiting.reason
    clock.now = view.due_at
    [failed] = fire_due(segmented, options=fast())
    assert failed.outcome is ScheduleStatus.FAILED and not smtp_server.received
    shown = show_schedule(segmented, view.id)
    assert shown.reason == ("nothing was sent: its segment 'senegal' was deleted before its time; it was not sent "
                            "to the whole list either")
    assert actions.overview(segmented) == []
    clock.now += timedelta(hours=1)
    assert fire_due(segmented, options=fast()) == [] and not smtp_server.received


def test_the_schedule_command_takes_a_segment_and_shows_its_audience_first(segmented, smtp_server, day3,
                                                                           monkeypatch):
    from click.testing import CliRunner

    from newsletter import cli as cli_package
    from newsletter.cli import main
    from newsletter.people import segments

    monkeypatch.setattr(cli_package.State, "newsletter", lambda self, check_schema=True: segmented)
    segments.create_segment(segmented, "press-africa", "role = press and country in (SN, CI, EG)")
    runner = CliRunner()
    content = [str(p) for p in sorted(day3.glob("day-3.*.md"))]
    dry = runner.invoke(main, ["schedule", *content, "--at", "2027-01-14 19:00", "--tz", AMSTERDAM,
                               "--segment", "press-africa", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "segment press-africa (role = press and country in (SN, CI, EG))" in dry.output
    assert "per country: CI (Côte d'Ivoire) 1, EG (Egypt) 1, SN (Senegal) 1" in dry.output
    assert "en: 1 subscriber(s)" in dry.output and list_schedules(segmented) == []
    made = runner.invoke(main, ["schedule", *content, "--at", "2027-01-14 19:00", "--tz", AMSTERDAM,
                                "--segment", "press-africa"])
    assert made.exit_code == 0, made.output
    assert "scheduled 1: asp23-day-3 to asp-daily, segment press-africa, at 2027-01-14 19:00" in made.output
    assert "segment press-africa" in runner.invoke(main, ["schedule", "list"]).output
    unknown = runner.invoke(main, ["schedule", *content, "--at", "2027-01-15 19:00", "--tz", AMSTERDAM,
                                   "--segment", "nobody"])
    assert unknown.exit_code == 1 and "there is no segment 'nobody'" in unknown.output
    assert "Traceback" not in unknown.output
    deleted = runner.invoke(main, ["segments", "delete", "press-africa"])
    assert deleted.exit_code == 0 and "scheduled send 1 (asp23-day-3, 2027-01-14 19:00 Europe/Amsterdam) names it: " \
        "at its time it fails and sends nothing" in deleted.output
    listed = runner.invoke(main, ["schedule", "list"]).output
    assert "its segment 'press-africa' no longer exists: at its time it fails and sends nothing" in listed
