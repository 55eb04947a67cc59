"""The brain's Prometheus metrics, one registry per :class:`~.services.Services`.

Every label value is bounded: routes are route names or templates, models are
the active profile's models or ``"other"``, error kinds are the names of the
backend error classes.
"""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from trollama.common import metrics as m
from trollama.common.protocol import Usage

SERVICE = "brain"
#: Model label of a model the active profile does not list.
OTHER_MODEL = "other"
#: Route label of a request that finished before it was routed.
UNKNOWN_ROUTE = "unknown"
#: The outcomes of ``trollama_requests_total``.
OUTCOMES = ("done", "failed", "cancelled")


class BrainMetrics:
    """Counters, gauges and histograms of one brain, on their own registry."""

    def __init__(self, known_models: Collection[str]) -> None:
        self.registry = m.new_registry()
        self._models = frozenset(known_models)
        self.http = m.HttpMetrics(self.registry, SERVICE)
        self.queue_depth = _gauge(self.registry, m.QUEUE_DEPTH, "Requests waiting in the queue.")
        self.websockets = _gauge(
            self.registry, m.WEBSOCKET_CONNECTIONS, "Open, authenticated WebSocket connections."
        )
        self.queue_wait = Histogram(
            m.QUEUE_WAIT_SECONDS,
            "Seconds from enqueue to the first lease.",
            ["service"],
            buckets=m.QUEUE_WAIT_BUCKETS_SECONDS,
            registry=self.registry,
        ).labels(SERVICE)
        self.tokens = _counter(
            self.registry,
            m.TOKENS_TOTAL,
            "Model tokens of completed answers: in (prompt) and out (completion).",
            ["direction", "route", "model"],
        )
        self.model_errors = _counter(
            self.registry, m.MODEL_ERRORS_TOTAL, "Model server failures.", ["model", "kind"]
        )
        self.requests = _counter(
            self.registry, m.REQUESTS_TOTAL, "Requests that reached an end.", ["outcome"]
        )
        for outcome in OUTCOMES:  # present from the start, so rate() sees the first one
            self.requests.labels(SERVICE, outcome)

    def model_label(self, model: str | None) -> str:
        """``model`` when the profile lists it, else ``"other"`` (bounded labels)."""
        return model if model is not None and model in self._models else OTHER_MODEL

    def observe_usage(self, route: str | None, model: str, usage: Usage) -> None:
        """Count the tokens one answer used."""
        labels = (route or UNKNOWN_ROUTE, self.model_label(model))
        self.tokens.labels(SERVICE, "in", *labels).inc(usage.prompt_tokens)
        self.tokens.labels(SERVICE, "out", *labels).inc(usage.completion_tokens)

    def model_error(self, model: str, exc: BaseException) -> None:
        """Count a failure of ``model``, by the error's class name."""
        self.model_errors.labels(SERVICE, self.model_label(model), type(exc).__name__).inc()

    def outcome(self, outcome: str) -> None:
        """Count a request ending ``done``, ``failed`` or ``cancelled``."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        self.requests.labels(SERVICE, outcome).inc()

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text of this brain and its content type."""
        return m.metrics_response(self.registry)


def _gauge(registry: CollectorRegistry, name: str, doc: str) -> Gauge:
    return Gauge(name, doc, ["service"], registry=registry).labels(SERVICE)


def _counter(registry: CollectorRegistry, name: str, doc: str, labels: list[str]) -> Counter:
    return Counter(name.removesuffix("_total"), doc, ["service", *labels], registry=registry)
