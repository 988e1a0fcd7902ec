"""The rest of a campaign's ledger, written while it sends.

A new campaign's ledger is begun when it starts (`campaigns.start_campaign` with a chunk size:
the first chunk of `Config.ledger_chunk` of the list's subscribers, in the campaign's own
transaction). Every sender of the campaign — the one that started it, a `--worker`, a resume
after a crash, the service carrying it on — then writes the rest, a chunk a transaction
(`store.ledger.write_chunk`), while it claims and sends what is written; the campaign keeps how
far the writing got, so that whoever comes next goes on from there. The rows are written with
the languages and the segment the campaign started with, and consent is checked when a row is
claimed and again before its message goes out, as for every row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from ..config import Config
from ..people.segments import check_expression
from ..segment_language import Filter
from ..store import Campaign, Store
from ..store import campaigns as stored
from ..store import ledger as outbox
from . import campaigns

__all__ = ["LedgerWriter", "campaign_segment"]


def campaign_segment(session: Session, config: Config, campaign: Campaign) -> Filter | None:
    """The checked filter of the segment the campaign was started for (None: the whole list).
    Raises SegmentError when its expression names what no longer exists."""
    expression = (campaign.source or {}).get("expression")
    if not (campaign.source or {}).get("segment") or expression is None:
        return None
    return check_expression(session, config, expression)


class LedgerWriter:
    """Writes a campaign's ledger on, one chunk per `write_next` (each in a transaction of its
    own: call it from a database thread)."""

    def __init__(self, store: Store, config: Config, campaign_id: int, *, clock: Callable[[], datetime]):
        self.store = store
        self.config = config
        self.campaign_id = campaign_id
        self.clock = clock
        self._segment: tuple[Filter | None] | None = None

    def write_next(self) -> bool:
        """Write the next chunk; returns whether the ledger is whole now. Raises SegmentError
        when the campaign's segment can no longer be read (nothing is written)."""
        with self.store.session() as session:
            campaign = stored.campaign_by_id(session, self.campaign_id, fresh=True)
            if campaign is None or campaign.ledger_until is None:
                return True
            if self._segment is None:
                self._segment = (campaign_segment(session, self.config, campaign),)
            languages, default = campaigns.ledger_languages(campaign)
            _added, whole = outbox.write_chunk(session, self.campaign_id, languages=languages,
                                               default_language=default, now=self.clock(), segment=self._segment[0],
                                               chunk=self.config.ledger_chunk)
            return whole
