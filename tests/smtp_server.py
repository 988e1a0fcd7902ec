"""A real SMTP server for tests (aiosmtpd on loopback) that records messages and injects faults.

`RecordingSMTP.fail_rcpt[address] = "550 5.1.1 No such user"` refuses that recipient at RCPT;
`fail_mail = "550 …"` refuses every MAIL FROM (a list: the next ones, once each);
`fail_data[address] = "552 …"` refuses after DATA; `next_replies` is a list of replies given
to the next DATA commands in order ("drop" closes the connection without a reply, after the
final dot). A `fail_rcpt` or `fail_data` value may also be a list of replies used once each, in
order (then the address is accepted). `drop_in_data` closes the connection in the middle of the
next that many messages' data. `delay` slows the reply to the final dot. A login is required
when `auth` is set to {user: password}. `rcpt_attempts` counts RCPT commands per address;
`begun[address]` lists when (time.time()) the server received the MAIL FROM of each
transaction that named the address at RCPT; `auth_attempts` counts the logins tried. `drop_at_mail`
closes the connection at the next that many MAIL FROMs, without a reply. `idle_timeout`
(seconds) closes a connection that has said nothing for that long, as Postfix's
`smtpd_timeout` does. `most_at_once[domain]` is the most transactions with recipients of
that domain the server held at once (counted from DATA to the reply to the final dot, so that
with `delay` they overlap as they would at a slow relay). The server offers PIPELINING (RFC 2920) unless
`pipelining` is False; aiosmtpd reads commands line by line, so it can take them pipelined,
but does not advertise it itself.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword, syntax


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str] = field(default_factory=list)

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


def _scripted(faults: dict, address: str) -> str | None:
    reply = faults.get(address)
    if isinstance(reply, list):
        return reply.pop(0) if reply else None
    return reply


class _FaultySMTP(SMTP):
    """aiosmtpd's server, able to drop the connection in the middle of a message's data."""

    def __init__(self, owner: "RecordingSMTP", *args, **kwargs):  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.owner = owner

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        with self.owner.lock:
            drop = self.owner.drop_in_data > 0 and bool(self.envelope and self.envelope.rcpt_tos)
            if drop:
                self.owner.drop_in_data -= 1
        if not drop:
            return await super().smtp_DATA(arg)
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        await self._reader.readuntil(b"\r\n")  # the first line of the message, then gone
        self.transport.close()


class PortZeroController(Controller):
    """aiosmtpd's controller, able to listen on port 0 (the kernel's choice, so that parallel test
    workers are never handed the same port): `port` is the real one once it listens."""

    async def _create_server(self):
        server = await super()._create_server()
        self.port = server.sockets[0].getsockname()[1]
        return server


class _Controller(PortZeroController):
    def __init__(self, owner: "RecordingSMTP", *args, **kwargs):  # noqa: ANN002, ANN003
        self.owner = owner
        super().__init__(*args, **kwargs)

    def factory(self):  # noqa: ANN201
        return _FaultySMTP(self.owner, self.handler, **self.SMTP_kwargs)


class _Handler:
    def __init__(self, owner: "RecordingSMTP"):
        self.owner = owner

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802, ANN001
        session.host_name = hostname
        if not self.owner.eight_bit_mime:
            responses[:] = [r for r in responses if r[4:].upper() != "8BITMIME"]
        if self.owner.pipelining:
            responses.insert(len(responses) - 1 if responses[-1].startswith("250 ") else len(responses),
                             "250-PIPELINING")
        if not responses[-1].startswith("250 "):
            responses.append("250 HELP")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802, ANN001
        envelope.mail_at = time.time()
        with self.owner.lock:
            drop = self.owner.drop_at_mail > 0
            if drop:
                self.owner.drop_at_mail -= 1
            fail = self.owner.fail_mail
            reply = (fail.pop(0) if fail else None) if isinstance(fail, list) else fail
        if drop:
            server.transport.close()
            return "421 closing"  # never reaches the client
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802, ANN001
        with self.owner.lock:
            self.owner.rcpt_attempts[address.lower()] = self.owner.rcpt_attempts.get(address.lower(), 0) + 1
            self.owner.begun.setdefault(address.lower(), []).append(envelope.mail_at)
            reply = _scripted(self.owner.fail_rcpt, address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001
        domains = {rcpt.rpartition("@")[2].lower() for rcpt in envelope.rcpt_tos}
        with self.owner.lock:
            for domain in domains:
                now = self.owner.at_once[domain] = self.owner.at_once.get(domain, 0) + 1
                self.owner.most_at_once[domain] = max(self.owner.most_at_once.get(domain, 0), now)
        try:
            return await self._data(server, envelope)
        finally:
            with self.owner.lock:
                for domain in domains:
                    self.owner.at_once[domain] -= 1

    async def _data(self, server, envelope):
        owner = self.owner
        if owner.delay:
            await asyncio.sleep(owner.delay)
        with owner.lock:
            scripted = owner.next_replies.pop(0) if owner.next_replies else None
        if scripted == "drop":
            server.transport.close()
            return "421 closing"  # never reaches the client
        if scripted:
            return scripted
        for rcpt in envelope.rcpt_tos:
            with owner.lock:
                reply = _scripted(owner.fail_data, rcpt.lower())
            if reply:
                return reply
        with owner.lock:
            owner.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                           envelope.original_content or envelope.content,
                                           list(envelope.mail_options)))
        return "250 2.0.0 OK queued"


@dataclass
class RecordingSMTP:
    port: int = 0  # 0: a port the kernel chooses at the first start (kept for a restart)
    host: str = "127.0.0.1"
    received: list[Received] = field(default_factory=list)
    fail_rcpt: dict[str, str] = field(default_factory=dict)
    fail_data: dict[str, str] = field(default_factory=dict)
    next_replies: list[str] = field(default_factory=list)
    drop_in_data: int = 0
    drop_at_mail: int = 0
    rcpt_attempts: dict[str, int] = field(default_factory=dict)
    begun: dict[str, list[float]] = field(default_factory=dict)
    at_once: dict[str, int] = field(default_factory=dict)
    most_at_once: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0
    pipelining: bool = True
    eight_bit_mime: bool = True
    fail_mail: str | list[str] | None = None
    auth: dict[str, str] | None = None
    auth_attempts: int = 0
    idle_timeout: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _authenticator(self, server, session, envelope, mechanism, auth_data):  # noqa: ANN001
        if not isinstance(auth_data, LoginPassword) or self.auth is None:
            return AuthResult(success=False, handled=False)
        with self.lock:
            self.auth_attempts += 1
        ok = self.auth.get(auth_data.login.decode()) == auth_data.password.decode()
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        kwargs = {}
        if self.auth is not None:
            kwargs = dict(authenticator=self._authenticator, auth_required=True, auth_require_tls=False)
        if self.idle_timeout is not None:
            kwargs["timeout"] = self.idle_timeout
        self.controller = _Controller(self, _Handler(self), hostname=self.host, port=self.port, decode_data=False,
                                      **kwargs)
        self.controller.start()
        self.port = self.controller.port

    def stop(self) -> None:
        self.controller.stop()

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.received]

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.received if address.lower() in (a.lower() for a in r.rcpt_tos)]
