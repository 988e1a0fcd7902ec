"""Pacing: how fast the sender may hand mail to the relay.

- `RateLimiter`: messages per second (a token bucket) and messages per hour (a sliding window
  of one-minute buckets that never lets more than the cap through in any 60 minutes), shared
  by all of a sender's connections.
- `RelayPacing`: each of several relays' own messages per second and per hour, asked
  without waiting, so that a connection whose relay is at its pace can move to one with room.
- `DomainLimits`: how many connections may be busy with one recipient domain at once (the big
  mailbox providers throttle senders that open too many).
- `estimated_seconds`: how long a send of N messages takes at a pace, for the faces to show.

Both take their clock and sleep as arguments, so tests run instantly with a fake clock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["RateLimiter", "RelayPacing", "DomainLimits", "Pace", "TYPICAL_RATE", "estimated_seconds"]

#: Messages per second one sender process sustains here: the estimate's speed at full speed.
TYPICAL_RATE = 1000.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Pace:
    """The limits; None means unlimited. `domain_limits` maps a domain to its concurrency."""

    rate: float | None = None
    hourly_cap: int | None = None
    domain_limits: Mapping[str, int] = field(default_factory=dict)


def estimated_seconds(messages: int, pace: Pace) -> float:
    """About how long sending `messages` takes at `pace` (at most `TYPICAL_RATE` a second)."""
    estimate = messages / min(pace.rate or TYPICAL_RATE, TYPICAL_RATE)
    if pace.hourly_cap:
        estimate = max(estimate, messages / pace.hourly_cap * 3600)
    return estimate


class RateLimiter:
    """Waits just long enough before each message to keep to `rate`/s and `hourly_cap`/h.

    `acquire()` is a coroutine shared by all connections; callers are served in turn.
    """

    def __init__(self, rate: float | None, hourly_cap: int | None, *, clock: Clock, sleep: Sleep,
                 burst: float | None = None):
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        if hourly_cap is not None and hourly_cap <= 0:
            raise ValueError("hourly_cap must be positive")
        self.rate = rate
        self.hourly_cap = hourly_cap
        self.clock = clock
        self.sleep = sleep
        self.burst = burst if burst is not None else max(1.0, (rate or 1) / 10)
        self._tokens = self.burst
        self._last = clock()
        self._minutes: deque[list] = deque()  # [minute index, count]
        self._in_hour = 0
        self._lock = asyncio.Lock()

    def _refill(self, now: float) -> None:
        if self.rate is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def _expire(self, now: float) -> None:
        minute = int(now // 60)
        while self._minutes and self._minutes[0][0] <= minute - 61:
            self._in_hour -= self._minutes.popleft()[1]

    def hour_wait(self, now: float) -> float:
        """Seconds until one more message fits in the hourly cap (0 when it fits now)."""
        if self.hourly_cap is None:
            return 0.0
        self._expire(now)
        if self._in_hour < self.hourly_cap:
            return 0.0
        # A minute's bucket is counted until a full 60 minutes after that minute ended.
        return max(0.001, (self._minutes[0][0] + 61) * 60 - now)

    def wait_time(self, now: float) -> float:
        """Seconds until one more message may go (0 when it may go now); counts nothing."""
        wait = self.hour_wait(now)
        if wait == 0 and self.rate is not None:
            self._refill(now)
            if self._tokens < 1 - 1e-9:  # float dust must not mean an endless tiny wait
                wait = (1 - self._tokens) / self.rate
        return wait

    def _count(self, now: float) -> None:
        if self.rate is not None:
            self._tokens -= 1
        if self.hourly_cap is not None:
            minute = int(now // 60)
            if self._minutes and self._minutes[-1][0] == minute:
                self._minutes[-1][1] += 1
            else:
                self._minutes.append([minute, 1])
            self._in_hour += 1

    async def acquire(self) -> None:
        """Wait until one more message may go, then count it."""
        if self.rate is None and self.hourly_cap is None:
            return
        async with self._lock:
            while True:
                now = self.clock()
                wait = self.wait_time(now)
                if wait <= 0:
                    break
                await self.sleep(wait)
            self._count(now)

    def try_acquire(self) -> float:
        """Count one more message if it may go now and return 0; else return the seconds until
        it may (nothing counted). Never waits."""
        if self.rate is None and self.hourly_cap is None:
            return 0.0
        now = self.clock()
        wait = self.wait_time(now)
        if wait > 0:
            return wait
        self._count(now)
        return 0.0


async def _never_sleeps(seconds: float) -> None:  # pragma: no cover - RelayPacing never waits
    raise AssertionError("RelayPacing does not wait")


class RelayPacing:
    """Each relay's own pace (`[relays.NAME] rate` and `hourly_cap`), kept per sender process
    on top of the campaign's: `try_take(relay)` counts one message through the relay when it
    has room now (0) or says how long until it will; `has_room(relay)` asks without counting.
    A relay with neither limit always has room."""

    def __init__(self, limits: Mapping[str, tuple[float | None, int | None]], *, clock: Clock):
        self.clock = clock
        self.limiters = {name: RateLimiter(rate, cap, clock=clock, sleep=_never_sleeps)
                         for name, (rate, cap) in limits.items() if rate is not None or cap is not None}

    def __bool__(self) -> bool:
        return bool(self.limiters)

    def try_take(self, relay: str | None) -> float:
        limiter = self.limiters.get(relay or "")
        return 0.0 if limiter is None else limiter.try_acquire()

    def has_room(self, relay: str) -> bool:
        limiter = self.limiters.get(relay)
        return limiter is None or limiter.wait_time(self.clock()) <= 0


class DomainLimits:
    """Per-domain concurrency: `try_acquire(domain)` succeeds while fewer than the domain's
    limit are busy; `release(domain)` frees a slot. Domains without a limit always succeed.

    A key may name several domains separated by commas ("gmail.com,googlemail.com"): they
    share one limit (one provider's mail servers). A later key naming a domain wins."""

    def __init__(self, limits: Mapping[str, int]):
        self.group: dict[str, str] = {}
        self.limits: dict[str, int] = {}
        for key, limit in limits.items():
            if limit <= 0:
                continue
            for domain in key.split(","):
                if domain.strip():
                    self.group[domain.strip().lower()] = key
            self.limits[key] = limit
        self.busy: dict[str, int] = {}

    def _group_of(self, domain: str) -> str | None:
        return self.group.get(domain) or self.group.get(domain.lower())

    def try_acquire(self, domain: str) -> bool:
        if not self.group:
            return True
        key = self._group_of(domain)
        if key is None:
            return True
        if self.busy.get(key, 0) >= self.limits[key]:
            return False
        self.busy[key] = self.busy.get(key, 0) + 1
        return True

    def release(self, domain: str) -> None:
        key = self._group_of(domain) if self.group else None
        if key is not None:
            self.busy[key] -= 1
