"""Building MIME messages and their headers.

User data (names, subjects) only ever reaches headers through `email.headerregistry`, which
encodes it; a value carrying CR or LF is refused before that (`addresses.clean_text`), so no
value can start a header of its own.
"""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from .compose import RenderedMail
from .config import Config

__all__ = ["build_transactional", "sender_address", "message_id_domain"]


def message_id_domain(config: Config) -> str:
    return config.from_address.rpartition("@")[2] or "localhost"


def sender_address(config: Config) -> Address:
    local, _, domain = config.from_address.rpartition("@")
    return Address(display_name=config.from_name, username=local, domain=domain)


def build_transactional(config: Config, mail: RenderedMail, to_address: str, to_name: str, *,
                        now: datetime) -> EmailMessage:
    """A one-off message (confirmation and the like): multipart/alternative, text then HTML."""
    msg = EmailMessage()
    msg["From"] = sender_address(config)
    local, _, domain = to_address.rpartition("@")
    msg["To"] = Address(display_name=to_name, username=local, domain=domain)
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=message_id_domain(config))
    if config.reply_to:
        msg["Reply-To"] = config.reply_to
    msg["Auto-Submitted"] = "auto-generated"
    msg["Content-Language"] = mail.language
    msg.set_content(mail.text, cte="quoted-printable")
    msg.add_alternative(mail.html, subtype="html", cte="quoted-printable")
    return msg
