"""The monitor's parts wired together, with one start/stop lifecycle."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge

from trollama.common.metrics import HttpMetrics
from trollama.common.store.base import ItemStore
from trollama.monitor.alerts import AlertEngine, AlertRepository
from trollama.monitor.extras import ExtrasCollector
from trollama.monitor.notifier import WebhookNotifier
from trollama.monitor.poller import Poller
from trollama.monitor.samples import Sample, SampleRepository, State
from trollama.monitor.settings import MonitorSettings
from trollama.monitor.targets import parse_targets

#: Connections kept open to the polled services.
MAX_HTTP_CONNECTIONS = 50


@dataclass
class MonitorMetrics:
    """The monitor's own Prometheus metrics, in a registry of its own."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.http = HttpMetrics(self.registry, "monitor")
        self.polls = Counter(
            "trollama_monitor_polls", "Completed poll rounds.", registry=self.registry
        )
        self.target_up = Gauge(
            "trollama_monitor_target_up",
            "1 when the target answered (up or degraded), 0 when down.",
            ["target"],
            registry=self.registry,
        )
        self.target_degraded = Gauge(
            "trollama_monitor_target_degraded",
            "1 when the target reports degraded.",
            ["target"],
            registry=self.registry,
        )
        self.alerts_open = Gauge(
            "trollama_monitor_alerts_open", "Open alerts.", registry=self.registry
        )

    def record(self, samples: Sequence[Sample], open_alerts: int) -> None:
        """Update the gauges after one poll round."""
        self.polls.inc()
        for s in samples:
            self.target_up.labels(s.target).set(0 if s.state is State.DOWN else 1)
            self.target_degraded.labels(s.target).set(1 if s.state is State.DEGRADED else 0)
        self.alerts_open.set(open_alerts)


class Monitor:
    """Store, HTTP client, poller, alert engine and extras of one monitor process."""

    def __init__(self, settings: MonitorSettings, store: ItemStore) -> None:
        self.settings = settings
        self.store = store
        self.started_at = time.time()
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=MAX_HTTP_CONNECTIONS),
            timeout=settings.monitor_timeout_seconds,
            follow_redirects=False,
        )
        self.metrics = MonitorMetrics()
        self.samples = SampleRepository(store)
        self.alert_repo = AlertRepository(store)
        self.notifier = WebhookNotifier(self.client, settings.alert_webhook_url)
        self.alerts = AlertEngine(
            self.alert_repo, self.notifier, raise_after=settings.monitor_alert_after_samples
        )
        targets = parse_targets(settings.monitor_targets)
        self.extras = ExtrasCollector(
            self.client,
            targets,
            self.samples,
            store.ping,
            lambda: self.alerts.open_count,
            timeout=settings.monitor_timeout_seconds,
        )
        self.poller = Poller(
            self.client,
            targets,
            self.samples,
            self.alerts,
            interval=settings.monitor_poll_seconds,
            timeout=settings.monitor_timeout_seconds,
            on_round=self._after_round,
        )

    async def start(self) -> None:
        """Create missing tables, read open alerts back and start polling."""
        await self.store.ensure_tables()
        await self.alerts.load()
        self.poller.start()

    async def stop(self) -> None:
        """Stop polling, finish webhook calls, close the client and the store."""
        await self.poller.stop()
        await self.notifier.drain()
        await self.client.aclose()
        await self.store.close()

    async def _after_round(self, samples: Sequence[Sample]) -> None:
        self.metrics.record(samples, self.alerts.open_count)
        await self.extras.collect()
