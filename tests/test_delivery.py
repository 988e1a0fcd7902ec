"""`SmtpConnection` against a real aiosmtpd server (which offers PIPELINING): MAIL, RCPT and
DATA go out together and their replies are read in order, so a refusal part-way through a
pipelined group is reported at the right stage and leaves the connection usable."""

from __future__ import annotations

import pytest

from newsletter.config import Config
from newsletter.transport.connection import Stage, open_smtp


@pytest.fixture(params=["pipelining", "one command at a time"])
def smtp_server(request, smtp_server):
    """The recording server, offering PIPELINING or not."""
    smtp_server.stop()
    smtp_server.pipelining = request.param == "pipelining"
    smtp_server.start()
    return smtp_server


MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\n.leading dot\r\nbody\r\n"


def settings(port: int):
    return Config(database_url="sqlite://", smtp_url=f"smtp://127.0.0.1:{port}?starttls=off&timeout=5",
                  secret_key="k" * 32).smtp


async def test_the_server_pipelines_and_the_message_arrives_intact(smtp_server):
    conn = await open_smtp(settings(smtp_server.port))
    assert conn.pipelining is smtp_server.pipelining
    reply = await conn.deliver("news@example.org", "b@example.org", MESSAGE, crlf=True)
    assert (reply.code, reply.stage) == (250, Stage.DATA)
    await conn.close()
    [received] = smtp_server.received
    assert received.data.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")  # dot-stuffing undone


async def test_550_at_rcpt_then_the_data_refusal_is_read_and_the_next_message_goes(smtp_server):
    smtp_server.fail_rcpt["gone@example.org"] = "550 5.1.1 No such user"
    conn = await open_smtp(settings(smtp_server.port))
    reply = await conn.deliver("news@example.org", "gone@example.org", MESSAGE, crlf=True)
    assert (reply.code, reply.stage) == (550, Stage.RCPT) and "No such user" in reply.text
    assert conn.usable
    reply = await conn.deliver("news@example.org", "b@example.org", MESSAGE, crlf=True)
    assert (reply.code, reply.stage) == (250, Stage.DATA)
    await conn.close()
    assert [r.rcpt_tos for r in smtp_server.received] == [["b@example.org"]]


async def test_5xx_at_mail_is_reported_at_mail_and_the_connection_stays_usable(smtp_server):
    smtp_server.fail_mail = ["550 5.7.1 Sender refused"]
    conn = await open_smtp(settings(smtp_server.port))
    reply = await conn.deliver("news@example.org", "b@example.org", MESSAGE, crlf=True)
    assert (reply.code, reply.stage) == (550, Stage.MAIL) and conn.usable
    assert (await conn.deliver("news@example.org", "b@example.org", MESSAGE, crlf=True)).code == 250
    await conn.close()
    assert len(smtp_server.received) == 1


async def test_421_mid_pipeline_ends_the_connection(smtp_server):
    smtp_server.fail_rcpt["b@example.org"] = ["421 4.7.0 Too busy, closing"]
    conn = await open_smtp(settings(smtp_server.port))
    reply = await conn.deliver("news@example.org", "b@example.org", MESSAGE, crlf=True)
    assert (reply.code, reply.stage) == (421, Stage.RCPT)
    assert not conn.usable
    await conn.close()
    assert not smtp_server.received


async def test_bare_line_ends_are_normalised_unless_vouched_for(smtp_server):
    conn = await open_smtp(settings(smtp_server.port))
    reply = await conn.deliver("news@example.org", "b@example.org", b"Subject: x\n\nline\rtwo\n")
    assert reply.code == 250
    await conn.close()
    assert smtp_server.received[0].data.endswith(b"line\r\ntwo\r\n")


async def test_connection_lost_mid_data_is_a_connection_reply(smtp_server):
    smtp_server.drop_in_data = 1
    conn = await open_smtp(settings(smtp_server.port))
    reply = await conn.deliver("news@example.org", "b@example.org", MESSAGE, crlf=True)
    assert reply.stage is Stage.CONNECTION and not conn.usable
    await conn.close()


async def test_an_address_that_could_inject_a_command_is_refused_locally(smtp_server):
    conn = await open_smtp(settings(smtp_server.port))
    reply = await conn.deliver("news@example.org", "b@example.org>\r\nRSET", MESSAGE, crlf=True)
    assert reply.code == 553 and conn.usable
    await conn.close()
    assert not smtp_server.rcpt_attempts


class Gate:
    def __init__(self):
        self.events = []

    def mail_began(self):
        self.events.append("began")

    async def wait_committed(self):
        self.events.append("committed?")


async def test_the_gate_hears_of_mail_from_before_the_data_goes(smtp_server):
    conn = await open_smtp(settings(smtp_server.port))
    gate = Gate()
    reply = await conn.deliver("news@example.org", "b@example.org", MESSAGE, crlf=True, gate=gate)
    assert reply.code == 250 and gate.events[:2] == ["began", "committed?"]
    await conn.close()
