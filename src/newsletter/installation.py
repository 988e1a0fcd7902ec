"""An installation's wiring: configuration, store, clock, the secret (read once) and links.

`Newsletter` is what every use case receives (`people.subscriptions`, `people.importer`,
`sending.launch`, …): tests inject their own store and clock. It holds no use case itself, and
imports nothing that builds on it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

from .config import CONFIG_FILE, Config
from .errors import MissingConfigFile, SchemaOutOfDate
from .store import Store, open_store, store_failure
from .tokens import Purpose, TokenClaims, issue_token, read_token

__all__ = ["Newsletter", "SchemaUpgrade", "utc_now", "store_failure"]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class SchemaUpgrade(NamedTuple):
    """What `Newsletter.upgrade_schema` did: the database (password hidden) and its revisions."""

    database: str
    before: str | None
    after: str


class Newsletter:
    """An installation: configuration + store + clock, and the links they make."""

    def __init__(self, config: Config, store: Store | None = None, *,
                 clock: Callable[[], datetime] = utc_now):
        self.config = config
        self.store = store or open_store(config.database_url)
        self.clock = clock
        self._secret: bytes | None = None

    def secret(self) -> bytes:
        """The signing key, read once per installation object. Raises ConfigError when there is none."""
        if self._secret is None:
            self._secret = self.config.secret()
        return self._secret

    def token(self, purpose: Purpose, subscriber_key: str, *, list_slug: str | None = None,
              language: str | None = None) -> str:
        """A signed link token for this purpose and person (and list, and page language)."""
        return issue_token(self.secret(), purpose, subscriber_key, list_slug=list_slug,
                           language=language, now=self.clock())

    def link(self, purpose: Purpose, subscriber_key: str, *, list_slug: str | None = None,
             language: str | None = None) -> str:
        """The absolute URL of a visitor page for this token, e.g. …/unsubscribe/<token>."""
        token = self.token(purpose, subscriber_key, list_slug=list_slug, language=language)
        return f"{self.config.base_url.rstrip('/')}/{purpose.value}/{token}"

    def read(self, purpose: Purpose, token: str) -> TokenClaims:
        """Verify a link token; raises InvalidToken."""
        max_age = timedelta(days=self.config.confirm_days) if purpose is Purpose.CONFIRM else ...
        return read_token(self.secret(), purpose, token, max_age=max_age, now=self.clock())

    def check_schema(self) -> None:
        """Raise SchemaOutOfDate unless the store's schema is the one this code expects; when
        the store has no schema and no configuration file was read either, MissingConfigFile
        (nothing is set up where this runs). Creates nothing."""
        try:
            self.store.check_schema()
        except SchemaOutOfDate as exc:
            if exc.current is None and self.config.source is None:
                raise MissingConfigFile(str(Path.cwd() / CONFIG_FILE), named=False) from None
            raise

    def upgrade_schema(self) -> SchemaUpgrade:
        """Create or upgrade the store's schema to this code's. Raises StoreError."""
        before, after = self.store.upgrade()
        return SchemaUpgrade(self.store.engine.url.render_as_string(hide_password=True), before, after)

