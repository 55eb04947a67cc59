"""The sink over real TCP on 127.0.0.1: files by day and level, rotation, junk,
restart, unwritable directory and the health port."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from trollama.common.log_shipping import MAX_LOG_LINE_BYTES
from trollama.logsink.records import Outcome
from trollama.logsink.service import LogSink
from trollama.logsink.settings import LogSinkSettings
from trollama.logsink.writer import MAX_ROTATED_FILES

NOW = datetime(2024, 5, 17, 12, 0, tzinfo=UTC)
#: Longest a test waits for the sink to catch up, in seconds (a bound, not a speed check).
WAIT_SECONDS = 5.0


def settings(log_dir: Path, **overrides: Any) -> LogSinkSettings:
    values: dict[str, Any] = {
        "log_dir": log_dir,
        "log_service_port": 0,
        "logsink_health_port": 0,
        "dev_mode": True,
        **overrides,
    }
    return LogSinkSettings(**values)


def record(msg: str, level: str = "INFO", ts: str | None = "2024-05-16T23:59:59.123Z") -> bytes:
    entry: dict[str, Any] = {"level": level, "service": "t", "logger": "t", "msg": msg}
    if ts is not None:
        entry["ts"] = ts
    return json.dumps(entry).encode() + b"\n"


async def started(log_dir: Path, tmp_path: Path, **overrides: Any) -> LogSink:
    sink = LogSink(
        settings(log_dir, **overrides),
        now=lambda: NOW,
        fallback_dir=tmp_path / "fallback",
        primary_check_seconds=0.05,
    )
    await sink.start()
    return sink


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[LogSink]:
    running = await started(tmp_path / "logs", tmp_path)
    yield running
    await running.stop()


async def send(sink: LogSink, *chunks: bytes) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", sink.port)
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while not condition():  # noqa: ASYNC110 - polls the sink's plain counters
            await asyncio.sleep(0.01)


def lines(path: Path) -> list[str]:
    return [json.loads(line)["msg"] for line in path.read_text().splitlines()]


async def test_records_land_in_day_and_level_files(sink: LogSink, tmp_path: Path) -> None:
    await send(
        sink,
        record("dbg", "DEBUG"),
        record("info"),
        record("warn", "WARNING"),
        record("boom", "ERROR"),
        record("fatal", "CRITICAL", ts="2024-05-17T00:00:01+00:00"),
        record("no-ts", ts=None),
        record("bad-ts", ts="yesterday"),
        record("past-retention", ts="2020-01-01T00:00:00Z"),
    )
    await until(lambda: sink.stats.outcomes[Outcome.WRITTEN] == 8)
    day = tmp_path / "logs" / "2024-05-16"
    assert lines(day / "debug.log") == ["dbg", "info", "warn", "boom"]
    assert lines(day / "app.log") == ["info", "warn", "boom"]
    assert lines(day / "error.log") == ["boom"]
    today = tmp_path / "logs" / "2024-05-17"
    assert lines(today / "app.log") == ["fatal", "no-ts", "bad-ts", "past-retention"]
    assert lines(today / "error.log") == ["fatal"]


async def test_lines_are_written_as_received(sink: LogSink, tmp_path: Path) -> None:
    raw = b'{"msg": "caf\xc3\xa9",   "level":"INFO", "extra": [1, 2]}'
    await send(sink, raw + b"\r\n")
    await until(lambda: sink.stats.outcomes[Outcome.WRITTEN] == 1)
    assert (tmp_path / "logs" / "2024-05-17" / "app.log").read_bytes() == raw + b"\n"


async def test_files_rotate_by_size_and_keep_a_bounded_count(tmp_path: Path) -> None:
    sink = await started(tmp_path / "logs", tmp_path, log_max_file_mb=0.001)  # ~1 KiB
    try:
        total = 100
        for index in range(total):
            await send(sink, record(f"r{index:03d}" + "x" * 100))
        await until(lambda: sink.stats.outcomes[Outcome.WRITTEN] == total)
    finally:
        await sink.stop()
    day = tmp_path / "logs" / "2024-05-16"
    names = sorted(p.name for p in day.glob("app.log*"))
    assert names == ["app.log"] + [f"app.log.{i}" for i in range(1, MAX_ROTATED_FILES + 1)]
    for path in day.glob("app.log*"):
        assert path.stat().st_size <= 1048
    newest = lines(day / "app.log")
    assert newest[-1].startswith("r099")
    assert lines(day / "app.log.1")[-1] < newest[0]  # .1 holds the records just before


async def test_junk_is_counted_and_dropped_and_the_connection_survives(
    sink: LogSink, tmp_path: Path
) -> None:
    junk = [
        os.urandom(4096).replace(b"\n", b"") + b"\n",  # random bytes
        b"\xff\xfe invalid utf-8 \xc3\x28\n",
        b"not json at all\n",
        b"[1, 2, 3]\n",
        b'{"level": "INFO"}\n',  # no msg
        b'{"level": 20, "msg": "x"}\n',  # level not a name
        b"[" * 50_000 + b"\n",  # nesting deep enough to blow the parser's stack
    ]
    oversized = b"y" * (1024 * 1024)  # 1 MB without newline, sent in pieces
    _, writer = await asyncio.open_connection("127.0.0.1", sink.port)
    for chunk in junk:
        writer.write(chunk)
    for offset in range(0, len(oversized), 100_000):
        writer.write(oversized[offset : offset + 100_000])
        await writer.drain()
    writer.write(b"\n" + record("survivor"))
    await writer.drain()
    await until(lambda: sink.stats.outcomes[Outcome.WRITTEN] == 1)
    counters = sink.counters()
    assert counters["oversized"] == 1
    assert (counters["binary"], counters["malformed"]) == (2, len(junk) - 2)
    assert counters["received"] == len(junk) + 2
    assert sink.stats.connections == 1
    writer.close()
    await writer.wait_closed()
    assert lines(tmp_path / "logs" / "2024-05-16" / "app.log") == ["survivor"]


async def test_line_at_the_cap_is_kept_and_one_byte_more_is_not(
    sink: LogSink, tmp_path: Path
) -> None:
    head = b'{"level":"INFO","msg":"'
    fits = head + b"a" * (MAX_LOG_LINE_BYTES - len(head) - 2) + b'"}'
    too_long = head + b"b" * (MAX_LOG_LINE_BYTES - len(head) - 1) + b'"}'
    assert len(fits) == MAX_LOG_LINE_BYTES
    await send(sink, fits + b"\n" + too_long + b"\n")
    await until(lambda: sink.stats.received == 2)
    assert sink.counters()["written"] == 1
    assert sink.counters()["oversized"] == 1


async def test_restart_on_the_same_directory_keeps_appending(tmp_path: Path) -> None:
    for batch in ("first", "second"):
        sink = await started(tmp_path / "logs", tmp_path)
        await send(sink, record(f"{batch}-1"), record(f"{batch}-2"))
        await until(lambda s=sink: s.stats.outcomes[Outcome.WRITTEN] == 2)  # type: ignore[misc]
        await sink.stop()
    app_log = tmp_path / "logs" / "2024-05-16" / "app.log"
    assert lines(app_log) == ["first-1", "first-2", "second-1", "second-2"]


async def test_stop_writes_what_a_connected_client_sent(tmp_path: Path) -> None:
    sink = await started(tmp_path / "logs", tmp_path)
    _, writer = await asyncio.open_connection("127.0.0.1", sink.port)
    writer.write(record("before-stop"))
    await writer.drain()
    await until(lambda: sink.stats.received == 1)
    await sink.stop()
    writer.close()
    assert lines(tmp_path / "logs" / "2024-05-16" / "app.log") == ["before-stop"]


def unwritable_dir(tmp_path: Path) -> tuple[Path, Callable[[], None]]:
    """A log dir the sink cannot write, and how to make it writable again.

    chmod 0o500 when that binds this user; under root (which ignores modes) a
    path below a regular file, which nobody can create."""
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o500)
    if not os.access(parent, os.W_OK):
        return parent / "logs", lambda: parent.chmod(0o700)
    parent.chmod(0o700)
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a directory")
    return blocker / "logs", blocker.unlink


async def health(sink: LogSink) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{sink.health_port}/health") as response,
    ):
        body: dict[str, Any] = await response.json()
        body["http_status"] = response.status
        return body


async def metrics(sink: LogSink) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{sink.health_port}/metrics") as response,
    ):
        assert response.status == 200
        assert response.content_type == "text/plain"
        return await response.text()


async def test_unwritable_directory_falls_back_alerts_and_recovers(tmp_path: Path) -> None:
    log_dir, make_writable = unwritable_dir(tmp_path)
    sink = await started(log_dir, tmp_path)
    try:
        await send(sink, record("while-down"))
        await until(lambda: sink.stats.outcomes[Outcome.WRITTEN] == 1)
        report = await health(sink)
        assert report["status"] == "degraded"
        assert report["http_status"] == 200
        assert report["components"]["log_dir"]["detail"].startswith("alert:")
        assert report["info"]["fallback_active"] is True
        assert report["info"]["fallback_switches"] == 1
        assert "trollama_log_fallback_active 1.0" in await metrics(sink)
        fallback_log = tmp_path / "fallback" / "2024-05-16" / "app.log"
        assert lines(fallback_log) == ["while-down"]

        make_writable()
        await until(lambda: not sink.writer.fallback_active)
        await send(sink, record("after-recovery"))
        await until(lambda: sink.stats.outcomes[Outcome.WRITTEN] == 2)
        assert (await health(sink))["status"] == "healthy"
        assert lines(log_dir / "2024-05-16" / "app.log") == ["after-recovery"]
        assert lines(fallback_log) == ["while-down"]
    finally:
        await sink.stop()


async def test_health_and_metrics_report_the_counters(sink: LogSink) -> None:
    await send(sink, record("ok"), b"junk\n", b"\xff\n", record("ok2", "ERROR"))
    await until(lambda: sink.stats.received == 4)
    report = await health(sink)
    assert report["status"] == "healthy"
    assert report["service"] == "trollama-logging"
    info = report["info"]
    assert (info["received"], info["written"], info["malformed"], info["binary"]) == (4, 2, 1, 1)
    assert info["oversized"] == 0
    assert info["fallback_active"] is False
    assert info["last_cleanup_at"] == NOW.isoformat()
    assert info["files_deleted"] == 0
    assert info["connections"] == 0
    text = await metrics(sink)
    assert 'trollama_log_records_total{outcome="written"} 2.0' in text
    assert 'trollama_log_records_total{outcome="malformed"} 1.0' in text
    assert 'trollama_log_records_total{outcome="binary"} 1.0' in text
    assert "trollama_log_cleanup_runs_total 1.0" in text
    assert "trollama_log_files_deleted_total 0.0" in text
