"""Log shipping under load: records delivered, records lost, latency added.

Three processes on 127.0.0.1:

* the real **logging service** (``python -m trollama.logsink``, a temporary
  log directory);
* a **flooding service**: a process that emits log records through the
  shared :class:`ShippingHandler` as fast as it can for the whole run;
* a real **brain** in this process (``build_services`` + ``serve_brain``,
  SQLite, a simulated Ollama streaming as fast as it can), logging at INFO,
  answering HTTP requests one after another.

The brain's requests run in alternating blocks with its own shipping handler
**off** and **on** (the baseline and the measurement share the same flood, CPU
and moment), so the difference is what shipping adds to the request path.

Printed: records/s the logging service wrote to disk, records lost (emitted
minus written minus still spooled; target 0), request latency p50/p95 off and
on, and the added p95 (target ≤ 1 ms). Last line:
``records_lost=X added_p95_ms=Y``.

    uv run python bench/logging.py [--requests 2000] [--blocks 10]
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
import json
import logging
import tempfile
import time
from pathlib import Path

import httpx

from trollama.brain.auth import mint_token
from trollama.brain.services import build_services
from trollama.common.log_shipping import ShippingHandler
from trollama.common.store.sqlite import SqliteStore
from trollama.testkit.brain import brain_settings, serve_brain
from trollama.testkit.fake_ollama import FakeOllama
from trollama.testkit.ports import free_port
from trollama.testkit.script import ModelScript, Reply
from trollama.testkit.stats import percentile

MODEL = "gpt-oss:20b"
#: Seconds the logging service may take to start, and to write the last records.
START_TIMEOUT_SECONDS = 30.0
DRAIN_TIMEOUT_SECONDS = 60.0
#: Seconds ``close()`` of a handler may spend delivering what is left.
CLOSE_SECONDS = 10.0
FLOOD_SERVICE = "flood"

#: The flooding service: emits records until its stop file appears, then
#: prints what it emitted and what its handler still holds in the spool.
FLOOD_SCRIPT = """
import json, logging, os, sys
from pathlib import Path
from trollama.common.log_shipping import ShippingHandler
port, spool, stop = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
handler = ShippingHandler("flood", host="127.0.0.1", port=port, spool_dir=spool, close_timeout=30)
log = logging.getLogger("bench.flood")
log.addHandler(handler)
log.setLevel(logging.INFO)
log.propagate = False
emitted = 0
while not stop.exists():
    for _ in range(1000):
        log.info("flood record %d with a little payload", emitted)
        emitted += 1
handler.close()
stats = handler.stats()
print(json.dumps({"emitted": emitted, "spool_lines": stats.spool_lines,
                  "dropped": stats.dropped, "spooled": stats.spooled}))
"""


async def start_log_service(workdir: Path) -> tuple[asyncio.subprocess.Process, int, int]:
    port, health_port = free_port(), free_port()
    env = {
        **os.environ,
        "LOG_DIR": str(workdir / "logs"),
        "LOG_SERVICE_PORT": str(port),
        "LOGSINK_HEALTH_PORT": str(health_port),
        "LOGSINK_HOST": "127.0.0.1",
        "LOG_SHIPPING": "false",
        "DEV_MODE": "true",
    }
    out = (workdir / "logsink.out").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trollama.logsink", env=env, stdout=out, stderr=out
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            try:
                if (await client.get(f"http://127.0.0.1:{health_port}/health")).is_success:
                    return process, port, health_port
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.returncode is not None:
                raise RuntimeError("the logging service did not start; see logsink.out")
            await asyncio.sleep(0.1)


def count_written(log_dir: Path, service: str) -> int:
    """Records of ``service`` in the logging service's files (debug.log holds every level)."""
    needle = f'"service": "{service}"'.encode()
    return sum(
        sum(1 for line in path.open("rb") if needle in line)
        for path in log_dir.glob("*/debug.log*")
    )


async def timed_requests(client: httpx.AsyncClient, token: str, count: int) -> list[float]:
    """Milliseconds from sending each request to the end of its streamed answer."""
    took: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    for n in range(count):
        started = time.perf_counter()
        body = {"content": f"question {n}", "model_override": MODEL}
        async with client.stream("POST", "/api/chat", json=body, headers=headers) as reply:
            async for _ in reply.aiter_lines():
                pass
        took.append((time.perf_counter() - started) * 1000)
    return took


async def brain_phases(
    url: str, token: str, handler: ShippingHandler, requests: int, blocks: int
) -> tuple[list[float], list[float]]:
    """Alternating blocks with the brain's shipping off and on."""
    root = logging.getLogger()
    off: list[float] = []
    on: list[float] = []
    per_block = max(1, requests // blocks)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await timed_requests(client, token, 10)  # warm up
        for _ in range(blocks):
            off += await timed_requests(client, token, per_block)
            root.addHandler(handler)
            try:
                on += await timed_requests(client, token, per_block)
            finally:
                root.removeHandler(handler)
    return off, on


async def run(requests: int, blocks: int, workdir: Path) -> None:
    sink, port, _ = await start_log_service(workdir)
    stop_file = workdir / "stop-flood"
    flood = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FLOOD_SCRIPT,
        str(port),
        str(workdir / "flood-spool"),
        str(stop_file),
        stdout=asyncio.subprocess.PIPE,
    )
    brain_handler = ShippingHandler(
        "brain",
        host="127.0.0.1",
        port=port,
        spool_dir=workdir / "brain-spool",
        close_timeout=CLOSE_SECONDS,
    )
    script = ModelScript(default=Reply(text="A short answer.", tokens_per_second=None))
    started = time.perf_counter()
    try:
        with FakeOllama(script).start_in_thread() as ollama:
            settings = brain_settings(ollama_host=ollama.url)
            services = build_services(settings, store=SqliteStore(workdir / "brain.db"))
            token = mint_token("bench", settings.jwt_secret_key.get_secret_value())
            async with serve_brain(services) as url:
                off, on = await brain_phases(url, token, brain_handler, requests, blocks)
    finally:
        stop_file.touch()
        output, _ = await flood.communicate()
        flood_seconds = time.perf_counter() - started
        await asyncio.to_thread(brain_handler.close)
    flood_report = json.loads(output)
    emitted, still_spooled = int(flood_report["emitted"]), int(flood_report["spool_lines"])
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    written = count_written(workdir / "logs", FLOOD_SERVICE)
    while written < emitted - still_spooled and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        written = count_written(workdir / "logs", FLOOD_SERVICE)
    sink.terminate()
    await sink.wait()
    brain_lines = count_written(workdir / "logs", "brain")
    lost = max(0, emitted - written - still_spooled)

    p95_off, p95_on = percentile(off, 95), percentile(on, 95)
    print("SIMULATED model server; the logging service, the flood and the brain on 127.0.0.1")
    print(
        f"flooding service: {emitted:,} records in {flood_seconds:.1f} s, written to disk "
        f"{written:,} ({written / flood_seconds:,.0f}/s), still spooled {still_spooled}, "
        f"spooled on the way {flood_report['spooled']:,}, lost {lost}"
    )
    print(f"brain lines shipped while on: {brain_lines:,}")
    print(f"brain requests: {len(off)} off / {len(on)} on, in {blocks} alternating blocks")
    print(f"  shipping off: p50 {percentile(off, 50):6.2f} ms   p95 {p95_off:6.2f} ms")
    print(f"  shipping on:  p50 {percentile(on, 50):6.2f} ms   p95 {p95_on:6.2f} ms")
    print(f"  added p95: {p95_on - p95_off:.2f} ms (target <= 1 ms); ratio {p95_on / p95_off:.2f}")
    print(f"records_lost={lost} added_p95_ms={p95_on - p95_off:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--blocks", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="trollama-bench-logging-") as workdir:
        asyncio.run(run(args.requests, args.blocks, Path(workdir)))


if __name__ == "__main__":
    main()
