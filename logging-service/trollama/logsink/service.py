"""The logging service assembled: TCP server, writer, retention and health port.

:class:`LogSink` owns its lifecycle: :meth:`LogSink.start` binds both ports and
starts the background tasks (retention, primary-directory probe);
:meth:`LogSink.stop` ends connections, flushes and closes every file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from trollama.common.health import ComponentHealth, HealthReport, HealthStatus, overall
from trollama.common.health_server import health_app
from trollama.common.metrics import metrics_response, new_registry
from trollama.logsink.metrics import SinkStats
from trollama.logsink.records import Outcome, Record, parse_line
from trollama.logsink.retention import cutoff_day, delete_old_days
from trollama.logsink.server import LogServer
from trollama.logsink.settings import MAX_LOG_LINE_BYTES, LogSinkSettings
from trollama.logsink.writer import DEFAULT_FALLBACK_DIR, LogWriter

VERSION = "0.1.0"
SERVICE = "trollama-logging"
#: Seconds between probes of an unwritable (or writable) primary log directory.
PRIMARY_CHECK_SECONDS = 5.0

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


class LogSink:
    """The central log sink; ``now`` and the fallback directory are injectable for tests."""

    def __init__(
        self,
        settings: LogSinkSettings,
        *,
        now: Clock = utc_now,
        fallback_dir: Path = DEFAULT_FALLBACK_DIR,
        primary_check_seconds: float = PRIMARY_CHECK_SECONDS,
    ) -> None:
        self.settings = settings
        self.now = now
        self.primary_check_seconds = primary_check_seconds
        self.registry = new_registry()
        self.stats = SinkStats(self.registry)
        self.writer = LogWriter(
            settings.log_dir, max_file_bytes=settings.max_file_bytes, fallback=fallback_dir
        )
        self.server = LogServer(
            settings.logsink_host,
            settings.log_service_port,
            on_lines=self.ingest,
            stats=self.stats,
            max_line_bytes=MAX_LOG_LINE_BYTES,
        )
        self.started_at = time.time()
        self._health: web.AppRunner | None = None
        self._health_port = settings.logsink_health_port
        self._tasks: list[asyncio.Task[None]] = []
        self._fallback_noted = False

    @property
    def port(self) -> int:
        """The TCP port log lines are accepted on."""
        return self.server.port

    @property
    def health_port(self) -> int:
        """The port of ``/health`` and ``/metrics``."""
        return self._health_port

    async def start(self) -> None:
        """Bind both ports, probe the log directory and start the background tasks."""
        self._check_primary()
        await self.cleanup()
        await self.server.start()
        await self._start_health()
        self._tasks = [
            asyncio.create_task(self._every(self.primary_check_seconds, self._check_async)),
            asyncio.create_task(
                self._every(self.settings.log_cleanup_interval_seconds, self.cleanup)
            ),
        ]

    async def stop(self) -> None:
        """Stop accepting, write what was received, then flush and close every file."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.stop()
        if self._health is not None:
            await self._health.cleanup()
        self.writer.close()

    def ingest(self, lines: list[bytes], oversized: int) -> None:
        """Classify one read's lines, write the valid records and count every outcome."""
        self.stats.count(Outcome.OVERSIZED, oversized)
        arrival, records = self.now(), []
        for raw in lines:
            parsed = parse_line(raw.rstrip(b"\r"), arrival, self.settings.log_retention_days)
            if isinstance(parsed, Record):
                records.append(parsed)
            elif raw.strip():
                self.stats.count(parsed)
        self._write(records)

    async def cleanup(self) -> None:
        """Delete day directories past retention in the log and fallback directories."""
        today = self.now().astimezone(UTC).date()
        self.writer.close_days_before(cutoff_day(today, self.settings.log_retention_days))
        dirs = files = 0
        for directory in (self.writer.primary, self.writer.fallback):
            try:
                result = await asyncio.to_thread(
                    delete_old_days, directory, today, self.settings.log_retention_days
                )
            except OSError as exc:
                log.warning("log cleanup of a directory failed: %s", type(exc).__name__)
                continue
            dirs, files = dirs + result.dirs_deleted, files + result.files_deleted
        self.stats.cleanup(self.now(), dirs, files)

    def health_report(self) -> HealthReport:
        """Degraded while writing to the fallback directory; unhealthy when not listening."""
        components = {"tcp": self._tcp_health(), "log_dir": self._dir_health()}
        return HealthReport(
            status=overall(components, critical=frozenset({"tcp"})),
            service=SERVICE,
            version=VERSION,
            uptime_seconds=round(time.time() - self.started_at, 1),
            components=components,
            info=self.counters(),
        )

    def counters(self) -> dict[str, Any]:
        """The counters reported on ``/health``."""
        stats, outcomes = self.stats, self.stats.outcomes
        last = stats.last_cleanup_at
        return {
            "received": stats.received,
            **{outcome.value: outcomes[outcome] for outcome in Outcome},
            "fallback_active": self.writer.fallback_active,
            "fallback_switches": self.writer.fallback_switches,
            "log_dir": str(self.writer.active),
            "connections": stats.connections,
            "cleanup_runs": stats.cleanup_runs,
            "last_cleanup_at": None if last is None else last.isoformat(),
            "dirs_deleted": stats.dirs_deleted,
            "files_deleted": stats.files_deleted,
            "retention_days": self.settings.log_retention_days,
        }

    def _write(self, records: list[Record]) -> None:
        if not records:
            return
        try:
            self.writer.write(records)
        except OSError as exc:
            log.error("log records lost, no directory writable: %s", type(exc).__name__)
            self.stats.count(Outcome.FAILED, len(records))
        else:
            self.stats.count(Outcome.WRITTEN, len(records))
        self._note_fallback()

    def _check_primary(self) -> None:
        self.writer.check()
        self._note_fallback()

    def _note_fallback(self) -> None:
        active = self.writer.fallback_active
        if active != self._fallback_noted:
            self._fallback_noted = active
            self.stats.fallback_gauge.set(int(active))
            if active:
                log.error("log directory unwritable (%s), writing to the fallback directory",
                          self.writer.last_error)  # fmt: skip
            else:
                log.warning("log directory writable again, fallback directory left")

    async def _check_async(self) -> None:
        self._check_primary()

    @staticmethod
    async def _every(seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            await job()

    async def _start_health(self) -> None:
        app = health_app(self.health_report, lambda: metrics_response(self.registry))
        self._health = web.AppRunner(app, access_log=None)
        await self._health.setup()
        site = web.TCPSite(self._health, self.settings.logsink_host, self._health_port)
        await site.start()
        self._health_port = int(self._health.addresses[0][1])

    def _tcp_health(self) -> ComponentHealth:
        up = self.server.listening
        return ComponentHealth(
            status=HealthStatus.HEALTHY if up else HealthStatus.UNHEALTHY,
            detail=f"listening on port {self.port}" if up else "not listening",
        )

    def _dir_health(self) -> ComponentHealth:
        if not self.writer.fallback_active:
            return ComponentHealth(
                status=HealthStatus.HEALTHY, detail="writing to the log directory"
            )
        return ComponentHealth(
            status=HealthStatus.DEGRADED,
            detail=f"alert: log directory unwritable ({self.writer.last_error}); "
            f"writing to fallback {self.writer.fallback}",
        )
