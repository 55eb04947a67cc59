"""The tool path (strands-agents Agent) of both backends against the fakes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from trollama.brain.backends.base import (
    BackendUnavailable,
    ChatMessage,
    ContextOverflow,
    ModelBackend,
    ModelNotFound,
    StreamChunk,
)
from trollama.brain.backends.ollama import OllamaBackend
from trollama.brain.backends.openai_compat import OpenAICompatBackend
from trollama.testkit.fake_ollama import FakeOllama
from trollama.testkit.fake_openai import FakeOpenAI
from trollama.testkit.script import Reply
from trollama.testkit.server import FakeModelServer, ServerThread

MODEL = "gpt-oss:20b"
DISCONNECT_DEADLINE_SECONDS = 1.0
CancelAfterFirstChunk = Callable[[AsyncIterator[StreamChunk]], Awaitable[None]]
CONVERSATION = [
    ChatMessage("system", "You are Trolly."),
    ChatMessage("user", "Hi!"),
    ChatMessage("assistant", "Hello, how can I help?"),
    ChatMessage("user", "What is 6 * 7 + 0.5?"),
]
Pair = tuple[ModelBackend, ServerThread[FakeOllama] | ServerThread[FakeOpenAI]]


@pytest.fixture(params=["ollama", "openai"])
def pair(
    request: pytest.FixtureRequest,
    ollama_backend: OllamaBackend,
    openai_backend: OpenAICompatBackend,
    fake_ollama: ServerThread[FakeOllama],
    fake_openai: ServerThread[FakeOpenAI],
) -> Pair:
    """Each backend with the fake it talks to."""
    if request.param == "ollama":
        return ollama_backend, fake_ollama
    return openai_backend, fake_openai


def _chat_path(fake: ServerThread[FakeOllama] | ServerThread[FakeOpenAI]) -> str:
    return "/api/chat" if isinstance(fake.server, FakeOllama) else "/v1/chat/completions"


async def _collect(backend: ModelBackend, messages: list[ChatMessage]) -> list[StreamChunk]:
    stream = backend.stream_with_tools(MODEL, messages, ["calculate", "current_time"])
    return [chunk async for chunk in stream]


async def test_a_tool_round_trip_streams_the_call_and_the_answer(pair: Pair) -> None:
    backend, fake = pair
    fake.script.add(Reply.calling(("calculate", {"expression": "6 * 7 + 0.5"})), times=1)
    fake.script.add(Reply(text="It is 42.5.", eval_count=4), tool_result_contains="42.5")
    chunks = await _collect(backend, CONVERSATION)
    assert [c.tool for c in chunks if c.tool] == ["calculate"]
    assert "".join(c.text for c in chunks) == "It is 42.5."
    final = chunks[-1]
    assert final.done
    assert final.prompt_tokens > 0
    assert final.completion_tokens >= 4
    second = fake.requests_to(_chat_path(fake))[1].body
    assert second["messages"][-1]["role"] == "tool"
    assert "42.5" in str(second["messages"][-1]["content"])
    assert {t["function"]["name"] for t in second["tools"]} == {"calculate", "current_time"}


async def test_system_prompt_and_history_reach_the_model(pair: Pair) -> None:
    backend, fake = pair
    fake.script.add(Reply(text="Sure."))
    await _collect(backend, [*CONVERSATION[:3], ChatMessage("tool", "12:00"), CONVERSATION[3]])
    messages = fake.requests_to(_chat_path(fake))[0].body["messages"]
    assert messages[0] == {"role": "system", "content": "You are Trolly."}
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user", "user"]
    assert "Tool result: 12:00" in str(messages[3]["content"])
    assert "What is 6 * 7 + 0.5?" in str(messages[-1]["content"])


async def test_a_hostile_tool_call_is_refused_and_the_model_is_told(pair: Pair) -> None:
    backend, fake = pair
    fake.script.add(Reply.calling(("calculate", {"expression": "__import__('os')"})), times=1)
    fake.script.add(Reply(text="I cannot compute that."), tool_result_contains="allowed")
    chunks = await _collect(backend, CONVERSATION)
    assert "".join(c.text for c in chunks) == "I cannot compute that."


async def test_cancelling_the_consumer_closes_the_model_stream(
    pair: Pair, cancel_after_first_chunk: CancelAfterFirstChunk
) -> None:
    backend, fake = pair
    fake.script.add(Reply(text="word " * 400, tokens_per_second=20))
    await cancel_after_first_chunk(backend.stream_with_tools(MODEL, CONVERSATION, ["calculate"]))
    assert await asyncio.to_thread(fake.wait_for_disconnects, 1, DISCONNECT_DEADLINE_SECONDS)


async def test_errors_on_the_tool_path_are_mapped(pair: Pair) -> None:
    backend, fake = pair
    fake.script.add(Reply.failing(500, "boom"), user_contains="fail")
    fake.script.add(Reply(text="a b c", disconnect_after_tokens=1), user_contains="drop")
    with pytest.raises(ModelNotFound):
        [c async for c in backend.stream_with_tools("missing:1b", CONVERSATION, [])]
    with pytest.raises(BackendUnavailable):
        await _collect(backend, [ChatMessage("user", "fail")])
    with pytest.raises(BackendUnavailable):
        await _collect(backend, [ChatMessage("user", "drop")])


@pytest.mark.parametrize("server", [FakeOllama, FakeOpenAI])
async def test_context_overflow_on_the_tool_path(server: type[FakeModelServer]) -> None:
    async with server(context_length=3) as fake:
        backend: ModelBackend
        if isinstance(fake, FakeOllama):
            backend = OllamaBackend(
                fake.url, keep_alive_seconds=0, connect_timeout=2, read_timeout=10
            )
        else:
            backend = OpenAICompatBackend(fake.url, api_key="k", connect_timeout=2, read_timeout=10)
        with pytest.raises(ContextOverflow):
            await _collect(backend, CONVERSATION)
        await backend.close()


async def test_a_down_server_is_unavailable_on_the_tool_path(closed_url: str) -> None:
    backend = OllamaBackend(closed_url, keep_alive_seconds=0, connect_timeout=2, read_timeout=10)
    with pytest.raises(BackendUnavailable) as caught:
        await _collect(backend, CONVERSATION)
    assert "is not reachable" in str(caught.value)
    await backend.close()


async def test_unknown_tools_are_a_programming_error(ollama_backend: OllamaBackend) -> None:
    with pytest.raises(ValueError, match="unknown tools: rm_rf"):
        [c async for c in ollama_backend.stream_with_tools(MODEL, CONVERSATION, ["rm_rf"])]
