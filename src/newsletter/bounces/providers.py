"""Bounce and complaint webhooks of the relays an NGO without its own mail server uses: Amazon
SES (through SNS), Postmark, Mailgun, SendGrid. Each payload, once verified
(`provider_auth`), is read into the same `Report` and `Finding`s a DSN gives, and recorded by
the same rules (`rules.record_report`): a hard bounce suppresses, a soft one adds to the
score, a complaint unsubscribes and suppresses. The same event delivered twice is recorded
once (its digest is the provider's event id).

Whom a report is about: SES gives the envelope sender (our VERP return path) and the
original Message-ID; the others give the recipient, believed because the provider's signature
authenticates the report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx

from ..errors import WebhookRefused
from ..statuses import BounceKind
from .provider_auth import Fetch, verify_mailgun, verify_postmark, verify_sendgrid, verify_sns
from .reports import Finding, Report, ReportKind, classify_failure
from .rules import record_report, rules_from_config

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["PROVIDERS", "Received", "reports_from", "receive_webhook", "https_fetch"]

PROVIDERS = ("ses", "postmark", "mailgun", "sendgrid")


class Received(NamedTuple):
    """What one webhook call did: reports recorded, the kinds found, and a note (a subscription confirmed…)."""

    provider: str
    reports: int
    kinds: tuple[str, ...]
    note: str = ""


def _report(provider: str, event_id: str, findings: list[Finding], *, envelope: tuple[str, ...] = (),
            message_ids: tuple[str, ...] = (), subject: str = "") -> Report:
    digest = hashlib.sha256(f"{provider}:{event_id}".encode()).hexdigest()
    kind = ReportKind.ARF if findings and findings[0].kind is BounceKind.COMPLAINT else ReportKind.DSN
    return Report(kind, tuple(findings), f"{provider}:{event_id}", subject, envelope, message_ids, digest,
                  note=provider)


def _failure(permanent: bool, status: str | None, diagnostic: str | None) -> BounceKind:
    if not permanent:
        return BounceKind.SOFT
    return classify_failure(status or "5.0.0", diagnostic)


def _message_id(value: Any) -> tuple[str, ...]:
    text = str(value or "").strip()
    if not text:
        return ()
    return (text if text.startswith("<") else f"<{text}>",)


# -- the payloads, as each provider documents them --------------------------------------------------

def ses_reports(message: Mapping[str, Any]) -> list[Report]:
    """An SES notification (the SNS message's `Message`, parsed): Bounce, Complaint (else none)."""
    kind = message.get("notificationType") or message.get("eventType")
    mail = message.get("mail") or {}
    envelope = (str(mail["source"]).lower(),) if mail.get("source") else ()
    ids = _message_id((mail.get("commonHeaders") or {}).get("messageId"))
    subject = str((mail.get("commonHeaders") or {}).get("subject", ""))
    if kind == "Bounce":
        bounce = message.get("bounce") or {}
        permanent = bounce.get("bounceType") == "Permanent"
        findings = []
        for r in bounce.get("bouncedRecipients") or []:
            status, diagnostic = r.get("status"), r.get("diagnosticCode")
            reason = f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')}: {diagnostic or status or ''}".strip()
            findings.append(Finding(_failure(permanent, status, diagnostic), str(r.get("emailAddress", "")).lower()
                                    or None, status, diagnostic, reason))
        return [_report("ses", str(bounce.get("feedbackId") or mail.get("messageId")), findings, envelope=envelope,
                        message_ids=ids, subject=subject)]
    if kind == "Complaint":
        complaint = message.get("complaint") or {}
        reason = f"complaint: {complaint.get('complaintFeedbackType') or 'abuse'}"
        findings = [Finding(BounceKind.COMPLAINT, str(r.get("emailAddress", "")).lower() or None, None, None, reason)
                    for r in complaint.get("complainedRecipients") or []]
        return [_report("ses", str(complaint.get("feedbackId") or mail.get("messageId")), findings,
                        envelope=envelope, message_ids=ids, subject=subject)]
    return []


_POSTMARK_SOFT = {"SoftBounce", "Transient", "DnsError", "MailFrontier", "ChallengeVerification", "Blocked",
                  "SMTPApiError", "InboxFull"}
_POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "Unsubscribe"}


def postmark_reports(payload: Mapping[str, Any]) -> list[Report]:
    """A Postmark Bounce or SpamComplaint webhook."""
    record, kind = payload.get("RecordType"), payload.get("Type")
    email = str(payload.get("Email", "")).lower() or None
    reason = f"{kind}: {payload.get('Description') or ''} {payload.get('Details') or ''}".strip()
    if record == "SpamComplaint" or kind == "SpamComplaint":
        finding = Finding(BounceKind.COMPLAINT, email, None, None, f"complaint: {payload.get('Details') or 'spam'}")
    elif kind in _POSTMARK_HARD:
        finding = Finding(BounceKind.HARD, email, None, payload.get("Details"), reason)
    elif kind in _POSTMARK_SOFT:
        finding = Finding(BounceKind.SOFT, email, None, payload.get("Details"), reason)
    else:  # AutoResponder, Unknown, OpenRelayTest, …: nothing to act on
        return []
    return [_report("postmark", str(payload.get("ID")), [finding], subject=str(payload.get("Subject", "")))]


def mailgun_reports(payload: Mapping[str, Any]) -> list[Report]:
    """A Mailgun webhook's `event-data`: failed (permanent or temporary) or complained."""
    data = payload.get("event-data") or {}
    event, email = data.get("event"), str(data.get("recipient", "")).lower() or None
    ids = _message_id(((data.get("message") or {}).get("headers") or {}).get("message-id"))
    status = data.get("delivery-status") or {}
    if event == "failed":
        code = status.get("code")
        diagnostic = str(status.get("message") or status.get("description") or "")
        enhanced = f"{str(code)[0]}.0.0" if code else None
        finding = Finding(_failure(data.get("severity") == "permanent", enhanced, diagnostic), email, enhanced,
                          diagnostic, f"{data.get('reason') or 'failed'}: {code or ''} {diagnostic}".strip())
    elif event == "complained":
        finding = Finding(BounceKind.COMPLAINT, email, None, None, "complaint")
    else:
        return []
    return [_report("mailgun", str(data.get("id")), [finding], message_ids=ids)]


def sendgrid_reports(events: list[Mapping[str, Any]]) -> list[Report]:
    """A SendGrid Event Webhook batch: bounce (type bounce or blocked), dropped for a bounced
    address, spamreport; other events are not bounces."""
    reports = []
    for e in events:
        kind, email = e.get("event"), str(e.get("email", "")).lower() or None
        status, reason = e.get("status"), str(e.get("reason") or "")
        if kind == "bounce":
            permanent = e.get("type", "bounce") == "bounce"
            finding = Finding(_failure(permanent, status, reason), email, status, reason, f"bounce: {reason}")
        elif kind == "dropped" and "bounce" in reason.lower():
            finding = Finding(BounceKind.HARD, email, status, reason, f"dropped: {reason}")
        elif kind == "spamreport":
            finding = Finding(BounceKind.COMPLAINT, email, None, None, "complaint: spam report")
        else:
            continue
        reports.append(_report("sendgrid", str(e.get("sg_event_id")), [finding],
                               message_ids=_message_id(e.get("smtp-id"))))
    return reports


# -- receiving ----------------------------------------------------------------------------------------

def https_fetch(url: str) -> bytes:
    """GET `url` (an SNS certificate or subscription URL, checked by the caller) with a short timeout."""
    response = httpx.get(url, timeout=10.0, follow_redirects=False)
    response.raise_for_status()
    return response.content


def _json(provider: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused(provider, "the body is not JSON") from None


def reports_from(newsletter: Newsletter, provider: str, headers: Mapping[str, str], body: bytes, *,
                 fetch: Fetch) -> tuple[list[Report], str]:
    """Verify a webhook call and read its reports; (reports, note). Raises WebhookRefused."""
    config, now = newsletter.config, newsletter.clock()
    if provider not in PROVIDERS:
        raise WebhookRefused(provider, f"the providers are {', '.join(PROVIDERS)}")
    setting = {"ses": "ses_topic_arns", "postmark": "postmark_webhook_auth", "mailgun": "mailgun_signing_key",
               "sendgrid": "sendgrid_public_key"}[provider]
    if not getattr(config, setting):
        raise WebhookRefused(provider, f"it is not set up ({setting} is empty)")
    if provider == "ses":
        message = _json(provider, body)
        if not isinstance(message, dict):
            raise WebhookRefused(provider, "not an SNS message")
        verify_sns(message, fetch=fetch, now=now, topics=tuple(config.ses_topic_arns))
        if message["Type"] == "SubscriptionConfirmation":
            fetch(str(message.get("SubscribeURL", "")))  # on sns.<region>.amazonaws.com, like the certificate
            return [], f"subscribed to {message.get('TopicArn')}"
        if message["Type"] != "Notification":
            return [], message["Type"]
        try:
            inner = json.loads(message.get("Message") or "{}")
        except ValueError:
            raise WebhookRefused(provider, "the SNS message does not hold an SES notification") from None
        return ses_reports(inner if isinstance(inner, dict) else {}), ""
    if provider == "postmark":
        verify_postmark(headers.get("authorization"), config.postmark_webhook_auth)
        payload = _json(provider, body)
        return (postmark_reports(payload) if isinstance(payload, dict) else []), ""
    if provider == "mailgun":
        payload = _json(provider, body)
        if not isinstance(payload, dict):
            raise WebhookRefused(provider, "the body is not a Mailgun webhook")
        verify_mailgun(payload.get("signature") or {}, config.mailgun_signing_key, now=now)
        return mailgun_reports(payload), ""
    verify_sendgrid(body, headers.get("x-twilio-email-event-webhook-signature"),
                    headers.get("x-twilio-email-event-webhook-timestamp"), config.sendgrid_public_key)
    events = _json(provider, body)
    return (sendgrid_reports([e for e in events if isinstance(e, dict)]) if isinstance(events, list) else []), ""


def receive_webhook(newsletter: Newsletter, provider: str, headers: Mapping[str, str], body: bytes, *,
                    fetch: Fetch | None = None) -> Received:
    """Verify a provider's bounce webhook and record its reports through the bounce rules, each
    in its own transaction. Raises WebhookRefused (nothing recorded)."""
    reports, note = reports_from(newsletter, provider, {k.lower(): v for k, v in headers.items()}, body,
                                 fetch=fetch or https_fetch)
    rules = rules_from_config(newsletter.config)
    rules = dataclasses.replace(rules, trust_unsigned=True)  # the provider's signature vouches for the address
    kinds: list[str] = []
    for report in reports:
        with newsletter.store.session() as session:
            _folder, found, _ = record_report(session, report, secret=newsletter.secret(),
                                              bounce_address=newsletter.config.bounce_address,
                                              now=newsletter.clock(), rules=rules, provider=provider)
            kinds.extend(k.value for k in found)
    return Received(provider, len(reports), tuple(kinds), note)
