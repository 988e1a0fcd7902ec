"""How the installation's mail leaves: signed with DKIM and bounce-addressed with VERP, every kind alike.

A `Postmark` is made once per installation (or per send) from the configuration and the
secret the installation has read: it holds the DKIM signer (the key read once) and gives each
finished message its envelope sender. Campaign mail, test sends, confirmations and the mails
to come all go out through it, so what one kind gets, every kind gets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import Config
from .dkim import signer_from_config
from .kinds import MailKind
from .verp import verp_address

__all__ = ["Postmark"]


@dataclass(frozen=True)
class Postmark:
    """A DKIM signer (or none) and the envelope sender for each mail.

    `secret` signs the VERP references; it is needed only when `bounce_address` is set.
    """

    from_address: str
    bounce_address: str = ""
    secret: bytes = b""
    signer: Callable[[bytes], bytes] | None = None

    @classmethod
    def from_config(cls, config: Config, secret: bytes = b"") -> "Postmark":
        """This installation's postmark: DKIM where `dkim_selector` is set, VERP where
        `bounce_address` is. Reads the DKIM key now; raises DkimError as `dkim.signer_from_config`."""
        return cls(config.from_address, config.bounce_address, secret, signer_from_config(config))

    def sign(self, message: bytes) -> bytes:
        """`message` with its DKIM-Signature header first (unchanged when DKIM is not configured)."""
        return self.signer(message) if self.signer else message

    def return_path(self, kind: MailKind, subscriber_key: str = "", campaign_id: int | None = None) -> str:
        """The envelope sender (MAIL FROM) of one mail of `kind` to the subscriber `subscriber_key`:
        its VERP address when bounce_address is set, else from_address.

        Raises ValueError as `verp.verp_address` (a campaign's mail without its campaign_id, a
        bounce address too long), or when VERP is on and no secret was given.
        """
        if not self.bounce_address:
            return self.from_address
        if not self.secret:
            raise ValueError("VERP return paths are signed with the installation's secret; none was given")
        return verp_address(self.secret, self.bounce_address, campaign_id, subscriber_key, kind=kind)
