"""Settings of the monitoring service (``MONITOR_*`` and ``ALERT_WEBHOOK_URL``)."""

from __future__ import annotations

from pydantic import field_validator

from trollama.common.settings import ServiceSettings
from trollama.monitor.targets import parse_targets

#: Health URLs polled when ``MONITOR_TARGETS`` is unset: brain, relay, logging service.
DEFAULT_TARGETS = (
    "brain=http://127.0.0.1:8001/health,"
    "relay=http://127.0.0.1:9997/health,"
    "logging=http://127.0.0.1:9998/health"
)


class MonitorSettings(ServiceSettings):
    """Where the dashboard listens, what it polls, how often, and whom it tells."""

    monitor_host: str = "127.0.0.1"
    monitor_port: int = 8080
    monitor_poll_seconds: float = 15.0
    monitor_timeout_seconds: float = 3.0
    monitor_targets: str = DEFAULT_TARGETS
    #: Consecutive bad samples (down or degraded) before an alert is raised.
    monitor_alert_after_samples: int = 1
    alert_webhook_url: str = ""

    @field_validator("monitor_targets")
    @classmethod
    def _targets_parse(cls, value: str) -> str:
        parse_targets(value)
        return value

    @field_validator("monitor_poll_seconds", "monitor_timeout_seconds")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("poll and timeout seconds must be positive")
        return value

    @field_validator("monitor_alert_after_samples")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError("MONITOR_ALERT_AFTER_SAMPLES must be at least 1")
        return value

    @field_validator("alert_webhook_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("ALERT_WEBHOOK_URL must start with http:// or https://")
        return value
