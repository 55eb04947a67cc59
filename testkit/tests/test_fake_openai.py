"""The fake OpenAI-compatible server speaks the protocol of the real ``openai`` client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from strands import Agent, tool
from strands.agent.conversation_manager import NullConversationManager
from strands.models.openai import OpenAIModel
from strands.types.exceptions import ContextWindowOverflowException

from trollama.testkit.fake_openai import FakeOpenAI
from trollama.testkit.script import Reply
from trollama.testkit.server import ServerThread

MODEL = "gpt-oss:20b"
#: Seconds a test waits for something the fake will observe.
DEADLINE_SECONDS = 1.0
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


@pytest.fixture
async def client(fake_openai: ServerThread[FakeOpenAI]) -> AsyncIterator[openai.AsyncOpenAI]:
    real_client = openai.AsyncOpenAI(
        base_url=f"{fake_openai.url}/v1", api_key="test-key", max_retries=0
    )
    async with real_client:
        yield real_client


async def test_streaming_carries_text_reasoning_and_a_usage_chunk(
    fake_openai: ServerThread[FakeOpenAI], client: openai.AsyncOpenAI
) -> None:
    fake_openai.script.add(Reply(text="Hi, friend!", thinking="Be warm.", eval_count=9))
    stream = await client.chat.completions.create(
        model=MODEL, messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "Hi, friend!"
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == "Be warm."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 9
    assert last.usage.total_tokens == last.usage.prompt_tokens + 9


async def test_streamed_tool_calls_arrive_as_deltas(
    fake_openai: ServerThread[FakeOpenAI], client: openai.AsyncOpenAI
) -> None:
    fake_openai.script.add(Reply.calling(("calculate", {"expression": "6 * 7 + 100"})))
    stream = await client.chat.completions.create(model=MODEL, messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    calls = [call for c in chunks for call in c.choices[0].delta.tool_calls or []]
    assert calls[0].id is not None
    assert calls[0].function is not None
    assert calls[0].function.name == "calculate"
    assert len(calls) > 2
    assert all(call.id is None for call in calls[1:])
    arguments = "".join(call.function.arguments or "" for call in calls if call.function)
    assert json.loads(arguments) == {"expression": "6 * 7 + 100"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_non_streaming_answer_and_max_tokens(
    fake_openai: ServerThread[FakeOpenAI], client: openai.AsyncOpenAI
) -> None:
    fake_openai.script.add(Reply(text="one two three four"))
    whole = await client.chat.completions.create(model=MODEL, messages=USER)
    assert whole.choices[0].message.content == "one two three four"
    assert whole.usage is not None
    cut = await client.chat.completions.create(model=MODEL, messages=USER, max_tokens=2)
    assert cut.choices[0].message.content == "one two "
    assert cut.choices[0].finish_reason == "length"
    assert fake_openai.requests_to("/v1/chat/completions")[1].body["max_tokens"] == 2


async def test_errors_use_openais_shape(
    fake_openai: ServerThread[FakeOpenAI], client: openai.AsyncOpenAI
) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await client.chat.completions.create(model="no-such-model", messages=USER)
    assert missing.value.code == "model_not_found"
    fake_openai.script.add(Reply.failing(500, "engine crashed"))
    with pytest.raises(openai.InternalServerError) as crashed:
        await client.chat.completions.create(model=MODEL, messages=USER)
    assert crashed.value.status_code == 500
    assert crashed.value.body == {
        "message": "engine crashed",
        "type": "server_error",
        "param": None,
        "code": None,
    }


async def test_a_long_prompt_is_a_context_length_error() -> None:
    async with FakeOpenAI(context_length=3) as fake:
        client = openai.AsyncOpenAI(base_url=f"{fake.url}/v1", api_key="k", max_retries=0)
        async with client:
            with pytest.raises(openai.BadRequestError) as caught:
                await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": "far too many words here"}]
                )
    assert caught.value.code == "context_length_exceeded"


async def test_mid_stream_disconnect_and_abandoned_streams(
    fake_openai: ServerThread[FakeOpenAI], client: openai.AsyncOpenAI
) -> None:
    fake_openai.script.add(Reply(text="a b c d", disconnect_after_tokens=1), user_contains="drop")
    fake_openai.script.add(Reply(text="word " * 200, tokens_per_second=20))
    drop: list[ChatCompletionMessageParam] = [{"role": "user", "content": "drop"}]
    received: list[str] = []

    async def consume_dropped() -> None:
        async for c in await client.chat.completions.create(
            model=MODEL, messages=drop, stream=True
        ):
            received.append(c.choices[0].delta.content or "")

    with pytest.raises(httpx.RemoteProtocolError):
        await consume_dropped()
    assert "".join(received) == "a "
    assert fake_openai.client_disconnects == 0

    first = asyncio.Event()

    async def consume() -> None:
        async for _ in await client.chat.completions.create(
            model=MODEL, messages=USER, stream=True
        ):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), DEADLINE_SECONDS)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake_openai.wait_for_disconnects, 1, DEADLINE_SECONDS)


async def test_models_are_listed(client: openai.AsyncOpenAI) -> None:
    names = [model.id async for model in client.models.list()]
    assert "devstral-2:123b" in names


@tool
def word_length(word: str) -> int:
    """Count the letters of a word.

    Args:
        word: The word to measure.
    """
    return len(word)


async def test_strands_agent_completes_a_tool_round_trip(
    fake_openai: ServerThread[FakeOpenAI],
) -> None:
    script = fake_openai.script
    script.add(Reply.calling(("word_length", {"word": "trollama"})), times=1)
    script.add(Reply(text="It has 8 letters."), tool_result_contains="8")
    model = OpenAIModel(
        client_args={"base_url": f"{fake_openai.url}/v1", "api_key": "k", "max_retries": 0},
        model_id=MODEL,
    )
    agent = Agent(model=model, tools=[word_length], callback_handler=None)
    result = await agent.invoke_async("How long is 'trollama'?")
    assert str(result).strip() == "It has 8 letters."
    bodies = [r.body for r in fake_openai.requests_to("/v1/chat/completions")]
    assert bodies[0]["stream_options"] == {"include_usage": True}
    tool_message = bodies[1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert tool_message["tool_call_id"] == bodies[1]["messages"][-2]["tool_calls"][0]["id"]
    assert result.metrics.accumulated_usage["outputTokens"] > 0


async def test_strands_sees_a_context_overflow() -> None:
    async with FakeOpenAI(context_length=3) as fake:
        model = OpenAIModel(
            client_args={"base_url": f"{fake.url}/v1", "api_key": "k", "max_retries": 0},
            model_id=MODEL,
        )
        agent = Agent(
            model=model, callback_handler=None, conversation_manager=NullConversationManager()
        )
        with pytest.raises(ContextWindowOverflowException):
            await agent.invoke_async("this prompt is longer than three words")


def test_cli_serves_the_demo_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "trollama.testkit.fake_openai", "--port", "0"]
    command += ["--ttft-ms", "0", "--tokens-per-second", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "SIMULATED OpenAI-compatible" in banner
        url = banner.split()[-1]
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        reply = httpx.post(f"{url}/v1/chat/completions", json=body)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert reply.json()["choices"][0]["message"]["content"].startswith("[simulated model")
