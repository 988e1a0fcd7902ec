"""The pre-flight report. DNS answers come from an injected lookup: no real DNS is queried."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import free_port, listening_socket
from smtp_server import RecordingSMTP

from newsletter.cli import main
from newsletter.config import Config
from newsletter.errors import InvalidToken
from newsletter.mail.dkim import generate_key
from newsletter.sending.preflight import (
    DnsUnavailable,
    Status,
    check_dkim,
    check_dmarc,
    check_dns,
    check_lint,
    check_one_click,
    check_relay,
    check_spf,
    dns_lookup,
)
from newsletter.tokens import Purpose, read_token


def fake_dns(records: dict[str, list[str]]):
    asked = []

    def lookup(name: str) -> list[str]:
        asked.append(name)
        return records.get(name, [])

    lookup.asked = asked  # type: ignore[attr-defined]
    return lookup


def unreachable(name: str) -> list[str]:
    raise DnsUnavailable("no answer from 127.0.0.1")


@pytest.fixture
def signed_config(config: Config, tmp_path: Path) -> tuple[Config, str]:
    key = generate_key("news2026", "example.org", tmp_path / "dkim")
    return config.with_changes(from_address="news@news.example.org", bounce_address="bounces@news.example.org",
                               dkim_selector="news2026", dkim_domain="example.org",
                               dkim_key_file=str(key.private_key_path)), key.dns_value


def test_all_records_right(signed_config) -> None:
    config, dkim_value = signed_config
    lookup = fake_dns({
        "news.example.org": ["v=spf1 ip4:203.0.113.40 include:_spf.example.org -all", "google-site-verification=x"],
        "news2026._domainkey.example.org": [dkim_value],
        "_dmarc.example.org": ["v=DMARC1; p=quarantine; rua=mailto:dmarc@example.org"],
    })
    results = check_dns(config, lookup)
    assert [(r.name, r.status) for r in results] == [("SPF", Status.OK), ("DKIM", Status.OK), ("DMARC", Status.OK)]
    assert "p=quarantine" in results[2].detail
    assert "_dmarc.news.example.org" in lookup.asked  # the From domain first, then its parent


def test_missing_and_wrong_records(signed_config, tmp_path: Path) -> None:
    config, _ = signed_config
    other = generate_key("other", "example.org", tmp_path / "other")
    lookup = fake_dns({"news2026._domainkey.example.org": [other.dns_value]})
    spf, dkim, dmarc = check_dns(config, lookup)
    assert spf.status is Status.FAIL and "no SPF record" in spf.detail
    assert dkim.status is Status.FAIL and "not the public half" in dkim.detail
    assert dmarc.status is Status.FAIL and "Gmail and Yahoo" in dmarc.detail
    assert check_dkim(config, fake_dns({})).status is Status.FAIL
    assert check_dkim(config, fake_dns({"news2026._domainkey.example.org": ["v=DKIM1; p="]})).status is Status.FAIL
    assert check_dkim(config.with_changes(dkim_selector=""), fake_dns({})).status is Status.WARN


@pytest.mark.parametrize("records, status", [
    (["v=spf1 mx -all"], Status.OK),
    (["v=spf1 mx ~all"], Status.OK),
    (["v=spf1 mx +all"], Status.FAIL),
    (["v=spf1 mx"], Status.WARN),
    (["v=spf1 mx -all", "v=spf1 a -all"], Status.FAIL),
])
def test_spf_shapes(config: Config, records, status) -> None:
    assert check_spf(config.with_changes(from_address="news@example.org"), fake_dns({"example.org": records})).status is status


def test_dmarc_without_policy_fails(config: Config) -> None:
    result = check_dmarc(config.with_changes(from_address="news@example.org"),
                         fake_dns({"_dmarc.example.org": ["v=DMARC1; rua=mailto:x@example.org"]}))
    assert result.status is Status.FAIL


@pytest.mark.parametrize("from_address, records, found", [
    # A deep sub-domain falls back to the registrable domain, not to the next label up.
    ("news@lists.asp.example.org", {"_dmarc.example.org": ["v=DMARC1; p=reject"]}, "_dmarc.example.org"),
    ("news@lists.asp.example.org", {"_dmarc.asp.example.org": ["v=DMARC1; p=reject"]}, None),
    # Under a public suffix such as org.uk, the suffix's own record is never taken for the sender's.
    ("news@coalition.org.uk", {"_dmarc.org.uk": ["v=DMARC1; p=none"]}, None),
    ("news@lists.coalition.org.uk", {"_dmarc.coalition.org.uk": ["v=DMARC1; p=quarantine"]},
     "_dmarc.coalition.org.uk"),
])
def test_dmarc_falls_back_to_the_organisational_domain(config: Config, from_address, records, found) -> None:
    result = check_dmarc(config.with_changes(from_address=from_address), fake_dns(records))
    if found:
        assert result.status is Status.OK and result.detail.startswith(found)
    else:
        assert result.status is Status.FAIL


def test_dns_unreachable_is_not_checked(signed_config) -> None:
    config, _ = signed_config
    results = check_dns(config, unreachable)
    assert [r.status for r in results] == [Status.NOT_CHECKED] * 3
    assert all("DNS cannot be reached" in r.detail for r in results)


def test_dns_lookup_with_a_silent_nameserver_is_unavailable() -> None:
    lookup = dns_lookup(f"127.0.0.1:{free_port()}", timeout=0.5)  # loopback, where nothing listens
    with pytest.raises(DnsUnavailable):
        lookup("example.org")


class _Endpoint(BaseHTTPRequestHandler):
    status = 200
    posts: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).posts.append((self.path, body))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def endpoint() -> Iterator[tuple[type[_Endpoint], int]]:
    handler = type("Endpoint", (_Endpoint,), {"posts": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, server.server_address[1]
    server.shutdown()
    server.server_close()


def test_one_click_endpoint_answers(config: Config, endpoint) -> None:
    handler, port = endpoint
    config = config.with_changes(base_url=f"http://127.0.0.1:{port}")
    result = check_one_click(config)
    assert result.status is Status.WARN and "HTTP 200" in result.detail and "https://" in result.detail
    ((path, body),) = handler.posts
    assert body == b"List-Unsubscribe=One-Click"
    assert path.startswith("/unsubscribe/")
    claims = read_token(config.secret(), Purpose.UNSUBSCRIBE, path.removeprefix("/unsubscribe/"))
    assert claims.subscriber_key.startswith("check-")  # nobody's key: the probe unsubscribes no one
    with pytest.raises(InvalidToken):
        read_token(config.secret(), Purpose.CONFIRM, path.removeprefix("/unsubscribe/"))


@pytest.mark.parametrize("code, status", [(404, Status.WARN), (405, Status.FAIL), (500, Status.FAIL)])
def test_one_click_answers_judged(config: Config, endpoint, code, status) -> None:
    handler, port = endpoint
    handler.status = code
    assert check_one_click(config.with_changes(base_url=f"http://127.0.0.1:{port}")).status is status


def test_one_click_unreachable_is_not_checked(config: Config, refused_port: int) -> None:
    result = check_one_click(config.with_changes(base_url=f"http://127.0.0.1:{refused_port}"), timeout=2)
    assert result.status is Status.NOT_CHECKED and "cannot be reached" in result.detail


def test_relay(config: Config, smtp_server: RecordingSMTP) -> None:
    result = asyncio.run(check_relay(config))
    assert result.status is Status.WARN and "no TLS" in result.detail


def test_relay_refusing_the_login(config: Config, refused_port: int) -> None:
    server = RecordingSMTP(auth={"news": "right-password"})
    server.start()
    try:
        url = f"smtp://news@127.0.0.1:{server.port}?starttls=off&timeout=2"
        wrong = config.with_changes(smtp_url=url, smtp_password="wrong-password")
        # (The test server answers a wrong password slowly, so the message may say "timed out".)
        assert asyncio.run(check_relay(wrong)).status is Status.FAIL
        right = asyncio.run(check_relay(wrong.with_changes(smtp_password="right-password")))
        assert right.status is Status.WARN and "logged in as news" in right.detail
    finally:
        server.stop()
    down = asyncio.run(check_relay(config.with_changes(smtp_url=f"smtp://127.0.0.1:{refused_port}?starttls=off&timeout=2")))
    assert down.status is Status.FAIL and "cannot reach" in down.detail


def test_each_configured_relay_is_checked(config: Config, refused_port: int) -> None:
    """With [relays.*], smtp_url is never used: the check connects to each relay, names it, and
    says which one refused the login or could not be reached."""
    from newsletter.config import parse_relays
    from newsletter.sending.preflight import check_relays, run_checks

    good, strict = RecordingSMTP(), RecordingSMTP(auth={"news": "right-password"})
    good.start()
    strict.start()
    try:
        relays = parse_relays({
            "office": {"url": f"smtp://127.0.0.1:{good.port}?starttls=off&timeout=2"},
            "backup": {"url": f"smtp://news:wrong-password@127.0.0.1:{strict.port}?starttls=off&timeout=2"},
            "spare": {"url": f"smtp://127.0.0.1:{refused_port}?starttls=off&timeout=2"}})
        several = config.with_changes(relays=relays, smtp_url=f"smtp://127.0.0.1:{refused_port}?starttls=off")
        office, backup, spare = asyncio.run(check_relays(several))
        assert office.name == "relay office" and office.status is Status.WARN and "no TLS" in office.detail
        assert backup.name == "relay backup" and backup.status is Status.FAIL
        assert spare.name == "relay spare" and spare.status is Status.FAIL and "cannot reach" in spare.detail
        names = [r.name for r in run_checks(several, lookup=unreachable, one_click=False)]
        assert names.count("relay office") == 1 and "relay" not in names  # smtp_url is not checked
        # Without [relays.*], the one relay is smtp_url, as before.
        (alone,) = asyncio.run(check_relays(config.with_changes(
            smtp_url=f"smtp://127.0.0.1:{good.port}?starttls=off&timeout=2")))
        assert alone.name == "relay" and alone.status is Status.WARN
    finally:
        good.stop()
        strict.stop()


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_lint_of_the_given_issue(config: Config, tmp_path: Path) -> None:
    assert check_lint(config, []) == []
    (result,) = check_lint(config, [str(p) for p in sorted((EXAMPLES / "asp23").glob("day-3.*.md"))])
    assert result.status in (Status.OK, Status.WARN) and result.detail.startswith("asp23-day-3")
    broken = tmp_path / "broken.en.md"
    broken.write_text("---\nslug: [unterminated\n---\nbody\n")
    (result,) = check_lint(config, [str(broken)])
    assert result.status is Status.FAIL and "broken.en.md" in result.detail


def _check_offline(tmp_path: Path, smtp_server: RecordingSMTP, refused_port: int):
    """`newsletter check` with no DNS server and no web app answering: (the toml, the result)."""
    toml = tmp_path / "newsletter.toml"
    toml.write_text(f'secret_key = "test-secret-key-0123456789abcdef"\n'
                    f'base_url = "http://127.0.0.1:{refused_port}"\n'
                    f'smtp_url = "smtp://127.0.0.1:{smtp_server.port}?starttls=off&timeout=5"\n')
    return toml, CliRunner().invoke(main, ["--config", str(toml), "check", "--nameserver", f"127.0.0.1:{free_port()}",
                                           "--dns-timeout", "0.5"])


def test_cli_check(tmp_path: Path, smtp_server: RecordingSMTP, refused_port: int) -> None:
    toml, result = _check_offline(tmp_path, smtp_server, refused_port)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sum(line.startswith("not checked  ") for line in lines) == 4  # SPF, DMARC, one-click, lint
    assert any(line.startswith("warn") and "DKIM" in line and "not configured" in line for line in lines)
    assert any(line.startswith("warn") and "relay" in line for line in lines)
    failing = tmp_path / "failing.toml"
    failing.write_text(toml.read_text().replace(f"{smtp_server.port}?", f"{refused_port}?"))
    result = CliRunner().invoke(main, ["--config", str(failing), "check", "--nameserver", f"127.0.0.1:{free_port()}",
                                       "--dns-timeout", "0.5", "--no-one-click"])
    assert result.exit_code == 1 and "1 check(s) failed" in result.output


def test_one_click_against_the_real_visitor_pages(config: Config, sqlite_store) -> None:
    """uvicorn serving the web app on loopback: the probe is answered, and unsubscribes nobody."""
    import time

    import uvicorn

    from newsletter.app import create_app
    from newsletter.installation import Newsletter

    sock = listening_socket()
    config = config.with_changes(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    server = uvicorn.Server(uvicorn.Config(create_app(Newsletter(config, sqlite_store)), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        result = check_one_click(config)
    finally:
        server.should_exit = True
        thread.join(10)
    assert result.status is Status.WARN  # answered (400: nobody has the probe's key); WARN only for http://
    assert "HTTP 400" in result.detail


def test_dns_lookup_without_resolver_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    import dns.resolver

    def no_configuration(*args, **kwargs):
        raise dns.resolver.NoResolverConfiguration("no nameservers in /etc/resolv.conf")

    monkeypatch.setattr(dns.resolver, "Resolver", no_configuration)
    with pytest.raises(DnsUnavailable, match="no DNS resolver is configured"):
        dns_lookup()("example.org")


def test_results_name_their_fix_and_no_command(signed_config, config: Config) -> None:
    """The library says what is wrong and which step puts it right; the CLI words the step."""
    from newsletter.sending.preflight import Fix, run_checks

    unsigned = check_dkim(config, fake_dns({}))
    assert unsigned.status is Status.WARN and unsigned.fix is Fix.MAKE_DKIM_KEY
    signed, _ = signed_config
    unpublished = check_dkim(signed, fake_dns({}))
    assert unpublished.status is Status.FAIL and unpublished.fix is Fix.PUBLISH_DKIM_KEY
    results = run_checks(config, lookup=unreachable, one_click=False, relay=False)
    assert results[-1][:4] == ("lint", Status.NOT_CHECKED, "no content file given", Fix.GIVE_CONTENT)
    assert not any("newsletter " in r.detail for r in [unsigned, unpublished, *results])


def test_cli_check_words_the_fixes(tmp_path: Path, smtp_server: RecordingSMTP, refused_port: int) -> None:
    _toml, result = _check_offline(tmp_path, smtp_server, refused_port)
    assert "run `newsletter dkim keygen --selector S`" in result.output
    assert "start the web app (`newsletter serve`) and run the check again" in result.output
    assert "no content file given (newsletter check FILE…)" in result.output


def test_check_shows_the_connection_limits_and_each_relays_limits(config: Config) -> None:
    from newsletter.config import parse_domain_limits, parse_relays
    from newsletter.sending.preflight import check_limits

    shown = check_limits(config.with_changes(
        domain_limits=parse_domain_limits({"partner.example": 2}),
        relays=parse_relays({"office": {"url": "smtp://relay.example.org", "rate": 5, "hourly_cap": 900,
                                        "max_connections": 3}, "spare": {"url": "smtp://spare.example.org"}})))
    assert shown.status is Status.OK
    assert "gmail.com, googlemail.com 10" in shown.detail and "outlook.com and 11 more 5" in shown.detail
    assert "partner.example 2" in shown.detail
    assert "relay office: weight 1, 3 connections, 5/s, 900/h" in shown.detail
    assert "relay spare: weight 1, no limit of its own" in shown.detail
    none = check_limits(config.with_changes(domain_limits=()))
    assert "no per-domain limit" in none.detail


def test_cli_check_prints_the_limits(tmp_path: Path, smtp_server: RecordingSMTP, refused_port: int) -> None:
    toml, _ = _check_offline(tmp_path, smtp_server, refused_port)
    toml.write_text(toml.read_text() + '[domain_limits]\n"orange.fr" = 1\n')
    result = CliRunner().invoke(main, ["--config", str(toml), "check", "--nameserver", f"127.0.0.1:{free_port()}",
                                       "--dns-timeout", "0.5", "--no-one-click", "--no-relay"])
    assert result.exit_code == 0, result.output
    assert any(line.startswith("ok") and "limits" in line and "orange.fr 1" in line
               for line in result.output.splitlines())
