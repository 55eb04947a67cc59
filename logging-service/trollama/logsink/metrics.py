"""The sink's counters: plain numbers for ``/health`` and Prometheus metrics for ``/metrics``."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge

from trollama.logsink.records import Outcome

LOG_RECORDS_TOTAL = "trollama_log_records_total"
LOG_CLEANUP_RUNS_TOTAL = "trollama_log_cleanup_runs_total"
LOG_FILES_DELETED_TOTAL = "trollama_log_files_deleted_total"
LOG_LINES_RECEIVED_TOTAL = "trollama_log_lines_received_total"
LOG_CONNECTIONS = "trollama_log_connections"
LOG_FALLBACK_ACTIVE = "trollama_log_fallback_active"


class SinkStats:
    """Counts lines by outcome, connections and cleanups, in both forms."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = 0
        self.outcomes = dict.fromkeys(Outcome, 0)
        self.connections = 0
        self.cleanup_runs = 0
        self.dirs_deleted = 0
        self.files_deleted = 0
        self.last_cleanup_at: datetime | None = None
        self._received = _counter(LOG_LINES_RECEIVED_TOTAL, "Lines received.", registry)
        self._records = Counter(
            LOG_RECORDS_TOTAL.removesuffix("_total"),
            "Received lines by outcome.",
            ["outcome"],
            registry=registry,
        )
        for outcome in Outcome:
            self._records.labels(outcome.value)
        self._cleanups = _counter(LOG_CLEANUP_RUNS_TOTAL, "Retention cleanup runs.", registry)
        self._deleted = _counter(LOG_FILES_DELETED_TOTAL, "Files deleted by cleanup.", registry)
        self._connections = Gauge(LOG_CONNECTIONS, "Open log connections.", registry=registry)
        self.fallback_gauge = Gauge(
            LOG_FALLBACK_ACTIVE, "1 while writing to the fallback directory.", registry=registry
        )

    def count(self, outcome: Outcome, lines: int = 1) -> None:
        """Count ``lines`` received lines that ended as ``outcome``."""
        if lines:
            self.received += lines
            self._received.inc(lines)
            self.outcomes[outcome] += lines
            self._records.labels(outcome.value).inc(lines)

    def connection(self, delta: int) -> None:
        """A connection opened (+1) or closed (-1)."""
        self.connections += delta
        self._connections.set(self.connections)

    def cleanup(self, at: datetime, dirs: int, files: int) -> None:
        """Record one retention run."""
        self.cleanup_runs += 1
        self.dirs_deleted += dirs
        self.files_deleted += files
        self.last_cleanup_at = at
        self._cleanups.inc()
        self._deleted.inc(files)


def _counter(name: str, doc: str, registry: CollectorRegistry) -> Counter:
    return Counter(name.removesuffix("_total"), doc, registry=registry)
