"""Pacing with a fake clock: the rate, the hourly cap over any 60 minutes, per-domain limits."""

from __future__ import annotations

import asyncio

from newsletter.sending.pacing import DomainLimits, RateLimiter


class FakeTime:
    def __init__(self):
        self.now = 1_000_000.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def run_messages(limiter: RateLimiter, n: int) -> list[float]:
    stamps = []

    async def go():
        for _ in range(n):
            await limiter.acquire()
            stamps.append(limiter.clock())

    asyncio.run(go())
    return stamps


def test_rate_is_kept():
    t = FakeTime()
    stamps = run_messages(RateLimiter(10.0, None, clock=t.clock, sleep=t.sleep), 101)
    assert 9.8 <= stamps[-1] - stamps[0] <= 10.2


def test_hourly_cap_holds_in_any_60_minutes():
    t = FakeTime()
    stamps = run_messages(RateLimiter(None, 50, clock=t.clock, sleep=t.sleep), 160)
    for i, start in enumerate(stamps):
        in_hour = sum(1 for s in stamps[i:] if s < start + 3600)
        assert in_hour <= 50
    assert stamps[-1] - stamps[0] < 4 * 3600  # and it does not wait much longer than needed


def test_unlimited_never_sleeps():
    t = FakeTime()
    run_messages(RateLimiter(None, None, clock=t.clock, sleep=t.sleep), 1000)
    assert t.slept == 0


def test_domain_limits():
    limits = DomainLimits({"Gmail.com": 2})
    assert limits.try_acquire("gmail.com") and limits.try_acquire("gmail.com")
    assert not limits.try_acquire("gmail.com")
    assert all(limits.try_acquire("example.org") for _ in range(10))
    limits.release("gmail.com")
    assert limits.try_acquire("gmail.com")


def test_domains_of_one_provider_share_one_limit():
    limits = DomainLimits({"gmail.com,googlemail.com": 2, "orange.fr": 0})
    assert limits.try_acquire("gmail.com") and limits.try_acquire("GoogleMail.com")
    assert not limits.try_acquire("gmail.com") and not limits.try_acquire("googlemail.com")
    assert all(limits.try_acquire("orange.fr") for _ in range(10))  # 0: no limit
    limits.release("googlemail.com")
    assert limits.try_acquire("gmail.com")


def test_try_acquire_counts_only_what_may_go_now():
    t = FakeTime()
    limiter = RateLimiter(2.0, 3, clock=t.clock, sleep=t.sleep, burst=1.0)
    assert limiter.try_acquire() == 0.0
    wait = limiter.try_acquire()
    assert 0.49 <= wait <= 0.51  # nothing counted: asking again says the same
    assert limiter.try_acquire() == wait
    t.now += wait
    assert limiter.try_acquire() == 0.0
    t.now += 1
    assert limiter.try_acquire() == 0.0  # the third of the hour
    t.now += 1
    assert limiter.try_acquire() > 3000  # the hourly cap: about an hour


def test_relay_pacing_each_relay_its_own():
    from newsletter.sending.pacing import RelayPacing

    t = FakeTime()
    pacing = RelayPacing({"office": (1.0, None), "spare": (None, None), "capped": (None, 1)}, clock=t.clock)
    assert pacing.try_take("office") == 0.0 and pacing.try_take("office") > 0 and not pacing.has_room("office")
    assert all(pacing.try_take("spare") == 0.0 for _ in range(100)) and pacing.has_room("spare")
    assert pacing.try_take("capped") == 0.0 and not pacing.has_room("capped")
    assert pacing.try_take("unknown") == 0.0 and pacing.try_take(None) == 0.0
    assert not RelayPacing({"a": (None, None)}, clock=t.clock)  # no relay has a pace: nothing to keep
