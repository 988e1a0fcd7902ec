"""Settings: `newsletter.toml`, overridden by `NEWSLETTER_*` environment variables.

`load_config()` looks for the file named by its argument, else `$NEWSLETTER_CONFIG`, else
`./newsletter.toml`; a missing file means built-in defaults (the embedded SQLite store under
`subscribers/` and the local catcher `newsletter sink` on 127.0.0.1:8025). Every key can be set
from the environment as `NEWSLETTER_<KEY>` (upper case), which wins over the file. Relative
paths in the file are relative to the file's folder. Secrets never appear in `repr()`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .attributes import AttributeSpec, parse_attribute_specs
from .errors import ConfigError, MissingConfigFile, MissingSecretKey
from .resources import shipped_path

__all__ = ["Config", "SmtpSettings", "RelaySpec", "DomainLimit", "DEFAULT_DOMAIN_LIMITS", "load_config",
           "write_default_config", "LANGUAGES"]

#: Languages the interface is translated into, in the order they are offered.
LANGUAGES = ("en", "fr", "es", "ar")

CONFIG_FILE = "newsletter.toml"
SECRET_FILE = "secret.key"


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to hand mail over; parsed from `smtp_url`.

    `tls` is "implicit" for smtps://, "starttls" (required) for smtp:// unless the URL says
    `?starttls=off`, in which case "off".
    """

    host: str
    port: int
    tls: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    #: Mail goes out with 8-bit bodies (RFC 6152): the relay must offer 8BITMIME.
    eight_bit: bool = False

    @classmethod
    def from_url(cls, url: str, password: str | None = None) -> "SmtpSettings":
        """Parse `smtp://[user[:pass]@]host[:port][?starttls=off]` or `smtps://…`.

        Raises ConfigError naming what is wrong.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ConfigError(
                f"smtp_url must start with smtp:// or smtps://, not {parts.scheme or 'nothing'}://",
                key="smtp_url",
            )
        if not parts.hostname:
            raise ConfigError("smtp_url has no host name", key="smtp_url")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.scheme == "smtps":
            tls, default_port = "implicit", 465
        else:
            starttls = query.get("starttls", "required").lower()
            if starttls not in ("required", "off"):
                raise ConfigError(
                    f"smtp_url: starttls must be 'required' or 'off', not {starttls!r}", key="smtp_url"
                )
            tls, default_port = ("starttls" if starttls == "required" else "off"), 587
        try:
            port = parts.port or default_port
        except ValueError as exc:
            raise ConfigError(f"smtp_url has a bad port: {exc}", key="smtp_url") from None
        timeout = float(query.get("timeout", 60))
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=password if password is not None else (unquote(parts.password) if parts.password else None),
            timeout=timeout,
        )


@dataclass(frozen=True)
class RelaySpec:
    """One of several relays (`[relays.NAME]`): its URL, weight, connection limit, From domains and rates."""

    name: str
    url: str = field(repr=False)
    weight: int = 1
    #: Connections open to it at once at most, per sender process (0: no limit)
    max_connections: int = 0
    #: The From domains it carries (empty: all)
    from_domains: tuple[str, ...] = ()
    #: Messages per second it takes at most, and per hour (None: no limit of its own)
    rate: float | None = None
    hourly_cap: int | None = None


def parse_relays(table: Any) -> tuple[RelaySpec, ...]:
    """The `[relays.*]` tables as specs. Raises ConfigError."""
    if not isinstance(table, dict):
        raise ConfigError("relays must be a table of tables, e.g. [relays.primary]", key="relays")
    specs = []
    for name, body in table.items():
        where = f"relays.{name}"
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise ConfigError(f"{where} needs url = \"smtp://…\"", key="relays")
        unknown = set(body) - {"url", "weight", "max_connections", "from_domains", "rate", "hourly_cap"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}", key="relays")
        weight, limit = body.get("weight", 1), body.get("max_connections", 0)
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
            raise ConfigError(f"{where}: weight must be a whole number of 1 or more", key="relays")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ConfigError(f"{where}: max_connections must be a whole number of 0 or more", key="relays")
        domains = body.get("from_domains", [])
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise ConfigError(f"{where}: from_domains must be a list of domains", key="relays")
        rate, cap = body.get("rate"), body.get("hourly_cap")
        if rate is not None and (not isinstance(rate, (int, float)) or isinstance(rate, bool) or not rate > 0):
            raise ConfigError(f"{where}: rate must be a number of messages per second above 0, e.g. 10 or 0.5",
                              key="relays")
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
            raise ConfigError(f"{where}: hourly_cap must be a whole number of messages of 1 or more", key="relays")
        SmtpSettings.from_url(body["url"])  # raises ConfigError naming smtp_url's rules
        specs.append(RelaySpec(name, body["url"], weight, limit, tuple(d.lower() for d in domains),
                               float(rate) if rate is not None else None, cap))
    return tuple(specs)


@dataclass(frozen=True)
class DomainLimit:
    """Connections that may be busy at once, per sender process, with recipients of these
    domains together (domains that share their mail servers share one limit); 0: no limit."""

    domains: tuple[str, ...]
    limit: int

    @property
    def key(self) -> str:
        """The domains as `pacing.DomainLimits` takes them: "gmail.com,googlemail.com"."""
        return ",".join(self.domains)


def _group(limit: int, *domains: str) -> DomainLimit:
    return DomainLimit(domains, limit)


#: The big mailbox providers throttle (4xx "too many connections") a sender that keeps many
#: sessions open with them; these limits stay well under what they tolerate. Each group is one
#: provider's mail servers (Yahoo's take AOL's mail; Microsoft's all its consumer domains).
DEFAULT_DOMAIN_LIMITS: tuple[DomainLimit, ...] = (
    _group(10, "gmail.com", "googlemail.com"),
    _group(5, "outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.fr", "live.fr", "outlook.fr",
           "hotmail.co.uk", "live.co.uk", "hotmail.es", "outlook.es", "hotmail.it"),
    _group(5, "yahoo.com", "ymail.com", "rocketmail.com", "yahoo.fr", "yahoo.co.uk", "yahoo.es", "aol.com"),
    _group(5, "icloud.com", "me.com", "mac.com"),
    _group(5, "gmx.de", "gmx.net", "gmx.com", "gmx.fr"),
    _group(3, "orange.fr", "wanadoo.fr"),
    _group(5, "yandex.ru", "yandex.com", "ya.ru"),
    _group(5, "mail.ru", "bk.ru", "inbox.ru", "list.ru"),
)

_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+")


def parse_domain_limits(table: Any) -> tuple[DomainLimit, ...]:
    """The `[domain_limits]` table over `DEFAULT_DOMAIN_LIMITS`. Raises ConfigError.

    Each key is a domain, or several separated by commas that share one limit ("gmail.com,
    googlemail.com" = 5); each value a whole number, 0 for no limit. A domain named here leaves
    its default group (the group's other domains keep the default)."""
    if not isinstance(table, dict):
        raise ConfigError('domain_limits must be a table of "domain" = connections, e.g. "gmail.com" = 5',
                          key="domain_limits")
    given: list[DomainLimit] = []
    seen: set[str] = set()
    for key, value in table.items():
        domains = tuple(d.strip().lower() for d in str(key).split(","))
        for domain in domains:
            if not _DOMAIN.fullmatch(domain):
                raise ConfigError(f"domain_limits: {domain or key!r} is not a domain such as gmail.com",
                                  key="domain_limits")
            if domain in seen:
                raise ConfigError(f"domain_limits: {domain} is named twice", key="domain_limits")
            seen.add(domain)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"domain_limits: {key} must be a whole number of connections, 0 or more (0: no limit)",
                              key="domain_limits")
        given.append(DomainLimit(domains, value))
    kept = []
    for default in DEFAULT_DOMAIN_LIMITS:
        rest = tuple(d for d in default.domains if d not in seen)
        if rest:
            kept.append(DomainLimit(rest, default.limit))
    return tuple(kept) + tuple(given)


@dataclass(frozen=True)
class Config:
    """Everything the library needs to know about this installation. Immutable."""

    #: SQLAlchemy URL of the store; sqlite:///… (embedded) or postgresql+psycopg://…
    database_url: str = "sqlite:///subscribers/newsletter.db"
    #: Public address of the visitor pages; links in mail are built on it.
    base_url: str = "http://127.0.0.1:8000"
    organisation_name: str = "Coalition for the International Criminal Court"
    #: The organisation's name in other languages: ((language, name), …), from a TOML table
    #: `[organisation_names]` (fr = "…") or NEWSLETTER_ORGANISATION_NAMES as a JSON object.
    organisation_names: tuple[tuple[str, str], ...] = ()
    #: Printed in the footer of every mail (anti-spam laws require it).
    postal_address: str = "708 3rd Avenue, 24th Floor, New York, NY 10017, USA"
    from_address: str = "news@example.org"
    from_name: str = "Coalition for the ICC"
    reply_to: str = ""
    #: Address that receives mailto: unsubscribe requests (List-Unsubscribe); default from_address.
    unsubscribe_mailto: str = ""
    #: smtp://host:port (STARTTLS required), smtps://host:465, or smtp://host:port?starttls=off.
    smtp_url: str = "smtp://127.0.0.1:8025?starttls=off"
    smtp_password: str = field(default="", repr=False)
    #: Signs every link token. Empty here means: read `secret_key_file`.
    secret_key: str = field(default="", repr=False)
    secret_key_file: str = SECRET_FILE
    default_language: str = "en"
    languages: tuple[str, ...] = LANGUAGES
    #: Days a confirmation link stays valid.
    confirm_days: int = 7
    #: Version label of the consent text shown on sign-up forms; stored with every consent.
    consent_version: str = "2026-12"
    #: Ask DNS whether an address's domain accepts mail (slow; off by default).
    check_deliverability: bool = False
    #: Where `newsletter sink` stores what it catches, and the port it listens on.
    sink_maildir: str = "mail"
    sink_port: int = 8025
    #: Folder of the Jinja2 templates and translations.
    templates_dir: str = ""
    #: Web origins (scheme://host[:port]) whose pages may post sign-ups to /subscribe.
    allowed_origins: tuple[str, ...] = ()
    #: Reverse proxies (addresses or networks) whose X-Forwarded-For is believed.
    trusted_proxies: tuple[str, ...] = ()
    #: At most this many confirmation mails in any hour, over the whole installation.
    signup_hourly_ceiling: int = 500
    #: Sign-up forms submitted sooner than this many seconds after they were served are ignored.
    signup_min_seconds: int = 3
    #: Sign-up requests accepted per client IP address, and per email address, per hour.
    signup_per_ip_per_hour: int = 20
    signup_per_address_per_hour: int = 5
    #: A sign-up is answered this many milliseconds after it arrived, not sooner, whatever was
    #: known of the address (the answer's time tells nothing); 0: as soon as it is recorded.
    signup_answer_ms: int = 100
    #: Strict-Transport-Security max-age (seconds) sent when base_url is https; 0: not sent.
    hsts_max_age: int = 31536000
    #: IPv6 clients are counted per network of this prefix length (one /64 is one household).
    signup_ipv6_prefix: int = 64
    #: Envelope sender base for VERP (`bounces@news.example.org`); empty: bounces go to from_address.
    bounce_address: str = ""
    #: Where `newsletter bounces` reads from: a Maildir folder, an mbox file or imaps://user@host/INBOX.
    bounce_mailbox: str = ""
    #: Soft bounces (at most one counted a day, forgotten after 7 quiet days) that suppress an address.
    soft_bounce_threshold: int = 5
    #: DKIM signing: the selector, the signing domain (default: from_address's) and the private key file.
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_file: str = ""
    #: Typed subscriber attributes, from the `[attributes.NAME]` tables (see `newsletter.attributes`).
    attributes: tuple[AttributeSpec, ...] = ()
    #: Bounce webhooks of mail providers (/api/v1/providers/…): the SNS topics SES notifies through,
    #: Postmark's basic-auth "user:password", Mailgun's signing key, SendGrid's verification key.
    ses_topic_arns: tuple[str, ...] = ()
    #: Several relays (`[relays.NAME]`) instead of `smtp_url`; the seconds one that refused is left out.
    relays: tuple[RelaySpec, ...] = ()
    relay_cool_off_seconds: int = 300
    #: Connections busy at once with recipients of the big mailbox providers (`[domain_limits]`,
    #: "gmail.com" = 5), over `DEFAULT_DOMAIN_LIMITS`.
    domain_limits: tuple[DomainLimit, ...] = DEFAULT_DOMAIN_LIMITS
    postmark_webhook_auth: str = field(default="", repr=False)
    mailgun_signing_key: str = field(default="", repr=False)
    sendgrid_public_key: str = ""
    #: A scheduled send found more than this many minutes past its time (the service was down)
    #: waits for a sender's go instead of going out late.
    schedule_overdue_minutes: int = 30
    #: Folder of the welcome texts (`<list>.<lang>.md`); a list without one sends no welcome.
    welcome_dir: str = ""
    #: What someone who confirms while a session runs gets of the days before:
    #: "digest" (one mail with every day they missed), "latest" (the latest day) or "off".
    catch_up: str = "digest"
    #: Days after which a pending sign-up gets its confirmation mail once more (0: never).
    reminder_days: int = 3
    #: Days after which a sign-up still pending is forgotten, the consent log keeping it (0: never).
    pending_expiry_days: int = 30
    #: Days the consent log keeps IP addresses and user agents before they are blanked (0: for ever).
    consent_origin_retention_days: int = 0
    #: Send non-ASCII body parts as 8-bit UTF-8 (the relay must offer 8BITMIME); off: base64 or
    #: quoted-printable, whichever is smaller.
    eight_bit_mime: bool = True
    #: Lists whose issues go out only after a second sender approves the exact revisions ("*": every list).
    two_person_lists: tuple[str, ...] = ()
    #: Where issues written in the workspace are exported as content files for sending.
    issues_dir: str = "issues"
    #: A campaign's ledger is written in chunks of this many of the list's subscribers: the first
    #: before sending starts, the rest while it sends.
    ledger_chunk: int = 10_000
    #: Where this configuration was read from (None: defaults and environment only).
    source: str | None = None

    @property
    def languages_by_preference(self) -> tuple[str, ...]:
        """`languages` with `default_language` first."""
        return (self.default_language, *(lang for lang in self.languages if lang != self.default_language))

    def needs_second_approval(self, list_slug: str) -> bool:
        """Whether the two-person rule holds for the list's issues."""
        return "*" in self.two_person_lists or list_slug in self.two_person_lists

    @property
    def mailto_address(self) -> str:
        """Where the `mailto:` of List-Unsubscribe points (unsubscribe_mailto, else from_address),
        or "" when no bounce_mailbox is read: a request nobody reads is not advertised."""
        return (self.unsubscribe_mailto or self.from_address) if self.bounce_mailbox else ""

    @property
    def smtp(self) -> SmtpSettings:
        settings = SmtpSettings.from_url(self.smtp_url, password=self.smtp_password or None)
        return dataclasses.replace(settings, eight_bit=self.eight_bit_mime)

    @property
    def templates_path(self) -> Path:
        if self.templates_dir:
            return Path(self.templates_dir)
        return shipped_path("templates")

    def secret(self) -> bytes:
        """The signing key. Raises ConfigError when there is none."""
        if self.secret_key:
            return self.secret_key.encode()
        path = Path(self.secret_key_file)
        try:
            key = path.read_text().strip()
        except FileNotFoundError:
            raise MissingSecretKey(str(path)) from None
        if len(key) < 16:
            raise ConfigError(f"the secret key in {path} is too short (16 characters at least)", key="secret_key")
        return key.encode()

    def domain_limit_table(self) -> dict[str, int]:
        """The per-domain connection limits as `pacing.DomainLimits` takes them (no-limit entries left out)."""
        return {group.key: group.limit for group in self.domain_limits if group.limit}

    def attribute(self, name: str) -> AttributeSpec | None:
        """The declared attribute of this name, or None."""
        return next((a for a in self.attributes if a.name == name), None)

    def organisation_in(self, language: str | None) -> str:
        """The organisation's name as readers of `language` see it (`organisation_name` where
        `organisation_names` gives none)."""
        return dict(self.organisation_names).get(language or "", self.organisation_name)

    def with_changes(self, **changes: Any) -> "Config":
        """A copy with some settings changed (the original is unchanged)."""
        return dataclasses.replace(self, **changes)


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    """Turn a value from TOML or the environment into the field's type; raise ConfigError."""
    kind = str(kind)
    if name == "relays":
        if isinstance(raw, str):
            import json

            try:
                raw = json.loads(raw or "{}")
            except ValueError as exc:
                raise ConfigError(f"setting relays: not a JSON object: {exc}", key=name) from None
        return parse_relays(raw)
    if name == "domain_limits":
        if isinstance(raw, str):  # NEWSLETTER_DOMAIN_LIMITS: the table as a JSON object
            import json

            try:
                raw = json.loads(raw or "{}")
            except ValueError as exc:
                raise ConfigError(f"setting domain_limits: not a JSON object: {exc}", key=name) from None
        return parse_domain_limits(raw)
    if name == "attributes":
        if isinstance(raw, str):  # NEWSLETTER_ATTRIBUTES: the same tables as a JSON object
            import json

            try:
                raw = json.loads(raw or "{}")
            except ValueError as exc:
                raise ConfigError(f"setting attributes: not a JSON object: {exc}", key=name) from None
        return parse_attribute_specs(raw)
    if name == "organisation_names":
        return _names_by_language(name, raw)
    try:
        if kind in ("bool",):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"expected true or false, got {raw!r}")
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError("expected a whole number")
            return int(raw)
        if kind.startswith("tuple"):
            items = raw if isinstance(raw, list) else [s for s in str(raw).replace(",", " ").split()]
            return tuple(str(s).strip() for s in items if str(s).strip())
        if kind.startswith("str"):
            if isinstance(raw, (dict, list)):
                raise ValueError("expected text")
            return None if raw is None else str(raw)
    except ValueError as exc:
        raise ConfigError(f"setting {name}: {exc}", key=name) from None
    return raw


def _names_by_language(name: str, raw: Any) -> tuple[tuple[str, str], ...]:
    """A TOML table (or, from the environment, a JSON object) of language = name."""
    if isinstance(raw, str):
        import json

        try:
            raw = json.loads(raw or "{}")
        except ValueError as exc:
            raise ConfigError(f"setting {name}: not a JSON object such as {{\"fr\": \"…\"}}: {exc}", key=name) from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ConfigError(f"setting {name}: expected a table of language = name, e.g. fr = \"…\"", key=name)
    return tuple(sorted((k.strip().lower(), v.strip()) for k, v in raw.items() if v.strip()))


def _resolve_paths(values: dict[str, Any], base: Path) -> None:
    """Make relative file paths (and relative sqlite paths) relative to `base`."""
    for key in ("secret_key_file", "sink_maildir", "templates_dir", "dkim_key_file", "issues_dir", "welcome_dir"):
        if values.get(key) and not Path(values[key]).is_absolute():
            values[key] = str(base / values[key])
    mailbox = values.get("bounce_mailbox", "")
    if mailbox and "://" not in mailbox and not Path(mailbox).is_absolute():
        values["bounce_mailbox"] = str(base / mailbox)
    url = values.get("database_url", "")
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        values["database_url"] = prefix + str(base / url[len(prefix):])


def load_config(path: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read the configuration; see the module docstring for where from.

    Raises ConfigError for an unreadable file, an unknown key or a value of the wrong kind.
    """
    env = os.environ if environ is None else environ
    explicit = path or env.get("NEWSLETTER_CONFIG")
    file = Path(explicit) if explicit else Path(CONFIG_FILE)
    fields = {f.name: f for f in dataclasses.fields(Config) if f.name != "source"}
    values: dict[str, Any] = {}
    source = None
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file} is not valid TOML: {exc}") from None
        for key, raw in data.items():
            if key not in fields:
                known = ", ".join(sorted(fields))
                raise ConfigError(f"{file}: unknown setting {key!r} (known: {known})", key=key)
            values[key] = _coerce(key, raw, fields[key].type)
        source = str(file)
        base = file.resolve().parent
    elif explicit:
        raise MissingConfigFile(str(file))
    else:
        base = Path.cwd()
    for key, f in fields.items():
        env_key = f"NEWSLETTER_{key.upper()}"
        if env_key in env:
            values[key] = _coerce(key, env[env_key], f.type)
    _resolve_paths(values, base)
    if "database_url" not in values:
        values["database_url"] = "sqlite:///" + str(base / "subscribers" / "newsletter.db")
    if "secret_key_file" not in values:
        values["secret_key_file"] = str(base / SECRET_FILE)
    if "sink_maildir" not in values:
        values["sink_maildir"] = str(base / "mail")
    if "issues_dir" not in values:
        values["issues_dir"] = str(base / "issues")
    if "welcome_dir" not in values:
        values["welcome_dir"] = str(base / "welcome")
    config = Config(**values, source=source)
    _validate(config)
    return config


def _validate(config: Config) -> None:
    config.smtp  # parses the URL, raising ConfigError
    unknown = [lang for lang, _ in config.organisation_names if lang not in config.languages]
    if unknown:
        raise ConfigError(f"organisation_names: {', '.join(unknown)} is not one of languages {config.languages}",
                          key="organisation_names")
    if config.templates_dir and not Path(config.templates_dir).is_dir():
        raise ConfigError(f"templates_dir: {config.templates_dir} is not a folder (it may hold only the templates "
                          "it changes; the others are the shipped ones)", key="templates_dir")
    if config.default_language not in config.languages:
        raise ConfigError(
            f"default_language {config.default_language!r} is not one of languages {config.languages}",
            key="default_language",
        )
    if not config.base_url.startswith(("http://", "https://")):
        raise ConfigError("base_url must start with http:// or https://", key="base_url")
    if config.confirm_days < 1:
        raise ConfigError("confirm_days must be 1 or more", key="confirm_days")
    for key in ("signup_hourly_ceiling", "signup_min_seconds", "signup_per_ip_per_hour",
                "signup_per_address_per_hour", "signup_answer_ms", "hsts_max_age"):
        if getattr(config, key) < 0:
            raise ConfigError(f"{key} must be 0 or more", key=key)
    if not 1 <= config.signup_ipv6_prefix <= 128:
        raise ConfigError("signup_ipv6_prefix must be a prefix length from 1 to 128 (64 is one household's network)",
                          key="signup_ipv6_prefix")
    for origin in config.allowed_origins:
        if not origin.startswith(("http://", "https://")) or origin.rstrip("/").count("/") != 2:
            raise ConfigError(f"allowed_origins: {origin!r} is not an origin like https://www.example.org",
                              key="allowed_origins")
    for proxy in config.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(f"trusted_proxies: {proxy!r} is not an IP address or network",
                              key="trusted_proxies") from None
    for key in ("reminder_days", "pending_expiry_days", "consent_origin_retention_days"):
        if getattr(config, key) < 0:
            raise ConfigError(f"{key} must be 0 or more", key=key)
    if config.reminder_days and config.pending_expiry_days and config.reminder_days >= config.pending_expiry_days:
        raise ConfigError("reminder_days must be fewer than pending_expiry_days (the reminder comes before the "
                          "sign-up expires)", key="reminder_days")
    if config.catch_up not in ("digest", "latest", "off"):
        raise ConfigError(f"catch_up must be digest, latest or off, not {config.catch_up!r}", key="catch_up")
    if config.schedule_overdue_minutes < 0:
        raise ConfigError("schedule_overdue_minutes must be 0 or more", key="schedule_overdue_minutes")
    if config.ledger_chunk < 1:
        raise ConfigError("ledger_chunk must be 1 or more", key="ledger_chunk")
    if config.soft_bounce_threshold < 1:
        raise ConfigError("soft_bounce_threshold must be 1 or more", key="soft_bounce_threshold")
    if config.bounce_address and "@" not in config.bounce_address:
        raise ConfigError("bounce_address must be an address such as bounces@news.example.org", key="bounce_address")


DEFAULT_TOML = """\
# newsletter configuration. Every key can also be set as NEWSLETTER_<KEY> in the
# environment, which wins over this file. Relative paths are relative to this file.

# The store: the embedded SQLite file (default), or PostgreSQL for large installations:
#   database_url = "postgresql+psycopg://user@dbhost/newsletter"
database_url = "sqlite:///subscribers/newsletter.db"

# Public address of the visitor pages (sign-up, confirm, unsubscribe); links in mail use it.
base_url = "http://127.0.0.1:8000"

# Who the mail is from, printed in every footer as the law requires.
organisation_name = "Coalition for the International Criminal Court"
# The name in other languages, if it has one (a table: keep it at the end of the file):
#   [organisation_names]
#   fr = "Coalition pour la Cour pénale internationale"
postal_address = "708 3rd Avenue, 24th Floor, New York, NY 10017, USA"
from_address = "news@example.org"
from_name = "Coalition for the ICC"
reply_to = ""

# The relay. This default is the local catcher `newsletter sink` (no TLS on loopback).
# A real relay:  smtp_url = "smtp://user@relay.example.org:587"   (STARTTLS required)
#           or:  smtp_url = "smtps://user@relay.example.org:465"  (implicit TLS)
# Put the password in NEWSLETTER_SMTP_PASSWORD rather than here.
smtp_url = "smtp://127.0.0.1:8025?starttls=off"

# Signs every link (confirm, unsubscribe, preferences). Generated by `newsletter init`;
# keep it secret and keep it the same, or every link already sent stops working.
secret_key_file = "secret.key"

# Languages offered, and the one used when nothing better is known.
languages = ["en", "fr", "es", "ar"]
default_language = "en"

# Days a confirmation link stays valid, and the version of the consent text on the forms.
confirm_days = 7
consent_version = "2026-12"

# Ask DNS whether each address's domain accepts mail (slow on large imports).
check_deliverability = false

# The local catcher: where it stores mail and the port it listens on.
sink_maildir = "mail"
sink_port = 8025

# The visitor pages (`newsletter serve`). Other sites allowed to post sign-ups (JSON or form):
#   allowed_origins = ["https://www.example.org"]
allowed_origins = []
# Reverse proxies in front of `newsletter serve` whose X-Forwarded-For is believed:
#   trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
trusted_proxies = []
# Abuse defences: confirmation mails per hour for the whole installation (beyond it none are
# sent and the log says so loudly), the shortest time a person takes to fill the form, and
# sign-up requests per client IP and per address per hour (0 turns a limit off); an IPv6
# client counts with its whole network of signup_ipv6_prefix bits.
signup_hourly_ceiling = 500
signup_min_seconds = 3
signup_per_ip_per_hour = 20
signup_per_address_per_hour = 5
signup_ipv6_prefix = 64
# Every sign-up is answered this many milliseconds after it arrived (not sooner), so that the
# answer's time does not tell whether the address was known.
signup_answer_ms = 100
# When base_url is https, browsers are told to come back over https only, for this many
# seconds (Strict-Transport-Security); 0 leaves the header to the proxy.
hsts_max_age = 31536000

# Bounces. With a bounce address, each message's envelope sender is bounces+<signed ref>@…
# (VERP), so a bounce names its recipient and cannot be forged. `newsletter bounces` reads
# bounce_mailbox: a Maildir folder, an mbox file, or imaps://user@host/INBOX with the password
# in NEWSLETTER_BOUNCE_PASSWORD.
# bounce_address = "bounces@news.example.org"
# bounce_mailbox = "bounces"
# soft_bounce_threshold = 5

# The daily routine (`newsletter serve`). A welcome per list: write welcome/<list>.<lang>.md
# (a `subject:` front matter, then Markdown); none is sent for a list without one. Someone who
# confirms while a session runs gets the days they missed: "digest", "latest" or "off".
# welcome_dir = "welcome"
# catch_up = "digest"
# A scheduled send found later than this (the service was down) waits for `schedule go`.
# schedule_overdue_minutes = 30
# Pending sign-ups: one reminder after this many days, forgotten after that many (0: never).
# reminder_days = 3
# pending_expiry_days = 30
# Days the consent log keeps IP addresses and user agents (0: for ever).
# consent_origin_retention_days = 0

# DKIM signing (`newsletter dkim keygen --selector news2026` writes the key and prints the DNS record).
# dkim_selector = "news2026"
# dkim_domain = "example.org"
# dkim_key_file = "dkim/news2026.private"

# Non-ASCII text (French, Spanish, Arabic) goes out as 8-bit UTF-8, a third smaller than base64;
# the relay must offer 8BITMIME (every common relay does; `newsletter check` says). Set false for
# one that does not: such parts then go out in base64 or quoted-printable.
# eight_bit_mime = true
# The workspace. Lists whose issues go out only after a second sender has approved the exact
# revisions that will be sent ("*" for every list), and where issues are written out as content
# files when they are sent (the campaign resumes from them):
#   two_person_lists = ["alerts"]
# issues_dir = "issues"
"""

#: The tables of the default file; TOML wants them after every top-level key, so they are
#: written after DEFAULT_TOML.
DEFAULT_TABLES = """
# Subscriber attributes: typed values kept for each person, read from import columns of the same
# name, exported, used by segments (`country in (SN, CI)`) and the reach report. Types: text,
# choice (with `choices = [...]`), integer, boolean, date, country (ISO 3166). `signup = true`
# offers one as an optional field on the sign-up form, `preferences = true` on the preferences page.
[attributes.organisation]
type = "text"
label = "Organisation"

[attributes.country]
type = "country"
label = "Country"

# Connections busy at once with recipients of one mailbox provider (the defaults cover Gmail,
# Microsoft, Yahoo and AOL, iCloud, GMX, Orange, Yandex and Mail.ru: docs/configuration.md):
# [domain_limits]
# "gmail.com,googlemail.com" = 4
"""


def write_default_config(folder: Path) -> list[Path]:
    """Write `newsletter.toml` and a fresh `secret.key` (mode 0600) where they do not exist.

    Returns the files written; never overwrites and never prints a secret.
    """
    written = []
    toml_path = folder / CONFIG_FILE
    if not toml_path.exists():
        toml_path.write_text(DEFAULT_TOML + DEFAULT_TABLES, encoding="utf-8")
        written.append(toml_path)
    key_path = folder / SECRET_FILE
    if not key_path.exists():
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
        written.append(key_path)
    return written
