"""24-hour uptime and per-hour buckets, computed from samples.

Degraded counts as up for the uptime share (the service answered) but is
counted separately so the dashboard can show it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from trollama.monitor.samples import Sample, State

#: The window uptime is computed over, in hours.
UPTIME_WINDOW_HOURS = 24
SECONDS_PER_HOUR = 3600
#: An hour whose uptime share is below this is drawn as down (red); one with any
#: bad sample above it is drawn as degraded (amber).
RED_BELOW_UPTIME = 0.9


class HourBucket(BaseModel):
    """Samples of one hour: counts per state and the share that was up."""

    start: float
    up: int = 0
    degraded: int = 0
    down: int = 0
    uptime: float | None = None
    #: How the hour is drawn: up, degraded, down, or "none" without samples.
    worst: str = "none"


def uptime_share(samples: Sequence[Sample]) -> float | None:
    """Share of samples up or degraded (0..1), None without samples."""
    if not samples:
        return None
    answered = sum(1 for s in samples if s.state is not State.DOWN)
    return answered / len(samples)


def hourly_buckets(
    samples: Sequence[Sample], now: float, hours: int = UPTIME_WINDOW_HOURS
) -> list[HourBucket]:
    """One bucket per hour, oldest first, the last one holding the current hour."""
    first = (int(now) // SECONDS_PER_HOUR - hours + 1) * SECONDS_PER_HOUR
    buckets = [HourBucket(start=first + i * SECONDS_PER_HOUR) for i in range(hours)]
    for sample in samples:
        index = int((sample.at - first) // SECONDS_PER_HOUR)
        if 0 <= index < hours:
            _count(buckets[index], sample.state)
    for bucket in buckets:
        _finish(bucket)
    return buckets


def _count(bucket: HourBucket, state: State) -> None:
    if state is State.UP:
        bucket.up += 1
    elif state is State.DEGRADED:
        bucket.degraded += 1
    else:
        bucket.down += 1


def _finish(bucket: HourBucket) -> None:
    total = bucket.up + bucket.degraded + bucket.down
    if total == 0:
        return
    bucket.uptime = (bucket.up + bucket.degraded) / total
    if bucket.uptime < RED_BELOW_UPTIME:
        bucket.worst = State.DOWN.value
    elif bucket.down or bucket.degraded:
        bucket.worst = State.DEGRADED.value
    else:
        bucket.worst = State.UP.value
