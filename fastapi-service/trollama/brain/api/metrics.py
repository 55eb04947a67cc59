"""``GET /metrics`` (Prometheus text); HTTP requests are counted by
:class:`trollama.common.http_metrics.HttpMetricsMiddleware`.

``/metrics`` needs no credential, like every Prometheus exporter: the brain
listens on loopback by default; put it behind a firewall when it does not.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Response

from trollama.brain.api.deps import ServicesDep

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
