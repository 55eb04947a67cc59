"""Which backend serves which model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from trollama.brain.backends.base import (
    ChatMessage,
    GenerationOptions,
    ModelBackend,
    StreamChunk,
)
from trollama.brain.backends.registry import BackendRegistry


class _Recorder(ModelBackend):
    """A backend that only records being closed (the registry is under test)."""

    def __init__(self, name: str, *, fail_on_close: bool = False) -> None:
        self.name = name
        self.closed = False
        self._fail_on_close = fail_on_close

    async def stream_chat(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        options: GenerationOptions | None = None,
    ) -> AsyncIterator[StreamChunk]:
        yield StreamChunk(text=self.name, done=True)

    async def stream_with_tools(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[str],
        *,
        options: GenerationOptions | None = None,
    ) -> AsyncIterator[StreamChunk]:
        yield StreamChunk(text=self.name, done=True)

    async def list_models(self) -> list[str]:
        return []

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self.closed = True
        if self._fail_on_close:
            raise RuntimeError("close failed")


def _registry(*, fail: bool = False) -> tuple[BackendRegistry, _Recorder, _Recorder]:
    ollama, sglang = _Recorder("ollama", fail_on_close=fail), _Recorder("openai")
    registry = BackendRegistry(
        {"openai": sglang, "ollama": ollama}, {"devstral-2:123b": "openai"}, "ollama"
    )
    return registry, ollama, sglang


def test_models_go_to_their_backend_or_the_default() -> None:
    registry, ollama, sglang = _registry()
    assert registry.backend_for("devstral-2:123b") is sglang
    assert registry.backend_for("gpt-oss:20b") is ollama
    assert registry.get("openai") is sglang
    assert registry.all() == [ollama, sglang]


def test_a_misconfigured_registry_is_refused() -> None:
    backend = _Recorder("ollama")
    with pytest.raises(ValueError, match="default backend 'vllm'"):
        BackendRegistry({"ollama": backend}, {}, "vllm")
    with pytest.raises(ValueError, match="unconfigured backends: openai"):
        BackendRegistry({"ollama": backend}, {"devstral-2:123b": "openai"}, "ollama")


async def test_close_all_closes_every_backend_even_when_one_fails() -> None:
    registry, ollama, sglang = _registry(fail=True)
    await registry.close_all()
    assert ollama.closed
    assert sglang.closed
