"""The fake Ollama speaks the protocol of the real ``ollama`` client and strands-agents."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import ollama
import pytest
from strands import Agent, tool
from strands.agent.conversation_manager import NullConversationManager
from strands.models.ollama import OllamaModel
from strands.types.exceptions import ContextWindowOverflowException

from trollama.testkit.fake_ollama import FakeOllama
from trollama.testkit.script import ModelScript, Reply
from trollama.testkit.server import ServerThread

MODEL = "gpt-oss:20b"
#: Seconds a test waits for something the fake will observe.
DEADLINE_SECONDS = 1.0
USER = [{"role": "user", "content": "hello there"}]


@pytest.fixture
async def client(fake_ollama: ServerThread[FakeOllama]) -> AsyncIterator[ollama.AsyncClient]:
    async with ollama.AsyncClient(fake_ollama.url) as real_client:
        yield real_client


async def test_streaming_chat_carries_text_thinking_and_final_counts(
    fake_ollama: ServerThread[FakeOllama], client: ollama.AsyncClient
) -> None:
    fake_ollama.script.add(Reply(text="Hi, friend!", thinking="Be warm.", eval_count=7))
    parts = [
        part
        async for part in await client.chat(
            model=MODEL, messages=USER, stream=True, options={"temperature": 0.2}, keep_alive=60
        )
    ]
    assert "".join(p.message.content or "" for p in parts) == "Hi, friend!"
    assert "".join(p.message.thinking or "" for p in parts) == "Be warm."
    final = parts[-1]
    assert final.done
    assert final.done_reason == "stop"
    assert final.eval_count == 7
    assert isinstance(final.prompt_eval_count, int)
    assert final.prompt_eval_count > 0
    assert isinstance(final.total_duration, int)
    body = fake_ollama.requests_to("/api/chat")[0].body
    assert body["options"] == {"temperature": 0.2}
    assert body["keep_alive"] == 60


async def test_non_streaming_chat_returns_tool_calls_with_object_arguments(
    fake_ollama: ServerThread[FakeOllama], client: ollama.AsyncClient
) -> None:
    fake_ollama.script.add(Reply.calling(("calculate", {"expression": "6*7"})))
    response = await client.chat(model=MODEL, messages=USER)
    calls = response.message.tool_calls or []
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("calculate", {"expression": "6*7"})
    ]
    assert response.done


async def test_num_predict_cuts_the_answer_with_reason_length(
    fake_ollama: ServerThread[FakeOllama], client: ollama.AsyncClient
) -> None:
    fake_ollama.script.add(Reply(text="one two three four five"))
    response = await client.chat(model=MODEL, messages=USER, options={"num_predict": 2})
    assert response.message.content == "one two "
    assert response.done_reason == "length"


async def test_unknown_model_is_a_404_like_ollama(client: ollama.AsyncClient) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        await client.chat(model="no-such:1b", messages=USER)
    assert caught.value.status_code == 404
    assert caught.value.error == "model 'no-such:1b' not found"


async def test_scripted_error_and_mid_stream_disconnect(
    fake_ollama: ServerThread[FakeOllama], client: ollama.AsyncClient
) -> None:
    fake_ollama.script.add(Reply.failing(500, "out of memory"), user_contains="fail")
    fake_ollama.script.add(Reply(text="a b c d e", disconnect_after_tokens=2), user_contains="drop")
    with pytest.raises(ollama.ResponseError) as caught:
        await client.chat(model=MODEL, messages=[{"role": "user", "content": "fail"}])
    assert (caught.value.status_code, caught.value.error) == (500, "out of memory")
    received: list[str] = []

    async def consume() -> None:
        drop = [{"role": "user", "content": "drop"}]
        async for part in await client.chat(model=MODEL, messages=drop, stream=True):
            received.append(part.message.content or "")

    with pytest.raises(httpx.RemoteProtocolError):
        await consume()
    assert received == ["a ", "b "]
    assert fake_ollama.client_disconnects == 0


async def test_a_cancelled_stream_is_counted_as_a_client_disconnect(
    fake_ollama: ServerThread[FakeOllama], client: ollama.AsyncClient
) -> None:
    fake_ollama.script.add(Reply(text="word " * 200, tokens_per_second=20))
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in await client.chat(model=MODEL, messages=USER, stream=True):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), DEADLINE_SECONDS)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake_ollama.wait_for_disconnects, 1, DEADLINE_SECONDS)
    assert fake_ollama.client_disconnects == 1


async def test_generate_loads_and_unloads_models_seen_in_ps(
    client: ollama.AsyncClient,
) -> None:
    loaded = await client.generate(model=MODEL, keep_alive="10m")
    assert (loaded.done, loaded.done_reason) == (True, "load")
    running = (await client.ps()).models
    assert [m.model for m in running] == [MODEL]
    expires = running[0].expires_at
    assert expires is not None
    assert timedelta(minutes=9) < expires - datetime.now(UTC) <= timedelta(minutes=10)
    unloaded = await client.generate(model=MODEL, keep_alive=0)
    assert unloaded.done_reason == "unload"
    assert (await client.ps()).models == []


async def test_a_chat_with_keep_alive_zero_leaves_nothing_loaded(
    client: ollama.AsyncClient,
) -> None:
    await client.chat(model=MODEL, messages=USER, keep_alive=0)
    assert (await client.ps()).models == []
    await client.chat(model=MODEL, messages=USER, keep_alive=-1)
    assert [m.model for m in (await client.ps()).models] == [MODEL]


async def test_generate_with_a_prompt_streams_the_response_field(
    fake_ollama: ServerThread[FakeOllama], client: ollama.AsyncClient
) -> None:
    fake_ollama.script.add(Reply(text="Paris is the capital."), user_contains="capital")
    parts = [
        p async for p in await client.generate(model=MODEL, prompt="The capital?", stream=True)
    ]
    assert "".join(p.response or "" for p in parts) == "Paris is the capital."
    assert parts[-1].done


async def test_embeddings_are_deterministic_unit_vectors(client: ollama.AsyncClient) -> None:
    texts = ["the cat sat on the mat", "the cat sat on the mat", "quantum chromodynamics"]
    first = (await client.embed(model="qwen3-embedding:4b", input=texts)).embeddings
    again = (await client.embed(model="qwen3-embedding:4b", input=texts[0])).embeddings
    assert first[0] == first[1] == again[0]
    assert first[0] != first[2]
    assert math.isclose(sum(v * v for v in first[2]), 1.0)


async def test_tags_show_and_version_describe_the_rosters(
    fake_ollama: ServerThread[FakeOllama], client: ollama.AsyncClient
) -> None:
    names = [m.model for m in (await client.list()).models]
    assert {"gpt-oss:120b", "qwen3-embedding:4b"} <= set(names)
    shown = await client.show("qwen3-embedding:4b")
    assert shown.capabilities == ["embedding"]
    assert shown.details is not None
    assert shown.details.parameter_size == "4B"
    async with httpx.AsyncClient() as raw:
        version = (await raw.get(f"{fake_ollama.url}/api/version")).json()
    assert isinstance(version["version"], str)


async def test_any_model_is_accepted_when_asked() -> None:
    async with FakeOllama(accept_any_model=True) as fake, ollama.AsyncClient(fake.url) as client:
        response = await client.chat(model="made-up:7b", messages=USER)
    assert response.message.content


@contextlib.asynccontextmanager
async def _shared_transport() -> AsyncIterator[dict[str, Any]]:
    """Client arguments sharing one closable connection pool.

    strands' OllamaModel makes an ``ollama.AsyncClient`` per call and never
    closes it; with a transport of our own, nothing is left open."""
    transport = httpx.AsyncHTTPTransport()
    try:
        yield {"transport": transport}
    finally:
        await transport.aclose()


@tool
def add_numbers(a: int, b: int) -> int:
    """Add two whole numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


async def test_strands_agent_completes_a_tool_round_trip(
    fake_ollama: ServerThread[FakeOllama],
) -> None:
    script = fake_ollama.script
    script.add(Reply.calling(("add_numbers", {"a": 40, "b": 2})), user_contains="add", times=1)
    script.add(Reply(text="The sum is 42."), tool_result_contains="42")
    async with _shared_transport() as transport:
        agent = Agent(
            model=OllamaModel(fake_ollama.url, model_id=MODEL, ollama_client_args=transport),
            tools=[add_numbers],
            callback_handler=None,
        )
        result = await agent.invoke_async("Please add 40 and 2")
    assert str(result).strip() == "The sum is 42."
    second = fake_ollama.requests_to("/api/chat")[1].body
    assert second["messages"][-1] == {"role": "tool", "content": "42"}
    assert second["tools"][0]["function"]["name"] == "add_numbers"


async def test_strands_sees_a_context_overflow() -> None:
    async with FakeOllama(context_length=5) as fake, _shared_transport() as transport:
        agent = Agent(
            model=OllamaModel(fake.url, model_id=MODEL, ollama_client_args=transport),
            callback_handler=None,
            conversation_manager=NullConversationManager(),
        )
        with pytest.raises(ContextWindowOverflowException):
            await agent.invoke_async("this prompt has far more than five words in it")


def test_a_threaded_fake_is_reachable_from_a_subprocess() -> None:
    with FakeOllama(ModelScript()).start_in_thread() as handle:
        code = (
            "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, f"{handle.url}/api/tags"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    assert "gpt-oss:20b" in done.stdout
    assert handle.requests_to("/api/tags")


def test_cli_serves_the_demo_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "trollama.testkit.fake_ollama", "--port", "0"]
    command += ["--ttft-ms", "0", "--tokens-per-second", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "SIMULATED" in banner
        url = banner.split()[-1]
        reply = httpx.post(
            f"{url}/api/chat", json={"model": MODEL, "messages": USER, "stream": False}
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert reply.json()["message"]["content"].startswith(f"[simulated model {MODEL}]")
