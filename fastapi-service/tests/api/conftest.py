"""A real brain on a free port, wired to the fake Ollama and a real store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from trollama.brain.auth import mint_token
from trollama.brain.services import Services, build_services
from trollama.brain.settings import BrainSettings
from trollama.common.store.base import ItemStore
from trollama.testkit.brain import BrainClient, brain_settings, serve_brain


@dataclass
class RunningBrain:
    url: str
    settings: BrainSettings
    services: Services

    @property
    def relay_secret(self) -> str:
        return self.settings.relay_shared_secret.get_secret_value()

    def token(self, user: str, *, admin: bool = False, ttl: int = 600) -> str:
        secret = self.settings.jwt_secret_key.get_secret_value()
        return mint_token(user, secret, admin=admin, ttl_seconds=ttl)

    def relay(self) -> Any:
        return BrainClient.connect(self.url, self.relay_secret)


BrainFactory = Callable[..., Any]


@pytest.fixture
def brain_factory(fake_ollama: Any, tmp_path: Any) -> BrainFactory:
    """Start a brain with settings overrides; use as ``async with brain_factory(...)``."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def start(
        store: ItemStore | None = None, **overrides: Any
    ) -> AsyncIterator[RunningBrain]:
        values: dict[str, Any] = {"ollama_host": fake_ollama.url, **overrides}
        settings = brain_settings(**values)
        if store is None:
            from trollama.common.store.sqlite import SqliteStore

            store = SqliteStore(tmp_path / f"brain-{settings.brain_port}.db")
        services = build_services(settings, store=store)
        async with serve_brain(services) as url:
            yield RunningBrain(url=url, settings=settings, services=services)

    return start


@pytest.fixture
async def brain(brain_factory: BrainFactory) -> AsyncIterator[RunningBrain]:
    async with brain_factory() as running:
        yield running
