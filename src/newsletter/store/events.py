"""The installation's event log as the API and the webhooks read it: the consent log, in order."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ConsentEvent, MailingList, Subscriber

__all__ = ["events_after"]


def events_after(session: Session, after_id: int, *, limit: int) -> list[tuple]:
    """Consent events with an id above `after_id`, oldest first, at most `limit`: rows of
    (id, at, kind, channel, email, list slug or None, source, note)."""
    query = (select(ConsentEvent.id, ConsentEvent.at, ConsentEvent.kind, ConsentEvent.channel, Subscriber.email,
                    MailingList.slug, ConsentEvent.source, ConsentEvent.note)
             .join(Subscriber, Subscriber.id == ConsentEvent.subscriber_id)
             .outerjoin(MailingList, MailingList.id == ConsentEvent.list_id)
             .where(ConsentEvent.id > after_id).order_by(ConsentEvent.id).limit(limit))
    return [tuple(row) for row in session.execute(query)]
