"""Settings of the logging service (``LogSinkSettings``), read from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from trollama.common.log_shipping import MAX_LOG_LINE_BYTES as MAX_LOG_LINE_BYTES
from trollama.common.settings import REPO_ROOT, ServiceSettings

#: Highest TCP port number.
MAX_PORT = 65535


class LogSinkSettings(ServiceSettings):
    """Where the sink listens, where it writes and how long it keeps files."""

    logsink_host: str = "127.0.0.1"
    #: Same variable the shippers read (``LOG_SERVICE_PORT``); 0 picks a free port.
    log_service_port: int = Field(default=9999, ge=0, le=MAX_PORT)
    logsink_health_port: int = Field(default=9998, ge=0, le=MAX_PORT)
    log_dir: Path = REPO_ROOT / "logs"
    log_retention_days: int = Field(default=30, ge=1)
    log_max_file_mb: float = Field(default=50, gt=0)
    log_cleanup_interval_seconds: float = Field(default=3600, gt=0)

    @property
    def max_file_bytes(self) -> int:
        """Size at which a log file is rotated, in bytes."""
        return max(1, int(self.log_max_file_mb * 1024 * 1024))
