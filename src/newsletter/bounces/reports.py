"""Reading one bounce or feedback message: what it says, about whom. Pure: bytes in, values out.

Three kinds of report are understood, in this order:

- RFC 3464 delivery-status notifications (`multipart/report; report-type=delivery-status`):
  one finding per recipient block, from its Action, Status and Diagnostic-Code;
- RFC 5965 abuse reports (ARF, `report-type=feedback-report`): one complaint;
- everything else that GNU Mailman's `flufl.bounce` recognises (Exim's classic bounces,
  qmail, Exchange, Yahoo…): a hard or soft finding per address it reports.

An auto-reply (RFC 3834 `Auto-Submitted`, "out of office") is recognised and is not a bounce.
What is none of these comes back as `ReportKind.UNPARSED`, to be kept for a person to read.

Each report also carries what identifies the original recipient without trusting the body:
the addresses the report was delivered to (where a VERP return path shows up) and the
Message-IDs of the original message.
"""

from __future__ import annotations

import codecs
import enum
import hashlib
import re
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses
from typing import NamedTuple

import flufl.bounce

from ..statuses import BounceKind

__all__ = ["ReportKind", "Finding", "Report", "parse_report", "classify_failure"]

#: Headers an MTA adds to say to which envelope address it delivered the report.
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "X-Rcpt-To", "To")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY = re.compile(r"\b([45]\d\d)[ -]")
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|absence|r[ée]ponse automatique|"
    r"respuesta autom[aá]tica|autoreply|vacation)",
    re.IGNORECASE,
)
_FAILURE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery|mail administrator|mdaemon")
_FAILURE_SUBJECT = re.compile(
    r"undeliver|not (be )?delivered|delivery (status|failure|failed|has failed|notification)|returned mail|"
    r"failure notice|mail delivery failed|non[- ]?delivery|bounce",
    re.IGNORECASE,
)
#: ARF feedback types that mean "this person did not want this mail".
_COMPLAINT_TYPES = {"abuse", "fraud", "virus", "other", ""}
_MAX_REASON = 2000


class ReportKind(str, enum.Enum):
    DSN = "dsn"
    ARF = "arf"
    #: A non-standard bounce recognised by flufl.bounce.
    HEURISTIC = "heuristic"
    AUTO_REPLY = "auto_reply"
    UNPARSED = "unparsed"
    #: Not a report: a reader's unsubscribe request to the mailto: of List-Unsubscribe.
    UNSUBSCRIBE_REQUEST = "unsubscribe_request"


class Finding(NamedTuple):
    """What a report says about one recipient."""

    kind: BounceKind
    #: The recipient address the report names (lower-cased), if it names one.
    address: str | None
    #: RFC 3463 enhanced status code ("5.1.1"), if given.
    status: str | None
    #: The Diagnostic-Code or SMTP reply, as given.
    diagnostic: str | None
    #: The raw reason in a line or a few: what a person reads in `newsletter show`.
    reason: str


class Report(NamedTuple):
    """What one message says."""

    kind: ReportKind
    findings: tuple[Finding, ...]
    #: The report's own Message-ID, or sha256:<hex> of its bytes when it has none.
    message_id: str
    subject: str
    #: Addresses the report was delivered to: a VERP return path shows up here.
    envelope_addresses: tuple[str, ...]
    #: Message-IDs of the original message, from the attached copy or its headers.
    original_message_ids: tuple[str, ...]
    #: SHA-256 (hex) of the message's bytes: the same message read twice is recorded once.
    digest: str
    #: Why it could not be understood (UNPARSED), or other remarks.
    note: str = ""


def _text(value: object) -> str:
    """A header value as text: encoded words decoded, folding undone."""
    if value is None:
        return ""
    raw = str(value)
    try:
        raw = str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError):
        pass
    return re.sub(r"\s*\r?\n\s+", " ", raw).strip()


def _short(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON] + "…"


def classify_failure(status: str | None, diagnostic: str | None) -> BounceKind:
    """Whether a failed delivery is hard or soft, from its enhanced status code or SMTP reply.

    Hard: 5.x.x about the address (5.1.x no such user, 5.2.1 disabled mailbox…), or a 5xx reply
    without a usable code. Soft: every 4.x.x, and the 5.x.x that are about the message or the
    sender rather than the address: 5.2.2 mailbox full, 5.3.4 message too big, 5.7.x policy
    and reputation blocks (suppressing for those would punish the reader for our reputation).
    """
    code = status or ""
    if not _STATUS.fullmatch(code):
        match = _STATUS.search(diagnostic or "")
        code = match.group(0) if match else ""
    if code:
        klass, subject, detail = code.split(".")
        if klass == "4":
            return BounceKind.SOFT
        if klass == "5":
            if (subject, detail) in (("2", "2"), ("3", "4")) or subject == "7":
                return BounceKind.SOFT
            return BounceKind.HARD
    reply = _REPLY.search(diagnostic or "")
    if reply and reply.group(1).startswith("4"):
        return BounceKind.SOFT
    return BounceKind.HARD


def _parts(msg: Message) -> list[Message]:
    return list(msg.walk())


def _original_headers(msg: Message) -> Message | None:
    """The original message (or its headers) attached to a report, if any."""
    for part in _parts(msg):
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload()
            if inner and isinstance(inner[0], Message):
                return inner[0]
        if ctype in ("text/rfc822-headers", "text/global-headers"):
            payload = part.get_payload(decode=True) or b""
            return message_from_bytes(payload, policy=compat32)
    return None


def _addresses(msg: Message, names: tuple[str, ...]) -> list[str]:
    found = []
    for name in names:
        for _display, address in getaddresses([_text(v) for v in msg.get_all(name, [])]):
            if "@" in address:
                found.append(address.strip().lower())
    return found


def _address_field(value: str) -> str | None:
    """`rfc822; ana@example.net` -> ana@example.net."""
    text = _text(value)
    address = text.split(";", 1)[1] if ";" in text else text
    address = address.strip().strip("<>").strip().lower()
    return address if "@" in address else None


def _dsn_findings(msg: Message) -> list[Finding] | None:
    """Findings of an RFC 3464 report, or None when it has no delivery-status part."""
    for part in _parts(msg):
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            blocks = [message_from_bytes(part.get_payload(decode=True) or b"", policy=compat32)]
        findings = []
        for block in blocks[1:] if len(blocks) > 1 else blocks:
            action = _text(block.get("Action")).lower()
            if not action:
                continue
            status = _text(block.get("Status")) or None
            if status:
                match = _STATUS.search(status)
                status = match.group(0) if match else status[:16]
            diagnostic = _text(block.get("Diagnostic-Code")) or None
            address = _address_field(block.get("Final-Recipient", "")) or _address_field(
                block.get("Original-Recipient", ""))
            reason = diagnostic or f"Action: {action}" + (f", Status: {status}" if status else "")
            if action.startswith("failed"):
                kind = classify_failure(status, diagnostic)
            elif action.startswith("delayed"):
                kind = BounceKind.DELAYED
                until = _text(block.get("Will-Retry-Until"))
                reason = f"delayed: {reason}" + (f" (will retry until {until})" if until else "")
            else:
                continue  # delivered, relayed, expanded: not a failure
            findings.append(Finding(kind, address, status, diagnostic, _short(reason)))
        return findings
    return None


def _arf_findings(msg: Message, original: Message | None) -> list[Finding] | None:
    for part in _parts(msg):
        if part.get_content_type() != "message/feedback-report":
            continue
        payload = part.get_payload()
        fields = payload[0] if isinstance(payload, list) and payload else message_from_bytes(
            part.get_payload(decode=True) or b"", policy=compat32)
        feedback_type = _text(fields.get("Feedback-Type")).lower()
        address = _address_field(fields.get("Original-Rcpt-To", "")) if fields.get("Original-Rcpt-To") else None
        if address is None and original is not None:
            to = _addresses(original, ("To",))
            address = to[0] if len(to) == 1 else None
        agent = _text(fields.get("User-Agent"))
        reason = f"Feedback-Type: {feedback_type or '(none)'}" + (f" from {agent}" if agent else "")
        if feedback_type in _COMPLAINT_TYPES:
            return [Finding(BounceKind.COMPLAINT, address, None, None, reason)]
        # not-spam, auth-failure, dkim…: about our authentication, not the reader's wishes.
        return [Finding(BounceKind.UNKNOWN, address, None, None, reason + " (not a complaint)")]
    return None


def _body_text(msg: Message) -> str:
    for part in _parts(msg):
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            return _decoded(part.get_payload(decode=True) or b"", part.get_content_charset())
    return ""


def _decoded(payload: bytes, charset: str | None) -> str:
    """`payload` as text in its declared charset; UTF-8 when that is unknown or malformed
    (`s-ascii`, a NUL in the name): a bounce in a broken charset is still read."""
    try:
        codecs.lookup(charset or "utf-8")
        return payload.decode(charset or "utf-8", errors="replace")
    except (LookupError, ValueError):
        return payload.decode("utf-8", errors="replace")


def _heuristic_findings(msg: Message) -> list[Finding]:
    try:
        temporary, permanent = flufl.bounce.all_failures(msg)
    except Exception:  # noqa: BLE001  flufl's detectors are heuristics over hostile input
        return []
    body = _body_text(msg)
    findings = []
    for kind, addresses in ((BounceKind.HARD, permanent), (BounceKind.SOFT, temporary)):
        for raw in sorted(addresses):
            address = raw.decode("utf-8", errors="replace").strip().strip("<>").lower()
            if "@" not in address:
                continue
            diagnostic = _diagnostic_line(body, address)
            status_match = _STATUS.search(diagnostic or "")
            status = status_match.group(0) if status_match else None
            if diagnostic and kind is BounceKind.HARD:
                kind = classify_failure(status, diagnostic)
            findings.append(Finding(kind, address, status, diagnostic,
                                    _short(diagnostic or _text(msg.get("Subject")) or "non-standard bounce")))
    return findings


def _diagnostic_line(body: str, address: str) -> str | None:
    """The SMTP reply a non-standard bounce quotes for `address`, joined onto one line."""
    lines = body.splitlines()
    best = None
    for i, line in enumerate(lines):
        if _REPLY.search(line) or "SMTP error" in line:
            text = line.strip()
            for follow in lines[i + 1:i + 4]:
                if follow.startswith((" ", "\t")) and follow.strip():
                    text += " " + follow.strip()
                else:
                    break
            if address in text.lower():
                return text
            best = best or text
    return best


def _is_auto_reply(msg: Message) -> bool:
    """An out-of-office or similar responder. DSNs carry `Auto-Submitted: auto-replied` too, so a
    message that looks like a delivery failure we could not read is never taken for one."""
    sender = _text(msg.get("From")).lower()
    if _FAILURE_SENDER.search(sender) or _FAILURE_SUBJECT.search(_text(msg.get("Subject"))):
        return False
    auto = _text(msg.get("Auto-Submitted")).lower()
    if auto.startswith("auto-replied"):
        return True
    if any(msg.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress-Reply")):
        return True
    if _text(msg.get("Precedence")).lower() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.match(_text(msg.get("Subject"))))


#: What the `email` package and flufl.bounce raise on mail they cannot read (unknown or malformed
#: charsets, broken headers, truncated structures).
_UNREADABLE = (LookupError, ValueError, UnicodeError, TypeError, AttributeError, IndexError, KeyError)


def parse_report(raw: bytes) -> Report:
    """Read one message into a Report. Never raises for malformed mail: that is UNPARSED,
    with the reason in its note."""
    try:
        return _parse(raw)
    except _UNREADABLE as exc:
        digest = hashlib.sha256(raw).hexdigest()
        return Report(ReportKind.UNPARSED, (), "sha256:" + digest, "", (), (), digest,
                      f"the mail could not be read ({type(exc).__name__}: {str(exc)[:200]})")


def _parse(raw: bytes) -> Report:
    msg = message_from_bytes(raw, policy=compat32)
    digest = hashlib.sha256(raw).hexdigest()
    message_id = _text(msg.get("Message-ID")) or "sha256:" + digest
    subject = _text(msg.get("Subject"))
    original = _original_headers(msg)
    envelope = _addresses(msg, _ENVELOPE_HEADERS)
    original_ids: list[str] = []
    if original is not None:
        envelope += _addresses(original, ("Return-Path",))
        if original.get("Message-ID"):
            original_ids.append(_text(original.get("Message-ID")))
    for header in ("In-Reply-To", "References"):
        original_ids += re.findall(r"<[^<>\s]+>", _text(msg.get(header)))
    envelope_t = tuple(dict.fromkeys(envelope))
    ids_t = tuple(dict.fromkeys(original_ids))

    def report(kind: ReportKind, findings: list[Finding], note: str = "") -> Report:
        return Report(kind, tuple(findings), message_id[:255], subject, envelope_t, ids_t, digest, note)

    if msg.get_content_type() == "multipart/report":
        report_type = (msg.get_param("report-type") or "").lower()
        if report_type == "feedback-report":
            arf = _arf_findings(msg, original)
            if arf is not None:
                return report(ReportKind.ARF, arf)
        dsn = _dsn_findings(msg)
        if dsn is not None:
            return report(ReportKind.DSN, dsn)
    heuristic = _heuristic_findings(msg)
    if heuristic:
        return report(ReportKind.HEURISTIC, heuristic)
    if _is_auto_reply(msg):
        return report(ReportKind.AUTO_REPLY, [], "an automatic reply, not a bounce")
    return report(ReportKind.UNPARSED, [], "neither a delivery-status report, a feedback report, "
                                           "a known bounce format nor an automatic reply")
