"""The dashboard's extra figures read from a real brain and a real logging service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from trollama.brain.auth import mint_token
from trollama.brain.services import build_services
from trollama.common.settings import StoreSettings
from trollama.common.store.sqlite import SqliteStore
from trollama.logsink.service import LogSink
from trollama.logsink.settings import LogSinkSettings
from trollama.monitor.service import Monitor
from trollama.monitor.settings import MonitorSettings
from trollama.testkit.brain import brain_settings, serve_brain
from trollama.testkit.script import Reply

MODEL = "gpt-oss:20b"


async def test_queue_tokens_store_and_cleanup_figures_come_from_the_services(
    fake_ollama: Any, tmp_path: Path
) -> None:
    fake_ollama.script.add(Reply(text="Llamas hum.", prompt_eval_count=21, eval_count=4))
    settings = brain_settings(ollama_host=fake_ollama.url)
    services = build_services(settings, store=SqliteStore(tmp_path / "brain.db"))
    sink = LogSink(
        LogSinkSettings(
            _env_file=None,
            dev_mode=True,
            log_dir=tmp_path / "logs",
            log_service_port=0,
            logsink_health_port=0,
        ),
        fallback_dir=tmp_path / "fallback",
    )
    await sink.start()
    try:
        async with serve_brain(services) as url:
            token = mint_token("u1", settings.jwt_secret_key.get_secret_value())
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                body = {"content": "hum for me", "model_override": MODEL}
                headers = {"Authorization": f"Bearer {token}"}
                async with client.stream("POST", "/api/chat", json=body, headers=headers) as r:
                    assert r.status_code == 200
                    async for _ in r.aiter_lines():
                        pass
            targets = f"brain={url}/health,logging=http://127.0.0.1:{sink.health_port}/health"
            monitor_db = tmp_path / "monitor.db"
            monitor = Monitor(
                MonitorSettings(
                    _env_file=None,
                    monitor_targets=targets,
                    monitor_poll_seconds=60,
                    store=StoreSettings(_env_file=None, sqlite_path=monitor_db),
                ),
                SqliteStore(monitor_db),
            )
            await monitor.store.ensure_tables()
            try:
                await monitor.poller.poll_once()
                extras = monitor.extras.latest
            finally:
                await monitor.stop()
    finally:
        await sink.stop()

    assert extras.brain.reachable and extras.brain.queue_depth == 0
    tokens = {(row.model, row.direction): row.tokens for row in extras.brain.tokens}
    assert tokens[(MODEL, "in")] == 21 and tokens[(MODEL, "out")] == 4
    assert extras.logging.reachable and extras.logging.last_cleanup_at is not None
    assert extras.logging.fallback_active is False
    assert extras.store.reachable and extras.store.samples_today == {"brain": 1, "logging": 1}
