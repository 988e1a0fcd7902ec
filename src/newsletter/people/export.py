"""Everything held about one person, as typed values (`PersonRecord`) and as JSON.

What `newsletter show` prints and `newsletter export --person` writes: the person, each
subscription, the whole consent log, and (for staff) the bounces and complaints recorded about
the address and the campaigns mailed to them, each with the relay that took it and its reply. The preferences page's "download my data" sends the record `without_origins`:
a link from our mail may have been forwarded, so its holder gets no IP address or user agent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from ..addresses import address_hash
from ..errors import SuppressedAddress, UnknownSubscriber
from ..store import bounces as bounce_store
from ..store import directory as directory_store
from ..store import people as people_store
from ..store import Subscriber
from ..store.bounces import BounceLine
from ..store.directory import ReceivedRow

__all__ = ["SubscriptionState", "ConsentLine", "BounceLine", "PersonRecord", "person_record", "record_of"]


class SubscriptionState(NamedTuple):
    """One of the person's subscriptions."""

    list: str
    list_name: str
    status: str
    since: datetime | None
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None


class ConsentLine(NamedTuple):
    """One line of the person's consent log."""

    at: datetime
    event: str
    channel: str
    list: str | None
    ip: str | None
    user_agent: str | None
    source: str | None
    consent_version: str | None
    note: str | None


@dataclass(frozen=True)
class PersonRecord:
    """A person, their subscriptions (by list slug) and consent log (oldest first), and the
    bounce events about their address (oldest first; empty unless asked for)."""

    email: str
    name: str
    language: str
    status: str
    created_at: datetime | None
    subscriptions: tuple[SubscriptionState, ...]
    consent_log: tuple[ConsentLine, ...]
    bounces: tuple[BounceLine, ...] = ()
    #: The declared attributes held about them ({name: value}).
    attributes: Mapping[str, Any] = field(default_factory=dict)
    #: The consent log's IP addresses and user agents are left out (`without_origins`).
    origins_withheld: bool = False
    #: The campaigns that had a row for them, newest first (empty unless the bounces were asked for).
    received: tuple[ReceivedRow, ...] = ()

    def without_origins(self) -> "PersonRecord":
        """The record for whoever holds the person's link (a forwarded mail's reader, maybe):
        the consent log without the IP addresses and user agents, which say where and on what
        the person was. Staff hand those over on request (`newsletter export --person`)."""
        return dataclasses.replace(self, consent_log=tuple(e._replace(ip=None, user_agent=None)
                                                           for e in self.consent_log), origins_withheld=True)

    def as_json(self, *, with_bounces: bool = False) -> dict[str, Any]:
        """The record as JSON-ready values (times in ISO 8601); bounces and campaigns only `with_bounces`. A
        record `without_origins` has no `ip` and `user_agent` in its log and says so."""
        data: dict[str, Any] = {
            "email": self.email,
            "name": self.name,
            "language": self.language,
            "status": self.status,
            "created_at": _when(self.created_at),
            "attributes": dict(self.attributes),
            "subscriptions": [{**s._asdict(), "since": _when(s.since), "confirmed_at": _when(s.confirmed_at),
                               "unsubscribed_at": _when(s.unsubscribed_at)} for s in self.subscriptions],
            "consent_log": [{**e._asdict(), "at": _when(e.at)} for e in self.consent_log],
        }
        if self.origins_withheld:
            for line in data["consent_log"]:
                del line["ip"], line["user_agent"]
            data["withheld"] = ("The IP addresses and browsers of the consent log are not sent to whoever holds a "
                                "link from our mail; write to us from this address to receive them.")
        if with_bounces:
            data["bounces"] = [{"at": _when(b.at), "kind": b.kind.value, "source": b.source, "provider": b.provider,
                                "status": b.status,
                                "campaign": b.campaign_slug, "outcome": b.outcome, "reason": b.reason}
                               for b in self.bounces]
            data["campaigns"] = [{"campaign": r.campaign_slug, "status": r.status.value, "language": r.language,
                                  "sent_at": _when(r.sent_at), "relay": r.relay, "reply_code": r.reply_code,
                                  "reply": r.last_reply} for r in self.received]
        return data


def _when(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def person_record(session: Session, email: str, *, with_bounces: bool = False) -> PersonRecord:
    """Everything held about the person with this address. Raises UnknownSubscriber, or its
    SuppressedAddress when nobody has it but it is suppressed (erased, say)."""
    address = email.strip().lower()
    subscriber = people_store.find_subscriber(session, address)
    if subscriber is None:
        suppression = people_store.find_suppression(session, address_hash(address))
        if suppression is not None:
            raise SuppressedAddress(email, suppression.reason.value, suppression.at)
        raise UnknownSubscriber(email)
    return record_of(session, subscriber, with_bounces=with_bounces)


def record_of(session: Session, subscriber: Subscriber, *, with_bounces: bool = False) -> PersonRecord:
    """Everything held about `subscriber`, a row already read in `session` (as `person_record`
    gives it, without reading the row again)."""
    address = subscriber.email
    subscriptions = tuple(
        SubscriptionState(sub.mailing_list.slug, sub.mailing_list.name, sub.status.value, sub.created_at,
                          sub.confirmed_at, sub.unsubscribed_at)
        for sub in sorted(subscriber.subscriptions, key=lambda s: s.mailing_list.slug))
    log = tuple(
        ConsentLine(ev.at, ev.kind.value, ev.channel.value, ev.mailing_list.slug if ev.mailing_list else None, ev.ip,
                    ev.user_agent, ev.source, ev.consent_version, ev.note)
        for ev in people_store.consent_events(session, subscriber.id))
    bounces = tuple(bounce_store.bounce_lines(session, address_hash(address), subscriber.id)) if with_bounces else ()
    received = tuple(directory_store.received_by(session, subscriber.id)) if with_bounces else ()
    return PersonRecord(subscriber.email, subscriber.name, subscriber.language, subscriber.status.value,
                        subscriber.created_at, subscriptions, log, bounces, dict(subscriber.attributes or {}),
                        received=received)
