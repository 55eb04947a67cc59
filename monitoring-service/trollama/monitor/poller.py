"""The poller: every interval, probe every target at once, store, alert.

A probe has a hard deadline: a service that accepts the connection and never
answers is *down* after the timeout; it never holds up the other targets or
the next round.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from trollama.monitor.alerts import AlertEngine
from trollama.monitor.samples import Sample, SampleRepository, State
from trollama.monitor.targets import Target

#: Longest health body read, in bytes (a health report is a few hundred).
MAX_HEALTH_BODY_BYTES = 256 * 1024
#: Rounds without completing before the poller counts as stalled.
STALLED_AFTER_ROUNDS = 3

log = logging.getLogger(__name__)


def classify(status_code: int, body: bytes) -> tuple[State, str]:
    """The state a health answer means, and why."""
    reported = _reported_status(body)
    if status_code == 503 or reported == "unhealthy":
        return State.DOWN, f"HTTP {status_code}, {reported or 'unhealthy'}"
    if status_code != 200:
        return State.DOWN, f"HTTP {status_code}"
    if reported == "degraded":
        return State.DEGRADED, "reports degraded"
    return State.UP, f"reports {reported}" if reported else "HTTP 200"


def _reported_status(body: bytes) -> str | None:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    status = data.get("status") if isinstance(data, dict) else None
    return status if isinstance(status, str) else None


async def probe(client: httpx.AsyncClient, target: Target, timeout: float) -> Sample:
    """One health check of ``target``, finished within ``timeout`` seconds."""
    started = time.time()
    clock = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            status_code, body = await _fetch(client, target.url)
    except TimeoutError:
        return Sample(target.name, started, State.DOWN, None, f"no answer in {timeout:g}s")
    except httpx.ConnectError:
        return Sample(target.name, started, State.DOWN, None, "connection refused")
    except httpx.HTTPError as exc:
        return Sample(target.name, started, State.DOWN, None, type(exc).__name__)
    latency = round((time.perf_counter() - clock) * 1000, 1)
    state, reason = classify(status_code, body)
    return Sample(target.name, started, state, latency, reason)


async def _fetch(client: httpx.AsyncClient, url: str) -> tuple[int, bytes]:
    async with client.stream("GET", url) as response:
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_HEALTH_BODY_BYTES:
                break
        return response.status_code, body


RoundHook = Callable[[Sequence[Sample]], Awaitable[None]]


class Poller:
    """Polls the targets on a fixed cadence until stopped; owns its task."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        targets: Sequence[Target],
        samples: SampleRepository,
        alerts: AlertEngine,
        *,
        interval: float,
        timeout: float,
        on_round: RoundHook | None = None,
    ) -> None:
        self._client = client
        self._targets = list(targets)
        self._samples = samples
        self._alerts = alerts
        self._interval = interval
        self._timeout = timeout
        self._on_round = on_round
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0
        self._started_at = 0.0
        self.last_round_at: float | None = None
        self.latest: dict[str, Sample] = {}

    @property
    def targets(self) -> list[Target]:
        """The polled targets, in configured order."""
        return list(self._targets)

    def start(self) -> None:
        """Start polling in the background."""
        if self._task is None:
            self._started_at = time.time()
            self._task = asyncio.create_task(self._run(), name="monitor-poller")

    async def stop(self) -> None:
        """Stop polling and wait for the task to end."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def alive(self, now: float) -> bool:
        """True when the task runs and a round completed recently."""
        if self._task is None or self._task.done():
            return False
        limit = STALLED_AFTER_ROUNDS * (self._interval + self._timeout)
        return now - (self.last_round_at or self._started_at) <= limit

    async def poll_once(self) -> list[Sample]:
        """Probe every target concurrently; store and judge the samples."""
        samples = await asyncio.gather(
            *(probe(self._client, t, self._timeout) for t in self._targets)
        )
        for sample in samples:
            await self._record(sample)
        if self._on_round is not None:
            await self._on_round(samples)
        self.rounds += 1
        self.last_round_at = time.time()
        return samples

    async def _record(self, sample: Sample) -> None:
        self.latest[sample.target] = sample
        try:
            await self._samples.add(sample)
            await self._alerts.observe(sample)
        except Exception:  # a store hiccup must not stop the monitor
            log.exception("could not record the sample of %s", sample.target)

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            try:
                await self.poll_once()
            except Exception:
                log.exception("poll round failed")
            elapsed = time.perf_counter() - started
            await asyncio.sleep(max(0.0, self._interval - elapsed))
