"""Security of the visitor pages: response headers, CSRF tokens, client IPs, origins.

- `SecurityHeaders` (pure ASGI middleware) adds a strict Content-Security-Policy (no script
  at all, styles from our own origin only), frame denial, nosniff, a referrer policy and,
  when base_url is https, Strict-Transport-Security to every response; pages reached through a link token also get `Cache-Control: no-store` and
  `Referrer-Policy: no-referrer`, so the token is neither cached nor leaked to other sites.
- CSRF on browser forms is a *signed form token* bound to the page's link token
  (`issue_csrf` / `check_csrf`): no cookie is needed, so the pages work with cookies off.
  A site that does not know a person's link token cannot produce one. The RFC 8058 one-click
  POST alone is exempt.
- `form_origin_allowed` judges a browser form post by its `Origin`: absent (a server, an old
  browser) passes; `null` (a sandboxed frame, a `data:` page, a cross-site redirect) and any
  origin that is neither ours nor allowed is refused. Our token pages therefore send
  `Referrer-Policy: same-origin`, not `no-referrer`: under `no-referrer` a browser posts even
  our own forms with `Origin: null`. The RFC 8058 one-click POST is never judged by origin.
- `header_text`: a request header kept as evidence (the user agent), its control characters
  escaped: a header is not the visitor's typing, and no header may make an unsubscription fail.
- `client_ip` believes `X-Forwarded-For` only when the connection comes from a configured
  trusted proxy, walking the header from the right past trusted hops.
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadData, TimestampSigner

from ..addresses import escape_controls

__all__ = ["SecurityHeaders", "issue_csrf", "check_csrf", "client_ip", "parse_networks", "origin_of",
           "form_origin_allowed", "header_text", "CSP", "TOKEN_PAGE_HEADERS"]

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_COMMON = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"interest-cohort=(), camera=(), microphone=(), geolocation=()"),
]
#: Added by handlers of pages reached through a link token. `same-origin`: the token never goes
#: to another site in a Referer, and our own forms post with their real Origin (never `null`).
TOKEN_PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}

CSRF_MAX_AGE = timedelta(days=1)
_CSRF_SALT = "newsletter/csrf"


class SecurityHeaders:
    """ASGI middleware adding the common security headers (a handler's own values win), and
    `Strict-Transport-Security: max-age=<hsts_max_age>` when it is given (the app gives it
    when base_url is https)."""

    def __init__(self, app: Any, hsts_max_age: int = 0):
        self.app = app
        self.common = list(_COMMON)
        if hsts_max_age > 0:
            self.common.append((b"strict-transport-security", f"max-age={hsts_max_age}".encode()))

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self.common if k not in present]
                if b"referrer-policy" not in present:
                    headers.append((b"referrer-policy", b"same-origin"))
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-cache"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _bind(link_token: str) -> str:
    return hashlib.sha256(link_token.encode("utf-8")).hexdigest()[:32]


def issue_csrf(secret: bytes, link_token: str, now: datetime) -> str:
    """The CSRF token of the forms on the page of `link_token`, stamped with `now`."""
    signer = TimestampSigner(secret, salt=_CSRF_SALT)
    stamp = int(now.timestamp())
    signer.get_timestamp = lambda: stamp  # type: ignore[method-assign]
    return signer.sign(_bind(link_token)).decode("ascii")


def check_csrf(secret: bytes, link_token: str, csrf: str | None, now: datetime) -> bool:
    """True when `csrf` was issued for this link token within CSRF_MAX_AGE; never raises."""
    if not csrf:
        return False
    signer = TimestampSigner(secret, salt=_CSRF_SALT)
    try:
        value, issued = signer.unsign(csrf, return_timestamp=True)
    except (BadData, UnicodeError, ValueError, TypeError):
        return False
    age = now - issued
    return value.decode("ascii", "replace") == _bind(link_token) and timedelta(minutes=-5) <= age <= CSRF_MAX_AGE


def parse_networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _trusted(host: str, networks: tuple) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in networks)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple) -> str | None:
    """The client's IP: the peer, or, when the peer is a trusted proxy, the first untrusted hop
    of X-Forwarded-For counted from the right."""
    if not peer or not trusted or not _trusted(peer, trusted) or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return hops[0] if hops else peer


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}"


def form_origin_allowed(origin: str | None, own: tuple[str, ...] | frozenset[str] | set[str],
                        allowed: frozenset[str] = frozenset()) -> bool:
    """Whether a form post may act, judged by its Origin header (`own` and `allowed` are
    lower-case scheme://host[:port] without a trailing slash).

    No Origin passes (servers, old browsers: the form's other checks still apply); `null` and
    an origin neither in `own` nor in `allowed` are refused.
    """
    if origin is None:
        return True
    origin = origin.strip().rstrip("/").lower()
    if not origin or origin == "null":
        return False
    return origin in own or origin in allowed


def header_text(request: Any, name: str) -> str | None:
    """The header's value to store (None when absent), control characters escaped."""
    value = request.headers.get(name)
    return None if value is None else escape_controls(value)
