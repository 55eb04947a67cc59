"""Health checks run concurrently; a hanging or failing check is a report, not a hang."""

from __future__ import annotations

import asyncio

from trollama.common.health import ComponentHealth, HealthStatus, overall, run_checks


async def fine() -> ComponentHealth:
    return ComponentHealth(status=HealthStatus.HEALTHY)


async def hangs() -> ComponentHealth:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


async def breaks() -> ComponentHealth:
    raise ConnectionRefusedError("secret-host:1234 refused")


async def test_hanging_and_failing_checks_become_unhealthy() -> None:
    results = await run_checks({"db": fine, "model": hangs, "queue": breaks}, timeout=0.2)
    assert results["db"].status is HealthStatus.HEALTHY
    assert results["model"].status is HealthStatus.UNHEALTHY
    assert "no answer" in results["model"].detail
    assert results["queue"].detail == "ConnectionRefusedError"


def test_overall_status_depends_on_critical_components() -> None:
    down = ComponentHealth(status=HealthStatus.UNHEALTHY)
    up = ComponentHealth(status=HealthStatus.HEALTHY)
    assert overall({"store": down, "model": up}, frozenset({"store"})) is HealthStatus.UNHEALTHY
    assert overall({"store": up, "model": down}, frozenset({"store"})) is HealthStatus.DEGRADED
    assert overall({"store": up, "model": up}, frozenset({"store"})) is HealthStatus.HEALTHY
