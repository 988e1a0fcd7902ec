"""Previews: an issue's variants as a sample recipient would get them, written to files.

For each language: the final `.html` and `.txt` parts (markers filled with a sample
recipient's values through `personalise.fill`, exactly as the sender fills them) and the
`.eml` message, built by the one message builder (`message.MailSkeleton`) and signed by the
installation's `Postmark` exactly as the send builds and signs it: the same bytes but for the
Date, the Message-ID, the MIME boundary and the reader's tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, make_msgid
from pathlib import Path

from ..config import Config
from .compose import RenderedMail, variant_for
from .message import (
    ListInfo,
    MailSkeleton,
    Recipient,
    message_id_domain,
    unsubscribe_mailto,
)
from .personalise import Field, fill
from .postmark import Postmark

__all__ = ["SampleRecipient", "PreviewFiles", "sample_values", "preview_message", "write_preview"]

#: The token in a preview's links (they unsubscribe nobody).
SAMPLE_TOKEN = "SAMPLE-TOKEN"


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
        Field.UNSUBSCRIBE_URL: f"{base}/unsubscribe/{SAMPLE_TOKEN}",
        Field.PREFERENCES_URL: f"{base}/preferences/{SAMPLE_TOKEN}",
    }


def preview_message(config: Config, skeleton: MailSkeleton, recipient: SampleRecipient, *, now: datetime,
                    postmark: Postmark) -> bytes:
    """The message `skeleton` gives `recipient`, signed by `postmark`: what the send puts on the wire."""
    values = sample_values(config, recipient)
    sample = Recipient(recipient.email, recipient.name, make_msgid(idstring="preview", domain=message_id_domain(config)),
                       values[Field.UNSUBSCRIBE_URL], values[Field.PREFERENCES_URL],
                       unsubscribe_mailto(config, SAMPLE_TOKEN))
    return postmark.sign(skeleton.render(sample, date=format_datetime(now)))


def write_preview(config: Config, slug: str, list_slug: str, rendered: Mapping[str, RenderedMail],
                  out_dir: Path, *, languages: Iterable[str] | None = None,
                  fallback_chain: Iterable[str] = ("en",), recipient: SampleRecipient = SampleRecipient(),
                  now: datetime, list_name: str = "", postmark: Postmark | None = None) -> list[PreviewFiles]:
    """Write `<slug>.<lang>.html`, `.txt` and `.eml` into `out_dir` for each language.

    `languages` defaults to the issue's own; a language without a variant gets the variant
    the fallback chain gives it (raises MissingVariant when there is none). `list_name` is the
    list's name as its List-Id carries it (default: the slug). `postmark` signs the `.eml` as
    the send would (default: this configuration's DKIM; raises DkimError when its key cannot
    be read).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    values = sample_values(config, recipient)
    postmark = postmark or Postmark.from_config(config)
    info = ListInfo(list_slug, list_name or list_slug, slug)
    written = []
    for language in (tuple(languages) if languages else tuple(rendered)):
        variant = variant_for(language, rendered, fallback_chain)
        mail = rendered[variant]
        stem = out_dir / f"{slug}.{language}"
        html_path, text_path, eml_path = (stem.with_name(stem.name + ext) for ext in (".html", ".txt", ".eml"))
        html_path.write_text(fill(mail.html, values, html_part=True), encoding="utf-8")
        text_path.write_text(fill(mail.text, values, html_part=False), encoding="utf-8")
        eml_path.write_bytes(preview_message(config, MailSkeleton(config, mail, info), recipient, now=now,
                                             postmark=postmark))
        written.append(PreviewFiles(language, variant, html_path, text_path, eml_path))
    return written
