"""A real browser (Debian chromium via Playwright) watches a service go down and come back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from aiohttp import web

from trollama.common.settings import REPO_ROOT, StoreSettings
from trollama.common.store.sqlite import SqliteStore
from trollama.monitor.app import create_app
from trollama.monitor.service import Monitor
from trollama.monitor.settings import MonitorSettings
from trollama.testkit.ports import free_port

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Longest wait for the page to show a change, in milliseconds.
EXPECT_TIMEOUT_MS = 10_000
SCREENSHOT = REPO_ROOT / "test-artifacts" / "dashboard.png"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install chromium)"
)


class FlippableTarget:
    """A health endpoint answering 200 healthy or 503 unhealthy, as the test says."""

    def __init__(self) -> None:
        self.healthy = True
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/health"

    async def _health(self, request: web.Request) -> web.Response:
        status = "healthy" if self.healthy else "unhealthy"
        return web.json_response({"status": status}, status=200 if self.healthy else 503)


@pytest.fixture
async def target() -> AsyncIterator[FlippableTarget]:
    fake = FlippableTarget()
    await fake.start()
    yield fake
    assert fake.runner is not None
    await fake.runner.cleanup()


@pytest.fixture
async def dashboard_url(target: FlippableTarget, tmp_path: Path) -> AsyncIterator[str]:
    settings = MonitorSettings(
        monitor_poll_seconds=0.3,
        monitor_timeout_seconds=1.0,
        monitor_targets=f"brain={target.url}",
        store=StoreSettings(sqlite_path=tmp_path / "monitor.db"),
    )
    store = SqliteStore(tmp_path / "monitor.db", table_prefix="t_")
    port = free_port()
    config = uvicorn.Config(
        create_app(Monitor(settings, store)), host="127.0.0.1", port=port, log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no "started" event
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    await task


async def test_dashboard_shows_outage_and_recovery(
    target: FlippableTarget, dashboard_url: str
) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_FLAGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await page.goto(dashboard_url)
        state = page.get_by_test_id("state-brain")
        await expect(state).to_have_text("UP", timeout=EXPECT_TIMEOUT_MS)

        target.healthy = False
        await expect(state).to_have_text("DOWN", timeout=EXPECT_TIMEOUT_MS)
        open_alert = page.get_by_test_id("alert-brain-open")
        await expect(open_alert).to_contain_text("open", timeout=EXPECT_TIMEOUT_MS)
        await expect(page.get_by_test_id("summary")).to_have_text("Down: brain")

        target.healthy = True
        await expect(state).to_have_text("UP", timeout=EXPECT_TIMEOUT_MS)
        await expect(open_alert).to_have_count(0, timeout=EXPECT_TIMEOUT_MS)
        resolved = page.get_by_test_id("alert-brain-resolved")
        await expect(resolved).to_contain_text("resolved", timeout=EXPECT_TIMEOUT_MS)
        await expect(page.get_by_test_id("uptime-brain")).not_to_have_text("—")

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
        await browser.close()
    assert SCREENSHOT.stat().st_size > 0


async def test_the_monitors_own_requests_are_counted_by_route_template(
    dashboard_url: str,
) -> None:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(base_url=dashboard_url, timeout=5.0) as client:
        assert (await client.get("/api/status")).status_code == 200
        assert (await client.get("/api/alerts", params={"limit": 5})).status_code == 200
        body = (await client.get("/metrics")).text
    counted = {
        (sample.labels["route"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(body)
        if family.name == "trollama_http_requests"
        for sample in family.samples
        if sample.name == "trollama_http_requests_total" and sample.labels["service"] == "monitor"
    }
    assert counted[("/api/status", "200")] >= 1
    assert counted[("/api/alerts", "200")] == 1
