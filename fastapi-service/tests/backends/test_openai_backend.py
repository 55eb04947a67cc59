"""The OpenAI-compatible backend against the fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from trollama.brain.backends.base import (
    BackendError,
    BackendUnavailable,
    ChatMessage,
    ContextOverflow,
    GenerationOptions,
    ModelNotFound,
    StreamChunk,
)
from trollama.brain.backends.openai_compat import OpenAICompatBackend, api_root
from trollama.testkit.fake_openai import FakeOpenAI
from trollama.testkit.script import Reply
from trollama.testkit.server import ServerThread

MODEL = "devstral-small-2:24b"
DISCONNECT_DEADLINE_SECONDS = 1.0
HELLO = [ChatMessage("system", "You are Trolly."), ChatMessage("user", "hello")]
CancelAfterFirstChunk = Callable[[AsyncIterator[StreamChunk]], Awaitable[None]]


async def _collect(backend: OpenAICompatBackend, messages: list[ChatMessage]) -> list[StreamChunk]:
    return [chunk async for chunk in backend.stream_chat(MODEL, messages)]


def _backend(url: str, *, read_timeout: float = 10.0) -> OpenAICompatBackend:
    return OpenAICompatBackend(url, api_key="k", connect_timeout=2.0, read_timeout=read_timeout)


def test_the_api_root_gets_v1_only_when_it_has_no_path() -> None:
    assert api_root("http://gpu:30000") == "http://gpu:30000/v1"
    assert api_root("http://gpu:30000/") == "http://gpu:30000/v1"
    assert api_root("http://gpu:30000/v1/") == "http://gpu:30000/v1"
    assert api_root("https://gateway/openai/v1") == "https://gateway/openai/v1"


async def test_stream_carries_text_reasoning_and_usage(
    fake_openai: ServerThread[FakeOpenAI], openai_backend: OpenAICompatBackend
) -> None:
    reply = Reply(
        text="Hi <think>x</think> there", thinking="Plan.", prompt_eval_count=11, eval_count=4
    )
    fake_openai.script.add(reply)
    chunks = await _collect(openai_backend, HELLO)
    assert "".join(c.text for c in chunks) == "Hi <think>x</think> there"
    assert "".join(c.thinking for c in chunks) == "Plan."
    assert chunks[-1] == StreamChunk(done=True, prompt_tokens=11, completion_tokens=4)
    assert openai_backend.name == "sglang"


async def test_options_usage_request_and_images_reach_the_server(
    fake_openai: ServerThread[FakeOpenAI], openai_backend: OpenAICompatBackend
) -> None:
    image = base64.b64encode(b"\xff\xd8\xff jpeg bytes").decode()
    messages = [ChatMessage("user", "what is this?", images=(image,))]
    options = GenerationOptions(temperature=0.3, top_p=0.9, max_tokens=64, stop=("END",))
    await openai_backend.complete(MODEL, messages, options=options)
    body = fake_openai.requests_to("/v1/chat/completions")[0].body
    assert body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.3, 0.9, 64)
    assert body["stop"] == ["END"]
    content = body["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "what is this?"}
    assert content[1]["image_url"]["url"] == f"data:image/jpeg;base64,{image}"


async def test_a_down_server_is_unavailable(closed_url: str) -> None:
    backend = _backend(closed_url)
    with pytest.raises(BackendUnavailable) as caught:
        await _collect(backend, HELLO)
    assert str(caught.value) == f"The model server at {closed_url}/v1 is not reachable."
    assert await backend.ping() is False
    await backend.close()


async def test_an_unknown_model_is_model_not_found(openai_backend: OpenAICompatBackend) -> None:
    with pytest.raises(ModelNotFound):
        [c async for c in openai_backend.stream_chat("missing-model", HELLO)]


async def test_server_errors_are_unavailable_and_refusals_are_final(
    fake_openai: ServerThread[FakeOpenAI], openai_backend: OpenAICompatBackend
) -> None:
    fake_openai.script.add(Reply.failing(503, "warming up"), times=1)
    fake_openai.script.add(Reply.failing(401, "bad key"), times=1)
    with pytest.raises(BackendUnavailable) as unavailable:
        await _collect(openai_backend, HELLO)
    assert "HTTP 503" in str(unavailable.value)
    with pytest.raises(BackendError) as refused:
        await _collect(openai_backend, HELLO)
    assert not isinstance(refused.value, BackendUnavailable)
    assert not refused.value.retryable


async def test_a_mid_stream_disconnect_is_unavailable(
    fake_openai: ServerThread[FakeOpenAI], openai_backend: OpenAICompatBackend
) -> None:
    fake_openai.script.add(Reply(text="one two three", disconnect_after_tokens=1))
    with pytest.raises(BackendUnavailable) as caught:
        await _collect(openai_backend, HELLO)
    assert "mid-answer" in str(caught.value)


async def test_context_overflow_is_recognised() -> None:
    async with FakeOpenAI(context_length=3) as small:
        backend = _backend(small.url)
        with pytest.raises(ContextOverflow):
            await _collect(backend, [ChatMessage("user", "more than three words here")])
        await backend.close()


async def test_a_silent_server_times_out(fake_openai: ServerThread[FakeOpenAI]) -> None:
    fake_openai.script.add(Reply(text="late", ttft_seconds=5.0))
    backend = _backend(fake_openai.url, read_timeout=0.2)
    with pytest.raises(BackendUnavailable) as caught:
        await _collect(backend, HELLO)
    assert "did not answer in time" in str(caught.value)
    await backend.close()


async def test_cancelling_the_consumer_closes_the_stream(
    fake_openai: ServerThread[FakeOpenAI],
    openai_backend: OpenAICompatBackend,
    cancel_after_first_chunk: CancelAfterFirstChunk,
) -> None:
    fake_openai.script.add(Reply(text="word " * 400, tokens_per_second=20))
    await cancel_after_first_chunk(openai_backend.stream_chat(MODEL, HELLO))
    assert await asyncio.to_thread(fake_openai.wait_for_disconnects, 1, DISCONNECT_DEADLINE_SECONDS)


async def test_models_listing_and_ping(openai_backend: OpenAICompatBackend) -> None:
    assert "devstral-2:123b" in await openai_backend.list_models()
    assert await openai_backend.ping() is True
