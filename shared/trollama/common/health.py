"""Health reports every service answers on ``GET /health``.

A report has an overall status and one entry per dependency. Checks run
concurrently, each with a timeout: a dependency that hangs is reported
unhealthy instead of hanging the health endpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

#: Longest a single dependency check may take, in seconds.
CHECK_TIMEOUT_SECONDS = 2.0


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class ComponentHealth(BaseModel):
    status: HealthStatus
    detail: str = ""
    latency_ms: float | None = None


class HealthReport(BaseModel):
    status: HealthStatus
    service: str
    version: str
    uptime_seconds: float
    components: dict[str, ComponentHealth] = Field(default_factory=dict)
    info: dict[str, Any] = Field(default_factory=dict)


Check = Callable[[], Awaitable[ComponentHealth]]


def overall(components: Mapping[str, ComponentHealth], critical: frozenset[str]) -> HealthStatus:
    """Unhealthy when a critical component is down, degraded when any other is not healthy."""
    statuses = {name: c.status for name, c in components.items()}
    if any(statuses[n] is HealthStatus.UNHEALTHY for n in critical if n in statuses):
        return HealthStatus.UNHEALTHY
    if any(s is not HealthStatus.HEALTHY for s in statuses.values()):
        return HealthStatus.DEGRADED
    return HealthStatus.HEALTHY


async def _timed(check: Check, timeout: float) -> ComponentHealth:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        result = ComponentHealth(status=HealthStatus.UNHEALTHY, detail=f"no answer in {timeout}s")
    except Exception as exc:  # a failing check is a report, never a 500
        result = ComponentHealth(status=HealthStatus.UNHEALTHY, detail=type(exc).__name__)
    if result.latency_ms is None:
        elapsed = (time.perf_counter() - started) * 1000
        result = result.model_copy(update={"latency_ms": round(elapsed, 2)})
    return result


async def run_checks(
    checks: Mapping[str, Check], *, timeout: float = CHECK_TIMEOUT_SECONDS
) -> dict[str, ComponentHealth]:
    """Run every check concurrently; each gets ``timeout`` seconds."""
    names = list(checks)
    results = await asyncio.gather(*(_timed(checks[n], timeout) for n in names))
    return dict(zip(names, results, strict=True))
