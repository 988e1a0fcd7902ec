"""Confirmation mails from a cached rendering and the one message builder are the mail that
`render_confirmation` makes for the person directly: same headers, same text, same words."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import re
from email import policy
from email.header import decode_header, make_header
from email.utils import format_datetime, getaddresses

import pytest
from wire import long_lines
from bs4 import BeautifulSoup

from newsletter.installation import Newsletter
from newsletter.mail.compose import render_confirmation
from newsletter.people.confirmations import ConfirmationSender
from newsletter.people.consent import ConfirmationDue
from newsletter.tokens import Purpose
from newsletter.transport.smtp import send_bytes

LISTS = ("ASP daily summaries", "Campaign alerts")
ARABIC_NAME = "ليلى حداد"
HOSTILE = '"><img src=x onerror=alert(1)>'

# Every header a confirmation carries (no list headers: nobody is subscribed yet).
HEADERS = {"from", "to", "subject", "date", "message-id", "mime-version", "auto-submitted", "content-language",
           "content-type"}


@pytest.fixture
def sender(config, sqlite_store, clock) -> ConfirmationSender:
    return ConfirmationSender(Newsletter(config, sqlite_store, clock=clock))


def _due(language: str, name: str, email_address: str = "ana@example.org") -> ConfirmationDue:
    return ConfirmationDue("k3y0fanaperson", email_address, name, language, ("asp-daily", "alerts"))


def _parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def _decoded(message: email.message.EmailMessage, header: str) -> str | None:
    """A header's value decoded as RFC 2047 says (the modern parser of CPython 3.11–3.13 adds or
    drops spaces between some encoded-words, differently for each folding)."""
    raw = email.message_from_bytes(message.as_bytes(), policy=policy.compat32)[header]
    unfolded = None if raw is None else re.sub(r"\r?\n(?=[ \t])", "", raw)  # RFC 5322 unfolding
    return None if raw is None else str(make_header(decode_header(unfolded)))


def _words(markup: str) -> list[str]:
    return BeautifulSoup(markup, "html.parser").get_text().split()


def assert_is_the_confirmation(received: email.message.EmailMessage, sender: ConfirmationSender,
                               due: ConfirmationDue) -> None:
    """`received` is the confirmation `render_confirmation` makes for `due` with its real links,
    without the name the sign-up gave (nobody has vouched for it yet: #12.11)."""
    newsletter = sender.newsletter
    config = newsletter.config
    reference = render_confirmation(
        config, due.language, "",
        confirm_url=newsletter.link(Purpose.CONFIRM, due.subscriber_key, language=due.language),
        block_url=newsletter.link(Purpose.BLOCK, due.subscriber_key, language=due.language), list_names=list(LISTS))
    expected = {"reply-to"} if config.reply_to else set()
    assert {k.lower() for k in received.keys()} - {"dkim-signature"} == HEADERS | expected
    assert _decoded(received, "Subject") == reference.subject
    assert _decoded(received, "From") == f"{config.from_name} <{config.from_address}>"
    assert [a.addr_spec for a in received["To"].addresses] == [due.email]
    assert getaddresses([_decoded(received, "To")]) == [("", due.email)]
    assert received["Date"] == format_datetime(newsletter.clock())
    assert re.fullmatch(r"<[^<>@\s]+@" + re.escape(config.from_address.rpartition("@")[2]) + ">",
                        str(received["Message-ID"]))
    assert received["Auto-Submitted"] == "auto-generated" and received["MIME-Version"] == "1.0"
    assert received["Content-Language"] == due.language
    assert received.get_content_type() == "multipart/alternative"
    parts = list(received.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64", "8bit")
    assert parts[0].get_content().replace("\r\n", "\n") == reference.text
    assert _words(parts[1].get_content()) == _words(reference.html)


@pytest.mark.parametrize("language", ["en", "fr", "es", "ar"])
@pytest.mark.parametrize("name", ["", "Ana Pérez", ARABIC_NAME, HOSTILE, 'Ana "the chair" O\'Neil'])
def test_skeleton_mail_is_the_rendered_confirmation(sender, language, name):
    due = _due(language, name)
    sender_address, recipients, data = sender.wire(due, LISTS)
    assert (sender_address, recipients) == (sender.newsletter.config.from_address, ["ana@example.org"])
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert not long_lines(data), "a line longer than RFC 5322 allows"
    fast = _parsed(data)
    assert not fast.defects and not any(p.defects for p in fast.walk())
    assert_is_the_confirmation(fast, sender, due)
    html_part = fast.get_body(("html",)).get_content()
    assert "<img src=x" not in html_part
    if name:  # the unverified name is mailed nowhere: not in the greeting, not in To:
        assert name not in fast.get_body(("plain",)).get_content() and name not in html_part
        assert name.encode() not in data and fast["To"].addresses[0].display_name == ""
    assert "/confirm/" in html_part and "/block/" in html_part
    filled = sender.render(due, LISTS)
    assert filled.text == fast.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert filled.html == fast.get_body(("html",)).get_content().replace("\r\n", "\n")


def test_reply_to_is_kept_and_a_long_name_is_not_mailed(config, sqlite_store, clock):
    config = dataclasses.replace(config, reply_to="office@example.org")
    sender = ConfirmationSender(Newsletter(config, sqlite_store, clock=clock))
    due = _due("es", ("María de los Ángeles Fernández-Castillo y Rodríguez de la Fuente " * 2).strip())
    fast = _parsed(sender.wire(due, LISTS)[2])
    assert str(fast["Reply-To"]) == "office@example.org"
    assert_is_the_confirmation(fast, sender, due)


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
    assert len(sender._skeletons) == 2  # one per (language, lists): the name is never in it


def test_sent_confirmation_arrives_intact(sender, smtp_server):
    due = _due("ar", ARABIC_NAME, "layla@example.org")
    settings = sender.newsletter.config.smtp
    asyncio.run(send_bytes(settings, *sender.wire(due, LISTS)))
    asyncio.run(send_bytes(settings, *sender.wire(dataclasses.replace(due, email="omar@example.org", name="Omar"),
                                                  LISTS)))
    [received] = smtp_server.to("layla@example.org")
    assert_is_the_confirmation(received, sender, due)
    assert len(smtp_server.to("omar@example.org")) == 1
