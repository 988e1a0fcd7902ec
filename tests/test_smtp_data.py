"""Messages built as SMTP's DATA carries them (`MailSkeleton.render_for_smtp`): the same bytes
as the message rendered and then dot-stuffed and terminated, in every transfer encoding, and
they arrive intact through a real SMTP server."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.config import Config
from newsletter.mail.compose import RenderedMail
from newsletter.mail.encoding import EncodedPart, TransferEncoding
from newsletter.mail.message import ListInfo, MailSkeleton, Recipient
from newsletter.mail.personalise import Field, marker
from newsletter.transport.connection import Stage, open_smtp

INFO = ListInfo("asp-daily", "ASP daily summaries", "asp25-day-3")
DATE = "Mon, 23 Nov 2026 09:00:00 +0000"

# Periods where lines begin, next to markers, and text in and out of ASCII.
LINE = st.sampled_from(["", ".", "..", ".x", "x.", "a line", "é.", ".é", "ليلى", " .", "x" * 80 + ".y"])
TEXT = st.lists(LINE, max_size=6).map("\n".join)
VALUE = st.sampled_from(["", ".", ".dot", "Ana", "é", ".ليلى", "x" * 90 + "." + "y" * 20])
FIELDS = (Field.NAME, Field.EMAIL, Field.UNSUBSCRIBE_URL, Field.PREFERENCES_URL)


def reference(message: bytes) -> bytes:
    """`message` dot-stuffed and terminated the plain way (RFC 5321 §4.5.2)."""
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    return (b"." + stuffed if stuffed.startswith(b".") else stuffed) + b".\r\n"


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(TEXT, min_size=1, max_size=5), data=st.data(),
       encoding=st.sampled_from([TransferEncoding.BASE64, TransferEncoding.QUOTED_PRINTABLE, None]),
       eight_bit=st.booleans())
def test_a_stuffed_part_is_the_part_dot_stuffed(pieces, data, encoding, eight_bit):
    values = [data.draw(VALUE) for _ in pieces[1:]]
    part = EncodedPart(pieces, encoding, eight_bit=eight_bit)
    plain: list[bytes] = []
    stuffed: list[bytes] = []
    used = part.write(values, plain)
    assert part.write(values, stuffed, stuffed=True) is used
    # A part begins a line: after the blank line that ends its head.
    assert b"".join(stuffed) == reference(b"\r\n" + b"".join(plain))[2:-3]


def body_with_markers(lines: list[str], fields: list[Field]) -> str:
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        if i < len(fields):
            out.append(marker(fields[i]))
    return "\n".join(out)


@settings(max_examples=200, deadline=None)
@given(text=st.lists(LINE, min_size=1, max_size=8), html=st.lists(LINE, min_size=1, max_size=8),
       fields=st.lists(st.sampled_from(FIELDS), max_size=4), name=VALUE, eight_bit=st.booleans(),
       address=st.sampled_from(["ana@example.org", "ليلى@example.org"]))
def test_render_for_smtp_is_the_rendered_message_dot_stuffed(text, html, fields, name, eight_bit, address):
    mail = RenderedMail("fr", "Jour 3", body_with_markers(text, fields), body_with_markers(html, fields))
    skeleton = MailSkeleton(Config(eight_bit_mime=eight_bit), mail, INFO)
    recipient = Recipient(address, name, "<abc@example.org>", "https://news.example.org/unsubscribe/.abc",
                          ".https://news.example.org/preferences/abc", "mailto:news@example.org?subject=x")
    message = skeleton.render(recipient, date=DATE)
    wire = skeleton.render_for_smtp(recipient, date=DATE)
    assert wire.data == reference(message)
    assert wire.eight_bit is not message.isascii()


@pytest.mark.parametrize("eight_bit", [True, False])
async def test_a_message_built_for_smtp_arrives_as_rendered(smtp_server, eight_bit):
    body = ".Une ligne qui commence par un point\n..et deux\nDear " + marker(Field.NAME) + "\n"
    skeleton = MailSkeleton(Config(eight_bit_mime=eight_bit), RenderedMail("fr", "Jour 3", body, "<p>é</p>"), INFO)
    recipient = Recipient("b@example.org", ".Ana", "<abc@example.org>", "https://news.example.org/u/abc")
    settings = Config(database_url="sqlite://", smtp_url=f"smtp://127.0.0.1:{smtp_server.port}?starttls=off&timeout=5",
                      secret_key="k" * 32).smtp
    conn = await open_smtp(settings)
    reply = await conn.deliver("news@example.org", "b@example.org", skeleton.render_for_smtp(recipient, date=DATE))
    await conn.close()
    assert (reply.code, reply.stage) == (250, Stage.DATA)
    [received] = smtp_server.received
    assert received.data.replace(b"\r\n", b"\n") == skeleton.render(recipient, date=DATE).replace(b"\r\n", b"\n")
    assert ("BODY=8BITMIME" in received.mail_options) is eight_bit
