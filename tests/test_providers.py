"""Incoming bounce and complaint webhooks of Amazon SES (through SNS), Postmark, Mailgun and
SendGrid, on SQLite and PostgreSQL: each verified as its provider documents it (SNS messages
signed with a test certificate, a forged one refused; HMAC; ECDSA; basic auth), the payloads
written from the providers' documented formats, each mapped through the same bounce rules as a
DSN, over the real API route."""

from __future__ import annotations

import base64
import email
import hashlib
import hmac
import json
import warnings
from datetime import datetime, timedelta, timezone
from email import policy
from pathlib import Path

import pytest
from conftest import REPO
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from population import populate

from newsletter.api import api_routes
from newsletter.bounces.provider_auth import sns_string_to_sign
from newsletter.bounces.providers import receive_webhook
from newsletter.errors import WebhookRefused
from newsletter.installation import Newsletter
from newsletter.people import subscriptions
from newsletter.sending.launch import launch, prepare_send
from newsletter.sending.options import SendOptions

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
DAY_3 = sorted((REPO / "examples" / "asp23").glob("day-3.*.md"))
TOPIC = "arn:aws:sns:eu-west-1:123456789012:newsletter-bounces"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


def certificate(host: str = "sns.amazonaws.com") -> tuple[bytes, rsa.RSAPrivateKey]:
    """A self-signed RSA certificate, as SNS's is an RSA one, valid 2020-2040."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime(2020, 1, 1, tzinfo=timezone.utc))
            .not_valid_after(datetime(2040, 1, 1, tzinfo=timezone.utc)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), key


SNS_CERT, SNS_KEY = certificate()
_, FORGER_KEY = certificate("sns.eu-west-1.amazonaws.com")
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(SENDGRID_KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


class Fetcher:
    """What SNS's certificate URL and subscription URL answer; records what was fetched."""

    def __init__(self, pem: bytes = SNS_CERT):
        self.pem = pem
        self.fetched: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.pem if url.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"


@pytest.fixture
def sent(config, store, clock, smtp_server):
    """An installation with VERP, every provider set up, and DAY_3 sent to three people:
    (newsletter, {recipient: (envelope sender, Message-ID)})."""
    newsletter = Newsletter(config.with_changes(
        bounce_address="bounces@news.example.org", ses_topic_arns=(TOPIC,), postmark_webhook_auth="pm:s3cret-pass",
        mailgun_signing_key=MAILGUN_KEY, sendgrid_public_key=SENDGRID_PUBLIC), store, clock=clock)
    populate(newsletter.store, 3, now=clock())
    launch(newsletter, prepare_send(newsletter, DAY_3), SendOptions(concurrency=1, idle_poll=3600.0))
    got = {}
    for r in smtp_server.received:
        message = email.message_from_bytes(r.data, policy=policy.default)
        got[r.rcpt_tos[0]] = (r.mail_from, str(message["Message-ID"]))
    return newsletter, got


def fixture(name: str, recipient: str, source: str = "", message_id: str = "", other: str = "") -> str:
    return (FIXTURES / name).read_text().replace("RECIPIENT", recipient).replace("SOURCE", source) \
        .replace("MESSAGE_ID", message_id).replace("OTHER", other)


def sns(message: str, *, key=SNS_KEY, version: str = "2", cert_url: str = CERT_URL, kind: str = "Notification",
        **extra) -> bytes:
    envelope = {"Type": kind, "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "TopicArn": TOPIC,
                "Message": message, "Timestamp": "2026-11-23T09:01:03.000Z", "SignatureVersion": version,
                "SigningCertURL": cert_url, **extra}
    if kind == "Notification":
        envelope["Subject"] = "Amazon SES Email Event Notification"
    digest = hashes.SHA256() if version == "2" else hashes.SHA1()
    envelope["Signature"] = base64.b64encode(key.sign(sns_string_to_sign(envelope), padding.PKCS1v15(),
                                                      digest)).decode()
    return json.dumps(envelope).encode()


def standing(newsletter, address: str) -> tuple[str, list[str]]:
    record = subscriptions.person(newsletter, address, with_bounces=True).as_json(with_bounces=True)
    return record["status"], [b["kind"] for b in record["bounces"]]


# -- Amazon SES through SNS --------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1", "2"])
def test_an_ses_bounce_signed_by_sns_suppresses_its_recipient(sent, version):
    newsletter, got = sent
    source, message_id = got["person000001@example.org"]
    body = sns(fixture("ses_bounce.json", "person000001@example.org", source, message_id), version=version)
    fetch = Fetcher()
    received = receive_webhook(newsletter, "ses", {}, body, fetch=fetch)
    assert received.kinds == ("hard",) and fetch.fetched == [CERT_URL]
    assert standing(newsletter, "person000001@example.org") == ("suppressed", ["hard"])
    assert standing(newsletter, "person000002@example.org") == ("active", [])
    # The same notification again (SNS delivers at least once) is recorded once.
    assert receive_webhook(newsletter, "ses", {}, body, fetch=fetch).kinds == ()
    assert standing(newsletter, "person000001@example.org")[1] == ["hard"]


def test_an_ses_complaint_unsubscribes_and_suppresses(sent):
    newsletter, got = sent
    source, message_id = got["person000002@example.org"]
    body = sns(fixture("ses_complaint.json", "person000002@example.org", source, message_id))
    assert receive_webhook(newsletter, "ses", {}, body, fetch=Fetcher()).kinds == ("complaint",)
    record = subscriptions.person(newsletter, "person000002@example.org").as_json()
    assert record["status"] == "suppressed" and record["subscriptions"][0]["status"] == "unsubscribed"


@pytest.mark.parametrize("case, words", [
    ("forged", "the SNS signature does not verify"),
    ("elsewhere", "not on https://sns.<region>.amazonaws.com"),
    ("http", "not on https://sns.<region>.amazonaws.com"),
    ("topic", "is not one of ses_topic_arns"),
    ("tampered", "the SNS signature does not verify"),
])
def test_a_forged_sns_message_is_refused_and_changes_nothing(sent, case, words):
    newsletter, got = sent
    source, message_id = got["person000001@example.org"]
    message = fixture("ses_bounce.json", "person000001@example.org", source, message_id)
    fetch = Fetcher()
    if case == "forged":  # signed with a forger's own key, pointing at the genuine certificate
        body = sns(message, key=FORGER_KEY)
    elif case == "elsewhere":
        body = sns(message, cert_url="https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem")
    elif case == "http":
        body = sns(message, cert_url=CERT_URL.replace("https:", "http:"))
    elif case == "topic":
        body = sns(message, TopicArn="arn:aws:sns:eu-west-1:999999999999:someone-else")
    else:
        envelope = json.loads(sns(message))
        envelope["Message"] = envelope["Message"].replace("person000001", "person000002")
        body = json.dumps(envelope).encode()
    with pytest.raises(WebhookRefused) as caught:
        receive_webhook(newsletter, "ses", {}, body, fetch=fetch)
    assert words in caught.value.reason
    assert standing(newsletter, "person000001@example.org") == ("active", [])
    assert standing(newsletter, "person000002@example.org") == ("active", [])


def test_an_sns_subscription_is_confirmed_once_it_verifies(sent):
    newsletter, _ = sent
    subscribe = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=2336412f37"
    body = sns("You have chosen to subscribe to the topic …", kind="SubscriptionConfirmation",
               SubscribeURL=subscribe, Token="2336412f37")
    fetch = Fetcher()
    received = receive_webhook(newsletter, "ses", {}, body, fetch=fetch)
    assert received.reports == 0 and received.note == f"subscribed to {TOPIC}"
    assert fetch.fetched == [CERT_URL, subscribe]


# -- Postmark, Mailgun, SendGrid ------------------------------------------------------------------------

def basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def test_postmark_bounces_and_complaints_with_its_basic_auth(sent):
    newsletter, _ = sent
    body = fixture("postmark_bounce.json", "person000001@example.org").encode()
    with pytest.raises(WebhookRefused, match="credentials are wrong"):
        receive_webhook(newsletter, "postmark", basic("pm:guess"), body)
    with pytest.raises(WebhookRefused):
        receive_webhook(newsletter, "postmark", {}, body)
    assert receive_webhook(newsletter, "postmark", basic("pm:s3cret-pass"), body).kinds == ("hard",)
    complaint = fixture("postmark_complaint.json", "person000002@example.org").encode()
    assert receive_webhook(newsletter, "postmark", basic("pm:s3cret-pass"), complaint).kinds == ("complaint",)
    assert standing(newsletter, "person000001@example.org") == ("suppressed", ["hard"])
    assert standing(newsletter, "person000002@example.org") == ("suppressed", ["complaint"])


def mailgun(name: str, recipient: str, message_id: str, *, at: datetime, key: str = MAILGUN_KEY) -> bytes:
    payload = json.loads(fixture(name, recipient, message_id=message_id))
    timestamp, token = str(int(at.timestamp())), hashlib.sha256(name.encode()).hexdigest()[:50]
    payload["signature"] = {"timestamp": timestamp, "token": token,
                            "signature": hmac.new(key.encode(), (timestamp + token).encode(), "sha256").hexdigest()}
    return json.dumps(payload).encode()


def test_mailgun_failures_and_complaints_with_its_hmac(sent, clock):
    newsletter, got = sent
    _, message_id = got["person000001@example.org"]
    body = mailgun("mailgun_failed.json", "person000001@example.org", message_id, at=clock())
    with pytest.raises(WebhookRefused, match="does not verify"):
        receive_webhook(newsletter, "mailgun", {}, mailgun("mailgun_failed.json", "person000001@example.org",
                                                          message_id, at=clock(), key="key-wrong"))
    with pytest.raises(WebhookRefused, match="more than 15 minutes old"):
        receive_webhook(newsletter, "mailgun", {}, mailgun("mailgun_failed.json", "person000001@example.org",
                                                          message_id, at=clock() - timedelta(hours=1)))
    assert receive_webhook(newsletter, "mailgun", {}, body).kinds == ("hard",)
    complained = mailgun("mailgun_complained.json", "person000002@example.org", got["person000002@example.org"][1],
                         at=clock())
    assert receive_webhook(newsletter, "mailgun", {}, complained).kinds == ("complaint",)
    assert standing(newsletter, "person000001@example.org") == ("suppressed", ["hard"])


def sendgrid_headers(body: bytes, timestamp: str = "1763888530", key=SENDGRID_KEY) -> dict[str, str]:
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}


def test_sendgrid_signed_events_bounce_and_complain_and_a_deferral_is_not_a_bounce(sent):
    newsletter, got = sent
    body = fixture("sendgrid_events.json", "person000001@example.org", message_id=got["person000001@example.org"][1],
                   other="person000002@example.org").encode()
    with pytest.raises(WebhookRefused, match="does not verify"):
        receive_webhook(newsletter, "sendgrid", sendgrid_headers(body, key=ec.generate_private_key(ec.SECP256R1())),
                        body)
    with pytest.raises(WebhookRefused, match="does not verify"):
        receive_webhook(newsletter, "sendgrid", sendgrid_headers(body), body + b" ")
    received = receive_webhook(newsletter, "sendgrid", sendgrid_headers(body), body)
    assert received.reports == 2 and received.kinds == ("hard", "complaint")
    assert standing(newsletter, "person000001@example.org") == ("suppressed", ["hard"])
    assert standing(newsletter, "person000002@example.org") == ("suppressed", ["complaint"])


def test_a_provider_not_set_up_is_refused(config, store, clock):
    newsletter = Newsletter(config, store, clock=clock)
    for provider in ("ses", "postmark", "mailgun", "sendgrid"):
        with pytest.raises(WebhookRefused, match="it is not set up"):
            receive_webhook(newsletter, provider, {}, b"{}")
    with pytest.raises(WebhookRefused, match="the providers are"):
        receive_webhook(newsletter, "sparkpost", {}, b"{}")


def test_the_api_route_takes_provider_webhooks(sent):
    newsletter, got = sent
    app = Starlette(routes=[Mount("/api/v1", routes=api_routes(newsletter, fetch=Fetcher()))])
    with TestClient(app) as client:
        recipient = "person000000@example.org"
        source, message_id = got[recipient]
        answer = client.post("/api/v1/providers/ses", content=sns(fixture("ses_bounce.json", recipient, source,
                                                                          message_id)))
        assert answer.status_code == 200 and answer.json() == {"provider": "ses", "reports": 1, "kinds": ["hard"],
                                                                "note": ""}
        refused = client.post("/api/v1/providers/postmark", content=b"{}", headers=basic("pm:nope"))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "webhook_refused"


def test_each_bounce_keeps_the_provider_that_reported_it_and_the_reports_name_it(sent, tmp_path):
    """A Postmark bounce and a SendGrid complaint are kept with their provider, beside a DSN read
    from the mailbox; `bounces --report`, `campaign report`, `show` and the consent log say
    where each came from."""
    from click.testing import CliRunner
    from sqlalchemy import select

    from newsletter.bounces.rules import bounces_of_people
    from newsletter.cli import main
    from newsletter.store import BounceEvent, ConsentEvent

    newsletter, got = sent
    receive_webhook(newsletter, "postmark", basic("pm:s3cret-pass"),
                    fixture("postmark_bounce.json", "person000001@example.org").encode())
    body = fixture("sendgrid_events.json", "person000000@example.org", message_id=got["person000000@example.org"][1],
                   other="person000002@example.org").encode()
    receive_webhook(newsletter, "sendgrid", sendgrid_headers(body), body)
    with newsletter.store.session() as session:
        kept = {(e.provider, e.kind.value, e.source) for e in session.scalars(select(BounceEvent))}
        sources = {e.source for e in session.scalars(select(ConsentEvent)) if e.source and ":" in e.source}
    assert ("postmark", "hard", "dsn") in kept and ("sendgrid", "complaint", "arf") in kept
    assert {"bounce:postmark", "complaint:sendgrid"} <= sources
    by_person = {b.email: b.came_from for b in bounces_of_people(newsletter)}
    assert by_person["person000001@example.org"] == "postmark" and by_person["person000002@example.org"] == "sendgrid"
    record = subscriptions.person(newsletter, "person000001@example.org", with_bounces=True).as_json(with_bounces=True)
    assert [b["provider"] for b in record["bounces"]] == ["postmark"]
    toml = tmp_path / "newsletter.toml"
    toml.write_text(f'database_url = "{newsletter.store.engine.url.render_as_string(hide_password=False)}"\n'
                    f'secret_key = "{newsletter.config.secret_key}"\n')
    report = CliRunner().invoke(main, ["--config", str(toml), "bounces", "--report"])
    assert report.exit_code == 0, report.output
    assert "person000001@example.org\thard\t" in report.output and "\tvia postmark" in report.output
    assert "person000002@example.org\tcomplaint\t" in report.output and "\tvia sendgrid" in report.output
    shown = CliRunner().invoke(main, ["--config", str(toml), "show", "person000001@example.org"]).output
    assert "(via postmark)" in shown


def test_outgoing_webhooks_name_the_provider_that_reported_a_bounce(sent, clock):
    """A receiver of `subscriber.bounced` and `subscriber.complained` learns who reported each."""
    import json

    from sqlalchemy import select

    from newsletter.hooks import delivery
    from newsletter.store import WebhookDelivery

    newsletter, got = sent
    delivery.add_webhook(newsletter, "crm", "http://127.0.0.1:9/hooks")
    clock.advance(seconds=1)
    receive_webhook(newsletter, "postmark", basic("pm:s3cret-pass"),
                    fixture("postmark_bounce.json", "person000001@example.org").encode())
    body = fixture("sendgrid_events.json", "person000000@example.org", message_id=got["person000000@example.org"][1],
                   other="person000002@example.org").encode()
    receive_webhook(newsletter, "sendgrid", sendgrid_headers(body), body)
    clock.advance(minutes=1)
    with newsletter.store.session() as session:
        assert delivery.collect_events(session, now=clock()) >= 2
        bodies = [json.loads(b) for b in session.scalars(select(WebhookDelivery.body))]
    reported = {(b["type"], b["data"]["email"]): b["data"] for b in bodies
                if b["type"] in ("subscriber.bounced", "subscriber.complained")}
    bounced = reported["subscriber.bounced", "person000001@example.org"]
    complained = reported["subscriber.complained", "person000002@example.org"]
    assert (bounced["provider"], bounced["kind"], bounced["source"]) == ("postmark", "hard", "dsn")
    assert (complained["provider"], complained["kind"], complained["source"]) == ("sendgrid", "complaint", "arf")
