"""The whole stack for end-to-end relay tests: fake Discord, real relay, real
brain, fake Ollama; all on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trollama.brain.services import Services, build_services
from trollama.common.store.sqlite import SqliteStore
from trollama.relay.bot import RelayBot
from trollama.relay.settings import RelaySettings
from trollama.testkit.brain import brain_settings, serve_brain
from trollama.testkit.discord_fixtures import running_client
from trollama.testkit.fake_discord import FakeDiscord
from trollama.testkit.ports import free_port

#: Seconds between operations in a channel in tests (production: 1.1).
TEST_EDIT_INTERVAL = 0.3


@dataclass
class Stack:
    discord: FakeDiscord
    bot: RelayBot
    brain: Services
    brain_url: str
    health_url: str


@pytest.fixture
def stack_factory(
    fake_discord: FakeDiscord, fake_ollama: Any, tmp_path: Path
) -> Callable[..., Any]:
    @asynccontextmanager
    async def start(**brain_overrides: Any) -> AsyncIterator[Stack]:
        settings = brain_settings(**{"ollama_host": fake_ollama.url, **brain_overrides})
        services = build_services(settings, store=SqliteStore(tmp_path / "brain.db"))
        async with AsyncExitStack() as stack:
            url = await stack.enter_async_context(serve_brain(services))
            health_port = free_port()
            relay_settings = RelaySettings(
                _env_file=None,
                dev_mode=True,
                discord_token=fake_discord.token,
                relay_shared_secret=settings.relay_shared_secret,
                fastapi_ws_url=url.replace("http://", "ws://") + "/ws/discord",
                relay_health_port=health_port,
                stream_chunk_interval=TEST_EDIT_INTERVAL,
                merge_window_seconds=0.2,
            )
            bot = RelayBot(relay_settings)
            await stack.enter_async_context(running_client(fake_discord, bot))
            await fake_discord.wait_for(lambda: str(bot.link.state) == "connected")
            yield Stack(fake_discord, bot, services, url, f"http://127.0.0.1:{health_port}/health")

    return start


@pytest.fixture
async def stack(stack_factory: Callable[..., Any]) -> AsyncIterator[Stack]:
    async with stack_factory() as running:
        yield running
