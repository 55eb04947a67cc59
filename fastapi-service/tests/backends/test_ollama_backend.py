"""The Ollama backend against the fake Ollama server."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import cast

import pytest

from trollama.brain.backends.base import (
    BackendUnavailable,
    ChatMessage,
    ContextOverflow,
    GenerationOptions,
    ModelNotFound,
    StreamChunk,
)
from trollama.brain.backends.ollama import OllamaBackend
from trollama.testkit.fake_ollama import FakeOllama
from trollama.testkit.script import Reply
from trollama.testkit.server import ServerThread

MODEL = "gpt-oss:20b"
DISCONNECT_DEADLINE_SECONDS = 1.0
HELLO = [ChatMessage("system", "You are Trolly."), ChatMessage("user", "hello")]
CancelAfterFirstChunk = Callable[[AsyncIterator[StreamChunk]], Awaitable[None]]


async def _collect(backend: OllamaBackend, messages: list[ChatMessage]) -> list[StreamChunk]:
    return [chunk async for chunk in backend.stream_chat(MODEL, messages)]


def _backend(url: str, *, read_timeout: float = 10.0) -> OllamaBackend:
    return OllamaBackend(url, keep_alive_seconds=60, connect_timeout=2.0, read_timeout=read_timeout)


async def test_stream_carries_the_scripted_text_thinking_and_counts(
    fake_ollama: ServerThread[FakeOllama], ollama_backend: OllamaBackend
) -> None:
    reply = Reply(
        text="Hello, <b>world</b>!", thinking="Greet back.", prompt_eval_count=12, eval_count=5
    )
    fake_ollama.script.add(reply)
    chunks = await _collect(ollama_backend, HELLO)
    assert "".join(c.text for c in chunks) == "Hello, <b>world</b>!"
    assert "".join(c.thinking for c in chunks) == "Greet back."
    assert [c.done for c in chunks].count(True) == 1
    assert chunks[-1] == StreamChunk(done=True, prompt_tokens=12, completion_tokens=5)


async def test_options_keep_alive_and_images_reach_the_server(
    fake_ollama: ServerThread[FakeOllama], ollama_backend: OllamaBackend
) -> None:
    image = base64.b64encode(b"\x89PNG fake image bytes").decode()
    messages = [ChatMessage("user", "what is this?", images=(image,))]
    options = GenerationOptions(temperature=0.3, top_p=0.9, max_tokens=64, stop=("END",))
    await ollama_backend.complete(MODEL, messages, options=options)
    body = fake_ollama.requests_to("/api/chat")[0].body
    assert body["options"] == {"temperature": 0.3, "top_p": 0.9, "num_predict": 64, "stop": ["END"]}
    assert body["keep_alive"] == 120
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "what is this?", "images": [image]}]


async def test_complete_joins_the_answer(
    fake_ollama: ServerThread[FakeOllama], ollama_backend: OllamaBackend
) -> None:
    fake_ollama.script.add(Reply(text="MATH"), system_contains="route")
    route = await ollama_backend.complete(MODEL, [ChatMessage("system", "Pick a route"), HELLO[1]])
    assert route == "MATH"


async def test_a_down_server_is_unavailable(closed_url: str) -> None:
    backend = _backend(closed_url)
    with pytest.raises(BackendUnavailable) as caught:
        await _collect(backend, HELLO)
    assert str(caught.value) == f"The Ollama server at {closed_url} is not reachable."
    assert caught.value.retryable
    assert await backend.ping() is False
    with pytest.raises(BackendUnavailable):
        await backend.list_models()
    await backend.close()


async def test_credentials_in_the_host_stay_out_of_messages(closed_url: str) -> None:
    backend = _backend(closed_url.replace("http://", "http://admin:hunter2@"))
    with pytest.raises(BackendUnavailable) as caught:
        await _collect(backend, HELLO)
    assert "hunter2" not in str(caught.value)
    await backend.close()


async def test_an_unknown_model_is_model_not_found(ollama_backend: OllamaBackend) -> None:
    with pytest.raises(ModelNotFound) as caught:
        [c async for c in ollama_backend.stream_chat("missing:1b", HELLO)]
    assert "missing:1b" in str(caught.value)
    assert not caught.value.retryable


async def test_a_server_error_is_unavailable_without_its_raw_text(
    fake_ollama: ServerThread[FakeOllama], ollama_backend: OllamaBackend
) -> None:
    fake_ollama.script.add(Reply.failing(500, "CUDA error at /secret/path"))
    with pytest.raises(BackendUnavailable) as caught:
        await _collect(ollama_backend, HELLO)
    assert "HTTP 500" in str(caught.value)
    assert "/secret/path" not in str(caught.value)


async def test_a_mid_stream_disconnect_is_unavailable(
    fake_ollama: ServerThread[FakeOllama], ollama_backend: OllamaBackend
) -> None:
    fake_ollama.script.add(Reply(text="one two three four", disconnect_after_tokens=2))
    received: list[str] = []

    async def consume() -> None:
        async for chunk in ollama_backend.stream_chat(MODEL, HELLO):
            received.append(chunk.text)

    with pytest.raises(BackendUnavailable) as caught:
        await consume()
    assert received == ["one ", "two "]
    assert "mid-answer" in str(caught.value)


async def test_context_overflow_is_recognised(
    fake_ollama: ServerThread[FakeOllama], ollama_backend: OllamaBackend
) -> None:
    fake_ollama.script.add(
        Reply.failing(400, "the input length exceeds the context length"), user_contains="long"
    )
    with pytest.raises(ContextOverflow) as caught:
        await _collect(ollama_backend, [ChatMessage("user", "a long story")])
    assert not caught.value.retryable
    async with FakeOllama(context_length=3) as small:
        backend = _backend(small.url)
        with pytest.raises(ContextOverflow):
            await _collect(backend, [ChatMessage("user", "more than three words here")])
        await backend.close()


async def test_a_silent_server_times_out(fake_ollama: ServerThread[FakeOllama]) -> None:
    fake_ollama.script.add(Reply(text="late", ttft_seconds=5.0))
    backend = _backend(fake_ollama.url, read_timeout=0.2)
    with pytest.raises(BackendUnavailable) as caught:
        await _collect(backend, HELLO)
    assert "did not answer in time" in str(caught.value)
    await backend.close()


async def test_cancelling_the_consumer_closes_the_stream(
    fake_ollama: ServerThread[FakeOllama],
    ollama_backend: OllamaBackend,
    cancel_after_first_chunk: CancelAfterFirstChunk,
) -> None:
    fake_ollama.script.add(Reply(text="word " * 400, tokens_per_second=20))
    await cancel_after_first_chunk(ollama_backend.stream_chat(MODEL, HELLO))
    assert await asyncio.to_thread(fake_ollama.wait_for_disconnects, 1, DISCONNECT_DEADLINE_SECONDS)


async def test_closing_the_iterator_closes_the_stream(
    fake_ollama: ServerThread[FakeOllama], ollama_backend: OllamaBackend
) -> None:
    fake_ollama.script.add(Reply(text="word " * 400, tokens_per_second=20))
    stream = cast(AsyncGenerator[StreamChunk], ollama_backend.stream_chat(MODEL, HELLO))
    first = await anext(stream)
    assert first.text == "word "
    await stream.aclose()
    assert await asyncio.to_thread(fake_ollama.wait_for_disconnects, 1, DISCONNECT_DEADLINE_SECONDS)


async def test_models_listing_and_ping(ollama_backend: OllamaBackend) -> None:
    models = await ollama_backend.list_models()
    assert "gpt-oss:120b" in models
    assert await ollama_backend.ping() is True


async def test_load_unload_and_loaded(ollama_backend: OllamaBackend) -> None:
    await ollama_backend.load("rnj-1:8b")
    loaded = await ollama_backend.loaded()
    assert [m.name for m in loaded] == ["rnj-1:8b"]
    assert loaded[0].vram_bytes > 0
    assert loaded[0].expires_at is not None
    await ollama_backend.unload("rnj-1:8b")
    assert await ollama_backend.loaded() == []
    with pytest.raises(ModelNotFound):
        await ollama_backend.load("missing:1b")


async def test_embed_returns_one_unit_vector_per_text_and_similar_texts_score_higher(
    fake_ollama: ServerThread[FakeOllama], ollama_backend: OllamaBackend
) -> None:
    vectors = await ollama_backend.embed(
        "qwen3-embedding:4b", ["I love green tea", "green tea I love", "rust compilers"]
    )
    assert len(vectors) == 3
    same = sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))
    other = sum(a * b for a, b in zip(vectors[0], vectors[2], strict=True))
    assert same > 0.99 > other


async def test_embed_with_an_unknown_model_is_model_not_found(
    ollama_backend: OllamaBackend,
) -> None:
    with pytest.raises(ModelNotFound):
        await ollama_backend.embed("no-such-embedder", ["x"])


async def test_a_json_schema_is_sent_as_ollamas_format(
    fake_ollama: ServerThread[FakeOllama], ollama_backend: OllamaBackend
) -> None:
    schema = {"type": "object", "properties": {"facts": {"type": "array"}}}
    fake_ollama.script.add(Reply(text='{"facts": []}'))
    text = await ollama_backend.complete(
        MODEL, HELLO, options=GenerationOptions(json_schema=schema)
    )
    assert text == '{"facts": []}'
    assert fake_ollama.requests_to("/api/chat")[-1].body["format"] == schema


async def test_embed_asks_for_shorter_vectors_when_told(
    fake_ollama: ServerThread[FakeOllama], ollama_backend: OllamaBackend
) -> None:
    vectors = await ollama_backend.embed("qwen3-embedding:4b", ["a", "b"], dimensions=64)
    assert [len(v) for v in vectors] == [64, 64]
    assert fake_ollama.requests_to("/api/embed")[-1].body["dimensions"] == 64
