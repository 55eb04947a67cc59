"""The status of every target as the dashboard shows it (``GET /api/status``)."""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel

from trollama.monitor.alerts import Alert
from trollama.monitor.samples import Sample
from trollama.monitor.service import Monitor
from trollama.monitor.targets import Target
from trollama.monitor.uptime import (
    SECONDS_PER_HOUR,
    UPTIME_WINDOW_HOURS,
    HourBucket,
    hourly_buckets,
    uptime_share,
)

#: Fastest and slowest dashboard refresh, in seconds.
MIN_REFRESH_SECONDS = 0.5
MAX_REFRESH_SECONDS = 5.0


class TargetStatus(BaseModel):
    """One tile of the dashboard."""

    name: str
    state: str
    latency_ms: float | None = None
    reason: str = ""
    last_sample_at: float | None = None
    uptime_24h: float | None = None
    samples_24h: int = 0
    degraded_24h: int = 0
    hours: list[HourBucket]
    alert: Alert | None = None


class StatusReport(BaseModel):
    generated_at: float
    poll_seconds: float
    refresh_seconds: float
    targets: list[TargetStatus]


def refresh_seconds(poll_seconds: float) -> float:
    """How often the dashboard should refetch: the poll interval, clamped."""
    return min(MAX_REFRESH_SECONDS, max(MIN_REFRESH_SECONDS, poll_seconds))


class StatusBuilder:
    """Builds the report, reusing it until the next poll round completes."""

    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor
        self._cached: tuple[int, StatusReport] | None = None
        self._lock = asyncio.Lock()

    async def report(self) -> StatusReport:
        """The status of every target (cached per poll round)."""
        async with self._lock:
            rounds = self._monitor.poller.rounds
            if self._cached is None or self._cached[0] != rounds or rounds == 0:
                self._cached = (rounds, await self._build())
            return self._cached[1]

    async def _build(self) -> StatusReport:
        now = time.time()
        poll = self._monitor.settings.monitor_poll_seconds
        targets = [await self._target(t, now) for t in self._monitor.poller.targets]
        return StatusReport(
            generated_at=now,
            poll_seconds=poll,
            refresh_seconds=refresh_seconds(poll),
            targets=targets,
        )

    async def _target(self, target: Target, now: float) -> TargetStatus:
        start = now - UPTIME_WINDOW_HOURS * SECONDS_PER_HOUR
        samples = await self._monitor.samples.since(target.name, start)
        last: Sample | None = self._monitor.poller.latest.get(target.name)
        if last is None and samples:
            last = samples[-1]
        return TargetStatus(
            name=target.name,
            state=last.state.value if last else "unknown",
            latency_ms=last.latency_ms if last else None,
            reason=last.reason if last else "not polled yet",
            last_sample_at=last.at if last else None,
            uptime_24h=uptime_share(samples),
            samples_24h=len(samples),
            degraded_24h=sum(1 for s in samples if s.state.value == "degraded"),
            hours=hourly_buckets(samples, now),
            alert=self._monitor.alerts.open_for(target.name),
        )
