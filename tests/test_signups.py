"""Sign-ups in bulk (signups.subscribe_many) give each request what consent.subscribe gives it
alone; the web app's SignupWriter batches concurrent sign-ups and survives a failed batch.
On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from newsletter.errors import InvalidAddress, InvalidField, UnknownList
from newsletter.people import consent, lists
from newsletter.people import subscriptions
from newsletter.people import subscriptions as visitor
from newsletter.people.confirmation_queue import count_queued
from newsletter.people.consent import ConfirmationDue, ConsentContext
from newsletter.people.signups import SignupRequest, subscribe_many
from newsletter.statuses import Channel
from newsletter.web.group_commit import GroupCommit

CTX = ConsentContext(channel=Channel.FORM, ip="203.0.113.7", user_agent="test", source="test",
                     consent_version="2026-11")
LANGUAGES = ("en", "fr", "es", "ar")


@pytest.fixture
def newsletter(newsletter, clock):
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=list(LANGUAGES), now=clock())
        lists.create_list(session, "alerts", "Campaign alerts", now=clock())
        lists.create_list(session, "staff", "Staff only", public=False, now=clock())
    return newsletter


def request(email: str) -> SignupRequest:
    return SignupRequest(email, "P", "en", ("asp-daily",), CTX)


def _prepare(newsletter, clock, p: str) -> None:
    """People in every state, their addresses starting with `p`."""
    now = clock()

    def signup(session, email, at, slugs=("asp-daily",)):
        return consent.subscribe(session, email, "Old Name", "fr", list(slugs), CTX, now=at, languages=LANGUAGES)

    with newsletter.store.session() as session:
        signup(session, f"{p}-pending@example.org", now - timedelta(minutes=1))
        signup(session, f"{p}-pending-old@example.org", now - timedelta(minutes=11))
        for state in ("active", "unsubscribed"):
            signup(session, f"{p}-{state}@example.org", now - timedelta(days=1))
            person = consent.find_subscriber(session, f"{p}-{state}@example.org")
            consent.confirm(session, person, CTX, now=now - timedelta(hours=20))
        consent.unsubscribe(session, consent.find_subscriber(session, f"{p}-unsubscribed@example.org"), CTX,
                            now=now - timedelta(hours=1))
        signup(session, f"{p}-blocked@example.org", now - timedelta(days=1))
        consent.block(session, consent.find_subscriber(session, f"{p}-blocked@example.org"), CTX, now=now)
        signup(session, f"{p}-erased@example.org", now - timedelta(days=1))
        consent.erase(session, f"{p}-erased@example.org", now=now)


def _requests(p: str) -> list[SignupRequest]:
    def r(email, lists=("asp-daily",), language="en", name="New Name"):
        return SignupRequest(email, name, language, tuple(lists), CTX)
    return [
        r(f"{p}-new@example.org", ("asp-daily", "alerts")),
        r(f"{p}-NEW@Example.org", ("asp-daily",), "es"),  # the same address again in the batch
        r(f"{p}-pending@example.org"),
        r(f"{p}-pending-old@example.org", language=None, name=""),
        r(f"{p}-active@example.org"),
        r(f"{p}-active@example.org", ("alerts",)),
        r(f"{p}-unsubscribed@example.org"),
        r(f"{p}-blocked@example.org"),
        r(f"{p}-erased@example.org"),
        r(f"{p}-bad@@example.org"),
        r(f"{p}-other@example.org", ("nope",)),
        r(f"{p}-other@example.org", ("staff",)),
        r(f"{p}-other@example.org", language="xx"),
        r(f"{p}-other@example.org", ()),
        r(f"{p}-second@example.org", language=None),
    ]


def _shape(outcome, p: str):
    """An outcome with the address prefix taken out, to compare twins."""
    if isinstance(outcome, ConfirmationDue):
        return ("due", outcome.email.replace(f"{p}-", "#-"), outcome.name, outcome.language, outcome.list_slugs,
                outcome.list_names)
    return type(outcome).__name__ if outcome is not None else None


def test_a_batch_gets_what_one_by_one_gets(newsletter, clock):
    _prepare(newsletter, clock, "a")
    _prepare(newsletter, clock, "b")
    with newsletter.store.session() as session:
        batch = subscribe_many(session, _requests("a"), now=clock(), languages=LANGUAGES, public_only=True)
    alone = []
    for request in _requests("b"):
        try:
            with newsletter.store.session() as session:
                alone.append(consent.subscribe(session, request.email, request.name, request.language,
                                               request.list_slugs, request.ctx, now=clock(), languages=LANGUAGES,
                                               public_only=True))
        except (InvalidAddress, InvalidField, UnknownList) as exc:
            alone.append(exc)
    assert [_shape(o, "a") for o in batch] == [_shape(o, "b") for o in alone]
    assert isinstance(batch[0], ConfirmationDue) and batch[1] is None  # the repeat is within the re-send limit
    assert [type(o) for o in batch[9:14]] == [InvalidAddress, UnknownList, UnknownList, InvalidField, InvalidField]
    for state in ("new", "pending", "pending-old", "active", "unsubscribed", "second"):
        a, b = (subscriptions.person(newsletter, f"{p}-{state}@example.org").as_json() for p in "ab")
        assert [(s["list"], s["status"]) for s in a["subscriptions"]] == [
            (s["list"], s["status"]) for s in b["subscriptions"]], state
        assert (a["name"], a["language"]) == (b["name"], b["language"]), state
        assert [(e["event"], e["list"], e["note"]) for e in a["consent_log"]] == [
            (e["event"], e["list"], e["note"]) for e in b["consent_log"]], state


def test_the_writer_batches_concurrent_signups_and_queues_their_mails(newsletter):
    calls = []

    async def db(func, *args):
        calls.append(len(args[-1]))
        return await asyncio.to_thread(func, *args)

    async def go():
        writer = GroupCommit(functools.partial(visitor.record_signups, newsletter), db)
        return await asyncio.gather(*(writer.submit(request(f"p{i}@example.org")) for i in range(30)))

    records = asyncio.run(go())
    assert all(r.due is not None for r in records)
    assert len(calls) < 30 and sum(calls) == 30  # those that arrive together are written together
    with newsletter.store.session() as session:
        assert count_queued(session) == 30


def test_a_batch_the_store_refuses_is_recorded_one_by_one(newsletter):
    failed = []

    async def db(func, *args):
        if len(args[-1]) > 1 and not failed:  # the store fails the first batch as a whole
            failed.append(len(args[-1]))
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return await asyncio.to_thread(func, *args)

    async def go():
        writer = GroupCommit(functools.partial(visitor.record_signups, newsletter), db)
        return await asyncio.gather(*(writer.submit(request(f"p{i}@example.org")) for i in range(5)),
                                    writer.submit(request("bad@@example.org")), return_exceptions=True)

    *records, bad = asyncio.run(go())
    assert failed and all(r.due is not None for r in records) and isinstance(bad, InvalidAddress)
    assert subscriptions.count_subscribers(newsletter) == 5
    assert visitor.record_signup(newsletter, "p1@example.org", "P", "en", ["asp-daily"], CTX).due is None


def _written(newsletter, email: str) -> tuple:
    """What the store holds about a person, less what names the rows (ids, key) and what the
    request's context fills (channel, source, IP, user agent, consent version)."""
    from newsletter.store import ConsentEvent, QueuedConfirmation, Subscriber

    with newsletter.store.session() as session:
        person = session.query(Subscriber).filter_by(email=email).one()
        subscriptions_ = sorted((s.mailing_list.slug, s.status, s.created_at, s.confirmed_at, s.unsubscribed_at)
                                for s in person.subscriptions)
        events = [(e.kind, e.mailing_list.slug if e.mailing_list else None, e.at, e.note)
                  for e in session.query(ConsentEvent).filter_by(subscriber_id=person.id).order_by(ConsentEvent.id)]
        queue = [(q.list_slugs, q.queued_at)
                 for q in session.query(QueuedConfirmation).filter_by(subscriber_id=person.id)]
        return ((person.name, person.language, person.status, person.created_at, person.updated_at),
                subscriptions_, events, queue)


def test_the_form_the_command_line_and_an_import_write_the_same_rows(newsletter, smtp_server, tmp_path, clock):
    """One writer of new people, one set of rules, one way out for the mail: the same person
    coming in by the web form's group commit, by `newsletter subscribe` and by an import is
    written alike, confirmation mail queued beside the sign-up (the relay says "later" to all
    three, so the queued rows stay to be seen)."""
    from newsletter.people.importer import ImportOptions, import_csv

    for way in ("form", "cli", "import"):
        smtp_server.fail_rcpt[f"{way}@example.org"] = "451 4.7.1 greylisted, try again later"
    [record] = visitor.record_signups(newsletter, [SignupRequest("Form@Example.org", "Ana Ruiz", "fr",
                                                                 ("asp-daily", "alerts"), CTX)])
    assert record.due.list_names == ("ASP daily summaries", "Campaign alerts")
    result = subscriptions.subscribe(newsletter, "cli@example.org", "Ana Ruiz", "fr", ["asp-daily", "alerts"],
                                     ConsentContext(channel=Channel.CLI, source="cli", consent_version="2026-11"))
    assert result.confirmation.delivery.value == "waiting" and "451" in result.confirmation.reason
    path = tmp_path / "people.csv"
    path.write_text("email,name,language,lists\nimport@example.org,Ana Ruiz,fr,asp-daily|alerts\n", encoding="utf-8")
    report = import_csv(newsletter, path, ImportOptions())
    assert (report.imported, report.confirmations_queued) == (1, 1)
    form, cli, imported = (_written(newsletter, f"{way}@example.org") for way in ("form", "cli", "import"))
    assert form == cli == imported
    person, subscriptions_, events, queue = form
    assert person[:3] == ("Ana Ruiz", "fr", "active")
    assert [s[:2] for s in subscriptions_] == [("alerts", "pending"), ("asp-daily", "pending")]
    assert [(e[0].value, e[1], e[3]) for e in events] == [
        ("signup", "asp-daily", None), ("signup", "alerts", None), ("confirmation_sent", None, "asp-daily,alerts")]
    assert queue == [("asp-daily,alerts", clock())]
    assert smtp_server.received == []


def test_each_sign_up_of_a_batch_keeps_its_own_context(newsletter):
    """The group commit writes many people in one statement per table; each event still carries
    the IP, user agent and source of its own request."""
    requests = [SignupRequest(f"p{i}@example.org", "P", "en", ("asp-daily",),
                              ConsentContext(channel=Channel.FORM, ip=f"203.0.113.{i}", user_agent=f"UA {i}",
                                             source="footer" if i % 2 else "api", consent_version="2026-11"))
                for i in range(4)]
    assert all(r.due is not None for r in visitor.record_signups(newsletter, requests))
    for i in range(4):
        log = subscriptions.person(newsletter, f"p{i}@example.org").consent_log
        assert {(e.ip, e.user_agent, e.source, e.consent_version) for e in log} == {
            (f"203.0.113.{i}", f"UA {i}", "footer" if i % 2 else "api", "2026-11")}
