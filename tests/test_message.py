"""Campaign messages built from a pre-encoded skeleton: headers, content, injection safety."""

from __future__ import annotations

import hashlib
import hmac
import re
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import format_datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire import long_lines

from newsletter.mail.compose import RenderedMail
from newsletter.mail.message import (
    ListInfo,
    MailSkeleton,
    MessageIds,
    Recipient,
    UnsafeHeaderValue,
    format_address,
    message_id_for,
)
from newsletter.mail.personalise import Field, fill, marker

TEXT = (
    "Dear {name},\n\nDay 3 of the Assembly: the Court's budget was debated.\n"
    "A line that is rather long and goes on and on and on to test the soft line breaks of quoted-printable encoding, "
    "with accents: é à ü and Arabic: جمعية الدول الأطراف\n"
    ".A line starting with a dot\nTrailing space   \n\nUnsubscribe: {unsub}\nPreferences: {prefs}\nYour address: {email}"
).format(name=marker(Field.NAME), unsub=marker(Field.UNSUBSCRIBE_URL), prefs=marker(Field.PREFERENCES_URL),
         email=marker(Field.EMAIL))
HTML = (
    '<html><body><p style="color: #333">Dear {name},</p><p>' + "Budget &amp; cooperation. " * 40 + "</p>"
    '<p><a href="{unsub}">Unsubscribe</a> · <a href="{prefs}">Preferences</a></p></body></html>'
).format(name=marker(Field.NAME), unsub=marker(Field.UNSUBSCRIBE_URL), prefs=marker(Field.PREFERENCES_URL))

MAIL = RenderedMail("fr", "Jour 3 : l'Assemblée des États parties — résumé", TEXT, HTML)
INFO = ListInfo("asp-daily", "ASP daily summaries", "asp25-day-3")
DATE = format_datetime(__import__("datetime").datetime(2026, 11, 23, 9, 0, tzinfo=__import__("datetime").timezone.utc))


def recipient(name: str = "Ana Ruiz", email: str = "ana@example.org") -> Recipient:
    return Recipient(
        email=email,
        name=name,
        message_id=message_id_for(b"secret", INFO.campaign_slug, 42, "example.org"),
        unsubscribe_url="https://news.example.org/unsubscribe/abc.DEF-ghi_" + "x" * 120,
        preferences_url="https://news.example.org/preferences/abc?x=1&y=2",
        unsubscribe_mailto="mailto:news@example.org?subject=unsubscribe%20abc",
    )


@pytest.fixture
def skeleton(config) -> MailSkeleton:
    return MailSkeleton(config, MAIL, INFO)


def parse(data: bytes):
    return message_from_bytes(data, policy=policy.default)


def values(r: Recipient) -> dict[Field, str]:
    return {f: r.value(f) for f in Field}


def test_headers_are_complete(skeleton, config):
    r = recipient()
    msg = parse(skeleton.render(r, date=DATE))
    assert msg["From"] == "Coalition for the ICC <news@example.org>"
    assert msg["To"] == "Ana Ruiz <ana@example.org>"
    assert msg["Subject"] == MAIL.subject
    assert msg["Date"] == DATE
    assert msg["Message-ID"] == r.message_id
    assert msg["List-Id"] == "ASP daily summaries <asp-daily.example.org>"
    assert msg["List-Unsubscribe"] == f"<{r.unsubscribe_url}>, <{r.unsubscribe_mailto}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Precedence"] == "bulk"
    assert msg["Feedback-ID"] == "asp25-day-3:asp-daily:newsletter:example.org"
    assert msg["Content-Language"] == "fr"
    assert msg.get_content_type() == "multipart/alternative"
    assert not msg.defects


def test_body_equals_what_email_message_would_carry(skeleton):
    r = recipient(name='Zoë "the <b>judge</b>" & co')
    data = skeleton.render(r, date=DATE)
    msg = parse(data)
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html_part = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert text == fill(TEXT, values(r), html_part=False).replace("\r\n", "\n")
    assert html_part == fill(HTML, values(r), html_part=True)
    assert "&lt;b&gt;judge&lt;/b&gt;" in html_part and "<b>" not in html_part
    assert not long_lines(data)
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_message_id_is_deterministic_and_opaque():
    a = message_id_for(b"secret", "asp25-day-3", 42, "example.org")
    assert a == message_id_for(b"secret", "asp25-day-3", 42, "example.org")
    assert a != message_id_for(b"secret", "asp25-day-3", 43, "example.org")
    assert a != message_id_for(b"other", "asp25-day-3", 42, "example.org")
    assert re.fullmatch(r"<[0-9a-f]{40}@example.org>", a)
    # The spelling is kept across versions: a re-send after an upgrade carries the same one.
    expected = hmac.new(b"secret", b"message-id\0asp25-day-3\x0042", hashlib.sha256).hexdigest()[:40]
    assert a == f"<{expected}@example.org>"


def test_message_ids_of_a_campaign_are_message_id_for():
    ids = MessageIds(b"secret", "asp25-day-3", "example.org")
    for subscriber_id in (0, 1, 42, 10**12):
        assert ids(subscriber_id) == message_id_for(b"secret", "asp25-day-3", subscriber_id, "example.org")


def test_test_send_prefix(config):
    msg = parse(MailSkeleton(config, MAIL, INFO, subject_prefix="[TEST] ").render(recipient(), date=DATE))
    assert msg["Subject"] == "[TEST] " + MAIL.subject


def test_unsafe_fixed_values_are_refused(config):
    with pytest.raises(UnsafeHeaderValue):
        MailSkeleton(config, RenderedMail("en", "Hi\r\nBcc: x@evil.example", "t", "h"), INFO)
    with pytest.raises(UnsafeHeaderValue):
        format_address("x", "a@example.org\r\nBcc: x@evil.example")


EXPECTED_HEADERS = {
    "from", "to", "subject", "date", "message-id", "mime-version", "list-id", "list-unsubscribe",
    "list-unsubscribe-post", "auto-submitted", "precedence", "feedback-id", "content-language", "content-type",
}


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(name=st.text(max_size=120))
def test_no_name_can_inject_a_header(skeleton, name):
    data = skeleton.render(recipient(name=name), date=DATE)
    msg = parse(data)
    assert {k.lower() for k in msg.keys()} == EXPECTED_HEADERS
    assert msg["Message-ID"] == recipient().message_id
    assert msg["To"].addresses[0].addr_spec == "ana@example.org"
    if name.isprintable() and name.strip() == name and "  " not in name and name:
        # Python's parser keeps the folding space between encoded words (RFC 2047 says to drop
        # it), so decode the raw header as RFC 2047 says.
        raw = dict(msg.raw_items())["To"]
        phrase = raw.rsplit(" <", 1)[0]
        if phrase.startswith("=?"):
            assert str(make_header(decode_header(phrase.replace("\r\n ", " ")))) == name
        else:
            assert msg["To"].addresses[0].display_name == name
    assert msg.get_body(("plain",)).get_content().startswith("Dear ")


@pytest.mark.parametrize("eight_bit", [False, True], ids=["7bit", "8bit"])
@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400), value=st.text(max_size=100))
def test_any_text_round_trips_through_the_segments(eight_bit, text, value):
    from newsletter.config import Config
    # Markers inside arbitrary text: the decoded part equals the filled-in text.
    body = text + marker(Field.NAME) + text[::-1]
    skel = MailSkeleton(Config(eight_bit_mime=eight_bit), RenderedMail("en", "s", body, "<p>" + marker(Field.NAME) + "</p>"), INFO)
    r = recipient(name="N")
    r = Recipient(r.email, value.replace("\r", "").replace("\n", "").replace("\x00", ""), r.message_id,
                  r.unsubscribe_url, r.preferences_url, r.unsubscribe_mailto)
    data = skel.render(r, date=DATE)
    msg = parse(data)
    expected = fill(body, values(r), html_part=False).replace("\r\n", "\n").replace("\r", "\n")
    got = msg.get_body(("plain",)).get_payload(decode=True).decode("utf-8")
    assert got.replace("\r\n", "\n") == expected
    assert not long_lines(data)
    assert data.isascii() or eight_bit


@pytest.mark.parametrize("name,expected", [
    ("Ana Ruiz", "Ana Ruiz <a@example.org>"),
    ("J. Smith", '"J. Smith" <a@example.org>'),
    ('He said "hi"', '"He said \\"hi\\"" <a@example.org>'),
    ("", "a@example.org"),
])
def test_format_address(name, expected):
    assert format_address(name, "a@example.org") == expected


def _strictly_decoded(data: bytes, header: str) -> str:
    """A header decoded as RFC 2047 says: unfolded, white space between encoded words dropped."""
    raw = message_from_bytes(data, policy=policy.compat32)[header]
    return str(make_header(decode_header(re.sub(r"\r?\n(?=[ \t])", "", raw))))


SUBJECT_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=250).map(
    lambda s: " ".join(s.split())).filter(lambda s: s and "[[nl:" not in s)


@settings(max_examples=300, deadline=None)
@given(subject=SUBJECT_TEXT, list_name=SUBJECT_TEXT)
def test_any_subject_and_list_name_decode_exactly_and_fold_within_78(subject, list_name):
    from newsletter.config import Config

    skeleton = MailSkeleton(Config(), RenderedMail("ar", subject, "t", "<p>h</p>"), ListInfo("l", list_name, "c"))
    data = skeleton.render(recipient(), date=DATE)
    head = data.split(b"\r\n\r\n", 1)[0]
    assert _strictly_decoded(data, "Subject") == subject
    assert str(parse(data)["Subject"]) == subject  # Python's own reading agrees
    raw = re.sub(r"\r?\n(?=[ \t])", "", message_from_bytes(data, policy=policy.compat32)["List-Id"])
    phrase, _, list_id = raw.rpartition(" <")
    if phrase.startswith('"'):  # a quoted string
        phrase = re.sub(r"\\(.)", r"\1", phrase[1:-1])
    else:  # an atom or encoded words
        phrase = str(make_header(decode_header(phrase)))
    assert (phrase, list_id) == (list_name, "l.example.org>")
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"List-Unsubscribe"))


def test_a_personal_subject_is_filled_and_folded_for_each_recipient(config):
    mail = RenderedMail("ar", "مرحبًا " + marker(Field.NAME) + "، " + "ملخص اليوم الثالث " * 6, "t", "<p>h</p>")
    skeleton = MailSkeleton(config, mail, INFO)
    for name in ("ليلى حداد", "Ana\r\nBcc: x@evil.example", 'Zoë "the judge"'):
        data = skeleton.render(recipient(name=name), date=DATE)
        shown = name.replace("\r", " ").replace("\n", " ")
        assert _strictly_decoded(data, "Subject") == mail.subject.replace(marker(Field.NAME), shown)
        assert parse(data)["Bcc"] is None
    with pytest.raises(ValueError, match=r"\[\[nl:nobody\]\] names no per-recipient field"):
        MailSkeleton(config, RenderedMail("en", "Hi [[nl:nobody]]", "t", "h"), INFO)


@pytest.mark.parametrize("kind,list_headers,bulk", [
    ("campaign", True, True), ("test", True, True), ("welcome", True, False), ("catch-up", True, True),
    ("confirmation", False, False),
])
def test_a_kind_of_mail_is_its_headers(config, kind, list_headers, bulk):
    from newsletter.mail.message import MailKind

    kind = MailKind(kind)
    skeleton = MailSkeleton(config, MAIL, INFO if list_headers else None, kind=kind)
    msg = parse(skeleton.render(recipient(), date=DATE))
    keys = {k.lower() for k in msg.keys()}
    assert {"list-id", "list-unsubscribe", "list-unsubscribe-post"} <= keys if list_headers else \
        not keys & {"list-id", "list-unsubscribe", "list-unsubscribe-post"}
    assert ({"precedence", "feedback-id"} <= keys) is bulk and ("precedence" in keys) is bulk
    assert msg["Subject"] == ("[TEST] " if kind is MailKind.TEST else "") + MAIL.subject
    assert msg.get_body(("plain",)).get_content().startswith("Dear Ana Ruiz")
    if list_headers:
        with pytest.raises(ValueError, match="ListInfo"):
            MailSkeleton(config, MAIL, kind=kind)
