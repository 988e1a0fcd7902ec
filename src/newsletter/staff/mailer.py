"""The workspace's mail to staff (invitations, reset links), through the one message builder.

Rendered by `mail.compose.render_staff_mail`, built by `mail.message.MailSkeleton` as kind
STAFF (no list headers), signed and bounce-addressed by `mail.postmark`, and handed to the
relay on a connection of its own (these mails are few), from `transport.relays.personal_connector`:
through the pool of `[relays.*]` when there are any, else to `smtp_url`.
"""

from __future__ import annotations

import asyncio
from email.utils import format_datetime, make_msgid

from ..errors import DeliveryError
from ..installation import Newsletter
from ..mail.compose import render_staff_mail
from ..mail.message import MailKind, MailSkeleton, Recipient, message_id_domain
from ..mail.postmark import Postmark
from ..transport.connection import Verdict, classify_reply
from ..transport.relays import deliver_once, personal_connector

__all__ = ["staff_mail_bytes", "send_link"]


def staff_mail_bytes(newsletter: Newsletter, which: str, member, link: str, *, language: str,
                     hours: int) -> tuple[str, bytes]:
    """(envelope sender, bytes) of a staff mail to `member` carrying `link`."""
    config = newsletter.config
    mail = render_staff_mail(config, which, language, name=member.name, link=link, role=member.role.value,
                             hours=hours)
    skeleton = MailSkeleton(config, mail, kind=MailKind.STAFF)
    data = skeleton.render(Recipient(member.email, member.name, make_msgid(domain=message_id_domain(config))),
                           date=format_datetime(newsletter.clock()))
    postmark = Postmark.from_config(config, newsletter.secret())
    return postmark.return_path(MailKind.STAFF), postmark.sign(data)


def send_link(newsletter: Newsletter, which: str, member, link: str, *, language: str, hours: int) -> str | None:
    """Mail `link` to `member`; None when the relay took it, else why it could not (never raises
    DeliveryError: the caller says what to do)."""
    sender, data = staff_mail_bytes(newsletter, which, member, link, language=language, hours=hours)
    connect = personal_connector(newsletter.config, clock=newsletter.clock)
    try:
        relay, reply = asyncio.run(deliver_once(connect, sender, member.email, data))
    except DeliveryError as exc:
        return str(exc)
    if classify_reply(reply) is not Verdict.SENT:
        return f"the relay {relay} answered {reply.describe()}"
    return None
