"""Previews: an issue's variants as a sample recipient would get them, written to files.

For each language: the final `.html` and `.txt` parts (markers filled with a sample
recipient's values through `personalise.fill`, exactly as the sender fills them) and a
complete `.eml` message that a mail client opens. This is not the sending path — the sender
builds its messages in `message` — so it favours clarity over speed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from ..config import Config
from .compose import RenderedMail, variant_for
from .message import MAIL_POLICY
from .personalise import Field, fill

__all__ = ["SampleRecipient", "PreviewFiles", "sample_values", "build_preview_message", "write_preview"]


@dataclass(frozen=True)
class SampleRecipient:
    """Who the preview pretends to be sent to."""

    name: str = "Sample Reader"
    email: str = "reader@example.org"


@dataclass(frozen=True)
class PreviewFiles:
    """The files written for one language; `variant` is the language of the content shown."""

    language: str
    variant: str
    html: Path
    text: Path
    eml: Path


def sample_values(config: Config, recipient: SampleRecipient) -> dict[Field, str]:
    """Per-recipient values for a preview: the recipient's name and address, sample links."""
    base = config.base_url.rstrip("/")
    return {
        Field.NAME: recipient.name,
        Field.EMAIL: recipient.email,
        Field.UNSUBSCRIBE_URL: f"{base}/unsubscribe/SAMPLE-TOKEN",
        Field.PREFERENCES_URL: f"{base}/preferences/SAMPLE-TOKEN",
    }




def _address(display_name: str, address: str) -> Address:
    local, _, domain = address.rpartition("@")
    return Address(display_name=display_name, username=local, domain=domain)


def build_preview_message(config: Config, mail: RenderedMail, recipient: SampleRecipient, *,
                          now: datetime, list_id: str = "") -> EmailMessage:
    """A complete multipart/alternative message (text, then HTML) for `recipient`.

    Headers as a list mail carries them: From, To, Subject, Date, Message-ID, List-Id,
    List-Unsubscribe (with RFC 8058 one-click), Content-Language.
    """
    values = sample_values(config, recipient)
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = _address(config.from_name, config.from_address)
    msg["To"] = _address(recipient.name, recipient.email)
    msg["Subject"] = fill(mail.subject, values, html_part=False)
    msg["Date"] = format_datetime(now)
    domain = config.from_address.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(idstring="preview", domain=domain)
    if config.reply_to:
        msg["Reply-To"] = config.reply_to
    if list_id:
        msg["List-Id"] = f"<{list_id}.{domain}>"
    unsubscribe = values[Field.UNSUBSCRIBE_URL]
    mailto = config.unsubscribe_mailto or config.from_address
    msg["List-Unsubscribe"] = f"<{unsubscribe}>, <mailto:{mailto}?subject=unsubscribe>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if mail.browser_url:
        msg["List-Archive"] = f"<{mail.browser_url}>"
    msg.set_content(fill(mail.text, values, html_part=False), cte="quoted-printable")
    msg.add_alternative(fill(mail.html, values, html_part=True), subtype="html", cte="quoted-printable")
    # After the parts: set_content() drops every Content-* header already set.
    msg["Content-Language"] = mail.language
    return msg


def write_preview(config: Config, slug: str, list_slug: str, rendered: Mapping[str, RenderedMail],
                  out_dir: Path, *, languages: Iterable[str] | None = None,
                  fallback_chain: Iterable[str] = ("en",), recipient: SampleRecipient = SampleRecipient(),
                  now: datetime) -> list[PreviewFiles]:
    """Write `<slug>.<lang>.html`, `.txt` and `.eml` into `out_dir` for each language.

    `languages` defaults to the issue's own; a language without a variant gets the variant
    the fallback chain gives it (raises MissingVariant when there is none).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    values = sample_values(config, recipient)
    written = []
    for language in (tuple(languages) if languages else tuple(rendered)):
        variant = variant_for(language, rendered, fallback_chain)
        mail = rendered[variant]
        stem = out_dir / f"{slug}.{language}"
        html_path, text_path, eml_path = (stem.with_name(stem.name + ext) for ext in (".html", ".txt", ".eml"))
        html_path.write_text(fill(mail.html, values, html_part=True), encoding="utf-8")
        text_path.write_text(fill(mail.text, values, html_part=False), encoding="utf-8")
        message = build_preview_message(config, mail, recipient, now=now, list_id=list_slug)
        eml_path.write_bytes(bytes(message))
        written.append(PreviewFiles(language, variant, html_path, text_path, eml_path))
    return written
