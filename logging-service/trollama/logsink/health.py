"""The health port: ``GET /health`` (HealthReport JSON) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry

from trollama.common.health import HealthReport, HealthStatus
from trollama.common.metrics import metrics_response


def health_app(report: Callable[[], HealthReport], registry: CollectorRegistry) -> web.Application:
    """An aiohttp app answering ``/health`` (503 when unhealthy) and ``/metrics``."""

    async def health(_: web.Request) -> web.Response:
        body = report()
        code = 503 if body.status is HealthStatus.UNHEALTHY else 200
        return web.Response(
            text=body.model_dump_json(), status=code, content_type="application/json"
        )

    async def metrics(_: web.Request) -> web.Response:
        payload, content_type = metrics_response(registry)
        return web.Response(body=payload, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    return app
