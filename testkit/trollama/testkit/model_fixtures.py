"""Pytest fixtures for the fake model servers (registered in the root conftest).

Each fixture runs its fake in a background thread, so the code under test
may use it from the test's event loop, another thread or a subprocess::

    async def test_answer(fake_ollama):
        fake_ollama.script.add(Reply(text="Hi!"), user_contains="hello")
        ...  # point a client at fake_ollama.url
        assert fake_ollama.requests_to("/api/chat")
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trollama.testkit.fake_ollama import FakeOllama
from trollama.testkit.fake_openai import FakeOpenAI
from trollama.testkit.server import ServerThread


@pytest.fixture
def fake_ollama() -> Iterator[ServerThread[FakeOllama]]:
    """A fresh fake Ollama server.

    It has ``.url``, ``.script``, ``.requests`` and ``.client_disconnects``."""
    with FakeOllama().start_in_thread() as handle:
        yield handle


@pytest.fixture
def fake_openai() -> Iterator[ServerThread[FakeOpenAI]]:
    """A fresh fake OpenAI-compatible server (same attributes as ``fake_ollama``)."""
    with FakeOpenAI().start_in_thread() as handle:
        yield handle
