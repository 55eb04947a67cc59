"""Backends pointed at the test kit's fake model servers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from trollama.brain.backends.base import StreamChunk
from trollama.brain.backends.ollama import OllamaBackend
from trollama.brain.backends.openai_compat import OpenAICompatBackend
from trollama.testkit.fake_ollama import FakeOllama
from trollama.testkit.fake_openai import FakeOpenAI
from trollama.testkit.server import ServerThread

#: Seconds the backends wait to connect / for the next chunk in tests.
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 10.0


@pytest.fixture
def closed_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def ollama_backend(fake_ollama: ServerThread[FakeOllama]) -> AsyncIterator[OllamaBackend]:
    backend = OllamaBackend(
        fake_ollama.url,
        keep_alive_seconds=120,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )
    yield backend
    await backend.close()


@pytest.fixture
async def openai_backend(
    fake_openai: ServerThread[FakeOpenAI],
) -> AsyncIterator[OpenAICompatBackend]:
    backend = OpenAICompatBackend(
        fake_openai.url,
        api_key="test-key",
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        name="sglang",
    )
    yield backend
    await backend.close()


#: Seconds within which a fake must see a cancelled stream's connection close.
DISCONNECT_DEADLINE_SECONDS = 1.0

CancelAfterFirstChunk = Callable[[AsyncIterator[StreamChunk]], Awaitable[None]]


@pytest.fixture
def cancel_after_first_chunk() -> CancelAfterFirstChunk:
    """Consume a stream in a task and cancel that task once a chunk arrived."""

    async def run(stream: AsyncIterator[StreamChunk]) -> None:
        first = asyncio.Event()

        async def consume() -> None:
            async for _ in stream:
                first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), READ_TIMEOUT_SECONDS)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    return run
