"""Every kind of mail through the one message builder, received by a real SMTP server (aiosmtpd).

Subjects decode to exactly what the front matter says; the preview's `.eml` is the message
the send puts on the wire; campaign mail, test sends and confirmations (through the real
drainer) are all DKIM-signed and VERP-addressed, and a confirmation's bounce is read back;
the secret key file is read once per installation for a whole send; an Arabic issue is no
longer twice the size of the English one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import mailbox
import re
import sys
from email import policy
from email.header import decode_header, make_header
from pathlib import Path

import dkim as dkimpy
import pytest
from conftest import REPO
from population import populate
from wire import long_lines

from newsletter.bounces.mailboxes import open_source
from newsletter.bounces.rules import BounceRules, bounce_history, process_mailbox
from newsletter.installation import Newsletter
from newsletter.mail import dkim
from newsletter.mail.compose import RenderedMail, render_issue
from newsletter.mail.content import load_issue
from newsletter.mail.kinds import MailKind
from newsletter.mail.preview import SampleRecipient, write_preview
from newsletter.mail.verp import VerpReference, read_verp
from newsletter.people import consent
from newsletter.people import subscriptions as visitor
from newsletter.people.confirmation_queue import ConfirmationDrainer
from newsletter.people.confirmations import ConfirmationSender
from newsletter.people.consent import ConsentContext
from newsletter.sending import campaigns
from newsletter.sending.messages import send_test
from newsletter.sending.sender import SendOptions, sender_for
from newsletter.statuses import BounceKind, Channel, SubscriberStatus

EXAMPLES = REPO / "examples"
BOUNCES = "bounces@news.example.org"
CTX = ConsentContext(channel=Channel.API, ip="203.0.113.7", user_agent="test", source="test")
# 200 characters of Arabic with Latin names and numbers in it, as a long subject can be; one of
# those (found by search) whose words policy.SMTP's folding ran together.
MIXED_SUBJECT = ("تحالف CICC يدعو الحكومات إلى الدفاع عن المحكمة الجنائية الدولية ICC، والدول مدعوة إلى تنفيذ "
                 "أوامر القبض. ورفض العقوبات، وتمويل العمل في لاهاي. شارك أكثر من 150 بلدًا. من 2 إلى 7 ديسمبر "
                 "في World Forum.")

# -- the key file's reads, seen by an audit hook (no mocks: every open() of it is reported) ----------

_WATCHED: set[str] = set()
_OPENED: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _WATCHED and args and str(args[0]) in _WATCHED:
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture
def key_file_reads(tmp_path: Path):
    """A secret key file; yields the list of its reads (from now on)."""
    path = tmp_path / "secret.key"
    path.write_text("a-secret-key-in-a-file-0123456789abcdef\n")
    _WATCHED.add(str(path))
    _OPENED.clear()
    try:
        yield path, _OPENED
    finally:
        _WATCHED.discard(str(path))


# -- helpers ---------------------------------------------------------------------------------------

def decoded(message: email.message.EmailMessage, header: str) -> str:
    """A header decoded as RFC 2047 says (unfolded, white space between encoded words dropped)."""
    raw = email.message_from_bytes(message.as_bytes(), policy=policy.compat32)[header]
    return str(make_header(decode_header(re.sub(r"\r?\n(?=[ \t])", "", raw))))


def signed_headers(data: bytes) -> set[str]:
    message = email.message_from_bytes(data, policy=policy.compat32)
    signature = re.sub(r"\s+", "", message["DKIM-Signature"])
    return {h.lower() for h in re.search(r"(?:^|;)h=([^;]+)", signature).group(1).split(":")}


@pytest.fixture
def signing(config, tmp_path):
    """`config` with DKIM and VERP on; (config, dnsfunc for the key's record)."""
    key = dkim.generate_key("news2026", "example.org", tmp_path / "dkim")
    config = config.with_changes(bounce_address=BOUNCES, dkim_selector="news2026", dkim_domain="example.org",
                                 dkim_key_file=str(key.private_key_path))

    def dnsfunc(qname, timeout=5):  # noqa: ANN001, ANN202
        wanted = qname.decode() if isinstance(qname, bytes) else qname
        return key.dns_value.encode() if wanted.rstrip(".") == key.dns_name else None

    return config, dnsfunc


def send_issue(store, config, clock, rendered: dict[str, RenderedMail], slug: str, list_slug: str, n: int = 4,
               secret: bytes | None = None) -> int:
    """Start the campaign `slug` to `n` new subscribers of `list_slug` (languages en, fr, es, ar
    in turn) and send it through `sender_for`; returns the campaign's id."""
    populate(store, n, now=clock(), list_slug=list_slug, domain=f"{list_slug}.example.org")
    with store.session() as session:
        campaign, _ = campaigns.start_campaign(session, slug, list_slug, now=clock(), subject=slug,
                                               languages=list(rendered), default_language="en")
        campaign_id = campaign.id
    sender = sender_for(store, config, slug, rendered, options=SendOptions(concurrency=2, idle_poll=3600.0),
                        clock=clock, secret=secret)
    result = asyncio.run(sender.run())
    assert result.counts.sent == n, result
    return campaign_id


def by_language(smtp_server, list_slug: str) -> dict[str, email.message.EmailMessage]:
    out = {}
    for received in smtp_server.received:
        if received.rcpt_tos[0].endswith(f"@{list_slug}.example.org"):
            message = received.message
            out[message["Content-Language"]] = message
    return out


async def _inline(func, *args):  # noqa: ANN001, ANN002, ANN202
    return func(*args)


def drain_confirmations(newsletter: Newsletter):
    drainer = ConfirmationDrainer(newsletter, ConfirmationSender(newsletter), _inline)

    async def go():  # noqa: ANN202
        try:
            return await drainer.drain()
        finally:
            await drainer.stop()

    return asyncio.run(go())


def subscriber_key(store, address: str) -> str:
    with store.session() as session:
        return consent.find_subscriber(session, address).key


# -- subjects ---------------------------------------------------------------------------------------

def test_the_arabic_alerts_subject_arrives_exactly_as_written(sqlite_store, config, clock, smtp_server):
    issue = load_issue(EXAMPLES / "alerts")
    send_issue(sqlite_store, config, clock, render_issue(config, issue), issue.slug, "alerts")
    received = by_language(smtp_server, "alerts")
    assert set(received) == {"en", "fr", "es", "ar"}
    for language, message in received.items():
        subject = issue.variants[language].subject
        assert decoded(message, "Subject") == subject, language
        assert str(message["Subject"]) == subject, language  # Python's own reading agrees
    assert "الدفاع عن المحكمة" in decoded(received["ar"], "Subject")


def test_a_long_mixed_arabic_and_latin_subject_arrives_exactly(sqlite_store, config, clock, smtp_server):
    assert len(MIXED_SUBJECT) == 200
    rendered = render_issue(config, load_issue(EXAMPLES / "asp23" / "day-3.*.md"))
    rendered = {lang: dataclasses.replace(mail, subject=MIXED_SUBJECT) for lang, mail in rendered.items()}
    send_issue(sqlite_store, config, clock, rendered, "asp23-day-3", "asp-daily")
    for message in by_language(smtp_server, "asp-daily").values():
        assert decoded(message, "Subject") == MIXED_SUBJECT
        assert str(message["Subject"]) == MIXED_SUBJECT
        raw = message.as_bytes().split(b"\n\n", 1)[0].split(b"\n")
        assert all(len(line.rstrip(b"\r")) <= 78 for line in raw), "a header line longer than RFC 5322 allows"


# -- the preview is the sent message ---------------------------------------------------------------

_TOKEN = re.compile(r"(/(?:unsubscribe|preferences)/|subject=unsubscribe%20)[A-Za-z0-9_.-]+")
_BOUNDARY = re.compile(r'boundary="[^"]+"')
_UNCOMPARED = {"date", "message-id", "dkim-signature"}


def comparable(message: email.message.EmailMessage) -> tuple[list, list]:
    """The message's headers (decoded) and parts (decoded), tokens and the boundary normalised."""
    def norm(text: str) -> str:
        return _BOUNDARY.sub('boundary="B"', _TOKEN.sub(r"\1TOKEN", text)).replace("\r\n", "\n")

    headers = [(k.lower(), norm(decoded(message, k))) for k in message.keys() if k.lower() not in _UNCOMPARED]
    parts = [(p.get_content_type(), p["Content-Transfer-Encoding"], norm(p.get_content())) for p in message.iter_parts()]
    return headers, parts


def test_the_preview_eml_is_what_the_send_puts_on_the_wire(sqlite_store, signing, clock, smtp_server, tmp_path):
    config, dnsfunc = signing
    issue = load_issue(EXAMPLES / "alerts")
    rendered = render_issue(config, issue)
    send_issue(sqlite_store, config, clock, rendered, issue.slug, "alerts")
    for received in smtp_server.received:
        sent = received.message
        language = sent["Content-Language"]
        name, address = sent["To"].addresses[0].display_name, sent["To"].addresses[0].addr_spec
        [files] = write_preview(config, issue.slug, "alerts", rendered, tmp_path / language, languages=[language],
                                recipient=SampleRecipient(name, address), now=clock(), list_name="ASP daily summaries")
        data = files.eml.read_bytes()
        preview = email.message_from_bytes(data, policy=policy.default)
        assert comparable(preview) == comparable(sent), language
        assert preview["DKIM-Signature"] and dkimpy.verify(data, dnsfunc=dnsfunc)
        assert b"TOKEN" not in received.data  # the send's tokens are real ones


# -- DKIM and VERP for every kind ------------------------------------------------------------------

def assert_signed(data: bytes, dnsfunc) -> None:  # noqa: ANN001
    assert dkimpy.verify(data, dnsfunc=dnsfunc)
    message = email.message_from_bytes(data, policy=policy.default)
    present = {k.lower() for k in message.keys()}
    for header in ("list-unsubscribe", "list-unsubscribe-post", "list-id", "from", "subject", "to"):
        if header in present:
            assert header in signed_headers(data), header


def test_every_kind_of_mail_is_signed_and_bounce_addressed(store, signing, clock, smtp_server):
    config, dnsfunc = signing
    rendered = render_issue(config, load_issue(EXAMPLES / "asp23" / "day-3.*.md"))
    campaign_id = send_issue(store, config, clock, rendered, "asp23-day-3", "asp-daily")
    for received in list(smtp_server.received):
        assert_signed(received.data, dnsfunc)
        assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        reference = read_verp(config.secret(), received.mail_from)
        assert reference == (campaign_id, subscriber_key(store, received.rcpt_tos[0]), MailKind.CAMPAIGN)
    smtp_server.received.clear()

    results = asyncio.run(send_test(config, rendered, ["editor@example.net"], list_slug="asp-daily",
                                    list_name="ASP daily summaries", campaign_slug="asp23-day-3", clock=clock))
    assert len(results) == 4 and len(smtp_server.received) == 4
    for received in smtp_server.received:
        assert_signed(received.data, dnsfunc)
        assert received.message["Subject"].startswith("[TEST] ") and received.message["List-Unsubscribe"]
        assert read_verp(config.secret(), received.mail_from) == VerpReference(None, "", MailKind.TEST)
    smtp_server.received.clear()

    newsletter = Newsletter(config, store, clock=clock)
    record = visitor.record_signup(newsletter, "ana@signups.example.org", "Ana Ruiz", "ar", ["asp-daily"], CTX)
    assert drain_confirmations(newsletter).sent == 1
    [received] = smtp_server.received
    assert_signed(received.data, dnsfunc)
    assert received.message["List-Unsubscribe"] is None  # nobody is subscribed yet
    assert is_verp(received.mail_from)
    assert read_verp(config.secret(), received.mail_from) == VerpReference(
        None, record.due.subscriber_key, MailKind.CONFIRMATION)


def is_verp(address: str) -> bool:
    return address.startswith("bounces+") and address.endswith("@news.example.org")


def test_a_confirmations_bounce_is_read_back(store, config, clock, smtp_server, tmp_path):
    config = config.with_changes(bounce_address=BOUNCES)
    newsletter = Newsletter(config, store, clock=clock)
    populate(store, 0, now=clock())  # the list
    visitor.record_signup(newsletter, "gone@signups.example.org", "", "en", ["asp-daily"], CTX)
    drain_confirmations(newsletter)
    [received] = smtp_server.received
    raw = (REPO / "tests" / "fixtures" / "bounces" / "postfix-dsn.eml").read_bytes()
    dsn = (raw.replace(b"@@VERP@@", received.mail_from.encode()).replace(b"@@RCPT@@", b"gone@signups.example.org")
           .replace(b"@@MSGID@@", received.message["Message-ID"].strip("<>").encode()))
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(dsn)
    source = open_source(str(tmp_path / "bounces"))
    try:
        process_mailbox(store, source, secret=config.secret(), bounce_address=BOUNCES,
                        rules=BounceRules(soft_threshold=3, trust_unsigned=False), clock=clock)
    finally:
        source.close()
    with store.session() as session:
        person = consent.find_subscriber(session, "gone@signups.example.org")
        assert person.status is SubscriberStatus.SUPPRESSED
        [event] = bounce_history(session, "gone@signups.example.org")
    assert event.kind is BounceKind.HARD and event.campaign_slug is None


# -- the secret, read once --------------------------------------------------------------------------

def test_the_secret_key_file_is_read_once_for_a_whole_send(sqlite_store, config, clock, smtp_server, key_file_reads):
    path, reads = key_file_reads
    config = config.with_changes(secret_key="", secret_key_file=str(path), bounce_address=BOUNCES)
    newsletter = Newsletter(config, sqlite_store, clock=clock)
    rendered = render_issue(config, load_issue(EXAMPLES / "asp23" / "day-3.*.md"))
    send_issue(sqlite_store, config, clock, rendered, "asp23-day-3", "asp-daily", n=12, secret=newsletter.secret())
    asyncio.run(send_test(config, rendered, ["editor@example.net"], list_slug="asp-daily",
                          list_name="ASP daily summaries", campaign_slug="asp23-day-3", clock=clock,
                          secret=newsletter.secret()))
    visitor.record_signup(newsletter, "ana@signups.example.org", "Ana", "fr", ["asp-daily"], CTX)
    drain_confirmations(newsletter)
    assert len(smtp_server.received) == 12 + 4 + 1
    assert all(is_verp(r.mail_from) for r in smtp_server.received)  # every message signed a reference
    assert reads == [str(path)]


def test_newsletter_send_reads_the_secret_key_file_once(tmp_path, monkeypatch, smtp_server, key_file_reads):
    from datetime import datetime, timezone

    from click.testing import CliRunner

    from newsletter.cli import main
    from newsletter.store import open_store

    path, reads = key_file_reads
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_SMTP_URL", f"smtp://127.0.0.1:{smtp_server.port}?starttls=off")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY_FILE", str(path))
    monkeypatch.setenv("NEWSLETTER_BOUNCE_ADDRESS", BOUNCES)
    for variable in ("NEWSLETTER_CONFIG", "NEWSLETTER_DATABASE_URL", "NEWSLETTER_SECRET_KEY"):
        monkeypatch.delenv(variable, raising=False)

    def run(*args: str):  # noqa: ANN202
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    run("init")
    run("lists", "create", "asp-daily", "ASP daily summaries", "--languages", "en,fr,es,ar")
    store = open_store(f"sqlite:///{tmp_path}/subscribers/newsletter.db")
    populate(store, 12, now=datetime.now(timezone.utc))
    store.dispose()
    content = [str(p) for p in sorted((EXAMPLES / "asp23").glob("day-3.*.md"))]
    for command in (["send", *content, "--test-to", "editor@example.net"], ["send", *content, "--yes"]):
        reads.clear()
        run(*command)
        assert reads == [str(path)], command
    assert len(smtp_server.received) == 4 + 12 and all(is_verp(r.mail_from) for r in smtp_server.received)


# -- size ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("eight_bit", [True, False], ids=["8bit", "7bit"])
def test_the_arabic_issue_is_not_twice_the_english_one(sqlite_store, config, clock, smtp_server, eight_bit):
    """Non-ASCII parts go out in 8bit where the relay takes it (the default): the Arabic Day 3 is
    at most 1.5 times the English one. For a relay without 8BITMIME each part goes out in the
    smaller of quoted-printable and base64: Arabic in base64 (in quoted-printable it triples)."""
    config = config.with_changes(eight_bit_mime=eight_bit)
    rendered = render_issue(config, load_issue(EXAMPLES / "asp23" / "day-3.*.md"))
    send_issue(sqlite_store, config, clock, rendered, "asp23-day-3", "asp-daily")
    size = {r.message["Content-Language"]: len(r.data) for r in smtp_server.received}
    encodings = {lang: [p["Content-Transfer-Encoding"] for p in m.iter_parts()]
                 for lang, m in by_language(smtp_server, "asp-daily").items()}
    assert all(not long_lines(r.data) for r in smtp_server.received)
    if eight_bit:
        assert encodings["ar"] == ["8bit", "8bit"]
        assert all(("BODY=8BITMIME" in r.mail_options) == (not r.data.isascii()) for r in smtp_server.received)
        assert size["ar"] <= 1.5 * size["en"], size  # 2.1 times in quoted-printable
    else:
        assert encodings["ar"] == ["base64", "base64"]
        assert encodings["en"] == ["quoted-printable", "quoted-printable"]
        assert all(r.data.isascii() and "BODY=8BITMIME" not in r.mail_options for r in smtp_server.received)
        assert size["ar"] <= 1.65 * size["en"], size
