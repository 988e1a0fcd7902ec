"""Outgoing webhooks: events read from the store, queued durably, delivered signed, retried.

    the consent log ─┐
    bounce records ──┼─► collect (cursors) ─► webhook_deliveries (one per event and endpoint)
    finished campaigns┘                               │
                                    deliver_due: claim ─► POST, signed (Standard Webhooks)
                                                          ├─ 2xx: delivered
                                                          └─ else: again after 5 s, 5 min, 30 min,
                                                             2 h, 5 h, 10 h, 10 h; then failed (kept)

Events come from what the store records anyway — the append-only consent log, the bounce
records, the campaigns' `finished_at` — read past a cursor kept in the store, so no code path
that signs people up, unsubscribes them or records a bounce has to remember to announce it, and
an event is never lost when no receiver is up: its delivery waits in the queue. Each attempt is
logged (`webhook_attempts`). A body is frozen when queued; each attempt is signed afresh (its
timestamp). Events are read once they are `settle` old, so that a transaction still open when
the producer runs (PostgreSQL hands out ids before commit) is not passed over.

An event goes to the endpoints that take its name and existed when it happened.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
from sqlalchemy.orm import Session

from ..errors import InvalidField
from ..statuses import BounceKind, ConsentKind, DeliveryStatus
from ..store import ledger
from ..store import webhooks as stored
from ..store.webhooks import DeliveryLine
from .signing import new_secret, signed_headers

if TYPE_CHECKING:
    from ..installation import Newsletter

__all__ = ["EVENTS", "BACKOFF", "EndpointLine", "DeliveryPass", "DeliveryLine", "add_webhook", "list_webhooks",
           "remove_webhook", "deliveries", "delivery_attempts", "retry_failed", "collect_events", "deliver_due"]

#: The event names an endpoint can take, and the `type` each has in the payload.
EVENTS = {
    "subscribe": "subscriber.subscribed",
    "confirm": "subscriber.confirmed",
    "unsubscribe": "subscriber.unsubscribed",
    "bounce": "subscriber.bounced",
    "complaint": "subscriber.complained",
    "campaign_finished": "campaign.finished",
}
_CONSENT = {ConsentKind.SIGNUP: "subscribe", ConsentKind.IMPORTED: "subscribe", ConsentKind.CONFIRMED: "confirm",
            ConsentKind.UNSUBSCRIBED: "unsubscribe"}
_BOUNCE = {BounceKind.HARD: "bounce", BounceKind.SOFT: "bounce", BounceKind.COMPLAINT: "complaint"}
#: The wait after each failed attempt; after the last, the delivery is failed (kept, retryable).
BACKOFF = (timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
           timedelta(hours=5), timedelta(hours=10), timedelta(hours=10))
LEASE = timedelta(minutes=2)
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class EndpointLine(NamedTuple):
    name: str
    url: str
    events: tuple[str, ...]
    created_at: datetime


class DeliveryPass(NamedTuple):
    """What one pass did: events queued, deliveries delivered, to be tried again, given up."""

    queued: int
    delivered: int
    retrying: int
    failed: int


class _Event(NamedTuple):
    key: str
    name: str
    at: datetime
    data: dict[str, Any]


# -- endpoints ----------------------------------------------------------------------------------

def add_webhook(newsletter: Newsletter, name: str, url: str, events: Iterable[str] = ()) -> tuple[EndpointLine, str]:
    """Add a receiver of `events` (default: every one); returns it and its `whsec_…` secret.
    Raises InvalidField (name, url, event)."""
    chosen = sorted(set(events) or set(EVENTS))
    if not _NAME.match(name or ""):
        raise InvalidField("name", "use lower-case letters, digits and hyphens (e.g. civicrm)")
    if not re.match(r"^https?://[^/\s]+", url or ""):
        raise InvalidField("url", "give an http:// or https:// URL")
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise InvalidField("event", f"{unknown[0]!r} is not one of {', '.join(EVENTS)}")
    secret = new_secret()
    with newsletter.store.session() as session:
        if stored.find_endpoint(session, name) is not None:
            raise InvalidField("name", f"a webhook {name!r} exists already")
        endpoint = stored.add_endpoint(session, name=name, url=url, secret=secret, events=chosen,
                                       now=newsletter.clock())
        return EndpointLine(endpoint.name, endpoint.url, tuple(endpoint.events), endpoint.created_at), secret


def list_webhooks(newsletter: Newsletter) -> list[EndpointLine]:
    with newsletter.store.session() as session:
        return [EndpointLine(e.name, e.url, tuple(e.events), e.created_at) for e in stored.all_endpoints(session)]


def _endpoint_id(session: Session, name: str | None) -> int | None:
    if name is None:
        return None
    endpoint = stored.find_endpoint(session, name)
    if endpoint is None:
        raise InvalidField("name", f"there is no webhook {name!r}")
    return endpoint.id


def remove_webhook(newsletter: Newsletter, name: str) -> None:
    """Remove a receiver and its deliveries. Raises InvalidField (no such webhook)."""
    with newsletter.store.session() as session:
        _endpoint_id(session, name)
        stored.delete_endpoint(session, stored.find_endpoint(session, name))


def deliveries(newsletter: Newsletter, *, name: str | None = None, status: DeliveryStatus | None = None,
               limit: int = 50) -> list[DeliveryLine]:
    """Deliveries (of the webhook `name`, in `status`), newest first."""
    with newsletter.store.session() as session:
        return stored.delivery_lines(session, endpoint_id=_endpoint_id(session, name), status=status, limit=limit)


def delivery_attempts(newsletter: Newsletter, delivery_id: int) -> list[tuple]:
    """Each attempt of a delivery: (at, status code or None, error or None, milliseconds)."""
    with newsletter.store.session() as session:
        return stored.attempts_of(session, delivery_id)


def retry_failed(newsletter: Newsletter, name: str | None = None) -> int:
    """Failed deliveries (of the webhook `name`) queued again, due now; returns how many."""
    with newsletter.store.session() as session:
        return stored.requeue_failed(session, endpoint_id=_endpoint_id(session, name), now=newsletter.clock())


# -- events ---------------------------------------------------------------------------------------

def _when(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _read_events(session: Session, *, before: datetime, limit: int) -> list[_Event]:
    found: list[_Event] = []
    last = stored.cursor(session, "consent")
    rows = [r for r in stored.consent_after(session, last, list(_CONSENT), limit=limit) if r[1] <= before]
    for event_id, at, kind, channel, email, slug, source in rows:
        found.append(_Event(f"consent:{event_id}", _CONSENT[kind], at, {
            "email": email, "list": slug, "channel": channel.value, "source": source, "at": _when(at)}))
    if rows:
        stored.set_cursor(session, "consent", rows[-1][0])
    last = stored.cursor(session, "bounce")
    rows = [r for r in stored.bounces_after(session, last, limit=limit) if r[1] <= before]
    for event_id, at, kind, status, reason, outcome, email, campaign, source, provider in rows:
        if kind in _BOUNCE:
            found.append(_Event(f"bounce:{event_id}", _BOUNCE[kind], at, {
                "email": email, "kind": kind.value, "status": status, "reason": reason, "outcome": outcome,
                "campaign": campaign, "source": source, "provider": provider, "at": _when(at)}))
    if rows:
        stored.set_cursor(session, "bounce", rows[-1][0])
    last = stored.cursor(session, "campaign")
    after = _EPOCH + timedelta(milliseconds=last)
    rows = [r for r in stored.finished_after(session, after, limit=limit) if r[4] <= before]
    for campaign_id, slug, list_slug, subject, finished_at in rows:
        counts = ledger.count_rows(session, campaign_id)._asdict()
        found.append(_Event(f"campaign:{campaign_id}:{finished_at.isoformat()}", "campaign_finished", finished_at,
                            {"slug": slug, "list": list_slug, "subject": subject, "counts": counts,
                             "finished_at": _when(finished_at)}))
    if rows:
        stored.set_cursor(session, "campaign", int((rows[-1][4] - _EPOCH) / timedelta(milliseconds=1)))
    return found


def _message_id(key: str) -> str:
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def collect_events(session: Session, *, now: datetime, settle: timedelta = timedelta(seconds=10),
                   limit: int = 1000) -> int:
    """Read the events past the cursors (those at least `settle` old) and queue one delivery
    per event and endpoint that takes it; returns how many were queued."""
    endpoints = stored.all_endpoints(session)
    events = _read_events(session, before=now - settle, limit=limit)
    if not endpoints or not events:
        return 0
    done = stored.existing_keys(session, [e.key for e in events])
    rows = []
    for event in events:
        body = json.dumps({"type": EVENTS[event.name], "timestamp": event.at.isoformat(), "data": event.data},
                          ensure_ascii=False, separators=(",", ":"))
        for endpoint in endpoints:
            if event.name in endpoint.events and endpoint.created_at <= event.at and (endpoint.id, event.key) not in done:
                rows.append({"endpoint_id": endpoint.id, "event_key": event.key, "event_type": EVENTS[event.name],
                             "message_id": _message_id(event.key), "body": body, "created_at": now})
    stored.add_deliveries(session, rows)
    return len(rows)


# -- delivering -------------------------------------------------------------------------------------

def _post(client: httpx.Client, url: str, headers: dict[str, str], body: bytes) -> tuple[int | None, str | None]:
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return None, f"no answer within {client.timeout.read or client.timeout.connect} s"
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, (response.text or response.reason_phrase or "")[:500]


def deliver_due(newsletter: Newsletter, *, timeout: float = 10.0, limit: int = 100,
                settle: timedelta = timedelta(seconds=10), client: httpx.Client | None = None) -> DeliveryPass:
    """One pass: queue new events, then deliver what is due (each POST waits `timeout` seconds
    at most). Safe to run in several processes at once (deliveries are held while sent)."""
    now = newsletter.clock()
    with newsletter.store.session() as session:
        queued = collect_events(session, now=now, settle=settle)
    with newsletter.store.session() as session:
        claimed = stored.claim_due(session, now, now + LEASE, limit=limit)
    own = client is None
    client = client or httpx.Client(timeout=timeout, follow_redirects=False)
    delivered = retrying = failed = 0
    try:
        for item in claimed:
            at = newsletter.clock()
            body = item.body.encode("utf-8")
            started = time.monotonic()
            code, error = _post(client, item.url, signed_headers(item.secret, item.message_id, at, body), body)
            took = int((time.monotonic() - started) * 1000)
            attempt = item.attempts + 1
            if error is None:
                status, next_at = DeliveryStatus.DELIVERED, None
                delivered += 1
            elif attempt > len(BACKOFF):
                status, next_at = DeliveryStatus.FAILED, None
                failed += 1
            else:
                status, next_at = DeliveryStatus.PENDING, at + BACKOFF[attempt - 1]
                retrying += 1
            with newsletter.store.session() as session:
                stored.record_attempt(session, item.id, at=at, status_code=code, error=error, duration_ms=took,
                                      status=status, next_attempt_at=next_at)
    finally:
        if own:
            client.close()
    return DeliveryPass(queued, delivered, retrying, failed)
