"""``python -m trollama.logsink``: run the logging service with settings from the environment."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from trollama.common.logging import configure_logging
from trollama.common.settings import load_settings
from trollama.logsink.service import LogSink
from trollama.logsink.settings import LogSinkSettings

EXIT_CONFIG = 2
EXIT_BIND = 3

log = logging.getLogger("trollama.logsink")


async def run(settings: LogSinkSettings) -> int:
    """Serve until SIGTERM or SIGINT, then flush and close every file."""
    sink = LogSink(settings)
    try:
        await sink.start()
    except OSError as exc:
        print(f"trollama-logging: cannot listen: {exc.strerror}", file=sys.stderr)
        await sink.stop()
        return EXIT_BIND
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    log.info("logging service on port %d, health on %d", sink.port, sink.health_port)
    await stopping.wait()
    await sink.stop()
    log.info("logging service stopped")
    return 0


def main() -> int:
    settings = load_settings(LogSinkSettings, "trollama-logging")
    if settings is None:
        return EXIT_CONFIG
    # The sink's own records go to stderr (start.sh keeps them); shipping them to itself
    # would loop.
    configure_logging("logging", level=settings.log_level, json_lines=settings.log_json)
    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main())
