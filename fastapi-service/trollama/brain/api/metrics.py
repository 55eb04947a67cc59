"""``GET /metrics`` (Prometheus text) and the middleware counting HTTP requests.

``/metrics`` needs no credential, like every Prometheus exporter: the brain
listens on loopback by default; put it behind a firewall when it does not.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trollama.brain.api.deps import ServicesDep
from trollama.brain.metrics import BrainMetrics
from trollama.common.metrics import UNMATCHED_ROUTE

log = logging.getLogger(__name__)
router = APIRouter()

#: Longest the queue-depth look at the store may delay a scrape, in seconds.
QUEUE_STATS_TIMEOUT_SECONDS = 2.0


@router.get("/metrics", include_in_schema=False)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics of this brain (queue depth read from the store now)."""
    try:
        async with asyncio.timeout(QUEUE_STATS_TIMEOUT_SECONDS):
            stats = await services.queue.stats()
        services.metrics.queue_depth.set(stats.queued)
    except Exception:  # a scrape still answers; the gauge keeps its last value
        log.warning("queue depth unavailable for /metrics", exc_info=True)
    body, content_type = services.metrics.render()
    return Response(content=body, media_type=content_type)


class HttpMetricsMiddleware:
    """Counts each HTTP request by method, route template and status, and times it
    to the end of its body (a streamed answer counts its whole stream)."""

    def __init__(self, app: ASGIApp, metrics: BrainMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app fails before starting

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.http.observe(scope["method"], route_template(scope), status, seconds)


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/requests/{request_id}``), never the raw path."""
    route = scope.get("route")
    if isinstance(route, BaseRoute):
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
    return UNMATCHED_ROUTE
