"""SMTP over TLS against a real server (aiosmtpd on loopback with a certificate from a test CA).

The relay's certificate is verified: STARTTLS and implicit TLS work when the CA is trusted
(here through SSL_CERT_FILE, as an operator with a private CA would do), and a certificate
from an unknown CA or for another host name stops the connection before anything is sent.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword
from smtp_server import PortZeroController

from newsletter.config import SmtpSettings
from newsletter.errors import DeliveryError
from newsletter.transport.smtp import send_bytes

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: Day 3\r\n\r\nHello.\r\n"


class _Recorder:
    def __init__(self) -> None:
        self.received: list[tuple[bool, bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001
        self.received.append((server.transport.get_extra_info("cipher") is not None, envelope.content))
        return "250 OK"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the test CA the only one this process trusts."""
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))


def _server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def _only(user: str, password: str):  # noqa: ANN202
    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            user.encode(), password.encode())
        return AuthResult(success=ok, handled=False)
    return authenticator


def _serve(recorder: _Recorder, context: ssl.SSLContext, *, implicit: bool, **auth) -> Iterator[int]:  # noqa: ANN003
    tls = {"ssl_context": context} if implicit else {"tls_context": context, "require_starttls": True}
    controller = PortZeroController(recorder, hostname="127.0.0.1", port=0, **tls, **auth)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
def test_mail_goes_over_a_verified_tls_connection(ca, trusted, implicit):
    recorder = _Recorder()
    for port in _serve(recorder, _server_context(ca, "127.0.0.1"), implicit=implicit):
        settings = SmtpSettings("127.0.0.1", port, "implicit" if implicit else "starttls", timeout=10)
        asyncio.run(send_bytes(settings, "a@example.org", ["b@example.org"], MESSAGE))
    assert recorder.received == [(True, MESSAGE)]


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
@pytest.mark.parametrize("problem", ["unknown CA", "other host name"])
def test_an_unverifiable_certificate_stops_before_anything_is_sent(ca, tmp_path, monkeypatch, implicit, problem):
    if problem == "unknown CA":
        other = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
        monkeypatch.setenv("SSL_CERT_FILE", str(other))
        names = ("127.0.0.1",)
    else:
        pem = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(pem))
        monkeypatch.setenv("SSL_CERT_FILE", str(pem))
        names = ("relay.example.org",)
    recorder = _Recorder()
    for port in _serve(recorder, _server_context(ca, *names), implicit=implicit):
        settings = SmtpSettings("127.0.0.1", port, "implicit" if implicit else "starttls", timeout=10)
        with pytest.raises(DeliveryError, match="certificate") as info:
            asyncio.run(send_bytes(settings, "a@example.org", ["b@example.org"], MESSAGE))
    assert recorder.received == []
    assert "cannot be verified" in str(info.value) and "is it running" not in str(info.value), info.value


@pytest.mark.parametrize("password, works", [("s3cret", True), ("wrong", False)])
def test_login_after_starttls(ca, trusted, password, works):
    """The relay refuses AUTH before TLS (aiosmtpd's default); we log in only once encrypted."""
    recorder = _Recorder()
    auth = dict(authenticator=_only("news", "s3cret"), auth_required=True)
    for port in _serve(recorder, _server_context(ca, "127.0.0.1"), implicit=False, **auth):
        settings = SmtpSettings("127.0.0.1", port, "starttls", username="news", password=password, timeout=10)
        if works:
            asyncio.run(send_bytes(settings, "a@example.org", ["b@example.org"], MESSAGE))
        else:
            with pytest.raises(DeliveryError, match="refused the login for 'news'"):
                asyncio.run(send_bytes(settings, "a@example.org", ["b@example.org"], MESSAGE))
    assert recorder.received == ([(True, MESSAGE)] if works else [])
