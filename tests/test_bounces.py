"""Bounces and complaints: each fixture's outcome, nothing lost, tampering, soft-score decay."""

from __future__ import annotations

import imaplib
import mailbox
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from conftest import Clock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imap_server import PASSWORD, USER, ImapServer, TlsFront
from sqlalchemy import func, select

from newsletter.addresses import address_hash
from newsletter.bounces.mailboxes import (
    PROCESSED,
    UNPARSED,
    MaildirSource,
    MboxSource,
    open_source,
)
from newsletter.bounces.reports import ReportKind, classify_failure, parse_report
from newsletter.bounces.rules import (
    BounceRules,
    bounce_history,
    count_bounces,
    process_mailbox,
    record_smtp_rejection,
    soft_score,
)
from newsletter.errors import MailboxError
from newsletter.mail.verp import verp_address
from newsletter.people import consent
from newsletter.people.consent import ConsentContext
from newsletter.people.lists import create_list
from newsletter.statuses import (
    BounceKind,
    Channel,
    OutboxStatus,
    SubscriberStatus,
    SubscriptionStatus,
    SuppressionReason,
)
from newsletter.store import (
    BounceEvent,
    Campaign,
    ConsentEvent,
    OutboxRow,
    Store,
    Subscriber,
    Suppression,
)

FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
SECRET = b"test-secret-key-0123456789abcdef"
BOUNCE_ADDRESS = "bounces@news.example.org"
RULES = BounceRules(soft_threshold=3)


@dataclass
class Recipient:
    email: str
    key: str
    subscriber_id: int
    campaign_id: int
    message_id: str
    verp: str


def _setup(store: Store, clock: Clock, emails: tuple[str, ...] = ("ana.ruiz@example.net",)) -> list[Recipient]:
    """A list, a campaign, and confirmed subscribers who were each sent one message."""
    people = []
    with store.session() as session:
        mailing_list = create_list(session, "asp-daily", "ASP daily summaries", now=clock())
        campaign = Campaign(slug="asp23-day-3", list_id=mailing_list.id, subject="ASP 23, Day 3", created_at=clock())
        session.add(campaign)
        session.flush()
        ctx = ConsentContext(channel=Channel.FORM, source="website-footer", consent_version="2026-11")
        for i, email in enumerate(emails):
            due = consent.subscribe(session, email, "", "en", ["asp-daily"], ctx, now=clock(), languages=("en",))
            subscriber = consent.find_subscriber(session, email)
            consent.confirm(session, subscriber, ctx, now=clock())
            message_id = f"asp23-day-3.{i}.c0ffee@example.org"
            session.add(OutboxRow(campaign_id=campaign.id, subscriber_id=subscriber.id, message_id=f"<{message_id}>",
                                  status=OutboxStatus.SENT))
            people.append(Recipient(email, due.subscriber_key, subscriber.id, campaign.id, message_id,
                                    verp_address(SECRET, BOUNCE_ADDRESS, campaign.id, due.subscriber_key)))
    return people


def _fixture(name: str, person: Recipient, *, verp: str | None = None) -> bytes:
    raw = (FIXTURES / name).read_bytes()
    return (raw.replace(b"@@VERP@@", (verp or person.verp).encode())
            .replace(b"@@RCPT@@", person.email.encode())
            .replace(b"@@MSGID@@", person.message_id.encode()))


def _maildir(path: Path, messages: list[bytes]) -> Path:
    box = mailbox.Maildir(path, create=True)
    for raw in messages:
        box.add(raw)
    return path


def _run(store: Store, clock: Clock, path: Path, *, rules: BounceRules = RULES):
    source = open_source(str(path))
    try:
        return process_mailbox(store, source, secret=SECRET, bounce_address=BOUNCE_ADDRESS, rules=rules, clock=clock)
    finally:
        source.close()


def _state(store: Store, email: str) -> tuple[SubscriberStatus, set[SubscriptionStatus], SuppressionReason | None]:
    with store.session() as session:
        subscriber = consent.find_subscriber(session, email)
        suppression = session.scalar(select(Suppression.reason).where(
            Suppression.address_hash == address_hash(email)))
        return subscriber.status, {s.status for s in subscriber.subscriptions}, suppression


ACTIVE = (SubscriberStatus.ACTIVE, {SubscriptionStatus.ACTIVE}, None)
SUPPRESSED_HARD = (SubscriberStatus.SUPPRESSED, {SubscriptionStatus.UNSUBSCRIBED}, SuppressionReason.HARD_BOUNCE)

#: fixture -> (folder, report kind, event kinds recorded, the person's state afterwards)
OUTCOMES = {
    "postfix-dsn.eml": (PROCESSED, ReportKind.DSN, [BounceKind.HARD], SUPPRESSED_HARD),
    "postfix-mailbox-full.eml": (PROCESSED, ReportKind.DSN, [BounceKind.SOFT], ACTIVE),
    "exim-bounce.eml": (PROCESSED, ReportKind.HEURISTIC, [BounceKind.HARD], SUPPRESSED_HARD),
    "gmail-551.eml": (PROCESSED, ReportKind.DSN, [BounceKind.HARD], SUPPRESSED_HARD),
    "delayed.eml": (PROCESSED, ReportKind.DSN, [BounceKind.DELAYED], ACTIVE),
    "arf-complaint.eml": (PROCESSED, ReportKind.ARF, [BounceKind.COMPLAINT],
                          (SubscriberStatus.SUPPRESSED, {SubscriptionStatus.UNSUBSCRIBED}, SuppressionReason.COMPLAINT)),
    "auto-reply.eml": (PROCESSED, ReportKind.AUTO_REPLY, [], ACTIVE),
    "none-of-these.eml": (UNPARSED, ReportKind.UNPARSED, [BounceKind.UNKNOWN], ACTIVE),
}


def test_every_fixture_has_an_expected_outcome() -> None:
    assert set(OUTCOMES) == {p.name for p in FIXTURES.glob("*.eml")}


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_fixture_outcome(name: str, store: Store, clock: Clock, tmp_path: Path) -> None:
    folder, report_kind, kinds, state = OUTCOMES[name]
    (person,) = _setup(store, clock)
    raw = _fixture(name, person)
    assert parse_report(raw).kind is report_kind
    path = _maildir(tmp_path / "bounces", [raw])
    summary = _run(store, clock, path)
    assert [r.folder for r in summary.results] == [folder]
    assert list(summary.results[0].kinds) == kinds
    assert _state(store, person.email) == state
    with store.session() as session:
        events = list(session.scalars(select(BounceEvent)))
    assert [e.kind for e in events] == kinds
    for event in events:
        assert event.reason  # the raw reason is kept
        if event.kind is not BounceKind.UNKNOWN:
            assert event.subscriber_id == person.subscriber_id
            assert event.campaign_id == person.campaign_id
    box = mailbox.Maildir(path, create=False)
    assert len(box) == 0
    assert len(box.get_folder(folder)) == 1


def test_hard_bounce_details_and_consent_log(store: Store, clock: Clock, tmp_path: Path) -> None:
    (person,) = _setup(store, clock)
    _run(store, clock, _maildir(tmp_path / "b", [_fixture("gmail-551.eml", person)]))
    with store.session() as session:
        event = session.scalar(select(BounceEvent))
        assert event.status == "5.1.1"
        assert "does not exist" in event.diagnostic_code
        assert event.outcome == "suppressed (hard bounce)"
        log = session.scalars(select(ConsentEvent).where(ConsentEvent.channel == Channel.BOUNCE)).all()
        assert {e.kind.value for e in log} == {"unsubscribed", "suppressed"}
    history = bounce_history_for(store, person.email)
    assert [(r.kind, r.campaign_slug) for r in history] == [(BounceKind.HARD, "asp23-day-3")]


def bounce_history_for(store: Store, email: str):
    with store.session() as session:
        return bounce_history(session, email)


def test_nothing_lost_maildir_and_mbox(store: Store, clock: Clock, tmp_path: Path) -> None:
    people = _setup(store, clock, tuple(f"reader{i}@example.net" for i in range(len(OUTCOMES))))
    messages = [_fixture(name, person) for name, person in zip(sorted(OUTCOMES), people, strict=True)]
    maildir = _maildir(tmp_path / "maildir", messages[:4])
    mbox_path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(mbox_path, create=True)
    for raw in messages[4:]:
        box.add(raw)
    box.flush()
    box.close()

    first = _run(store, clock, maildir)
    second = _run(store, clock, mbox_path)
    assert first.processed + first.unparsed == 4
    assert second.processed + second.unparsed == len(messages) - 4
    assert first.unparsed + second.unparsed == 1
    md = mailbox.Maildir(maildir, create=False)
    folders = [md.get_folder(name) for name in md.list_folders()]
    assert len(md) == 0 and sum(len(f) for f in folders) == 4
    assert len(mailbox.mbox(mbox_path)) == 0
    moved = sum(len(mailbox.mbox(p)) for p in (f"{mbox_path}.{PROCESSED}", f"{mbox_path}.{UNPARSED}") if Path(p).exists())
    assert moved == len(messages) - 4
    # The moved copies are the messages, byte for byte in their bodies.
    kept = {m["Message-ID"] for folder in folders for m in folder}
    assert kept == {mailbox.mboxMessage(raw)["Message-ID"] for raw in messages[:4]}

    # A second pass finds nothing; the same messages delivered again are recorded once.
    assert _run(store, clock, maildir).results == []
    with store.session() as session:
        before = session.scalar(select(func.count()).select_from(BounceEvent))
    again = _run(store, clock, _maildir(tmp_path / "again", messages))
    assert again.duplicates == len(messages) - 1  # the auto-reply records no event, so it is not a duplicate
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(BounceEvent)) == before


@pytest.fixture(scope="module")
def imap_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted_imap_ca(imap_ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    pem = tmp_path / "imap-ca.pem"
    imap_ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    return imap_ca


def _imap_folders(port: int, ca: trustme.CA) -> dict[str, int]:
    """How many messages each folder holds, read with a separate client."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    client = imaplib.IMAP4("127.0.0.1", port)
    client.starttls(ssl_context=context)
    client.login(USER, PASSWORD)
    counts = {}
    for folder in ("INBOX", f"INBOX/{PROCESSED}", f"INBOX/{UNPARSED}"):
        status, data = client.select(f'"{folder}"', readonly=True)
        counts[folder] = int(data[0]) if status == "OK" else 0
    client.logout()
    return counts


def _deliver_by_imap(port: int, ca: trustme.CA, messages: list[bytes]) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    client = imaplib.IMAP4("127.0.0.1", port)
    client.starttls(ssl_context=context)
    client.login(USER, PASSWORD)
    for raw in messages:
        assert client.append("INBOX", None, None, raw)[0] == "OK"
    client.logout()


@pytest.mark.parametrize("scheme", ["imap", "imaps"])
def test_imap_mailbox_nothing_lost(scheme: str, sqlite_store: Store, clock: Clock, tmp_path: Path,
                                   trusted_imap_ca: trustme.CA) -> None:
    """Against a real IMAP server: STARTTLS (imap://) and implicit TLS (imaps://), certificates verified."""
    people = _setup(sqlite_store, clock, tuple(f"reader{i}@example.net" for i in range(len(OUTCOMES))))
    messages = [_fixture(name, person) for name, person in zip(sorted(OUTCOMES), people, strict=True)]
    server = ImapServer(tmp_path, trusted_imap_ca.issue_cert("127.0.0.1"))
    front = None
    try:
        _deliver_by_imap(server.port, trusted_imap_ca, messages)
        port = server.port
        if scheme == "imaps":
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            trusted_imap_ca.issue_cert("127.0.0.1").configure_cert(context)
            front = TlsFront(server.port, context)
            port = front.port
        spec = f"{scheme}://{USER}@127.0.0.1:{port}/INBOX"

        def run():
            source = open_source(spec, environ={"NEWSLETTER_BOUNCE_PASSWORD": PASSWORD})
            try:
                return process_mailbox(sqlite_store, source, secret=SECRET, bounce_address=BOUNCE_ADDRESS,
                                       rules=RULES, clock=clock)
            finally:
                source.close()

        summary = run()
        assert (summary.processed, summary.unparsed) == (len(messages) - 1, 1)
        assert _imap_folders(server.port, trusted_imap_ca) == {
            "INBOX": 0, f"INBOX/{PROCESSED}": len(messages) - 1, f"INBOX/{UNPARSED}": 1}
        for name, person in zip(sorted(OUTCOMES), people, strict=True):
            assert _state(sqlite_store, person.email) == OUTCOMES[name][3], name
        assert run().results == []
    finally:
        if front:
            front.stop()
        server.stop()


def test_imap_refuses_what_would_expose_the_password(sqlite_store: Store, tmp_path: Path, imap_ca: trustme.CA,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """imap:// with a server that has no STARTTLS, or a certificate nobody vouches for: no login is tried."""
    environ = {"NEWSLETTER_BOUNCE_PASSWORD": PASSWORD}
    plain = ImapServer(tmp_path, None)
    try:
        with pytest.raises(MailboxError, match="does not offer STARTTLS"):
            open_source(f"imap://{USER}@127.0.0.1:{plain.port}/INBOX", environ=environ)
    finally:
        plain.stop()
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    (tmp_path / "tls").mkdir()
    server = ImapServer(tmp_path / "tls", imap_ca.issue_cert("127.0.0.1"))
    try:
        with pytest.raises(MailboxError, match="certificate cannot be verified"):
            open_source(f"imap://{USER}@127.0.0.1:{server.port}/INBOX", environ=environ)
    finally:
        server.stop()


def test_tampered_verp_changes_nothing(store: Store, clock: Clock, tmp_path: Path) -> None:
    (person,) = _setup(store, clock)
    local, _, domain = person.verp.partition("@")
    flipped = local[:-1] + ("a" if local[-1] != "a" else "b")
    forged = _fixture("postfix-dsn.eml", person, verp=f"{flipped}@{domain}")
    with store.session() as session:
        log_before = session.scalar(select(func.count()).select_from(ConsentEvent))
    summary = _run(store, clock, _maildir(tmp_path / "b", [forged]))
    assert [r.folder for r in summary.results] == [UNPARSED]
    assert "does not verify" in summary.results[0].note
    assert _state(store, person.email) == ACTIVE
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == log_before
        event = session.scalar(select(BounceEvent))
        assert event.subscriber_id is None and event.campaign_id is None


def test_unsigned_report_is_not_trusted_when_verp_is_on(store: Store, clock: Clock, tmp_path: Path) -> None:
    """A forged DSN naming someone, with no VERP reference and no known Message-ID, changes nothing."""
    (person,) = _setup(store, clock)
    raw = (_fixture("postfix-dsn.eml", person, verp="someone@elsewhere.example.com")
           .replace(person.message_id.encode(), b"forged.1@attacker.example.com"))
    summary = _run(store, clock, _maildir(tmp_path / "b", [raw]))
    assert [r.folder for r in summary.results] == [UNPARSED]
    assert _state(store, person.email) == ACTIVE
    # The same report, believed when the installation does not use VERP (Mailman's behaviour).
    summary = _run(store, clock, _maildir(tmp_path / "c", [raw.replace(b"4Yb2Kq0Tz3z9sWm@", b"other@")]),
                   rules=BounceRules(trust_unsigned=True))
    assert [r.folder for r in summary.results] == [PROCESSED]
    assert _state(store, person.email) == SUPPRESSED_HARD


def test_complaint_attributed_by_message_id(store: Store, clock: Clock, tmp_path: Path) -> None:
    """A feedback loop that strips the return path still finds the person through the outbox."""
    (person,) = _setup(store, clock)
    raw = _fixture("arf-complaint.eml", person, verp="postmaster@news.example.org")
    summary = _run(store, clock, _maildir(tmp_path / "b", [raw]))
    assert [(r.folder, r.kinds) for r in summary.results] == [(PROCESSED, (BounceKind.COMPLAINT,))]
    assert _state(store, person.email)[2] is SuppressionReason.COMPLAINT


def test_soft_bounce_score_decays(store: Store, clock: Clock) -> None:
    (person,) = _setup(store, clock)
    rules = BounceRules(soft_threshold=3, quiet_days=7)

    def soft() -> BounceEvent:
        with store.session() as session:
            return record_smtp_rejection(session, person.email, person.campaign_id, 552,
                                         "5.2.2 Mailbox full", clock(), rules=rules)

    def score() -> int:
        with store.session() as session:
            return soft_score(session, session.get(Subscriber, person.subscriber_id), now=clock(), rules=rules)

    assert soft().kind is BounceKind.SOFT and score() == 1
    clock.advance(hours=3)
    assert "already counted today" in soft().outcome and score() == 1  # at most +1 a day
    clock.advance(days=1)
    soft()
    assert score() == 2
    clock.advance(days=7, minutes=1)  # seven quiet days: forgotten
    assert score() == 0
    soft()
    assert score() == 1
    clock.advance(days=1)
    soft()
    clock.advance(days=1)
    event = soft()
    assert event.outcome == "soft-bounce score 3/3; suppressed"
    assert _state(store, person.email)[2] is SuppressionReason.SOFT_BOUNCES


def test_smtp_rejection_rules(store: Store, clock: Clock) -> None:
    people = _setup(store, clock, ("a@example.net", "b@example.net"))
    with store.session() as session:
        assert record_smtp_rejection(session, "A@example.net", people[0].campaign_id, 450,
                                     "4.2.0 try later", clock()).kind is BounceKind.DELAYED
        assert record_smtp_rejection(session, "a@example.net", people[0].campaign_id, 550,
                                     "5.7.1 Message rejected as spam", clock()).kind is BounceKind.SOFT
        hard = record_smtp_rejection(session, "b@example.net", people[1].campaign_id, 550,
                                     "5.1.1 <b@example.net>: user unknown", clock())
        assert hard.kind is BounceKind.HARD and hard.campaign_id == people[1].campaign_id
        unknown = record_smtp_rejection(session, "nobody@example.net", None, 550, "no such user", clock())
        assert unknown.subscriber_id is None and unknown.address_hash
    assert _state(store, "a@example.net") == ACTIVE
    assert _state(store, "b@example.net") == SUPPRESSED_HARD


def test_counts_per_campaign_and_erasure(store: Store, clock: Clock, tmp_path: Path) -> None:
    people = _setup(store, clock, ("a@example.net", "b@example.net", "c@example.net"))
    messages = [_fixture("postfix-dsn.eml", people[0]), _fixture("delayed.eml", people[1]),
                _fixture("arf-complaint.eml", people[2]), _fixture("none-of-these.eml", people[0])]
    _run(store, clock, _maildir(tmp_path / "b", messages))
    with store.session() as session:
        counts = count_bounces(session)
    by_campaign = {c.slug: c for c in counts}
    assert by_campaign["asp23-day-3"][2:] == (3, 1, 0, 1, 1, 0)
    assert by_campaign[None].unknown == 1
    with store.session() as session:
        consent.erase(session, "a@example.net", now=clock())
    with store.session() as session:
        event = session.scalar(select(BounceEvent).where(BounceEvent.kind == BounceKind.HARD))
        assert event.subscriber_id is None  # SET NULL on erase; the counts stay
        assert "<recipient>" in event.diagnostic_code
        texts = session.execute(select(BounceEvent.reason, BounceEvent.diagnostic_code)).all()
        assert not any("a@example.net" in (t or "") for row in texts for t in row)  # no plain copy survives
        assert count_bounces(session, "asp23-day-3")[0].hard == 1


@pytest.mark.parametrize("status, diagnostic, kind", [
    ("5.1.1", None, BounceKind.HARD),
    ("5.2.1", None, BounceKind.HARD),
    ("5.2.2", None, BounceKind.SOFT),
    ("5.7.1", None, BounceKind.SOFT),
    ("4.4.7", None, BounceKind.SOFT),
    (None, "smtp; 550 Requested action not taken: mailbox unavailable", BounceKind.HARD),
    (None, "smtp; 421 Service not available", BounceKind.SOFT),
    (None, "smtp; 550 5.1.1 user unknown", BounceKind.HARD),
])
def test_classify_failure(status, diagnostic, kind) -> None:
    assert classify_failure(status, diagnostic) is kind


def test_open_source_errors(tmp_path: Path) -> None:
    with pytest.raises(MailboxError, match="does not exist"):
        open_source(str(tmp_path / "missing"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(MailboxError, match="not a Maildir"):
        open_source(str(tmp_path / "plain"))
    with pytest.raises(MailboxError, match="give imaps://"):
        open_source("pop3://bounces@mail.example.org/INBOX")
    with pytest.raises(MailboxError, match="NEWSLETTER_BOUNCE_PASSWORD"):
        open_source("imaps://bounces@mail.example.org/INBOX", environ={})
    assert isinstance(open_source(str(_maildir(tmp_path / "md", []))), MaildirSource)
    mbox_path = tmp_path / "x.mbox"
    mbox_path.write_bytes(b"")
    source = open_source(str(mbox_path))
    assert isinstance(source, MboxSource)
    source.close()


def test_garbage_is_kept_not_dropped(store: Store, clock: Clock, tmp_path: Path) -> None:
    _setup(store, clock)
    junk = [b"\x00\xff\xfe not mail at all", b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x\n"]
    summary = _run(store, clock, _maildir(tmp_path / "b", junk))
    assert [r.folder for r in summary.results] == [UNPARSED, UNPARSED]


def test_cli_reads_reports_and_shows(sqlite_store: Store, clock: Clock, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from newsletter.cli import main

    (person,) = _setup(sqlite_store, clock)
    toml = tmp_path / "newsletter.toml"
    toml.write_text(
        f'database_url = "{sqlite_store.engine.url.render_as_string(hide_password=False)}"\n'
        f'secret_key = "{SECRET.decode()}"\nbounce_address = "{BOUNCE_ADDRESS}"\n'
        f'bounce_mailbox = "bounces"\nsoft_bounce_threshold = 3\n'
    )
    _maildir(tmp_path / "bounces", [_fixture("postfix-dsn.eml", person), _fixture("none-of-these.eml", person)])
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(toml), "bounces", "-v"])
    assert result.exit_code == 0, result.output
    assert "1 processed, 1 unparsed" in result.output
    assert "kept for a person to read" in result.output
    shown = runner.invoke(main, ["--config", str(toml), "show", person.email])
    assert shown.exit_code == 0, shown.output
    assert "bounces and complaints:" in shown.output
    assert "suppressed (hard bounce)" in shown.output and "User unknown" in shown.output
    report = runner.invoke(main, ["--config", str(toml), "bounces", "--report"])
    assert report.exit_code == 0, report.output
    line = next(line for line in report.output.splitlines() if line.startswith("asp23-day-3"))
    assert line.split()[1:] == ["1", "1", "0", "0", "0", "0", "0.00", "%"]
    # ... and names the people: the campaign's report no longer says everyone got it
    assert "by person:" in report.output and f"asp23-day-3\t{person.email}\thard\t" in report.output
    assert next(line for line in report.output.splitlines() if person.email in line).endswith("\tvia dsn")
    campaign = runner.invoke(main, ["--config", str(toml), "campaign", "report", "asp23-day-3"])
    assert campaign.exit_code == 0, campaign.output
    assert "everyone got it" not in campaign.output
    assert "bounces and complaints that came back (1):" in campaign.output
    assert f"{person.email}\thard\t" in campaign.output and "User unknown" in campaign.output
    missing = runner.invoke(main, ["--config", str(toml), "bounces", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "does not exist" in missing.output


@pytest.mark.parametrize("command", [["bounces"], ["dkim"], ["dkim", "keygen"]])
def test_commands_have_help_with_example(command: list[str]) -> None:
    from click.testing import CliRunner

    from newsletter.cli import main

    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(OUTCOMES)), cut=st.integers(min_value=0, max_value=4000),
       junk=st.binary(max_size=200))
def test_parse_report_never_raises_on_mangled_mail(name: str, cut: int, junk: bytes) -> None:
    """Truncated and corrupted reports are understood or UNPARSED, never an exception."""
    raw = (FIXTURES / name).read_bytes()
    report = parse_report(raw[:cut] + junk + raw[cut + len(junk):])
    assert report.kind in ReportKind
    assert report.message_id


def test_cli_watch_reads_again_after_each_interval(sqlite_store: Store, clock: Clock, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import newsletter.cli.bounces as cli_bounces
    from newsletter.cli import main

    people = _setup(sqlite_store, clock, ("a@example.net", "b@example.net"))
    toml = tmp_path / "newsletter.toml"
    toml.write_text(f'database_url = "{sqlite_store.engine.url.render_as_string(hide_password=False)}"\n'
                    f'secret_key = "{SECRET.decode()}"\nbounce_address = "{BOUNCE_ADDRESS}"\n')
    path = _maildir(tmp_path / "bounces", [_fixture("postfix-dsn.eml", people[0])])
    naps = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:  # mail arrives while the watcher sleeps
            mailbox.Maildir(path, create=False).add(_fixture("gmail-551.eml", people[1]))
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli_bounces.time, "sleep", sleep)
    result = CliRunner().invoke(main, ["--config", str(toml), "bounces", str(path), "--watch", "--interval", "30"])
    assert result.exit_code == 130
    assert naps == [30, 30]
    assert result.output.count("1 processed, 0 unparsed") == 2
    assert _state(sqlite_store, "a@example.net") == SUPPRESSED_HARD
    assert _state(sqlite_store, "b@example.net") == SUPPRESSED_HARD


def test_unreadable_bounce_is_not_mistaken_for_an_auto_reply(store: Store, clock: Clock, tmp_path: Path) -> None:
    """A failure notice in a format nobody recognises carries Auto-Submitted too: it must reach a person."""
    (person,) = _setup(store, clock)
    raw = (_fixture("none-of-these.eml", person)
           .replace(b"From: Rafael Ortiz <rafael.ortiz@example.net>", b"From: postmaster@mail.example.net")
           .replace(b"Subject: Question about the Day 5 summary", b"Subject: Undeliverable: ASP 23, Day 3\nAuto-Submitted: auto-replied"))
    assert parse_report(raw).kind is ReportKind.UNPARSED
    summary = _run(store, clock, _maildir(tmp_path / "b", [raw]))
    assert [r.folder for r in summary.results] == [UNPARSED]


_MANGLED = {
    "unknown charset in a header": b"From: a@example.net\r\nSubject: =?s-ascii?q?hi?=\r\n"
                                   b"Content-Type: text/plain; charset=s-ascii\r\n\r\nhello\r\n",
    "NUL in a charset name": b"From: a@example.net\r\nContent-Type: text/plain; charset=\"us\x00ascii\"\r\n\r\nhello\r\n",
    "unknown charset in a part": b"From: a@example.net\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
                                 b"Content-Type: text/plain; charset=s-ascii\r\n\r\nuser unknown\r\n--x--\r\n",
}


@pytest.mark.parametrize("what", sorted(_MANGLED))
def test_mail_in_a_broken_charset_is_unparsed_not_an_exception(what: str) -> None:
    report = parse_report(_MANGLED[what])
    assert report.kind in ReportKind and report.message_id


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(charset=st.text(max_size=12), header=st.sampled_from(["Subject", "From", "Content-Type", "Message-ID"]),
       value=st.binary(max_size=60))
def test_parse_report_never_raises_on_any_charset_or_header(charset: str, header: str, value: bytes) -> None:
    raw = (b"From: postmaster@example.net\r\n" + header.encode() + b": " + value.replace(b"\n", b" ") + b"\r\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n"
           b"Content-Type: text/plain; charset=\"" + charset.encode("utf-8", "surrogatepass") + b"\"\r\n\r\n"
           b"The mail could not be delivered.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n"
           b"Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; a@example.org\r\n"
           b"Action: failed\r\nStatus: 5.1.1\r\n--b--\r\n")
    report = parse_report(raw)
    assert report.kind in ReportKind and report.message_id
