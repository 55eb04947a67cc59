"""What the brain adds on top of the model server, measured in one run.

The same simulated model server (fixed time to first token and token rate, a
separate process) is called twice:

* **direct** — the official ``ollama`` client streams from it;
* **brain** — requests go through a real brain process (``python -m
  trollama.brain``, SQLite store) over one relay WebSocket, as the Discord
  relay sends them: admission, durable queue, context, streaming, history.

At 1 and at 50 concurrent users it prints time to first token (TTFT), the
brain's TTFT overhead (brain minus direct, p50/p95), the total-latency ratio,
requests per second and the brain's peak RSS. The last line is
``overhead_p50_ms=X overhead_p95_ms=Y rss_mb=Z`` for the 50-user run.
Targets: overhead p50 ≤ 5 ms and p95 ≤ 25 ms at 50 streams; RSS ≤ 200 MB.

    uv run python bench/pipeline_overhead.py [--requests-per-user 4] [--single-user-requests 20]
        [--ttft-ms 100] [--tokens-per-second 50]

Requests carry a model override, so the router's classifier call (a model call
of its own) is not part of the overhead; its latency is recorded per request.
"""

from __future__ import annotations

import os
import sys

# bench/logging.py (the issue names it) would shadow the standard library's
# ``logging`` for scripts run from this folder: drop the folder from the path.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import ollama
import psutil
from websockets.asyncio.client import ClientConnection, connect

from trollama.testkit.brain import BrainProcess, fresh_secrets
from trollama.testkit.ports import free_port
from trollama.testkit.stats import percentile

MODEL = "gpt-oss:20b"
QUESTION = "Tell me something about llamas."
#: Seconds between two samples of the brain's memory.
RSS_SAMPLE_SECONDS = 0.05
#: Seconds any single stream may take before the benchmark gives up.
STREAM_TIMEOUT_SECONDS = 120.0


@dataclass
class Sample:
    ttft_ms: float
    total_ms: float


@dataclass
class RunResult:
    samples: list[Sample] = field(default_factory=list)
    wall_seconds: float = 0.0

    def ttft(self, q: float) -> float:
        return percentile([s.ttft_ms for s in self.samples], q)

    def total_mean(self) -> float:
        return statistics.fmean(s.total_ms for s in self.samples)

    def rate(self) -> float:
        return len(self.samples) / self.wall_seconds if self.wall_seconds else 0.0


# ---------------------------------------------------------------- direct


async def direct_once(client: ollama.AsyncClient) -> Sample:
    started = time.perf_counter()
    first = 0.0
    stream = await client.chat(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    async for part in stream:
        if part.message.content and not first:
            first = time.perf_counter()
    done = time.perf_counter()
    return Sample((first - started) * 1000, (done - started) * 1000)


async def run_direct(url: str, users: int, per_user: int) -> RunResult:
    client = ollama.AsyncClient(host=url, timeout=STREAM_TIMEOUT_SECONDS)
    result = RunResult()

    async def user() -> None:
        for _ in range(per_user):
            result.samples.append(await direct_once(client))

    started = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(users)))
    result.wall_seconds = time.perf_counter() - started
    return result


# ---------------------------------------------------------------- through the brain


class Relay:
    """One relay connection multiplexing many requests, like the Discord relay."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.waiting: dict[str, asyncio.Queue[dict[str, object]]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.conn:
            frame = json.loads(raw)
            queue = self.waiting.get(str(frame.get("request_id")))
            if queue is not None:
                queue.put_nowait(frame)

    async def ask(self, request_id: str, user: str) -> Sample:
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self.waiting[request_id] = queue
        frame = {
            "type": "request",
            "request_id": request_id,
            "user_id": user,
            "conversation_id": f"bench-{request_id}",
            "content": QUESTION,
            "model_override": MODEL,
        }
        started = time.perf_counter()
        first = 0.0
        await self.conn.send(json.dumps(frame))
        while True:
            got = await asyncio.wait_for(queue.get(), STREAM_TIMEOUT_SECONDS)
            if got["type"] == "delta" and not first:
                first = time.perf_counter()
            if got["type"] == "error":
                raise RuntimeError(f"brain refused {request_id}: {got['message']}")
            if got["type"] == "done":
                del self.waiting[request_id]
                done = time.perf_counter()
                return Sample((first - started) * 1000, (done - started) * 1000)


async def run_brain(url: str, secret: str, users: int, per_user: int, tag: str) -> RunResult:
    result = RunResult()
    ws_url = url.replace("http://", "ws://") + "/ws/discord"
    async with connect(ws_url, additional_headers={"Authorization": f"Bearer {secret}"}) as conn:
        relay = Relay(conn)

        async def user(index: int) -> None:
            for n in range(per_user):
                result.samples.append(await relay.ask(f"{tag}-u{index}-{n}", f"user{index}"))

        started = time.perf_counter()
        await asyncio.gather(*(user(i) for i in range(users)))
        result.wall_seconds = time.perf_counter() - started
        relay.reader.cancel()
    return result


class PeakRss:
    """Samples a process's resident memory in the background."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(RSS_SAMPLE_SECONDS)

    def stop(self) -> float:
        self.task.cancel()
        return self.peak / 2**20


# ---------------------------------------------------------------- processes


def start_model_server(port: int, ttft_ms: float, tps: float, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "trollama.testkit.fake_ollama", "--port", str(port),
        "--ttft-ms", str(ttft_ms), "--tokens-per-second", str(tps),
    ]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=out)


async def wait_for(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                await client.get(url, timeout=1)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    raise TimeoutError(url)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def report(label: str, direct: RunResult, brain: RunResult) -> tuple[float, float]:
    over50 = brain.ttft(50) - direct.ttft(50)
    over95 = brain.ttft(95) - direct.ttft(95)
    print(f"\n== {label}: {len(brain.samples)} requests")
    print(f"   TTFT direct  p50={direct.ttft(50):7.1f} ms  p95={direct.ttft(95):7.1f} ms")
    print(f"   TTFT brain   p50={brain.ttft(50):7.1f} ms  p95={brain.ttft(95):7.1f} ms")
    print(f"   TTFT overhead p50={over50:6.1f} ms  p95={over95:6.1f} ms")
    print(f"   total latency ratio brain/direct = {brain.total_mean() / direct.total_mean():.3f}")
    print(f"   requests/s direct={direct.rate():.1f}  brain={brain.rate():.1f}")
    return over50, over95


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="trollama-bench-"))
    model_port = free_port()
    model_url = f"http://127.0.0.1:{model_port}"
    model = start_model_server(model_port, args.ttft_ms, args.tokens_per_second, work / "model.log")
    secrets = fresh_secrets()
    env = {
        "BRAIN_PORT": str(free_port()),
        "OLLAMA_HOST": model_url,
        "STORE_BACKEND": "sqlite",
        "SQLITE_PATH": str(work / "bench.db"),
        "RELAY_SHARED_SECRET": secrets["relay_shared_secret"],
        "JWT_SECRET_KEY": secrets["jwt_secret_key"],
        "WORKER_CONCURRENCY": "64",
        "MAX_QUEUE_SIZE": "1000",
        "USER_RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
    }
    brain = BrainProcess(env, log_path=work / "brain.log").start()
    try:
        await wait_for(f"{model_url}/api/version")
        await brain.wait_healthy()
        assert brain.proc is not None
        print(f"simulated model server: TTFT {args.ttft_ms} ms, {args.tokens_per_second} tokens/s")
        await run_brain(brain.url, secrets["relay_shared_secret"], 4, 2, "warmup")
        rss = PeakRss(brain.proc.pid)
        for users, per_user in ((1, args.single_user_requests), (50, args.requests_per_user)):
            direct = await run_direct(model_url, users, per_user)
            cpu_before = cpu_seconds(rss.process)
            through = await run_brain(
                brain.url,
                secrets["relay_shared_secret"],
                users,
                per_user,
                f"c{users}",
            )
            cpu = cpu_seconds(rss.process) - cpu_before
            over50, over95 = report(f"{users} concurrent user(s)", direct, through)
            per_request = cpu / len(through.samples) * 1000
            busy = cpu / through.wall_seconds * 100
            print(f"   brain CPU: {per_request:.1f} ms per request, {busy:.0f}% of one core")
        peak = rss.stop()
        print(f"\nbrain peak RSS: {peak:.1f} MB")
        print(f"overhead_p50_ms={over50:.1f} overhead_p95_ms={over95:.1f} rss_mb={peak:.0f}")
    finally:
        brain.stop()
        model.terminate()
        model.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests-per-user", type=int, default=4, help="in the 50-user run")
    parser.add_argument("--single-user-requests", type=int, default=20)
    parser.add_argument("--ttft-ms", type=float, default=100.0)
    parser.add_argument("--tokens-per-second", type=float, default=50.0)
    asyncio.run(main(parser.parse_args()))
