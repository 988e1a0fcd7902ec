"""The group commit's lanes: several batches written at once (PostgreSQL), never two holding
the same key, each key's requests in arrival order; and on the real stores, sign-ups of one
address or one mailbox arriving together still make one person and one confirmation mail."""

from __future__ import annotations

import asyncio
import functools
import threading
import time

import pytest

from newsletter.people import lists
from newsletter.people import subscriptions as visitor
from newsletter.people.confirmation_queue import count_queued
from newsletter.people.consent import ConsentContext
from newsletter.people.signups import SignupRequest, mailbox_of
from newsletter.statuses import Channel
from newsletter.web.group_commit import GroupCommit

CTX = ConsentContext(channel=Channel.FORM, ip="203.0.113.7", user_agent="test", source="test",
                     consent_version="2026-11")


def test_lanes_write_batches_at_once_but_never_two_of_one_key():
    active: list[set[str]] = []  # the keys of each batch being written
    seen: list[tuple[str, int]] = []
    most = 0
    lock = threading.Lock()

    def write(requests):
        nonlocal most
        keys = {k for k, _ in requests}
        with lock:
            assert not any(keys & other for other in active), (keys, active)
            active.append(keys)
            most = max(most, len(active))
        time.sleep(0.02)  # a transaction's time: the others arrive meanwhile
        with lock:
            active.remove(keys)
            seen.extend(requests)
        return [f"{k}{n}" for k, n in requests]

    async def db(func, *args):
        return await asyncio.to_thread(func, *args)

    async def go():
        writer = GroupCommit(write, db, lanes=3, key=lambda r: r[0])
        requests = [(k, n) for n in range(6) for k in "abcab"]  # a and b come twice as often
        return requests, await asyncio.gather(*(writer.submit(r) for r in requests))

    requests, outcomes = asyncio.run(go())
    assert outcomes == [f"{k}{n}" for k, n in requests]
    assert most > 1  # batches did overlap
    for k in "abc":  # each key's requests were written in the order they came
        assert [n for key, n in seen if key == k] == [n for key, n in requests if key == k]


def test_several_lanes_need_a_key():
    with pytest.raises(ValueError):
        GroupCommit(lambda requests: requests, None, lanes=2)


@pytest.mark.parametrize("email", ["Someone@Example.org", "someone+news@example.org", "some.one@gmail.com"])
def test_the_key_of_a_signup_is_the_mailbox_it_reaches(email):
    expected = "someone@gmail.com" if "gmail" in email else "someone@example.org"
    assert mailbox_of(SignupRequest(email, "", None, ("a",), CTX)) == expected
    assert mailbox_of(SignupRequest("not an address", "", None, ("a",), CTX)) is None


@pytest.fixture
def newsletter(newsletter, clock):
    with newsletter.store.session() as session:
        lists.create_list(session, "asp-daily", "ASP daily summaries", languages=["en"], now=clock())
    return newsletter


def test_one_address_and_one_mailbox_in_overlapping_batches_get_one_person_and_one_mail(newsletter):
    """Four lanes and the requests arriving together: the first four would each start a
    transaction of their own. Same address twice and sub-addresses of one mailbox lead: one
    person per address, one confirmation for the mailbox (the re-send limit), double opt-in
    (pending) as with one writer."""
    batches: list[int] = []

    async def db(func, *args):
        batches.append(len(args[-1]))
        return await asyncio.to_thread(func, *args)

    def request(email):
        return SignupRequest(email, "P", "en", ("asp-daily",), CTX)

    emails = (["victim@example.org", "Victim@example.org", "victim+1@example.org", "victim+2@example.org"]
              + [f"p{i}@example.org" for i in range(12)] + ["victim+3@example.org", "victim@example.org"])

    async def go():
        writer = GroupCommit(functools.partial(visitor.record_signups, newsletter), db, lanes=4, key=mailbox_of)
        return await asyncio.gather(*(writer.submit(request(e)) for e in emails))

    records = asyncio.run(go())
    mailed = [e for e, r in zip(emails, records) if r.due is not None]
    assert mailed == ["victim@example.org"] + [f"p{i}@example.org" for i in range(12)]
    assert len(batches) > 1 and sum(batches) == len(emails)
    with newsletter.store.session() as session:
        assert count_queued(session) == 13
    for email in ("victim@example.org", "victim+1@example.org", "victim+2@example.org", "victim+3@example.org"):
        person = visitor.person(newsletter, email).as_json()
        assert [(s["list"], s["status"]) for s in person["subscriptions"]] == [("asp-daily", "pending")], email
    assert visitor.count_subscribers(newsletter) == 16
