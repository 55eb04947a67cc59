"""The relay's health endpoint: Discord connected, brain connected, gateway latency."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from trollama.common.health import ComponentHealth, HealthReport, HealthStatus, overall

VERSION = "0.1.0"


def health_app(report: Callable[[], HealthReport]) -> web.Application:
    async def handle(_: web.Request) -> web.Response:
        body = report()
        code = 503 if body.status is HealthStatus.UNHEALTHY else 200
        return web.Response(
            text=body.model_dump_json(), status=code, content_type="application/json"
        )

    app = web.Application()
    app.router.add_get("/health", handle)
    return app


def relay_report(
    *, discord_ready: bool, latency_s: float | None, brain_state: str, started_at: float,
    pending: int,
) -> HealthReport:  # fmt: skip
    """Unhealthy without Discord; degraded while the brain is away (requests are kept)."""
    up, down = HealthStatus.HEALTHY, HealthStatus.UNHEALTHY
    latency_ms = None if latency_s is None or latency_s != latency_s else latency_s * 1000
    components = {
        "discord": ComponentHealth(
            status=up if discord_ready else down,
            detail="connected" if discord_ready else "not connected",
            latency_ms=None if latency_ms is None else round(latency_ms, 1),
        ),
        "brain": ComponentHealth(
            status=up if brain_state == "connected" else down, detail=brain_state
        ),
    }
    return HealthReport(
        status=overall(components, critical=frozenset({"discord"})),
        service="trollama-relay",
        version=VERSION,
        uptime_seconds=round(time.time() - started_at, 1),
        components=components,
        info={
            "websocket_connected": brain_state == "connected",
            "pending_requests": pending,
        },
    )
