"""The poller against real HTTP servers on 127.0.0.1 whose health we flip."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from aiohttp import web

from trollama.common.store.sqlite import SqliteStore
from trollama.monitor.alerts import AlertEngine, AlertRepository
from trollama.monitor.extras import metrics_url, parse_brain_metrics, parse_cleanup
from trollama.monitor.notifier import WebhookNotifier
from trollama.monitor.poller import Poller, probe
from trollama.monitor.samples import Sample, SampleRepository, State
from trollama.monitor.targets import Target, parse_targets

TIMEOUT_SECONDS = 0.5


class FakeService:
    """A health endpoint whose answer a test flips: healthy, degraded, 503, hang, or stopped."""

    def __init__(self) -> None:
        self.mode = "healthy"
        self.release = asyncio.Event()
        self.received: list[dict[str, object]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    async def _health(self, request: web.Request) -> web.Response:
        if self.mode == "hang":
            await self.release.wait()
        status = {"healthy": 200, "degraded": 200}.get(self.mode, 503)
        report = {"status": "unhealthy" if status == 503 else self.mode}
        return web.json_response(report, status=status)

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.json_response({})


@pytest.fixture
async def services() -> AsyncIterator[tuple[FakeService, FakeService]]:
    first, second = FakeService(), FakeService()
    await first.start()
    await second.start()
    yield first, second
    await first.stop()
    await second.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


async def test_probe_maps_answers_to_states(
    services: tuple[FakeService, FakeService], client: httpx.AsyncClient
) -> None:
    service, _ = services
    target = Target("brain", service.url)
    expected = {"healthy": State.UP, "degraded": State.DEGRADED, "unhealthy": State.DOWN}
    for mode, state in expected.items():
        service.mode = mode
        assert (await probe(client, target, TIMEOUT_SECONDS)).state is state
    await service.stop()
    refused = await probe(client, target, TIMEOUT_SECONDS)
    assert refused.state is State.DOWN and refused.reason == "connection refused"


async def test_hanging_target_is_down_and_others_still_polled(
    services: tuple[FakeService, FakeService],
    client: httpx.AsyncClient,
    sqlite_store: SqliteStore,
) -> None:
    hanging, healthy = services
    hanging.mode = "hang"
    targets = [Target("hangs", hanging.url), Target("fine", healthy.url)]
    engine = AlertEngine(AlertRepository(sqlite_store), WebhookNotifier(client, ""))
    three_rounds = asyncio.Event()

    async def on_round(samples: Sequence[Sample]) -> None:
        if poller.rounds >= 2:  # counted after the hook: this is the third round
            three_rounds.set()

    poller = Poller(
        client,
        targets,
        SampleRepository(sqlite_store),
        engine,
        interval=0.05,
        timeout=TIMEOUT_SECONDS,
        on_round=on_round,
    )
    poller.start()
    try:
        await asyncio.wait_for(three_rounds.wait(), 10)
    finally:
        await poller.stop()
    assert poller.latest["hangs"].state is State.DOWN
    assert poller.latest["hangs"].reason == "no answer in 0.5s"
    assert poller.latest["fine"].state is State.UP
    assert engine.open_for("hangs") is not None and engine.open_for("fine") is None


async def test_transitions_raise_and_resolve_one_alert_each_and_call_webhook(
    services: tuple[FakeService, FakeService],
    client: httpx.AsyncClient,
    sqlite_store: SqliteStore,
) -> None:
    service, hook = services
    notifier = WebhookNotifier(client, f"http://127.0.0.1:{hook.port}/hook")
    repo = AlertRepository(sqlite_store)
    engine = AlertEngine(repo, notifier)
    poller = Poller(
        client,
        [Target("brain", service.url)],
        SampleRepository(sqlite_store),
        engine,
        interval=1,
        timeout=TIMEOUT_SECONDS,
    )
    for mode in ("healthy", "unhealthy", "unhealthy", "healthy", "degraded", "degraded", "healthy"):
        service.mode = mode
        await poller.poll_once()
    await service.stop()  # stopped: connection refused counts as down
    await poller.poll_once()
    await service.start()
    service.mode = "healthy"
    await poller.poll_once()
    await notifier.drain()

    history = await repo.listing(10)
    assert [(a.kind, a.resolved_at is not None) for a in history] == [
        ("down", True),
        ("degraded", True),
        ("down", True),
    ]
    assert [e["state"] for e in hook.received] == ["raised", "resolved"] * 3
    assert {e["target"] for e in hook.received} == {"brain"}
    assert set(hook.received[0]) == {"target", "state", "message", "at"}


async def test_webhook_failure_is_counted_not_raised(client: httpx.AsyncClient) -> None:
    from trollama.monitor.notifier import AlertEvent

    notifier = WebhookNotifier(client, "http://127.0.0.1:9/unreachable", timeout=0.5)
    notifier.notify(AlertEvent(target="x", state="raised", message="m", at="now"))
    await notifier.drain()
    assert (notifier.sent, notifier.failed) == (0, 1)


def test_parsers_tolerate_missing_and_real_figures() -> None:
    text = (
        "# TYPE trollama_queue_depth gauge\n"
        'trollama_queue_depth{service="brain"} 3.0\n'
        "# TYPE trollama_tokens_total counter\n"
        'trollama_tokens_total{service="brain",direction="in",route="MATH",model="m1"} 42.0\n'
    )
    figures = parse_brain_metrics(text)
    assert figures.queue_depth == 3.0
    assert [(r.route, r.model, r.direction, r.tokens) for r in figures.tokens] == [
        ("MATH", "m1", "in", 42.0)
    ]
    assert parse_brain_metrics("").queue_depth is None
    cleanup = parse_cleanup(json.loads('{"status": "healthy", "info": {"files_deleted": 4}}'))
    assert cleanup.files_deleted == 4 and cleanup.fallback_active is None
    assert metrics_url("http://127.0.0.1:8001/health?x=1") == "http://127.0.0.1:8001/metrics"


def test_targets_parse_and_refuse_bad_entries() -> None:
    assert parse_targets(" a=http://h:1/health , b=https://h/x ") == [
        Target("a", "http://h:1/health"),
        Target("b", "https://h/x"),
    ]
    for bad in ("", "a", "a=ftp://h", "a=http://h,a=http://i", "bad name=http://h"):
        with pytest.raises(ValueError, match="MONITOR_TARGETS"):
            parse_targets(bad)
