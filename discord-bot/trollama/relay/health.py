"""The relay's health server: ``/health`` (Discord connected, brain connected,
gateway latency) and ``/metrics`` (Prometheus text, no credential: the server
listens on loopback by default, like any exporter)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge

from trollama.common import metrics as m
from trollama.common.health import ComponentHealth, HealthReport, HealthStatus, overall
from trollama.common.protocol import DoneFrame, ErrorCode, ErrorFrame, RequestFrame, ServerFrame
from trollama.relay.brain_link import BrainLink, FrameHandler, LinkState

VERSION = "0.1.0"
SERVICE = "relay"


class RelayMetrics:
    """The relay's Prometheus metrics, on a registry of their own."""

    def __init__(self) -> None:
        self.registry = m.new_registry()
        registry = self.registry
        self.messages = Counter(
            "trollama_relay_messages",
            "Discord messages from people the relay saw, by whether they were for the bot.",
            ["service", "addressed"],
            registry=registry,
        )
        self.submitted = Counter(
            "trollama_relay_requests_submitted",
            "Requests handed to the brain link.",
            ["service"],
            registry=registry,
        ).labels(SERVICE)
        self.requests = Counter(
            m.REQUESTS_TOTAL.removesuffix("_total"),
            "Requests that reached an end, by their terminal frame.",
            ["service", "outcome"],
            registry=registry,
        )
        self.event_errors = Counter(
            "trollama_relay_event_errors",
            "Unhandled errors in Discord event handlers (HTTPException: a Discord API error).",
            ["service", "kind"],
            registry=registry,
        )
        self.websockets = _gauge(
            m.WEBSOCKET_CONNECTIONS, "Connections to the brain (0 or 1).", self
        )
        self.link_state = Gauge(
            "trollama_relay_brain_link_state",
            "1 for the brain link's current state, 0 for the others.",
            ["service", "state"],
            registry=registry,
        )
        self.pending = _gauge("trollama_relay_pending_requests", "Unfinished requests.", self)
        self.discord_up = _gauge("trollama_relay_discord_connected", "1 when ready.", self)
        self.latency = _gauge(
            "trollama_relay_discord_latency_seconds", "Gateway heartbeat latency.", self
        )
        for addressed in ("yes", "no"):
            self.messages.labels(SERVICE, addressed)
        for outcome in ("done", "failed", "cancelled"):
            self.requests.labels(SERVICE, outcome)

    def message(self, *, addressed: bool) -> None:
        self.messages.labels(SERVICE, "yes" if addressed else "no").inc()

    def terminal(self, frame: ServerFrame) -> None:
        """Count a request's end from its terminal frame (other frames are ignored)."""
        if isinstance(frame, DoneFrame):
            self.requests.labels(SERVICE, "done").inc()
        elif isinstance(frame, ErrorFrame) and frame.request_id:
            cancelled = frame.code is ErrorCode.CANCELLED
            self.requests.labels(SERVICE, "cancelled" if cancelled else "failed").inc()

    def event_error(self, exc: BaseException | None) -> None:
        """Count an unhandled event error by its class name (a bounded set)."""
        self.event_errors.labels(SERVICE, type(exc).__name__ if exc else "unknown").inc()

    def refresh(self, *, link: BrainLink, discord_ready: bool, latency_s: float | None) -> None:
        """Set the gauges from the live state, just before a scrape."""
        for state in LinkState:
            self.link_state.labels(SERVICE, str(state)).set(1 if link.state is state else 0)
        self.websockets.set(1 if link.state is LinkState.CONNECTED else 0)
        self.pending.set(link.pending())
        self.discord_up.set(1 if discord_ready else 0)
        known = latency_s is not None and latency_s == latency_s  # NaN before the first beat
        self.latency.set(latency_s if known and latency_s is not None else 0.0)

    def render(self) -> tuple[bytes, str]:
        return m.metrics_response(self.registry)


class MeteredBrainLink(BrainLink):
    """A :class:`BrainLink` counting submitted requests and their outcomes."""

    def __init__(self, url: str, secret: str, *, max_pending: int, metrics: RelayMetrics) -> None:
        super().__init__(url, secret, max_pending=max_pending)
        self.metrics = metrics

    async def submit(self, request: RequestFrame, handler: FrameHandler) -> None:
        async def counted(frame: ServerFrame) -> None:
            self.metrics.terminal(frame)
            await handler(frame)

        await super().submit(request, counted)
        self.metrics.submitted.inc()


def _gauge(name: str, doc: str, owner: RelayMetrics) -> Gauge:
    return Gauge(name, doc, ["service"], registry=owner.registry).labels(SERVICE)


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
