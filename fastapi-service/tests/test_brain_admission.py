"""Admission: maintenance modes (stored, shared) and the per-user rate limit."""

from __future__ import annotations

from typing import Any

from trollama.brain.admission import (
    MAX_TRACKED_USERS,
    Admission,
    MaintenanceMode,
    MaintenanceState,
    RateLimiter,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_slides_with_time() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock)
    assert limiter.allow("u") and limiter.allow("u")
    assert not limiter.allow("u")
    assert limiter.allow("someone-else")
    clock.now += 61
    assert limiter.allow("u")


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = RateLimiter(5, Clock())
    for i in range(MAX_TRACKED_USERS + 100):
        limiter.allow(f"user{i}")
    assert len(limiter._recent) == MAX_TRACKED_USERS


async def test_maintenance_is_shared_through_the_store(store: Any) -> None:
    clock = Clock()
    first = Admission(store, initial=MaintenanceState(), rate_limiter=RateLimiter(0), clock=clock)
    second = Admission(store, initial=MaintenanceState(), rate_limiter=RateLimiter(0), clock=clock)
    await first.set_maintenance(MaintenanceState(mode=MaintenanceMode.HARD, message="back at 5"))
    clock.now += 10
    decision = await second.check("r1", "u1")
    assert decision.error is not None and decision.error.message == "back at 5"
    await first.set_maintenance(MaintenanceState(mode=MaintenanceMode.SOFT))
    clock.now += 10
    soft = await second.check("r2", "u1")
    assert soft.admitted and soft.notice is not None and "maintenance" in soft.notice
