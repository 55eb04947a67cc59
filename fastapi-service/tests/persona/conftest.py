"""Fixtures shared by the persona tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from trollama.brain.backends.ollama import OllamaBackend


@pytest.fixture
async def backend(fake_ollama: Any) -> AsyncIterator[OllamaBackend]:
    """An Ollama backend pointed at the fake Ollama server (models unloaded at once)."""
    ollama = OllamaBackend(
        fake_ollama.url, keep_alive_seconds=0, connect_timeout=2.0, read_timeout=10.0
    )
    yield ollama
    await ollama.close()
