"""A campaign's per-recipient messages: link URLs, one skeleton per language, the
installation's DKIM and VERP hooks, and test sends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from email.utils import format_datetime

from ..config import Config
from ..mail.compose import RenderedMail
from ..mail.message import (
    ListInfo,
    MailSkeleton,
    Recipient,
    message_id_domain,
    message_id_for,
)
from ..store.ledger import ClaimedRow
from ..tokens import Purpose, TokenIssuer
from ..transport.connection import Reply, SmtpConnection, open_smtp

Connector = Callable[[], Awaitable[SmtpConnection]]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


__all__ = ["Links", "build_skeletons", "send_test"]


class Links:
    """Per-recipient link URLs: list-scoped unsubscribe, preferences, and the mailto address."""

    def __init__(self, config: Config, list_slug: str, *, now: datetime):
        self.secret = config.secret()
        self.base = config.base_url.rstrip("/")
        self.list_slug = list_slug
        self.now = now
        self.mailto = config.unsubscribe_mailto or config.from_address

        self._unsub = TokenIssuer(self.secret, Purpose.UNSUBSCRIBE, now)
        self._prefs = TokenIssuer(self.secret, Purpose.PREFERENCES, now)

    def for_row(self, row: ClaimedRow) -> tuple[str, str, str]:
        unsub = self._unsub(row.key, list_slug=self.list_slug)
        prefs = self._prefs(row.key, language=row.language)
        return (f"{self.base}/{Purpose.UNSUBSCRIBE.value}/{unsub}", f"{self.base}/{Purpose.PREFERENCES.value}/{prefs}",
                f"mailto:{self.mailto}?subject=unsubscribe%20{unsub}")




def build_skeletons(config: Config, variants: Mapping[str, RenderedMail], list_slug: str, list_name: str,
                    campaign_slug: str, *, subject_prefix: str = "") -> dict[str, MailSkeleton]:
    """One pre-encoded skeleton per language variant."""
    info = ListInfo(list_slug, list_name, campaign_slug)
    return {lang: MailSkeleton(config, mail, info, subject_prefix=subject_prefix) for lang, mail in variants.items()}




async def send_test(config: Config, variants: Mapping[str, RenderedMail], addresses: list[str], *, list_slug: str,
                    list_name: str, campaign_slug: str, connect: Connector | None = None,
                    clock: Callable[[], datetime] = _utc_now) -> list[tuple[str, str, Reply]]:
    """Send every language variant, subject prefixed "[TEST] ", to each address; records nothing.

    Links in test mail are placeholders that do not unsubscribe anyone. Returns
    (address, language, reply) for each message. Raises DeliveryError if the relay is unusable.
    """
    skeletons = build_skeletons(config, variants, list_slug, list_name, campaign_slug, subject_prefix="[TEST] ")
    conn = await (connect or (lambda: open_smtp(config.smtp)))()
    base = config.base_url.rstrip("/")
    results = []
    try:
        for address in addresses:
            for language, skeleton in skeletons.items():
                recipient = Recipient(address, "", message_id_for(config.secret(), campaign_slug + ":test:" + language,
                                                                  0, message_id_domain(config)),
                                      f"{base}/unsubscribe/TEST", f"{base}/preferences/TEST",
                                      f"mailto:{config.unsubscribe_mailto or config.from_address}?subject=TEST")
                data = skeleton.render(recipient, date=format_datetime(clock().astimezone(timezone.utc)))
                results.append((address, language, await conn.deliver(config.from_address, address, data)))
    finally:
        await conn.close()
    return results
