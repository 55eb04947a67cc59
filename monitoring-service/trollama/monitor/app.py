"""The monitor's HTTP API and dashboard.

* ``GET /`` — the dashboard (static page; refreshes itself from the JSON API);
* ``GET /api/status`` — every target: state, last sample, 24 h uptime, hours;
* ``GET /api/alerts?limit=`` — open alerts first, then the history;
* ``GET /api/extras`` — queue depth, tokens, store stats, log cleanup;
* ``GET /health`` and ``GET /metrics`` — the monitor's own health and metrics.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Response, status
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from trollama.common.health import (
    ComponentHealth,
    HealthReport,
    HealthStatus,
    overall,
    run_checks,
)
from trollama.common.http_metrics import HttpMetricsMiddleware
from trollama.monitor.alerts import MAX_ALERTS_LISTED, Alert
from trollama.monitor.extras import Extras
from trollama.monitor.service import Monitor
from trollama.monitor.status import StatusBuilder, StatusReport

SERVICE_NAME = "monitor"
VERSION = "0.1.0"
#: Alerts listed when ``limit`` is not given.
DEFAULT_ALERTS_LISTED = 50
STATIC_DIR = Path(str(files("trollama.monitor"))) / "static"


def create_app(monitor: Monitor) -> FastAPI:
    """An app serving ``monitor``; polling starts and stops with it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await monitor.start()
        try:
            yield
        finally:
            await monitor.stop()

    app = FastAPI(
        title="Trollama monitor",
        version=VERSION,
        summary="Health, uptime and alerts of every Trollama service.",
        lifespan=lifespan,
    )
    app.add_middleware(HttpMetricsMiddleware, metrics=monitor.metrics.http)
    builder = StatusBuilder(monitor)
    _routes(app, monitor, builder)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _routes(app: FastAPI, monitor: Monitor, builder: StatusBuilder) -> None:
    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/status")
    async def api_status() -> StatusReport:
        """Every target: current state, last sample, 24-hour uptime and hourly buckets."""
        return await builder.report()

    @app.get("/api/alerts")
    async def api_alerts(
        limit: Annotated[int, Query(ge=1, le=MAX_ALERTS_LISTED)] = DEFAULT_ALERTS_LISTED,
    ) -> list[Alert]:
        """Open alerts first (newest first), then resolved ones, newest first."""
        return await monitor.alert_repo.listing(limit)

    @app.get("/api/extras")
    async def api_extras() -> Extras:
        """Queue depth and tokens (brain), store stats, log cleanup (logging service)."""
        return monitor.extras.latest

    @app.get("/health")
    async def health(response: Response) -> HealthReport:
        """The monitor's own health: its store and its poller."""
        report = await _health(monitor)
        if report.status is HealthStatus.UNHEALTHY:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return report

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(monitor.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _health(monitor: Monitor) -> HealthReport:
    async def store() -> ComponentHealth:
        ok = await monitor.store.ping()
        return ComponentHealth(status=HealthStatus.HEALTHY if ok else HealthStatus.UNHEALTHY)

    async def poller() -> ComponentHealth:
        alive = monitor.poller.alive(time.time())
        detail = f"{monitor.poller.rounds} rounds"
        state = HealthStatus.HEALTHY if alive else HealthStatus.UNHEALTHY
        return ComponentHealth(status=state, detail=detail)

    components = await run_checks({"store": store, "poller": poller})
    return HealthReport(
        status=overall(components, critical=frozenset({"store", "poller"})),
        service=SERVICE_NAME,
        version=VERSION,
        uptime_seconds=round(time.time() - monitor.started_at, 1),
        components=components,
        info={"targets": len(monitor.poller.targets), "open_alerts": monitor.alerts.open_count},
    )
