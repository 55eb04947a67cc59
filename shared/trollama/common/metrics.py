"""Prometheus metrics every service serves on ``GET /metrics``.

Each service builds its own :class:`~prometheus_client.CollectorRegistry`
(:func:`new_registry`) and its metric objects on it; nothing registers on
the library's global default registry, so tests can run several services in
one process. The metric names shared by several services are constants here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

HTTP_REQUESTS_TOTAL = "trollama_http_requests_total"
HTTP_REQUEST_SECONDS = "trollama_http_request_seconds"
QUEUE_DEPTH = "trollama_queue_depth"
QUEUE_WAIT_SECONDS = "trollama_queue_wait_seconds"
TOKENS_TOTAL = "trollama_tokens_total"
MODEL_ERRORS_TOTAL = "trollama_model_errors_total"
WEBSOCKET_CONNECTIONS = "trollama_websocket_connections"
REQUESTS_TOTAL = "trollama_requests_total"

#: Histogram buckets of HTTP request latency, in seconds (streams take longer).
HTTP_LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: Histogram buckets of time spent waiting in a queue, in seconds.
QUEUE_WAIT_BUCKETS_SECONDS = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
#: Route label of a request no route matched (bounded, never the raw path).
UNMATCHED_ROUTE = "unmatched"
#: Method labels kept as sent; any other method is counted as "OTHER".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def new_registry() -> CollectorRegistry:
    """A fresh registry for one service (never the process-wide default)."""
    return CollectorRegistry()


def metrics_response(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The Prometheus text exposition of ``registry`` and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


@contextmanager
def timed(observe: Callable[[float], None]) -> Iterator[None]:
    """Call ``observe`` with the seconds the block took (also when it raises)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        observe(time.perf_counter() - started)


class HttpMetrics:
    """Request counts and latency by method, route template and status."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.requests = Counter(
            HTTP_REQUESTS_TOTAL.removesuffix("_total"),
            "HTTP requests answered, by method, route template and status.",
            ["service", "method", "route", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            HTTP_REQUEST_SECONDS,
            "Seconds from request to the end of the response body.",
            ["service", "method", "route"],
            buckets=HTTP_LATENCY_BUCKETS_SECONDS,
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request; ``route`` must be a template, not a raw path."""
        method = method if method in KNOWN_METHODS else "OTHER"
        self.requests.labels(self.service, method, route, str(status)).inc()
        self.seconds.labels(self.service, method, route).observe(seconds)
