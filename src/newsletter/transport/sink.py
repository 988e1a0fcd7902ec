"""A local SMTP catcher: accepts every message on loopback and stores it in a Maildir.

It lets the whole product run on one machine with no mail server: point `smtp_url` at it
(`smtp://127.0.0.1:8025?starttls=off`, the default) and read what would have been sent.
"""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path
from typing import NamedTuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

__all__ = ["CaughtMessage", "MaildirHandler", "Sink"]


class CaughtMessage(NamedTuple):
    key: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    size: int


class MaildirHandler:
    """aiosmtpd handler that stores each message in a Maildir and reports it to a callback."""

    def __init__(self, maildir: Path, on_message: Callable[[CaughtMessage], None] | None = None):
        self.maildir = mailbox.Maildir(str(maildir), create=True)
        self.on_message = on_message

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:  # noqa: ANN001, N802
        data = envelope.original_content or envelope.content
        raw = data if isinstance(data, bytes) else data.encode("utf-8")
        header = b"Return-Path: <" + (envelope.mail_from or "").encode() + b">\r\n"
        header += b"X-Original-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n"
        key = self.maildir.add(header + raw)
        if self.on_message:
            parsed = message_from_bytes(raw, policy=policy.default)
            self.on_message(CaughtMessage(key, envelope.mail_from, tuple(envelope.rcpt_tos),
                                          str(parsed.get("Subject", "")), len(raw)))
        return "250 2.0.0 Message accepted for delivery"


class Sink:
    """The catcher as a context manager: `with Sink(folder, port=0) as sink: sink.port`."""

    def __init__(self, maildir: Path, *, host: str = "127.0.0.1", port: int = 8025,
                 on_message: Callable[[CaughtMessage], None] | None = None):
        self.handler = MaildirHandler(Path(maildir), on_message)
        self.controller = Controller(self.handler, hostname=host, port=port, decode_data=False,
                                     data_size_limit=50 * 1024 * 1024)
        self.host = host

    @property
    def port(self) -> int:
        return self.controller.server.sockets[0].getsockname()[1]

    def start(self) -> "Sink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> "Sink":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
