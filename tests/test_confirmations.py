"""Confirmation mails built from a pre-encoded skeleton are the ones `build_transactional` makes."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import re
from email import policy
from email.header import decode_header, make_header

import pytest

from newsletter.installation import Newsletter
from newsletter.people.confirmations import ConfirmationSender
from newsletter.people.consent import ConfirmationDue

LISTS = ("ASP daily summaries", "Campaign alerts")
ARABIC_NAME = "ليلى حداد"
HOSTILE = '"><img src=x onerror=alert(1)>'

# The headers whose values must be identical in both builds (Message-ID is unique per mail).
SAME = ("From", "To", "Subject", "Date", "Reply-To", "Auto-Submitted", "MIME-Version", "Content-Language")


@pytest.fixture
def sender(config, sqlite_store, clock) -> ConfirmationSender:
    return ConfirmationSender(Newsletter(config, sqlite_store, clock=clock))


def _due(language: str, name: str, email_address: str = "ana@example.org") -> ConfirmationDue:
    return ConfirmationDue("k3y0fanaperson", email_address, name, language, ("asp-daily", "alerts"))


def _parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def _reference(sender: ConfirmationSender, due: ConfirmationDue) -> email.message.EmailMessage:
    """The EmailMessage-built confirmation, through the bytes it goes out as."""
    message = sender.message(due, LISTS)
    return _parsed(message.as_bytes(policy=message.policy.clone(linesep="\r\n")))


def _decoded(message: email.message.EmailMessage, header: str) -> str | None:
    """A header's value decoded as RFC 2047 says (the modern parser of CPython 3.11–3.13 adds or
    drops spaces between some encoded-words, differently for each folding)."""
    raw = email.message_from_bytes(message.as_bytes(), policy=policy.compat32)[header]
    return None if raw is None else str(make_header(decode_header(raw)))


def assert_same_mail(fast: email.message.EmailMessage, slow: email.message.EmailMessage) -> None:
    assert sorted(k.lower() for k in fast.keys()) == sorted(k.lower() for k in slow.keys())
    for header in SAME:
        assert _decoded(fast, header) == _decoded(slow, header), header
    assert [a.addr_spec for a in fast["To"].addresses] == [a.addr_spec for a in slow["To"].addresses]
    domain = str(slow["Message-ID"]).rpartition("@")[2]
    assert re.fullmatch(r"<[^<>@\s]+@" + re.escape(domain), str(fast["Message-ID"]))
    assert fast["Message-ID"] != slow["Message-ID"]
    assert fast.get_content_type() == slow.get_content_type() == "multipart/alternative"
    fast_parts, slow_parts = list(fast.iter_parts()), list(slow.iter_parts())
    assert [p.get_content_type() for p in fast_parts] == [p.get_content_type() for p in slow_parts] == [
        "text/plain", "text/html"]
    for f, s in zip(fast_parts, slow_parts):
        assert f.get_content_charset() == s.get_content_charset() == "utf-8"
        assert f["Content-Transfer-Encoding"] == "quoted-printable"
        assert f.get_content() == s.get_content()


@pytest.mark.parametrize("language", ["en", "fr", "es", "ar"])
@pytest.mark.parametrize("name", ["", "Ana Pérez", ARABIC_NAME, HOSTILE, 'Ana "the chair" O\'Neil'])
def test_skeleton_mail_equals_the_email_package_one(sender, language, name):
    due = _due(language, name)
    sender_address, recipients, data = sender.wire(due, LISTS)
    assert (sender_address, recipients) == (sender.newsletter.config.from_address, ["ana@example.org"])
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= 78 for line in data.split(b"\r\n")), "a line longer than RFC 5322 allows"
    fast = _parsed(data)
    assert not fast.defects and not any(p.defects for p in fast.walk())
    assert_same_mail(fast, _reference(sender, due))
    html_part = fast.get_body(("html",)).get_content()
    assert "<img src=x" not in html_part
    if name:
        assert name in fast.get_body(("plain",)).get_content()
    assert "/confirm/" in html_part and "/block/" in html_part


def test_reply_to_and_a_long_name_are_kept(config, sqlite_store, clock):
    config = dataclasses.replace(config, reply_to="office@example.org")
    sender = ConfirmationSender(Newsletter(config, sqlite_store, clock=clock))
    due = _due("es", ("María de los Ángeles Fernández-Castillo y Rodríguez de la Fuente " * 2).strip())
    fast = _parsed(sender.wire(due, LISTS)[2])
    assert str(fast["Reply-To"]) == "office@example.org"
    assert_same_mail(fast, _reference(sender, due))


def test_a_name_cannot_add_a_header(sender):
    due = _due("en", "Ana\r\nBcc: victim@example.net")
    fast = _parsed(sender.wire(due, LISTS)[2])
    assert fast["Bcc"] is None
    assert fast["To"].addresses[0].addr_spec == "ana@example.org"


def test_skeleton_is_built_once_per_language_and_lists(sender):
    sender.wire(_due("fr", "Ana"), LISTS)
    sender.wire(_due("fr", "Bea", "bea@example.org"), LISTS)
    sender.wire(_due("fr", ""), LISTS)
    sender.wire(_due("ar", "Ana"), LISTS[:1])
    assert len(sender._skeletons) == 3


def test_sent_confirmation_arrives_intact(sender, smtp_server):
    due = _due("ar", ARABIC_NAME, "layla@example.org")

    async def send_two() -> None:
        await sender.send(due, LISTS)
        await sender.send(dataclasses.replace(due, email="omar@example.org", name="Omar"), LISTS)
        await sender.close()

    asyncio.run(send_two())
    [received] = smtp_server.to("layla@example.org")
    assert_same_mail(received, _reference(sender, due))
    assert len(smtp_server.to("omar@example.org")) == 1
