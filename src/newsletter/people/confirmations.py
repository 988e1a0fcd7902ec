"""Confirmation mails, rendered once and built by the one message builder.

A busy public sign-up form cannot render and CSS-inline a mail per person (premailer alone
costs ~20 ms). `ConfirmationSender` renders the confirmation **once per (language, lists)**
with personalisation markers where the links go, and
keeps a `message.MailSkeleton` of kind CONFIRMATION for it. Per person it issues the two signed
links and renders the skeleton (~0.2 ms with the links); the installation's `Postmark` signs
the mail with DKIM and gives it its VERP return path, so a confirmation's bounce is read back
like a campaign's. The queue's drainer sends what `wire` gives.

A confirmation goes to an address nobody has vouched for yet, so it carries nothing the sign-up
typed: no name in the greeting, none in the `To:` display name (anyone may sign up a stranger's
address with a name of 200 characters holding a link or a right-to-left override). The name
is kept, and used once the person has confirmed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from email.utils import format_datetime, make_msgid
from functools import cached_property

from ..installation import Newsletter
from ..mail.compose import RenderedMail, render_confirmation
from ..mail.message import MailKind, MailSkeleton, Recipient, message_id_domain
from ..mail.personalise import Field, marker
from ..mail.postmark import Postmark
from ..tokens import Purpose
from .consent import ConfirmationDue

__all__ = ["ConfirmationSender"]

_Key = tuple[str, tuple[str, ...]]


class ConfirmationSender:
    """Confirmation mails for one installation (its config, clock, links and secret), each
    rendering cached per (language, list names)."""

    def __init__(self, newsletter: Newsletter):
        self.newsletter = newsletter
        self._templates: dict[_Key, RenderedMail] = {}
        self._skeletons: dict[_Key, MailSkeleton] = {}
        self._render_lock = threading.Lock()

    @cached_property
    def postmark(self) -> Postmark:
        """DKIM and VERP for these mails (the DKIM key and the secret read once)."""
        return Postmark.from_config(self.newsletter.config, self.newsletter.secret())

    def _template(self, due: ConfirmationDue, list_names: Sequence[str]) -> tuple[_Key, RenderedMail]:
        key = (due.language, tuple(list_names))
        template = self._templates.get(key)
        if template is None:
            with self._render_lock:
                template = self._templates.get(key) or render_confirmation(
                    self.newsletter.config, due.language, "",  # the unverified name is never mailed
                    confirm_url=marker(Field.CONFIRM_URL), block_url=marker(Field.BLOCK_URL),
                    list_names=list(list_names))
                self._templates[key] = template
        return key, template

    def _skeleton(self, due: ConfirmationDue, list_names: Sequence[str]) -> MailSkeleton:
        key, template = self._template(due, list_names)
        skeleton = self._skeletons.get(key)
        if skeleton is None:
            skeleton = MailSkeleton(self.newsletter.config, template, kind=MailKind.CONFIRMATION)
            self._skeletons[key] = skeleton
        return skeleton

    def _recipient(self, due: ConfirmationDue) -> Recipient:
        link = self.newsletter.link
        return Recipient(
            due.email, "", make_msgid(domain=message_id_domain(self.newsletter.config)),  # no unverified name
            confirm_url=link(Purpose.CONFIRM, due.subscriber_key, language=due.language),
            block_url=link(Purpose.BLOCK, due.subscriber_key, language=due.language),
        )

    def render(self, due: ConfirmationDue, list_names: Sequence[str]) -> RenderedMail:
        """The confirmation for `due` with its links filled in, from the cached rendering."""
        _key, template = self._template(due, list_names)
        recipient = self._recipient(due)
        subject, text, html = template.personalised({f: recipient.value(f) for f in Field})
        return RenderedMail(template.language, subject, text, html)

    def wire(self, due: ConfirmationDue, list_names: Sequence[str]) -> tuple[str, list[str], bytes]:
        """(envelope sender, recipients, bytes) of the confirmation for `due`: signed where DKIM
        is configured, with its VERP return path where bounce_address is.

        Raises UnsafeHeaderValue for an address that could inject a header.
        """
        data = self._skeleton(due, list_names).render(
            self._recipient(due), date=format_datetime(self.newsletter.clock()))
        postmark = self.postmark
        return (postmark.return_path(MailKind.CONFIRMATION, due.subscriber_key), [due.email],
                postmark.sign(data))
