"""Sending confirmation mails quickly, for a busy public sign-up form.

`Newsletter.send_confirmation` renders and CSS-inlines each mail and opens a connection for
it: right for the CLI, too slow for a form taking hundreds of sign-ups a second (premailer
alone costs ~20 ms a mail). `ConfirmationSender` renders the confirmation **once per
(language, lists, with or without a name)** with markers where the person's name and links
go, fills the markers per person (HTML-escaped in the HTML part), and delivers over a small
pool of reused SMTP connections. The mail is the same as `render_confirmation` makes.
"""

from __future__ import annotations

import asyncio
import html
import threading
from collections.abc import Sequence
from email.message import EmailMessage

import aiosmtplib

from .compose import RenderedMail, render_confirmation
from .consent import ConfirmationDue
from .errors import DeliveryError
from .message import build_transactional
from .service import Newsletter
from .smtp import open_connection, wire_form
from .tokens import Purpose

__all__ = ["ConfirmationSender"]

_NAME = "NLMARK0NAME0NLMARK"
_CONFIRM = "NLMARK0CONFIRM0NLMARK"
_BLOCK = "NLMARK0BLOCK0NLMARK"


class ConfirmationSender:
    """Render-once confirmation mails over pooled SMTP connections (at most `connections`)."""

    def __init__(self, newsletter: Newsletter, *, connections: int = 4):
        self.newsletter = newsletter
        self.connections = connections
        self._templates: dict[tuple[str, bool, tuple[str, ...]], RenderedMail] = {}
        self._render_lock = threading.Lock()
        self._idle: list[aiosmtplib.SMTP] = []
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._available: asyncio.Condition | None = None

    # -- rendering ------------------------------------------------------------------------------

    def render(self, due: ConfirmationDue, list_names: Sequence[str]) -> RenderedMail:
        """The confirmation for `due`, from the cached rendering of its language and lists."""
        key = (due.language, bool(due.name), tuple(list_names))
        template = self._templates.get(key)
        if template is None:
            with self._render_lock:
                template = self._templates.get(key) or render_confirmation(
                    self.newsletter.config, due.language, _NAME if due.name else "",
                    confirm_url=_CONFIRM, block_url=_BLOCK, list_names=list(list_names))
                self._templates[key] = template
        values = {
            _NAME: due.name,
            _CONFIRM: self.newsletter.link(Purpose.CONFIRM, due.subscriber_key, language=due.language),
            _BLOCK: self.newsletter.link(Purpose.BLOCK, due.subscriber_key, language=due.language),
        }
        return RenderedMail(
            template.language,
            _fill(template.subject, values, escape=False),
            _fill(template.text, values, escape=False),
            _fill(template.html, values, escape=True),
        )

    def message(self, due: ConfirmationDue, list_names: Sequence[str]) -> EmailMessage:
        mail = self.render(due, list_names)
        return build_transactional(self.newsletter.config, mail, due.email, due.name, now=self.newsletter.clock())

    # -- delivery ---------------------------------------------------------------------------------

    async def send(self, due: ConfirmationDue, list_names: Sequence[str]) -> None:
        """Deliver the confirmation for `due`. Raises DeliveryError (the connection is dropped then)."""
        message = self.message(due, list_names)
        client = await self._acquire()
        healthy = False
        try:
            try:
                errors, _reply = await client.sendmail(*wire_form(message))
            except aiosmtplib.SMTPServerDisconnected:
                # The relay closed an idle connection: once more on a fresh one.
                client.close()
                client = await open_connection(self.newsletter.config.smtp)
                errors, _reply = await client.sendmail(*wire_form(message))
            if errors:
                detail = "; ".join(f"{rcpt}: {resp.code} {resp.message}" for rcpt, resp in errors.items())
                raise DeliveryError(f"the relay refused: {detail}")
            healthy = True
        except DeliveryError:
            raise
        except aiosmtplib.SMTPRecipientsRefused as exc:
            detail = "; ".join(f"{e.recipient}: {e.code} {e.message}" for e in exc.recipients)
            raise DeliveryError(f"the relay refused the recipient: {detail}") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"the relay answered {exc.code} {exc.message.strip()}", code=exc.code) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"the relay dropped the connection: {exc}") from None
        finally:
            await self._release(client, healthy)

    async def _acquire(self) -> aiosmtplib.SMTP:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # connections belong to the loop that opened them
            self._loop, self._available, self._idle, self._open = loop, asyncio.Condition(), [], 0
        assert self._available is not None
        async with self._available:
            while not self._idle and self._open >= self.connections:
                await self._available.wait()
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return await open_connection(self.newsletter.config.smtp)
        except BaseException:
            async with self._available:
                self._open -= 1
                self._available.notify()
            raise

    async def _release(self, client: aiosmtplib.SMTP, healthy: bool) -> None:
        assert self._available is not None
        async with self._available:
            if healthy and client.is_connected:
                self._idle.append(client)
            else:
                client.close()
                self._open -= 1
            self._available.notify()

    async def close(self) -> None:
        """Say goodbye on every idle connection."""
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
        self._open -= len(idle)


def _fill(text: str, values: dict[str, str], *, escape: bool) -> str:
    for mark, value in values.items():
        if mark in text:
            text = text.replace(mark, html.escape(value, quote=True) if escape else value)
    return text
