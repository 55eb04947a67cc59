"""Log shipping under load: records delivered, records lost, latency added.

A real brain (in this process: ``build_services`` + ``serve_brain``, SQLite,
a simulated Ollama streaming as fast as it can) answers requests over HTTP,
one after another, twice in the same run:

* **off** — no shipping handler, nothing else running (the baseline);
* **on** — a :class:`ShippingHandler` on the root logger (the brain's own
  lines are shipped too) while a thread emits log records as fast as it can
  through it into a tiny TCP sink on 127.0.0.1 that appends every line to a
  file.

Printed: records/s written to the sink's file, records lost (emitted minus
written minus still spooled; target 0), and the request latency p50/p95 with
shipping off and on. The spamming thread shares the interpreter (and its GIL)
with the brain, so "on" is a worst case. Last line:
``records_lost=X added_p95_ms=Y``.

    uv run python bench/logging.py [--requests 200]
"""

from __future__ import annotations

import os
import sys

# This file is named like the standard library's ``logging`` (the issue names
# it): drop its folder from the import path so ``import logging`` means the
# standard library, for this script and every library it imports.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import asyncio
import logging
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from trollama.brain.auth import mint_token
from trollama.brain.services import build_services
from trollama.common.log_shipping import ShippingHandler
from trollama.common.store.sqlite import SqliteStore
from trollama.testkit.brain import brain_settings, serve_brain
from trollama.testkit.fake_ollama import FakeOllama
from trollama.testkit.script import ModelScript, Reply

MODEL = "gpt-oss:20b"
#: Seconds the sink may take to write the last records after the run.
DRAIN_TIMEOUT_SECONDS = 30.0
#: Seconds ``close()`` of the handler may spend delivering what is left.
CLOSE_SECONDS = 10.0


class FileSink:
    """A minimal log sink: every line read from any connection is appended to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as stream, self.path.open("ab") as out:
            for line in stream:
                out.write(line)
                self.written += 1

    def stop(self) -> None:
        self._server.close()


class Spammer(threading.Thread):
    """Emits log records as fast as it can until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.emitted = 0
        self.stopping = threading.Event()
        self.log = logging.getLogger("bench.spam")

    def run(self) -> None:
        while not self.stopping.is_set():
            self.log.info("spam record %d with a little payload", self.emitted)
            self.emitted += 1


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def serve_requests(url: str, token: str, count: int) -> list[float]:
    """Milliseconds from sending each request to the end of its answer."""
    took: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for n in range(count):
            started = time.perf_counter()
            body = {"content": f"question {n}", "model_override": MODEL}
            async with client.stream("POST", "/api/chat", json=body, headers=headers) as reply:
                async for _ in reply.aiter_lines():
                    pass
            took.append((time.perf_counter() - started) * 1000)
    return took


async def run(requests: int, workdir: Path) -> None:
    script = ModelScript(default=Reply(text="A short answer.", tokens_per_second=None))
    with FakeOllama(script).start_in_thread() as ollama:
        settings = brain_settings(ollama_host=ollama.url)
        services = build_services(settings, store=SqliteStore(workdir / "brain.db"))
        token = mint_token("bench", settings.jwt_secret_key.get_secret_value())
        async with serve_brain(services) as url:
            await serve_requests(url, token, 5)  # warm up
            off = await serve_requests(url, token, requests)
            quiet, _ = await with_shipping(url, token, requests, workdir / "quiet", spam=False)
            on, report = await with_shipping(url, token, requests, workdir / "spam", spam=True)
    print(f"requests per phase: {requests} (HTTP /api/chat, one at a time)")
    print(f"latency off: p50 {percentile(off, 50):.2f} ms  p95 {percentile(off, 95):.2f} ms")
    print(
        f"latency shipping, no spam: p50 {percentile(quiet, 50):.2f} ms"
        f"  p95 {percentile(quiet, 95):.2f} ms"
    )
    print(
        f"latency on (spamming):  p50 {percentile(on, 50):.2f} ms  p95 {percentile(on, 95):.2f} ms"
    )
    print(report)
    added = percentile(on, 95) - percentile(off, 95)
    print(f"records_lost={report.lost} added_p95_ms={added:.2f}")


class Report:
    def __init__(self, emitted: int, written: int, spooled: int, seconds: float, stats: str):
        self.lost = max(0, emitted - written - spooled)
        self.text = (
            f"records emitted {emitted}, written to disk {written} "
            f"({written / seconds:,.0f}/s), still spooled {spooled}, lost {self.lost}\n"
            f"handler counters: {stats}"
        )

    def __str__(self) -> str:
        return self.text


async def with_shipping(
    url: str, token: str, requests: int, workdir: Path, *, spam: bool
) -> tuple[list[float], Report]:
    await asyncio.to_thread(workdir.mkdir)
    sink = FileSink(workdir / "sink.log")
    handler = ShippingHandler(
        "bench",
        host="127.0.0.1",
        port=sink.port,
        spool_dir=workdir / "spool",
        close_timeout=CLOSE_SECONDS,
    )
    root = logging.getLogger()
    root.addHandler(handler)
    spammer = Spammer()
    started = time.perf_counter()
    if spam:
        spammer.start()
    try:
        took = await serve_requests(url, token, requests)
    finally:
        spammer.stopping.set()
        if spam:
            spammer.join()
        root.removeHandler(handler)
        handler.close()
    expected = spammer.emitted  # the brain's own lines are shipped too: count at least these
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while sink.written < expected and time.monotonic() < deadline:  # noqa: ASYNC110 (a thread counts)
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - started
    sink.stop()
    stats = handler.stats()
    spam_written = sum(1 for line in sink.path.open("rb") if b'"bench.spam"' in line)
    report = Report(spammer.emitted, spam_written, stats.spool_lines, seconds, str(stats))
    return took, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="trollama-bench-logging-") as workdir:
        asyncio.run(run(args.requests, Path(workdir)))


if __name__ == "__main__":
    main()
