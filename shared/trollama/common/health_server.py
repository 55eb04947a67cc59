"""The health port of the services that are not web apps themselves (the relay,
the logging service): ``GET /health`` (HealthReport JSON, 503 when unhealthy)
and, when given, ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from trollama.common.health import HealthReport, HealthStatus

MetricsRenderer = Callable[[], tuple[bytes, str]]


def health_app(
    report: Callable[[], HealthReport], metrics: MetricsRenderer | None = None
) -> web.Application:
    """``/health`` from ``report``; ``/metrics`` when ``metrics`` renders them
    (body and content type, e.g. :func:`trollama.common.metrics.metrics_response`)."""

    async def handle_health(_: web.Request) -> web.Response:
        body = report()
        code = 503 if body.status is HealthStatus.UNHEALTHY else 200
        return web.Response(
            text=body.model_dump_json(), status=code, content_type="application/json"
        )

    app = web.Application()
    app.router.add_get("/health", handle_health)
    if metrics is not None:
        render = metrics

        async def handle_metrics(_: web.Request) -> web.Response:
            payload, content_type = render()
            return web.Response(body=payload, headers={"Content-Type": content_type})

        app.router.add_get("/metrics", handle_metrics)
    return app
