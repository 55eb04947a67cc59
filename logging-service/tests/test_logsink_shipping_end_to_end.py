"""The whole log pipeline: a service's ShippingHandler into the real logging
service, which is stopped mid-stream and started again. Nothing is lost."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

from trollama.common.log_shipping import ShippingHandler
from trollama.logsink.service import LogSink
from trollama.logsink.settings import LogSinkSettings
from trollama.testkit.ports import free_port

#: Records sent in each of the three phases (before, during and after the outage).
PHASE_RECORDS = 150
#: Longest the test waits for every record to reach the files, in seconds (a bound).
DELIVERY_DEADLINE_SECONDS = 20.0


async def sink_on(port: int, log_dir: Path, tmp_path: Path) -> LogSink:
    settings = LogSinkSettings(
        _env_file=None,
        dev_mode=True,
        log_dir=log_dir,
        log_service_port=port,
        logsink_health_port=0,
    )
    sink = LogSink(settings, fallback_dir=tmp_path / "fallback")
    await sink.start()
    return sink


def delivered_numbers(log_dir: Path) -> list[int]:
    numbers = []
    for path in sorted(log_dir.glob("*/app.log*")):
        for line in path.read_text(encoding="utf-8").splitlines():
            message = json.loads(line)["msg"]
            if message.startswith("record "):
                numbers.append(int(message.split()[1]))
    return numbers


async def test_sink_stopped_and_restarted_mid_stream_loses_nothing(tmp_path: Path) -> None:
    port, log_dir = free_port(), tmp_path / "logs"
    handler = ShippingHandler(
        "bench", host="127.0.0.1", port=port, spool_dir=tmp_path / "spool", close_timeout=5.0
    )
    logger = logging.getLogger("trollama.test.pipeline")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    sink = await sink_on(port, log_dir, tmp_path)
    try:
        for number in range(PHASE_RECORDS):
            logger.info("record %d", number)
        await asyncio.sleep(0.5)
        await sink.stop()  # the sink goes away mid-stream
        for number in range(PHASE_RECORDS, 2 * PHASE_RECORDS):
            logger.info("record %d", number)
        await asyncio.sleep(0.5)
        sink = await sink_on(port, log_dir, tmp_path)  # and comes back
        for number in range(2 * PHASE_RECORDS, 3 * PHASE_RECORDS):
            logger.info("record %d", number)
        deadline = time.monotonic() + DELIVERY_DEADLINE_SECONDS
        expected = set(range(3 * PHASE_RECORDS))
        while not expected <= set(delivered_numbers(log_dir)):
            assert time.monotonic() < deadline, sorted(expected - set(delivered_numbers(log_dir)))
            await asyncio.sleep(0.1)
    finally:
        logger.removeHandler(handler)
        await asyncio.to_thread(handler.close)
        await sink.stop()
    numbers = delivered_numbers(log_dir)
    assert set(numbers) == expected  # nothing lost (a resend around a reconnect may repeat one)
    stats = handler.stats()
    assert stats.dropped == 0
    assert stats.spooled > 0 and stats.replayed > 0  # the outage was real and was bridged
