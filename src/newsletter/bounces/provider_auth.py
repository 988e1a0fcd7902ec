"""Checking that a bounce webhook comes from the provider, as each provider documents it.

- Amazon SES through SNS: the SNS message signature (SignatureVersion 1: SHA1withRSA, 2:
  SHA256withRSA) over the documented "Key\\nValue\\n" string, with the certificate fetched from
  `SigningCertURL`, which must be https://sns.<region>.amazonaws.com/…; the certificate must
  be valid now. `fetch` is injectable (tests sign with a certificate of their own).
- Postmark: HTTP basic authentication, the credentials put in the webhook's URL.
- Mailgun: HMAC-SHA256 of timestamp + token with the webhook signing key; at most 15 minutes old.
- SendGrid: the Signed Event Webhook's ECDSA (P-256, SHA-256) signature of timestamp + body,
  with the public key from SendGrid's settings.

Each raises WebhookRefused(provider, reason); none does I/O but `fetch`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from ..errors import WebhookRefused

__all__ = ["Fetch", "verify_sns", "verify_postmark", "verify_mailgun", "verify_sendgrid", "sns_string_to_sign",
           "SNS_CERT_HOST"]

Fetch = Callable[[str], bytes]
SNS_CERT_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SUBSCRIPTION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def sns_string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signs, for a Notification or a (Un)SubscriptionConfirmation."""
    keys = _NOTIFICATION_KEYS if message.get("Type") == "Notification" else _SUBSCRIPTION_KEYS
    return "".join(f"{key}\n{message[key]}\n" for key in keys if key in message).encode("utf-8")


def _cert_url_ok(url: str) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme == "https" and bool(SNS_CERT_HOST.match(parts.hostname or "")) and parts.path.endswith(".pem")


def verify_sns(message: Mapping[str, Any], *, fetch: Fetch, now: datetime, topics: tuple[str, ...] = ()) -> None:
    """Check an SNS message's signature and certificate (and its topic, when `topics` are given)."""
    def refuse(reason: str) -> WebhookRefused:
        return WebhookRefused("ses", reason)

    if message.get("Type") not in ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"):
        raise refuse("not an SNS message")
    if topics and message.get("TopicArn") not in topics:
        raise refuse(f"the topic {message.get('TopicArn')!r} is not one of ses_topic_arns")
    url = str(message.get("SigningCertURL", ""))
    if not _cert_url_ok(url):
        raise refuse("the signing certificate is not on https://sns.<region>.amazonaws.com")
    version = str(message.get("SignatureVersion", ""))
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)
    if algorithm is None:
        raise refuse(f"unknown SignatureVersion {version!r}")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        certificate = x509.load_pem_x509_certificate(fetch(url))
    except (ValueError, TypeError) as exc:
        raise refuse(f"the signature or the certificate cannot be read: {exc}") from None
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise refuse("the signing certificate is not valid now")
    try:
        certificate.public_key().verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, TypeError, ValueError):
        raise refuse("the SNS signature does not verify") from None


def verify_postmark(authorization: str | None, expected: str) -> None:
    """Check the basic-auth credentials ("user:password") Postmark sends."""
    scheme, _, value = (authorization or "").partition(" ")
    try:
        given = base64.b64decode(value, validate=True).decode("utf-8") if scheme.lower() == "basic" else ""
    except (ValueError, UnicodeDecodeError):
        given = ""
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise WebhookRefused("postmark", "the basic-auth credentials are wrong")


def verify_mailgun(signature: Mapping[str, Any], key: str, *, now: datetime) -> None:
    """Check a Mailgun webhook's `signature` object (timestamp, token, signature)."""
    try:
        timestamp, token, given = str(signature["timestamp"]), str(signature["token"]), str(signature["signature"])
        at = datetime.fromtimestamp(int(timestamp), tz=now.tzinfo)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise WebhookRefused("mailgun", "the signature object is missing or malformed") from None
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise WebhookRefused("mailgun", "the signature does not verify")
    if abs(now - at) > timedelta(minutes=15):
        raise WebhookRefused("mailgun", "the signature is more than 15 minutes old")


def _public_key(text: str) -> ec.EllipticCurvePublicKey:
    data = text.strip().encode()
    key = (serialization.load_pem_public_key(data) if data.startswith(b"-----")
           else serialization.load_der_public_key(base64.b64decode(data)))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve key")
    return key


def verify_sendgrid(body: bytes, signature: str | None, timestamp: str | None, public_key: str) -> None:
    """Check SendGrid's Signed Event Webhook headers over the raw body."""
    if not signature or not timestamp:
        raise WebhookRefused("sendgrid", "the signature headers are missing")
    try:
        key = _public_key(public_key)
        key.verify(base64.b64decode(signature, validate=True), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError):
        raise WebhookRefused("sendgrid", "the signature does not verify") from None
