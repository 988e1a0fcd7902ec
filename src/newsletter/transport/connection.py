"""One message over one reused SMTP connection, and what the relay's reply means.

`SmtpConnection.deliver(sender, recipient, data)` runs MAIL, RCPT and DATA and returns the
relay's answer as a `Reply` (data, never an exception: a refused recipient is an outcome);
`classify_reply` turns a reply into a `Verdict` by the rules of RFC 5321 and the sender:

    2xx after the final dot           SENT
    421 anywhere, or connection lost  DEFER + reconnect (the message was not accepted); a
                                      connection lost before the message's data went out is
                                      marked `reached=False`: the relay has none of it
    4xx (450, 451, 452, …)            DEFER (retried with backoff until the campaign expires)
    552 at RCPT                       DEFER (mailbox full is temporary, RFC 5321 §4.5.3.1.10)
    other 5xx at RCPT                 BOUNCE (failed, hard bounce: the address is suppressed)
    5xx at DATA or after the dot      FAIL (this message only)
    5xx at MAIL, 530/535 anywhere     RELAY (the relay refuses us: pause the campaign)

aiosmtplib opens the connection (TLS, EHLO, AUTH: `smtp.open_connection`); then this module
takes the transport over and speaks the mail transaction itself, because aiosmtplib has no
PIPELINING (RFC 2920): when the relay offers it, MAIL, RCPT and DATA go out in one write and
their three replies are read in order — one round trip instead of three, and the first failing
reply is the one that counts (a 550 at RCPT is followed by the relay's 503/554 to DATA, which
only says there was no recipient). Relays without PIPELINING get one command at a time.

Timeouts follow RFC 5321 §4.5.3.2: 5 minutes for MAIL and RCPT, and 10 minutes for the reply
to the final dot — a shorter one there makes duplicates, since the relay may be delivering.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections import deque
from typing import NamedTuple, Protocol

import aiosmtplib

from ..config import SmtpSettings
from .smtp import open_connection

__all__ = [
    "COMMAND_TIMEOUT",
    "DATA_TIMEOUT",
    "Reply",
    "SmtpConnection",
    "Stage",
    "Verdict",
    "classify_reply",
    "open_smtp",
]

COMMAND_TIMEOUT = 300.0
DATA_TIMEOUT = 600.0
_AUTH_CODES = frozenset({530, 534, 535, 538})
#: A reply longer than this (bytes) is not SMTP; the connection is dropped.
_MAX_REPLY = 64 * 1024
#: What an address may not carry into a command line (CR/LF would inject a command).
_UNSAFE_ADDRESS = re.compile(r"[\x00-\x20\x7f<>]")
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


class Stage(str, enum.Enum):
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    CONNECTION = "connection"


#: The commands of a pipelined group, in the order their replies come.
_PIPELINED = (Stage.MAIL, Stage.RCPT, Stage.DATA)


class Reply(NamedTuple):
    """The relay's answer to one message. `reached` is False only for a connection lost before
    any of the message's data was written: the relay has nothing of it (a sender may try it
    again at once on a new connection, counting no attempt)."""

    code: int
    text: str
    stage: Stage
    reached: bool = True

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


class Stuffed(Protocol):
    """A message already as DATA carries it (`mail.message.SmtpData`): CRLF line ends,
    dot-stuffed, ended by the line "."; `eight_bit` when a byte is not ASCII."""

    data: bytes
    eight_bit: bool


def _as_data(message: bytes, crlf: bool) -> bytes:
    """`message` as DATA carries it: CRLF line ends (unless `crlf` vouches for them),
    dot-stuffed (RFC 5321 §4.5.2) and ended by the line "."."""
    if not crlf:
        message = _LINE_ENDS.sub(b"\r\n", message)
    payload = message.replace(b"\r\n.", b"\r\n..")
    if payload.startswith(b"."):
        payload = b"." + payload
    return payload + (b".\r\n" if payload.endswith(b"\r\n") else b"\r\n.\r\n")


class Gate(Protocol):
    """What `deliver` tells and waits for around a message (see `send.Sender`)."""

    def mail_began(self) -> None: ...

    async def wait_committed(self) -> None: ...


class _Lost(Exception):
    """The connection is gone (closed, reset, timed out, or spoke something that is not SMTP)."""


class _ReplyReader(asyncio.Protocol):
    """The protocol on a taken-over transport: parses every complete reply as it arrives and
    queues it, so several replies may be outstanding at once (pipelining).

    A wait for replies has a deadline, kept by one timer that is not made and cancelled for
    every wait (two a message): it fires at the earliest deadline it was set for, and then
    either times the current wait out or is set again for that wait's own deadline."""

    def __init__(self, transport: asyncio.Transport):
        self.transport = transport
        self.buffer = bytearray()
        self.lines: list[bytes] = []
        self.replies: deque[tuple[int, str]] = deque()
        self.waiter: asyncio.Future | None = None
        #: How many queued replies wake the waiter (`read_replies` waits for several at once).
        self.wanted = 1
        self.lost: str | None = None
        #: The loop time by which the awaited replies must have come (None: nothing awaited).
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self.buffer:  # the start of a line came before
            self.buffer += data
            data = bytes(self.buffer)
            self.buffer.clear()
        start = 0
        replies = self.replies
        while (end := data.find(b"\n", start)) >= 0:
            if data[start + 3:start + 4] == b" " and not self.lines and data[start:start + 3].isdigit():
                # A one-line reply (nearly every reply): read without the general path's list.
                replies.append((int(data[start:start + 3]),
                                data[start + 4:end + 1].strip().decode("utf-8", "surrogateescape")))
                start = end + 1
                continue
            line = data[start:end + 1]
            start = end + 1
            if not line[:3].isdigit():
                self._fail(f"the relay sent something that is not an SMTP reply: {line[:80]!r}")
                return
            self.lines.append(line)
            if line[3:4] != b"-":
                text = "\n".join(each[4:].strip().decode("utf-8", "surrogateescape") for each in self.lines)
                replies.append((int(line[:3]), text))
                self.lines = []
        if start < len(data):
            self.buffer += data[start:]
            if len(self.buffer) + sum(map(len, self.lines)) > _MAX_REPLY:
                self._fail("the relay's reply is too long")
                return
        elif self.lines and sum(map(len, self.lines)) > _MAX_REPLY:
            self._fail("the relay's reply is too long")
            return
        if len(replies) >= self.wanted:
            self._wake()

    def _fail(self, why: str) -> None:
        self.lost = self.lost or why
        self.transport.close()
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def eof_received(self) -> bool:
        self.lost = self.lost or "the relay closed the connection"
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.lost or (f"{type(exc).__name__}: {exc}" if exc else "the relay closed the connection")
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()

    def _check_deadline(self) -> None:
        """The timer fired: time out the current wait if its deadline has passed, else wait on."""
        self._timer = None
        if self._deadline is None:  # nothing awaited: the next wait sets a timer again
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self._deadline:
            self._fail("no reply in time")
        else:
            self._timer = loop.call_at(self._deadline, self._check_deadline)

    async def read(self, timeout: float) -> tuple[int, str]:
        """The next reply (code, text); raises _Lost."""
        if not self.replies:
            await self._wait_for(1, timeout)
            if not self.replies:
                raise _Lost(self.lost or "the relay closed the connection")
        return self.replies.popleft()

    async def read_replies(self, count: int, timeout: float) -> list[tuple[int, str]]:
        """The next `count` replies (to a pipelined group), in the order they came; fewer when
        the connection was lost first (`lost` says why). Each reply may take `timeout`, as if
        read one by one, but replies that arrive together (the usual case) wake the caller once."""
        replies = self.replies
        while len(replies) < count and not self.lost:
            await self._wait_for(len(replies) + 1 if replies else count, timeout)
        return [replies.popleft() for _ in range(min(count, len(replies)))]

    async def _wait_for(self, count: int, timeout: float) -> None:
        """Until `count` replies are queued, the connection is lost or `timeout` has passed (then
        the connection is closed: a relay that does not answer is not waited for again)."""
        if self.lost:
            return
        loop = asyncio.get_running_loop()
        self.wanted = count
        self.waiter = loop.create_future()
        self._deadline = deadline = loop.time() + timeout
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = loop.call_at(deadline, self._check_deadline)
        try:
            await self.waiter
        finally:
            self._deadline = None
            self.waiter = None
            self.wanted = 1

    def write(self, data: bytes) -> None:
        if self.lost or self.transport.is_closing():
            raise _Lost(self.lost or "the connection is closed")
        self.transport.write(data)


class SmtpConnection:
    """An open, authenticated relay connection used for many messages in turn.

    Built from an aiosmtplib client just after connect/TLS/EHLO/AUTH; the client is not used
    again (its transport now belongs to this object). `relay` names the relay it goes to (the
    `[relays.NAME]`, or host:port), for the ledger.
    """

    relay: str | None = None

    def __init__(self, client: aiosmtplib.SMTP, *, command_timeout: float = COMMAND_TIMEOUT,
                 data_timeout: float = DATA_TIMEOUT):
        self.command_timeout = command_timeout
        self.data_timeout = data_timeout
        self.pipelining = client.supports_extension("pipelining")
        self.smtputf8 = client.supports_extension("smtputf8")
        self.eight_bit_mime = client.supports_extension("8bitmime")
        transport = client.protocol.transport if client.protocol else None
        if transport is None or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("the connection closed before it could be used")
        self._reader = _ReplyReader(transport)
        transport.set_protocol(self._reader)

    @property
    def usable(self) -> bool:
        """False once the connection is lost or closed: open another."""
        return self._reader.lost is None and not self._reader.transport.is_closing()

    async def _reset(self) -> None:
        """End a failed transaction (RSET) so the next MAIL is not refused as nested."""
        try:
            self._reader.write(b"RSET\r\n")
            await self._reader.read(self.command_timeout)
        except _Lost:
            pass

    async def deliver(self, sender: str, recipient: str, data: bytes | Stuffed, *, crlf: bool = False,
                      gate: Gate | None = None) -> Reply:
        """Send one message to one recipient; the relay's answer, or a CONNECTION reply.

        `data` is the message as it goes on the wire (bytes), or already as DATA carries it
        (`Stuffed`, as `MailSkeleton.render_for_smtp` makes it: nothing is scanned or copied
        here); `crlf=True` vouches that the bytes' line ends are all CRLF (as
        `MailSkeleton.render` guarantees), which saves normalising them. A `gate`
        is told when MAIL FROM has been written (or the attempt ended), and is waited
        for before the message's data goes out; if waiting raises, the message is abandoned
        (the connection is closed, so the relay discards it) and a CONNECTION reply returned.
        """
        try:
            return await self._deliver(sender, recipient, data, crlf, gate)
        finally:
            if gate is not None:
                gate.mail_began()

    async def _deliver(self, sender: str, recipient: str, data: bytes | Stuffed, crlf: bool,
                       gate: Gate | None) -> Reply:
        if _UNSAFE_ADDRESS.search(sender) or _UNSAFE_ADDRESS.search(recipient):
            return Reply(553, "the address contains characters an SMTP command cannot carry", Stage.DATA)
        utf8 = not (sender.isascii() and recipient.isascii())
        if utf8 and not self.smtputf8:
            return Reply(553, "the address is not ASCII and the relay does not offer SMTPUTF8", Stage.DATA)
        # 8-bit bodies are declared (RFC 6152); `smtp.open_connection` refused a relay without
        # 8BITMIME when the configuration sends them.
        if isinstance(data, bytes):
            eight_bit = self.eight_bit_mime and not data.isascii()
        else:
            eight_bit = self.eight_bit_mime and data.eight_bit
        reader = self._reader
        options = (" BODY=8BITMIME" if eight_bit else "") + (" SMTPUTF8" if utf8 else "")
        mail = f"MAIL FROM:<{sender}>{options}\r\n".encode()
        rcpt = f"RCPT TO:<{recipient}>\r\n".encode()
        data_written = False
        try:
            if self.pipelining:
                failure = await self._pipelined(mail, rcpt, gate)
            else:
                failure = await self._one_by_one(mail, rcpt, gate)
            if failure is not None:
                return failure
            if gate is not None:
                try:
                    await gate.wait_committed()
                except Exception as exc:  # noqa: BLE001 — whatever failed the round, the message is abandoned
                    reader.transport.close()
                    return Reply(0, f"not sent: {exc}", Stage.CONNECTION)
            payload = _as_data(data, crlf) if isinstance(data, bytes) else data.data
            data_written = True
            reader.write(payload)
            code, text = await reader.read(self.data_timeout)
            if code == 421:
                reader.transport.close()
            return Reply(code, text, Stage.DATA)
        except _Lost as exc:
            reader.transport.close()
            return Reply(0, str(exc), Stage.CONNECTION, reached=data_written)

    async def _pipelined(self, mail: bytes, rcpt: bytes, gate: Gate | None) -> Reply | None:
        """MAIL, RCPT and DATA in one write, their three replies read together: None once DATA
        is answered 354, else the reply that counts (the first failing one; the transaction
        reset, or the connection closed after a 421). Raises _Lost."""
        reader = self._reader
        reader.write(mail + rcpt + b"DATA\r\n")
        if gate is not None:
            gate.mail_began()  # MAIL FROM is on its way: the message has begun
        replies = await reader.read_replies(3, self.command_timeout)
        failure: Reply | None = None
        for stage, (code, text) in zip(_PIPELINED, replies):
            if code == 421:  # the relay is closing: what failed first still counts
                reader.transport.close()
                return failure or Reply(code, text, stage)
            if failure is None and not (code == 354 if stage is Stage.DATA else 200 <= code < 300):
                failure = Reply(code, text, stage)
            elif failure is not None and stage is Stage.DATA and code == 354:
                # DATA accepted although nothing else was: end the empty message at once.
                reader.write(b".\r\n")
                await reader.read(self.data_timeout)
        if len(replies) < len(_PIPELINED):
            raise _Lost(reader.lost or "the relay closed the connection")
        if failure is not None:
            await self._reset()
        return failure

    async def _one_by_one(self, mail: bytes, rcpt: bytes, gate: Gate | None) -> Reply | None:
        """MAIL, RCPT and DATA one at a time (a relay without PIPELINING): as `_pipelined`."""
        reader = self._reader
        for stage, command in ((Stage.MAIL, mail), (Stage.RCPT, rcpt), (Stage.DATA, b"DATA\r\n")):
            reader.write(command)
            if gate is not None and stage is Stage.MAIL:
                gate.mail_began()
            code, text = await reader.read(self.command_timeout)
            if code == 421:
                reader.transport.close()
                return Reply(code, text, stage)
            if not (code == 354 if stage is Stage.DATA else 200 <= code < 300):
                await self._reset()
                return Reply(code, text, stage)
        return None

    async def close(self) -> None:
        """QUIT (briefly waiting for the answer) and close."""
        reader = self._reader
        if self.usable:
            try:
                reader.write(b"QUIT\r\n")
                await reader.read(10)
            except _Lost:
                pass
        reader.transport.close()


async def open_smtp(settings: SmtpSettings) -> SmtpConnection:
    """A connection to the configured relay; raises DeliveryError (see `smtp.open_connection`)."""
    connection = SmtpConnection(await open_connection(settings))
    connection.relay = f"{settings.host}:{settings.port}"
    return connection
