"""The shipping handler against real TCP sinks on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trollama.common.log_shipping import MAX_LOG_LINE_BYTES, ShippingHandler, fit_line
from trollama.common.logging import register_secret
from trollama.testkit.ports import free_port

#: Seconds a test waits for lines to arrive before failing.
ARRIVAL_TIMEOUT_SECONDS = 20.0


class LineSink:
    """A tiny log sink: accepts connections and records every line it reads."""

    def __init__(self, port: int = 0, *, read: bool = True) -> None:
        self.lines: list[str] = []
        self.read = read
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", port))
        self._server.listen()
        self.port = self._server.getsockname()[1]
        self._spawn(self._accept)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._conns.append(conn)
            if self.read:
                self._spawn(self._read, conn)

    def _read(self, conn: socket.socket) -> None:
        with conn.makefile("rb") as stream:
            try:
                for raw in stream:
                    self.lines.append(raw.decode("utf-8").rstrip("\n"))
            except (OSError, ValueError):
                return

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in list(self.lines)]

    def stop(self) -> None:
        self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for thread in self._threads:
            thread.join(timeout=5)


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_SECONDS
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def sink() -> Iterator[LineSink]:
    running = LineSink()
    yield running
    running.stop()


def shipper(port: int, spool_dir: Path, *, close_timeout: float = 3.0) -> ShippingHandler:
    return ShippingHandler(
        "tester", host="127.0.0.1", port=port, spool_dir=spool_dir, close_timeout=close_timeout
    )


def emit(handler: ShippingHandler, numbers: range, msg: str = "line %s") -> None:
    for n in numbers:
        record = logging.LogRecord("test.ship", logging.INFO, __file__, 1, msg, (n,), None)
        record.seq = n
        handler.emit(record)


def seqs(sink: LineSink) -> list[int]:
    return [int(str(r["seq"])) for r in sink.records()]


def test_records_arrive_as_json_lines(sink: LineSink, tmp_path: Path) -> None:
    handler = shipper(sink.port, tmp_path)
    emit(handler, range(50))
    wait_for(lambda: len(sink.lines) == 50, "50 lines")
    handler.close()
    records = sink.records()
    assert [r["msg"] for r in records] == [f"line {n}" for n in range(50)]
    assert {r["service"] for r in records} == {"tester"}
    assert handler.stats().delivered == 50
    assert handler.stats().spooled == 0


def test_sink_restarted_mid_stream_loses_nothing(tmp_path: Path) -> None:
    sink = LineSink()
    handler = shipper(sink.port, tmp_path)
    emit(handler, range(0, 300))
    wait_for(lambda: len(sink.lines) == 300, "the first 300 lines")
    sink.stop()
    emit(handler, range(300, 2300))
    wait_for(lambda: handler.stats().spooled >= 2000, "the outage lines to be spooled")
    restarted = LineSink(sink.port)
    try:
        emit(handler, range(2300, 2500))
        wait_for(lambda: set(seqs(restarted)) >= set(range(300, 2500)), "every line")
        handler.close()
        received = seqs(sink) + seqs(restarted)
        assert set(received) == set(range(2500))
        assert sorted(set(received)) == list(range(2500))
        assert seqs(restarted)[:2000] == list(range(300, 2300)), "replay out of order"
        assert handler.stats().replayed >= 2000
        assert handler.stats().dropped == 0
    finally:
        restarted.stop()


def test_sink_never_up_spools_then_a_later_start_replays(tmp_path: Path) -> None:
    port = free_port()
    handler = shipper(port, tmp_path, close_timeout=0.5)
    emit(handler, range(100))
    wait_for(lambda: handler.stats().spooled == 100, "100 spooled lines")
    handler.close()
    spooled = (tmp_path / "tester.spool").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in spooled] == list(range(100))

    sink = LineSink(port)
    try:
        again = shipper(port, tmp_path)
        wait_for(lambda: len(sink.lines) >= 100, "the replay")
        emit(again, range(100, 110))
        wait_for(lambda: len(sink.lines) >= 110, "the live lines")
        again.close()
        assert seqs(sink) == list(range(110))
        assert (tmp_path / "tester.spool").read_bytes() == b""
    finally:
        sink.stop()


async def test_emit_never_blocks_the_loop_on_a_stuck_sink(tmp_path: Path) -> None:
    stuck = LineSink(read=False)  # accepts, never reads: its socket buffers fill up
    handler = shipper(stuck.port, tmp_path, close_timeout=0.5)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    payload = "x" * 2000 + " %s"
    for chunk in range(40):
        emit(handler, range(chunk * 500, chunk * 500 + 500), payload)
        await asyncio.sleep(0)
    done.set()
    await task
    handler.close()
    stuck.stop()
    assert ticks >= 40
    stats = handler.stats()
    assert stats.dropped == 0
    assert stats.delivered + stats.spool_lines >= 20_000


def test_oversize_record_is_cut_to_valid_json(sink: LineSink, tmp_path: Path) -> None:
    handler = shipper(sink.port, tmp_path)
    emit(handler, range(1), "é\n\x01" * MAX_LOG_LINE_BYTES + " %s")
    wait_for(lambda: len(sink.lines) == 1, "the cut line")
    handler.close()
    (line,) = sink.lines
    assert len(line.encode("utf-8")) <= MAX_LOG_LINE_BYTES
    record = json.loads(line)
    assert record["truncated"] is True
    assert str(record["msg"]).startswith("é\n\x01é")
    assert handler.stats().truncated == 1


def test_fit_line_leaves_short_lines_alone() -> None:
    line = json.dumps({"msg": "short"})
    assert fit_line(line) == (line, False)


def test_secrets_are_masked_in_shipped_lines(sink: LineSink, tmp_path: Path) -> None:
    secret = "shipping-secret-value-123"
    register_secret(secret)
    handler = shipper(sink.port, tmp_path)
    emit(handler, range(1), f"token={secret} %s")
    wait_for(lambda: len(sink.lines) == 1, "the line")
    handler.close()
    assert secret not in sink.lines[0]
    assert "token=***" in sink.lines[0]
