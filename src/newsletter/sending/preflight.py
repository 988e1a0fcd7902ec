"""The pre-flight report: is this installation ready to send bulk mail that arrives?

Gmail's and Yahoo's bulk-sender rules ask for SPF, DKIM and DMARC on the sending domain and a
working RFC 8058 one-click unsubscribe; the relay must take our login over TLS. Each check
returns a `CheckResult`; none raises for a failed check. What could not be looked at (DNS
unreachable, the web app not running) is reported as NOT_CHECKED, never as passed. A result
that a known step would put right names it as a `Fix`, which the faces word.

DNS goes through a `TxtLookup` callable, so tests (and `--nameserver`) decide which server
is asked; `dns_lookup()` makes one with dnspython.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import aiosmtplib
import dns.exception
import dns.resolver
from cryptography.hazmat.primitives import serialization
from publicsuffixlist import PublicSuffixList

from ..config import Config, SmtpSettings
from ..errors import DeliveryError, NewsletterError
from ..mail.compose import render_issue
from ..mail.content import load_issues
from ..mail.dkim import dns_name as dkim_dns_name
from ..mail.dkim import dns_record
from ..mail.lint import lint_issue
from ..texts import N_, Text
from ..tokens import Purpose, issue_token
from ..transport.smtp import open_connection

__all__ = [
    "Status",
    "Fix",
    "CheckResult",
    "TxtLookup",
    "DnsUnavailable",
    "dns_lookup",
    "check_spf",
    "check_dkim",
    "check_dmarc",
    "check_dns",
    "check_one_click",
    "check_relay",
    "check_relays",
    "check_limits",
    "check_lint",
    "run_checks",
]


class Status(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    NOT_CHECKED = "not checked"


class Fix(str, enum.Enum):
    """The step that would put a result right."""

    #: Make a DKIM key pair and configure it.
    MAKE_DKIM_KEY = "make-dkim-key"
    #: Publish the DKIM key's TXT record in DNS.
    PUBLISH_DKIM_KEY = "publish-dkim-key"
    #: Start the visitor pages, then check again.
    START_WEB = "start-web"
    #: Give the content files of the issue about to go out.
    GIVE_CONTENT = "give-content"


class CheckResult(NamedTuple):
    name: str
    status: Status
    #: What was found, in English.
    detail: str
    fix: Fix | None = None
    #: The same as a translatable text (None: `detail` is a record or a reply, shown as it is).
    said: Text | None = None


def _found(name: str, status: Status, said: Text, fix: Fix | None = None) -> CheckResult:
    return CheckResult(name, status, str(said), fix, said)


class DnsUnavailable(Exception):
    """No DNS server answered (not a NewsletterError: `check_dns` turns it into NOT_CHECKED)."""


#: name -> the TXT strings published there ([] when there are none); raises DnsUnavailable.
TxtLookup = Callable[[str], list[str]]


def dns_lookup(nameserver: str | None = None, *, timeout: float = 4.0) -> TxtLookup:
    """A TXT lookup through dnspython: the system's resolvers, or `nameserver` ("host" or "host:port")."""
    if nameserver:
        resolver = dns.resolver.Resolver(configure=False)
        host, _, port = nameserver.partition(":")
        resolver.nameservers = [host]
        if port:
            resolver.port = int(port)
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration as exc:
            reason = f"no DNS resolver is configured ({exc})"

            def unavailable(name: str) -> list[str]:
                raise DnsUnavailable(reason)
            return unavailable
    resolver.lifetime = timeout

    def lookup(name: str) -> list[str]:
        try:
            answer = resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout, OSError) as exc:
            raise DnsUnavailable(str(exc) or type(exc).__name__) from None
        return [b"".join(r.strings).decode("utf-8", errors="replace") for r in answer]

    return lookup


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list ships with the package: no network


def organisational_domain(domain: str) -> str:
    """The registrable domain that DMARC falls back to (RFC 7489 3.2), by the Public Suffix List:
    lists.coalition.org.uk -> coalition.org.uk, a.b.example.org -> example.org."""
    return _public_suffixes().privatesuffix(domain) or domain


def check_spf(config: Config, lookup: TxtLookup) -> CheckResult:
    """SPF of the envelope-sender domain (bounce_address's when VERP is on, else from_address's)."""
    domain = _domain(config.bounce_address or config.from_address)
    records = [r for r in lookup(domain) if r.lower().startswith("v=spf1")]
    if not records:
        return _found("SPF", Status.FAIL, Text.of(N_(
            "%(domain)s publishes no SPF record (TXT \"v=spf1 … -all\"); receivers cannot tell your relay "
            "is allowed to send for it"), domain=domain))
    if len(records) > 1:
        return _found("SPF", Status.FAIL, Text.of(N_(
            "%(domain)s publishes %(n)s SPF records; exactly one is allowed (RFC 7208), so receivers treat "
            "it as an error"), domain=domain, n=len(records)))
    record = records[0]
    if re.search(r"\+all\b", record):
        return _found("SPF", Status.FAIL, Text.of(N_(
            "%(domain)s: %(record)s ends in +all, which lets anyone send as you"), domain=domain, record=repr(record)))
    if not re.search(r"[~-]all\b", record) and "redirect=" not in record:
        return _found("SPF", Status.WARN, Text.of(N_("%(domain)s: %(record)s has no ~all or -all"),
                                                  domain=domain, record=repr(record)))
    return CheckResult("SPF", Status.OK, f"{domain}: {record}")


def _public_key_record(key_file: str) -> str | None:
    """The DNS value our private key calls for, or None when the file cannot be read."""
    try:
        private = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return dns_record(pem)


def _p_value(record: str) -> str:
    match = re.search(r"(?:^|;)\s*p=([^;]*)", record)
    return re.sub(r"\s+", "", match.group(1)) if match else ""


def check_dkim(config: Config, lookup: TxtLookup) -> CheckResult:
    """The DKIM key published at <dkim_selector>._domainkey.<domain>, compared with dkim_key_file's."""
    if not config.dkim_selector:
        return _found("DKIM", Status.WARN, Text.of(N_(
            "not configured: messages go out unsigned (Gmail and Yahoo require DKIM of bulk senders)")),
            Fix.MAKE_DKIM_KEY)
    domain = (config.dkim_domain or _domain(config.from_address)).lower()
    name = dkim_dns_name(config.dkim_selector, domain)
    records = [r for r in lookup(name) if "p=" in r]
    if not records:
        return _found("DKIM", Status.FAIL, Text.of(N_("nothing is published at %(name)s"), name=name),
                      Fix.PUBLISH_DKIM_KEY)
    published = _p_value(records[0])
    if not published:
        return _found("DKIM", Status.FAIL, Text.of(N_("the key at %(name)s is revoked (empty p=)"), name=name))
    key_file = config.dkim_key_file
    expected = _public_key_record(key_file) if key_file else None
    if expected is None:
        return _found("DKIM", Status.WARN, Text.of(N_(
            "%(name)s publishes a key, but dkim_key_file (%(file)s) cannot be read to compare"), name=name,
            file=key_file or Text(N_("unset"))))
    if _p_value(expected) != published:
        return _found("DKIM", Status.FAIL, Text.of(N_(
            "the key at %(name)s is not the public half of %(file)s; signatures will not verify"), name=name,
            file=key_file))
    from_domain = _domain(config.from_address)
    if not (from_domain == domain or from_domain.endswith("." + domain)):
        return _found("DKIM", Status.WARN, Text.of(N_(
            "%(name)s matches the key, but d=%(domain)s is not aligned with the From domain %(from_domain)s "
            "for DMARC"), name=name, domain=domain, from_domain=from_domain))
    return _found("DKIM", Status.OK, Text.of(N_("%(name)s publishes the public half of %(file)s"), name=name,
                                             file=key_file))


def check_dmarc(config: Config, lookup: TxtLookup) -> CheckResult:
    """The DMARC policy of the From domain, or else of its organisational domain."""
    domain = _domain(config.from_address)
    for candidate in dict.fromkeys((domain, organisational_domain(domain))):
        records = [r for r in lookup(f"_dmarc.{candidate}") if r.lower().replace(" ", "").startswith("v=dmarc1")]
        if records:
            policy = re.search(r"(?:^|;)\s*p=\s*(\w+)", records[0])
            where = f"_dmarc.{candidate}"
            if not policy:
                return _found("DMARC", Status.FAIL, Text.of(N_("%(where)s: %(record)s has no p= policy"),
                                                            where=where, record=repr(records[0])))
            return CheckResult("DMARC", Status.OK, f"{where}: p={policy.group(1)} ({records[0]})")
    return _found("DMARC", Status.FAIL, Text.of(N_(
        "no DMARC record at _dmarc.%(domain)s; Gmail and Yahoo require one of bulk senders (at least "
        "\"v=DMARC1; p=none; rua=mailto:…\")"), domain=domain))


def check_dns(config: Config, lookup: TxtLookup) -> list[CheckResult]:
    """SPF, DKIM and DMARC; all NOT_CHECKED when DNS cannot be reached."""
    results = []
    for check in (check_spf, check_dkim, check_dmarc):
        name = check.__name__.removeprefix("check_").upper()
        try:
            results.append(check(config, lookup))
        except DnsUnavailable as exc:
            results.append(_found(name, Status.NOT_CHECKED,
                                  Text.of(N_("DNS cannot be reached (%(reason)s)"), reason=str(exc))))
    return results


def check_one_click(config: Config, *, timeout: float = 10.0, unsubscribe_path: str = "/unsubscribe/") -> CheckResult:
    """POST an RFC 8058 one-click request to the unsubscribe endpoint at base_url.

    The probe carries a correctly signed token for a subscriber that does not exist, so it
    unsubscribes nobody. Any answer but 405 or a 5xx means the endpoint takes POSTs.
    """
    token = issue_token(config.secret(), Purpose.UNSUBSCRIBE, "check-" + secrets.token_urlsafe(12))
    url = config.base_url.rstrip("/") + unsubscribe_path + token
    request = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    where = config.base_url.rstrip("/") + unsubscribe_path + "…"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only: Config checks)
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return _found("one-click", Status.NOT_CHECKED, Text.of(N_("%(url)s cannot be reached (%(reason)s)"),
                                                              url=config.base_url, reason=str(reason)),
                      Fix.START_WEB)
    if code == 405 or code >= 500:
        return _found("one-click", Status.FAIL, Text.of(N_(
            "POST %(where)s answered HTTP %(code)s; mail clients' unsubscribe buttons will fail"), where=where,
            code=code))
    if not config.base_url.startswith("https://"):
        return _found("one-click", Status.WARN, Text.of(N_(
            "POST %(where)s answered HTTP %(code)s, but base_url is not https://, which Gmail requires for "
            "one-click"), where=where, code=code))
    return _found("one-click", Status.OK, Text.of(N_("POST %(where)s answered HTTP %(code)s"), where=where,
                                                  code=code))


async def check_relay(config: Config) -> CheckResult:
    """Connect to `smtp_url` as the sender would: TLS as configured, then the login."""
    return await _check_connection("relay", config.smtp)


async def check_relays(config: Config) -> list[CheckResult]:
    """Each relay the sends use, connected to as the sender would: every `[relays.NAME]`
    (one result each, named "relay NAME") when there are any — `smtp_url` is then never
    used — else `smtp_url` (one result, "relay"). The relays are tried at once."""
    if not config.relays:
        return [await check_relay(config)]
    return list(await asyncio.gather(*(
        _check_connection(f"relay {spec.name}",
                          dataclasses.replace(SmtpSettings.from_url(spec.url), eight_bit=config.eight_bit_mime))
        for spec in config.relays)))


async def _check_connection(name: str, settings: SmtpSettings) -> CheckResult:
    where = f"{settings.host}:{settings.port}"
    try:
        client = await open_connection(settings)
    except DeliveryError as exc:
        return CheckResult(name, Status.FAIL, str(exc))
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):  # the check is over; a rude goodbye changes nothing
        client.close()
    tls = Text({"implicit": N_("implicit TLS"), "starttls": N_("STARTTLS")}.get(settings.tls, N_("no TLS")))
    auth = (Text.of(N_("logged in as %(user)s"), user=settings.username) if settings.username
            else Text(N_("no login")))
    if settings.tls == "off":
        return _found(name, Status.WARN, Text.of(N_(
            "%(where)s: connected with %(tls)s and %(auth)s (fine for the local catcher only; a real relay "
            "needs TLS)"), where=where, tls=tls, auth=auth))
    return _found(name, Status.OK, Text.of(N_("%(where)s: %(tls)s, certificate verified, %(auth)s"),
                                           where=where, tls=tls, auth=auth))


def _domains(domains: Sequence[str]) -> str | Text:
    if len(domains) <= 2:
        return ", ".join(domains)
    return Text.of(N_("%(domain)s and %(n)s more"), domain=domains[0], n=len(domains) - 1)


def _joined(parts: Sequence[str | Text], separator: str) -> Text:
    """`parts` one after another, each translated in its turn."""
    return Text(separator.join(f"%(p{i})s" for i in range(len(parts))),
                tuple((f"p{i}", part) for i, part in enumerate(parts)))


def check_limits(config: Config) -> CheckResult:
    """The pacing the settings give each send (no I/O): the per-provider connection limits
    (`domain_limits`), and each relay's own limits when there are several."""
    groups = [g for g in config.domain_limits if g.limit]
    per_domain = (_joined([_joined([_domains(g.domains), str(g.limit)], " ") for g in groups], "; ") if groups
                  else Text(N_("no per-domain limit")))
    parts: list[str | Text] = [Text.of(N_("connections at once per sender process: %(limits)s"), limits=per_domain)]
    for relay in config.relays:
        limits = [Text.of(N_("%(n)s connections"), n=relay.max_connections) if relay.max_connections else "",
                  f"{relay.rate:g}/s" if relay.rate else "",
                  f"{relay.hourly_cap}/h" if relay.hourly_cap else ""]
        given = [x for x in limits if x]
        parts.append(Text.of(N_("relay %(name)s: weight %(weight)s, %(limits)s"), name=relay.name, weight=relay.weight,
                             limits=_joined(given, ", ") if given else Text(N_("no limit of its own"))))
    return _found("limits", Status.OK, parts[0] if len(parts) == 1 else _joined(parts, " | "))


def check_lint(config: Config, contents: Sequence[str]) -> list[CheckResult]:
    """Lint each issue the content files make (as the preview does): one result per issue.

    An issue with lint errors, or content that cannot be read, FAILs; warnings only, WARN.
    The subscribers' languages are not consulted here (the preview does that).
    """
    if not contents:
        return []
    try:
        issues = load_issues(contents)
    except NewsletterError as exc:
        return [CheckResult("lint", Status.FAIL, str(exc))]
    results = []
    for issue in issues:
        try:
            report = lint_issue(render_issue(config, issue))
        except NewsletterError as exc:
            results.append(CheckResult("lint", Status.FAIL, f"{issue.slug}: {exc}"))
            continue
        summary = f"{issue.slug} ({', '.join(issue.languages)}): " + "; ".join(report.format().splitlines())
        status = Status.FAIL if report.errors else Status.WARN if report.warnings else Status.OK
        results.append(CheckResult("lint", status, summary))
    return results


def run_checks(config: Config, *, lookup: TxtLookup | None = None, contents: Sequence[str] = (),
               one_click: bool = True, relay: bool = True) -> list[CheckResult]:
    """Every check, in the order the report prints them; lint is NOT_CHECKED without `contents`."""
    results = check_dns(config, lookup or dns_lookup())
    if one_click:
        results.append(check_one_click(config))
    if relay:
        results.extend(asyncio.run(check_relays(config)))
    results.append(check_limits(config))
    results.extend(check_lint(config, contents) if contents else
                   [CheckResult("lint", Status.NOT_CHECKED, "no content file given", Fix.GIVE_CONTENT)])
    return results
