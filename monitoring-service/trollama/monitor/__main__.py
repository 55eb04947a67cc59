"""``python -m trollama.monitor``: run the monitor and its dashboard."""

from __future__ import annotations

import sys

import uvicorn

from trollama.common.logging import configure_logging
from trollama.common.settings import load_settings
from trollama.common.store.factory import open_store
from trollama.monitor.app import create_app
from trollama.monitor.service import Monitor
from trollama.monitor.settings import MonitorSettings

#: Exit status when the configuration is refused.
EXIT_CONFIG = 2


def main() -> int:
    settings = load_settings(MonitorSettings, "trollama-monitor")
    if settings is None:
        return EXIT_CONFIG
    configure_logging(
        "monitor", level=settings.log_level, json_lines=settings.log_json, shipping=settings
    )
    app = create_app(Monitor(settings, open_store(settings.store)))
    uvicorn.run(
        app,
        host=settings.monitor_host,
        port=settings.monitor_port,
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
