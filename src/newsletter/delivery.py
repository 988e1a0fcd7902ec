"""One message over one reused SMTP connection, and what the relay's reply means.

`SmtpConnection.deliver(sender, recipient, data)` runs MAIL, RCPT and DATA and returns the
relay's answer as a `Reply` (data, never an exception: a refused recipient is an outcome);
`classify_reply` turns a reply into a `Verdict` by the rules of RFC 5321 and the sender:

    2xx after the final dot           SENT
    421 anywhere, or connection lost  DEFER + reconnect (the message was not accepted)
    4xx (450, 451, 452, …)            DEFER (retried with backoff until the campaign expires)
    552 at RCPT                       DEFER (mailbox full is temporary, RFC 5321 §4.5.3.1.10)
    other 5xx at RCPT                 BOUNCE (failed, hard bounce: the address is suppressed)
    5xx at DATA or after the dot      FAIL (this message only)
    5xx at MAIL, 530/535 anywhere     RELAY (the relay refuses us: pause the campaign)

Timeouts follow RFC 5321 §4.5.3.2: 5 minutes for MAIL and RCPT, and 10 minutes for the reply
to the final dot — a shorter one there makes duplicates, since the relay may be delivering.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import aiosmtplib

from .config import SmtpSettings
from .smtp import open_connection

__all__ = ["Stage", "Reply", "Verdict", "classify_reply", "SmtpConnection", "open_smtp",
           "COMMAND_TIMEOUT", "DATA_TIMEOUT"]

COMMAND_TIMEOUT = 300.0
DATA_TIMEOUT = 600.0
_AUTH_CODES = frozenset({530, 534, 535, 538})


class Stage(str, enum.Enum):
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    CONNECTION = "connection"


class Reply(NamedTuple):
    code: int
    text: str
    stage: Stage

    def describe(self) -> str:
        if self.stage is Stage.CONNECTION:
            return f"connection lost: {self.text}"
        return f"{self.code} {self.text} (at {self.stage.value})".strip()


class Verdict(str, enum.Enum):
    SENT = "sent"
    DEFER = "defer"
    DEFER_RECONNECT = "defer_reconnect"
    BOUNCE = "bounce"
    FAIL = "fail"
    RELAY = "relay"


def classify_reply(reply: Reply) -> Verdict:
    """What a reply means for the message and the connection (see the module docstring)."""
    code = reply.code
    if reply.stage is Stage.CONNECTION or code == 421:
        return Verdict.DEFER_RECONNECT
    if 200 <= code < 300:
        return Verdict.SENT if reply.stage is Stage.DATA else Verdict.DEFER
    if code in _AUTH_CODES:
        return Verdict.RELAY
    if 400 <= code < 500:
        return Verdict.DEFER
    if reply.stage is Stage.MAIL:
        return Verdict.RELAY
    if reply.stage is Stage.RCPT:
        return Verdict.DEFER if code == 552 else Verdict.BOUNCE
    return Verdict.FAIL


class SmtpConnection:
    """An open, authenticated aiosmtplib client used for many messages in turn."""

    def __init__(self, client: aiosmtplib.SMTP, *, command_timeout: float = COMMAND_TIMEOUT,
                 data_timeout: float = DATA_TIMEOUT):
        self.client = client
        self.command_timeout = command_timeout
        self.data_timeout = data_timeout

    async def _reset(self) -> None:
        try:
            await self.client.rset(timeout=self.command_timeout)
        except (aiosmtplib.SMTPException, OSError):
            self.client.close()

    async def _data(self, data: bytes) -> aiosmtplib.SMTPResponse:
        """DATA with the message, dot-stuffed here with bytes.replace instead of aiosmtplib's two
        regular-expression passes (which cost more than building the message). Our messages have
        CRLF line ends only; anything else goes through aiosmtplib's own normalising path."""
        protocol = self.client.protocol
        lock = getattr(protocol, "_command_lock", None)
        if (lock is None or not hasattr(protocol, "read_response")
                or data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n")):
            return await self.client.data(data, timeout=self.data_timeout)
        payload = (b"." if data.startswith(b".") else b"") + data.replace(b"\r\n.", b"\r\n..")
        payload += (b"" if payload.endswith(b"\r\n") else b"\r\n") + b".\r\n"
        try:
            async with lock:
                protocol._response_pending = True
                protocol.write(b"DATA\r\n")
                start = await protocol.read_response(timeout=self.command_timeout)
                if start.code != 354:
                    raise aiosmtplib.SMTPDataError(start.code, start.message)
                protocol._response_pending = True
                protocol.write(payload)
                response = await protocol.read_response(timeout=self.data_timeout)
                if response.code != 250:
                    raise aiosmtplib.SMTPDataError(response.code, response.message)
                return response
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            self.client.close()
            raise

    async def deliver(self, sender: str, recipient: str, data: bytes) -> Reply:
        """Send one message to one recipient; the relay's answer, or a CONNECTION reply."""
        client = self.client
        stage = Stage.MAIL
        try:
            options = ["SMTPUTF8"] if not (sender + recipient).isascii() else None
            await client.mail(sender, options=options, encoding="utf-8" if options else "ascii",
                              timeout=self.command_timeout)
            stage = Stage.RCPT
            await client.rcpt(recipient, encoding="utf-8" if options else "ascii", timeout=self.command_timeout)
            stage = Stage.DATA
            response = await self._data(data)
            return Reply(response.code, response.message, Stage.DATA)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code != 421:
                await self._reset()
            return Reply(exc.code, exc.message, stage)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            self.client.close()
            return Reply(0, str(exc) or type(exc).__name__, Stage.CONNECTION)
        except aiosmtplib.SMTPException as exc:  # e.g. SMTPUTF8 not supported
            return Reply(550, str(exc), stage)

    async def close(self) -> None:
        try:
            await self.client.quit(timeout=10)
        except (aiosmtplib.SMTPException, OSError):
            self.client.close()


async def open_smtp(settings: SmtpSettings) -> SmtpConnection:
    """A connection to the configured relay; raises DeliveryError (see `smtp.open_connection`)."""
    return SmtpConnection(await open_connection(settings))
