"""Crashes and failover with real brain processes (``python -m trollama.brain``).

Killed with SIGKILL mid-stream, a brain restarted on the same store finishes
or fails every accepted request, and none is answered twice in its
conversation. Two brains sharing a DynamoDB store never process one request
twice, and the survivor finishes a dead brain's requests once its client
reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trollama.common.protocol import AcceptedFrame, DoneFrame
from trollama.testkit.brain import BrainClient, BrainProcess, fresh_secrets
from trollama.testkit.ports import free_port
from trollama.testkit.script import Reply

MODEL = "gpt-oss:20b"
ANSWER = " ".join(f"word{i}" for i in range(40))


def brain_env(
    fake_ollama: Any, store_env: dict[str, str], secrets: dict[str, str], **extra: str
) -> dict[str, str]:
    return {
        **store_env,
        "BRAIN_PORT": str(free_port()),
        "OLLAMA_HOST": fake_ollama.url,
        "RELAY_SHARED_SECRET": secrets["relay_shared_secret"],
        "JWT_SECRET_KEY": secrets["jwt_secret_key"],
        "DEV_MODE": "false",
        "QUEUE_POLL_SECONDS": "0.1",
        "NODE_HEARTBEAT_SECONDS": "0.5",
        "VISIBILITY_TIMEOUT": "60",
        "WORKER_CONCURRENCY": "4",
        "USER_RATE_LIMIT_PER_MINUTE": "0",
        **extra,
    }


def frame(request_id: str, conversation: str) -> dict[str, Any]:
    return {
        "type": "request",
        "request_id": request_id,
        "user_id": "u-" + conversation,
        "conversation_id": conversation,
        "content": f"question {request_id}",
        "model_override": MODEL,
    }


@pytest.fixture
def processes() -> Iterator[list[BrainProcess]]:
    started: list[BrainProcess] = []
    yield started
    for proc in started:
        proc.stop()


async def start(processes: list[BrainProcess], env: dict[str, str], log: Path) -> BrainProcess:
    proc = BrainProcess(env, log_path=log).start()
    processes.append(proc)
    await proc.wait_healthy()
    return proc


async def first_delta(client: BrainClient) -> None:
    while (await client.recv()).type != "delta":
        pass


async def resend_and_collect(
    client: BrainClient, frames: list[dict[str, Any]]
) -> dict[str, list[Any]]:
    for f in frames:
        await client.send(f)
    results = {}
    for f in frames:
        results[f["request_id"]] = await client.until_terminal(f["request_id"], timeout=30)
    return results


async def assert_one_turn_each(store: Any, frames: list[dict[str, Any]]) -> None:
    from trollama.brain.context.history import ConversationStore

    conversations = ConversationStore(store)
    for conversation in {f["conversation_id"] for f in frames}:
        ids = [f["request_id"] for f in frames if f["conversation_id"] == conversation]
        history = await conversations.messages(conversation, 100)
        assert sorted(m.message_id for m in history) == sorted(
            f"{rid}:{role}" for rid in ids for role in ("user", "assistant")
        )


@pytest.mark.parametrize("store_backend", ["sqlite"])
async def test_kill_9_mid_stream_then_restart_answers_each_once(
    fake_ollama: Any, store_factory: Any, processes: list[BrainProcess], tmp_path: Path
) -> None:
    fake_ollama.script.default = Reply(text=ANSWER, tokens_per_second=20)
    secrets = fresh_secrets()
    env = brain_env(fake_ollama, store_factory.env(), secrets, NODE_ID="brain-a")
    brain = await start(processes, env, tmp_path / "a.log")
    frames = [frame("k1", "conv-1"), frame("k2", "conv-1"), frame("k3", "conv-2")]
    async with BrainClient.connect(brain.url, secrets["relay_shared_secret"]) as client:
        for f in frames:
            await client.send(f)
        await first_delta(client)
    brain.kill()

    brain = await start(processes, env, tmp_path / "a2.log")
    async with BrainClient.connect(brain.url, secrets["relay_shared_secret"]) as client:
        results = await resend_and_collect(client, frames)
    for rid, got in results.items():
        assert isinstance(got[0], AcceptedFrame) and got[0].duplicate, rid
        assert isinstance(got[-1], DoneFrame) and got[-1].text == ANSWER, rid
    await assert_one_turn_each(store_factory.open(), frames)


@pytest.mark.parametrize("store_backend", ["moto"])
async def test_two_brains_one_store_failover(
    fake_ollama: Any, store_factory: Any, processes: list[BrainProcess], tmp_path: Path
) -> None:
    fake_ollama.script.default = Reply(text=ANSWER, tokens_per_second=20)
    secrets = fresh_secrets()
    env_a = brain_env(fake_ollama, store_factory.env(), secrets, NODE_ID="brain-a")
    env_b = brain_env(fake_ollama, store_factory.env(), secrets, NODE_ID="brain-b")
    brain_a, brain_b = await asyncio.gather(
        start(processes, env_a, tmp_path / "a.log"), start(processes, env_b, tmp_path / "b.log")
    )
    on_a = [frame(f"a{i}", f"ca{i}") for i in range(3)]
    on_b = [frame(f"b{i}", f"cb{i}") for i in range(3)]
    relay = secrets["relay_shared_secret"]
    async with BrainClient.connect(brain_a.url, relay) as to_a:
        for f in on_a:
            await to_a.send(f)
        await first_delta(to_a)
        brain_a.kill()
    async with BrainClient.connect(brain_b.url, relay) as to_b:
        results = await resend_and_collect(to_b, on_a + on_b)
    for rid, got in results.items():
        assert isinstance(got[-1], DoneFrame) and got[-1].text == ANSWER, rid
    await assert_one_turn_each(store_factory.open(), on_a + on_b)
    asked = [r.body["messages"][-1]["content"] for r in fake_ollama.requests_to("/api/chat")]
    for f in on_b:
        assert asked.count(f["content"]) == 1, f"{f['request_id']} was processed twice"
