"""A relay that does not answer in time: each wait for a reply has its own timeout, counted
from the start of that wait, against a real aiosmtpd server that answers the final dot late."""

from __future__ import annotations

import time

from newsletter.config import Config
from newsletter.transport.connection import SmtpConnection, Stage
from newsletter.transport.smtp import open_connection

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n"


async def connection(port: int, *, command_timeout: float, data_timeout: float) -> SmtpConnection:
    settings = Config(database_url="sqlite://", smtp_url=f"smtp://127.0.0.1:{port}?starttls=off&timeout=5",
                      secret_key="k" * 32).smtp
    return SmtpConnection(await open_connection(settings), command_timeout=command_timeout, data_timeout=data_timeout)


async def test_a_reply_that_does_not_come_in_time_drops_the_connection(smtp_server):
    """The commands may take 30 s, the final dot 0.3 s: the later deadline of the first wait
    does not keep the connection waiting longer for the second."""
    smtp_server.delay = 2.0
    conn = await connection(smtp_server.port, command_timeout=30, data_timeout=0.3)
    started = time.monotonic()
    reply = await conn.deliver("news@example.org", "b@example.org", MESSAGE, crlf=True)
    assert (reply.stage, reply.text) == (Stage.CONNECTION, "no reply in time")
    assert 0.25 < time.monotonic() - started < 1.5
    assert not conn.usable
    await conn.close()


async def test_each_wait_has_its_own_timeout_however_long_the_connection_lives(smtp_server):
    """Six messages whose final dot is answered after 0.3 s, with 1 s to wait for each: all
    arrive, though the connection lives far longer than one timeout (a margin of 0.7 s a wait:
    0.25 s of 0.5 failed on a loaded CI machine)."""
    smtp_server.delay = 0.3
    conn = await connection(smtp_server.port, command_timeout=1.0, data_timeout=1.0)
    for _ in range(6):
        reply = await conn.deliver("news@example.org", "b@example.org", MESSAGE, crlf=True)
        assert (reply.code, reply.stage) == (250, Stage.DATA)
    await conn.close()
    assert len(smtp_server.received) == 6

