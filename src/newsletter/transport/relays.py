"""Several relays: weights, per-relay connection limits, routing by From domain, failover.

`RelayPool.connector(from_domain)` is a `Connector` for the sender: each new connection goes to
one of the relays that serve the From domain (a relay with no `from_domains` serves all),
chosen at random by weight among those not cooling off and under their `max_connections`. A
relay that refuses the login or cannot be reached (`DeliveryError`) is left out for `cool_off`
and the connection is opened on another; only when none is left does the connector raise.
What each relay did is counted (`counts()`). A `prefer` predicate (the sender's per-relay
pacing) steers new connections to relays with room. Knows no ledger and no person.

Personal mail (confirmations, welcomes and catch-ups, staff invitations and resets, test
sends) opens its connections with `personal_connector(config)`: through one pool per process
(`shared_pool`, kept across calls so that a relay's cool-off and counts hold between one mail
and the next) when `[relays.*]` are configured — `smtp_url` is then never used — else to
`smtp_url`. `deliver_once` hands one message over on a connection of its own.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from ..config import Config, RelaySpec, SmtpSettings
from ..errors import DeliveryError
from ..texts import N_, Text
from .connection import Reply, SmtpConnection, open_smtp

__all__ = ["Connector", "RelayCounts", "RelayPool", "relay_pool", "shared_pool", "personal_connector",
           "deliver_once"]

#: Opens a relay connection; raises DeliveryError when no relay can be used.
Connector = Callable[[], Awaitable[SmtpConnection]]


class RelayCounts(NamedTuple):
    """One relay's record in this pool: connections opened, refused or failed, open now, cooling until."""

    opened: int
    failed: int
    open_now: int
    cooling_until: datetime | None


@dataclass
class _Relay:
    spec: RelaySpec
    settings: SmtpSettings
    opened: int = 0
    failed: int = 0
    open_now: int = 0
    cooling_until: datetime | None = None
    last_error: str = ""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class RelayPool:
    relays: list[_Relay]
    cool_off: timedelta = timedelta(minutes=5)
    clock: Callable[[], datetime] = _utc_now
    opener: Callable[[SmtpSettings], Awaitable[SmtpConnection]] = open_smtp
    rng: random.Random = field(default_factory=random.Random)
    #: When set, new connections go to relays it says have room, where there are any (the
    #: sender's per-relay pacing: a relay at its rate is not a failure, only not preferred).
    prefer: Callable[[str], bool] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _serving(self, from_domain: str) -> list[_Relay]:
        domain = from_domain.lower()
        return [r for r in self.relays if not r.spec.from_domains or domain in r.spec.from_domains]

    def _available(self, from_domain: str) -> list[_Relay]:
        now = self.clock()
        return [r for r in self._serving(from_domain)
                if (r.cooling_until is None or r.cooling_until <= now)
                and (not r.spec.max_connections or r.open_now < r.spec.max_connections)]

    async def connect(self, from_domain: str) -> SmtpConnection:
        """A connection through one of the relays serving `from_domain`. Raises DeliveryError
        when every one of them refused, is cooling off or is at its connection limit.

        The chosen relay's slot is taken before the connection is opened, under a lock, so that
        connections opened at once (from one event loop or from several threads) never exceed
        its `max_connections`; a failed opening gives the slot back."""
        if not self._serving(from_domain):
            raise DeliveryError(Text.of(N_("no relay serves the From domain %(domain)s"), domain=from_domain))
        errors: dict[str, Text] = {}  # what each relay tried said
        while True:
            with self._lock:
                choices = [r for r in self._available(from_domain)
                           if r.spec.name not in errors]
                if not choices:
                    detail = _each_said(errors) if errors else Text(N_("every relay is cooling off or at its "
                                                                         "connection limit"))
                    raise DeliveryError(Text.of(N_("no relay could be used: %(detail)s"), detail=detail))
                if self.prefer is not None:
                    choices = [r for r in choices if self.prefer(r.spec.name)] or choices
                relay = self.rng.choices(choices, weights=[r.spec.weight for r in choices])[0]
                relay.open_now += 1
            try:
                connection = await self.opener(relay.settings)
            except DeliveryError as exc:
                with self._lock:
                    relay.open_now -= 1
                    relay.failed += 1
                    relay.cooling_until = self.clock() + self.cool_off
                    relay.last_error = str(exc)
                errors[relay.spec.name] = exc.said
                continue
            except BaseException:
                with self._lock:
                    relay.open_now -= 1
                raise
            with self._lock:
                relay.opened += 1
            _release_on_close(connection, relay, self._lock)
            connection.relay = relay.spec.name
            return connection

    def can_open(self, from_domain: str, *, besides: str | None, having: Callable[[str], bool]) -> bool:
        """Whether a new connection for `from_domain` could go to a relay other than `besides`
        (not cooling off, under its connection limit) of which `having(name)` is true."""
        return any(r.spec.name != besides and having(r.spec.name) for r in self._available(from_domain))

    def connector(self, from_domain: str) -> Callable[[], Awaitable[SmtpConnection]]:
        """A `Connector` for mail from `from_domain`."""
        return lambda: self.connect(from_domain)

    def counts(self) -> dict[str, RelayCounts]:
        with self._lock:
            return {r.spec.name: RelayCounts(r.opened, r.failed, r.open_now, r.cooling_until) for r in self.relays}


def _release_on_close(connection: SmtpConnection, relay: _Relay, lock: threading.Lock) -> None:
    close = connection.close
    released = False

    async def close_and_release() -> None:
        nonlocal released
        try:
            await close()
        finally:
            if not released:
                released = True
                with lock:
                    relay.open_now -= 1

    connection.close = close_and_release  # type: ignore[method-assign]


def relay_pool(specs: Iterable[RelaySpec], *, cool_off: timedelta = timedelta(minutes=5),
               clock: Callable[[], datetime] = _utc_now,
               opener: Callable[[SmtpSettings], Awaitable[SmtpConnection]] = open_smtp,
               eight_bit: bool = False) -> RelayPool:
    """A pool of the configured relays (`eight_bit`: the mail has 8-bit bodies, so each relay
    must offer 8BITMIME, as `eight_bit_mime` asks of `smtp_url`). Raises ConfigError for a bad
    relay URL."""
    return RelayPool([_Relay(spec, replace(SmtpSettings.from_url(spec.url), eight_bit=eight_bit)) for spec in specs],
                     cool_off=cool_off, clock=clock, opener=opener)


_SHARED: dict[tuple, RelayPool] = {}
_SHARED_LOCK = threading.Lock()
#: Pools kept at once (one per configuration and clock: one in production, a few in tests).
_SHARED_MAX = 16


def shared_pool(config: Config, *, clock: Callable[[], datetime] = _utc_now) -> RelayPool:
    """This process's pool of `config.relays` for personal mail: made at the first call, the
    same one afterwards (per relays, cool-off, 8-bit setting and clock), so that a relay that
    refused one mail is left out for the next ones too, from any thread. Raises ConfigError
    for a bad relay URL, ValueError when no relay is configured."""
    if not config.relays:
        raise ValueError("no [relays.*] are configured")
    key = (config.relays, config.relay_cool_off_seconds, config.eight_bit_mime, clock)
    with _SHARED_LOCK:
        pool = _SHARED.get(key)
        if pool is None:
            pool = relay_pool(config.relays, cool_off=timedelta(seconds=config.relay_cool_off_seconds), clock=clock,
                              eight_bit=config.eight_bit_mime)
            if len(_SHARED) >= _SHARED_MAX:
                del _SHARED[next(iter(_SHARED))]
            _SHARED[key] = pool
        return pool


def personal_connector(config: Config, *, clock: Callable[[], datetime] = _utc_now) -> Connector:
    """How personal mail opens a connection: through `shared_pool` — routed by the From
    domain of `from_address`, failing over from a relay that refuses the login or cannot be
    reached, which then cools off — when `[relays.*]` are configured (`smtp_url` is then never
    tried), else to `smtp_url`. The connector raises DeliveryError when no relay can be used."""
    if config.relays:
        return shared_pool(config, clock=clock).connector(config.from_address.rpartition("@")[2])
    settings = config.smtp
    return lambda: open_smtp(settings)


async def deliver_once(connect: Connector, sender: str, recipient: str, data: bytes) -> tuple[str | None, Reply]:
    """Open a connection with `connect`, hand over one message (`data` with CRLF line ends),
    close it: (the relay that answered, its reply). Raises DeliveryError when no relay can be
    used; a refusal of the message is the reply, not an exception."""
    connection = await connect()
    try:
        return connection.relay, await connection.deliver(sender, recipient, data, crlf=True)
    finally:
        await connection.close()


def _each_said(errors: dict[str, Text]) -> Text:
    """What each relay tried said, as "relay: …; relay: …", each saying kept translatable."""
    template = "; ".join(f"%(relay{i})s: %(said{i})s" for i in range(len(errors)))
    return Text(template, tuple(item for i, (name, said) in enumerate(errors.items())
                                for item in ((f"relay{i}", name), (f"said{i}", said))))
