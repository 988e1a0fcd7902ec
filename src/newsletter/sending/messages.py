"""A campaign's per-recipient messages: link URLs, one skeleton per language, and test sends.

Campaign mail and test sends are built by the one message builder (`mail.message`) and leave
through the installation's `Postmark` (DKIM, VERP); the secret is read once by the caller and
passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import format_datetime

from ..config import Config
from ..mail.compose import RenderedMail
from ..mail.message import (
    ListInfo,
    MailKind,
    MailSkeleton,
    Recipient,
    message_id_domain,
    message_id_for,
    unsubscribe_mailto,
)
from ..mail.postmark import Postmark
from ..store.ledger import ClaimedRow
from ..tokens import Purpose, TokenIssuer
from ..transport.connection import Reply
from ..transport.relays import Connector, personal_connector



def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


__all__ = ["Links", "build_skeletons", "send_test"]


class Links:
    """Per-recipient link URLs: list-scoped unsubscribe, preferences, and the mailto address.

    `secret` is the installation's (read from the configuration when not given).
    """

    def __init__(self, config: Config, list_slug: str, *, now: datetime, secret: bytes | None = None):
        self.secret = config.secret() if secret is None else secret
        self.base = config.base_url.rstrip("/")
        self.list_slug = list_slug
        self.now = now
        self.config = config

        self._unsub = TokenIssuer(self.secret, Purpose.UNSUBSCRIBE, now)
        self._prefs = TokenIssuer(self.secret, Purpose.PREFERENCES, now)
        self._unsub_base = f"{self.base}/{Purpose.UNSUBSCRIBE.value}/"
        self._prefs_base = f"{self.base}/{Purpose.PREFERENCES.value}/"

    def for_row(self, row: ClaimedRow) -> tuple[str, str, str]:
        unsub = self._unsub(row.key, list_slug=self.list_slug)
        prefs = self._prefs(row.key, language=row.language)
        return self._unsub_base + unsub, self._prefs_base + prefs, unsubscribe_mailto(self.config, unsub)


def build_skeletons(config: Config, variants: Mapping[str, RenderedMail], list_slug: str, list_name: str,
                    campaign_slug: str, *, subject_prefix: str | None = None,
                    kind: MailKind = MailKind.CAMPAIGN) -> dict[str, MailSkeleton]:
    """One pre-encoded skeleton of `kind` per language variant."""
    info = ListInfo(list_slug, list_name, campaign_slug)
    return {lang: MailSkeleton(config, mail, info, kind=kind, subject_prefix=subject_prefix)
            for lang, mail in variants.items()}


async def send_test(config: Config, variants: Mapping[str, RenderedMail], addresses: list[str], *, list_slug: str,
                    list_name: str, campaign_slug: str, connect: Connector | None = None,
                    clock: Callable[[], datetime] = _utc_now, secret: bytes | None = None,
                    postmark: Postmark | None = None) -> list[tuple[str, str, Reply]]:
    """Send every language variant, subject prefixed "[TEST] ", to each address; records nothing.

    Built and sent as campaign mail is (list headers, DKIM, VERP return path), by the same
    builder. Links in test mail are placeholders that do not unsubscribe anyone. `secret` is
    the installation's (read once from the configuration when not given); `postmark` defaults
    to the installation's. Returns (address, language, reply) for each message. Raises
    DeliveryError if the relay is unusable, DkimError if the DKIM key cannot be read. Without
    `connect`, the connection comes from `transport.relays.personal_connector` (the pool of
    `[relays.*]` when there are any, else `smtp_url`).
    """
    secret = config.secret() if secret is None else secret
    postmark = postmark or Postmark.from_config(config, secret)
    skeletons = build_skeletons(config, variants, list_slug, list_name, campaign_slug, kind=MailKind.TEST)
    base = config.base_url.rstrip("/")
    envelope_sender = postmark.return_path(MailKind.TEST)
    conn = await (connect or personal_connector(config, clock=clock))()
    results = []
    try:
        for address in addresses:
            for language, skeleton in skeletons.items():
                message_id = message_id_for(secret, f"{campaign_slug}:test:{language}", 0, message_id_domain(config))
                recipient = Recipient(address, "", message_id, f"{base}/unsubscribe/TEST", f"{base}/preferences/TEST",
                                      unsubscribe_mailto(config, "TEST"))
                data = postmark.sign(skeleton.render(recipient, date=format_datetime(clock().astimezone(timezone.utc))))
                results.append((address, language, await conn.deliver(envelope_sender, address, data, crlf=True)))
    finally:
        await conn.close()
    return results
