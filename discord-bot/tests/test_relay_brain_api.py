"""The relay's REST calls against a real brain (and against no brain at all)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trollama.brain.services import Services, build_services
from trollama.common.protocol import DoneFrame
from trollama.common.store.sqlite import SqliteStore
from trollama.relay.brain_api import (
    NOT_FOUND_MESSAGE,
    UNAVAILABLE_MESSAGE,
    BrainApi,
    BrainRefused,
    BrainUnavailable,
    ConversationNotFound,
    UnknownModel,
    http_base,
)
from trollama.testkit.brain import (
    BrainClient,
    brain_settings,
    free_port,
    fresh_secrets,
    serve_brain,
)
from trollama.testkit.script import Reply

MODEL = "gpt-oss:20b"
SUMMARY = "The user asked a question and got an answer."
#: A phrase of the brain's summarization prompt.
SUMMARY_PROMPT_PHRASE = "running summary"


@dataclass
class Brain:
    url: str
    secret: str
    services: Services


@pytest.fixture
async def brain(fake_ollama: Any, tmp_path: Path) -> AsyncIterator[Brain]:
    settings = brain_settings(ollama_host=fake_ollama.url)
    services = build_services(settings, store=SqliteStore(tmp_path / "brain.db"))
    async with serve_brain(services) as url:
        yield Brain(url, settings.relay_shared_secret.get_secret_value(), services)


@pytest.fixture
async def api(brain: Brain) -> AsyncIterator[BrainApi]:
    async with BrainApi(brain.url, brain.secret, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    ("ws_url", "expected"),
    [
        ("ws://127.0.0.1:8001/ws/discord", "http://127.0.0.1:8001"),
        ("wss://brain.example.org/ws/discord", "https://brain.example.org"),
        ("ws://10.0.0.5:8001/trollama/ws/discord/", "http://10.0.0.5:8001/trollama"),
        ("ws://brain:8001", "http://brain:8001"),
    ],
)
def test_http_base_from_the_websocket_url(ws_url: str, expected: str) -> None:
    assert http_base(ws_url) == expected


@pytest.mark.parametrize("bad", ["http://127.0.0.1:8001/ws/discord", "not a url", "ws://"])
def test_http_base_refuses_what_is_not_a_websocket_url(bad: str) -> None:
    with pytest.raises(ValueError, match="ws://"):
        http_base(bad)


async def test_models_and_the_users_model_choice(api: BrainApi) -> None:
    models = await api.models()
    assert MODEL in models
    assert await api.get_model("u1") is None

    await api.set_model("u1", models[-1])
    assert await api.get_model("u1") == models[-1]
    assert await api.get_model("u2") is None

    with pytest.raises(UnknownModel) as refused:
        await api.set_model("u1", "no-such-model")
    assert "no-such-model" in refused.value.message
    assert all(name in refused.value.message for name in models)
    assert await api.get_model("u1") == models[-1]

    await api.set_model("u1", None)
    assert await api.get_model("u1") is None


async def test_conversation_commands(brain: Brain, api: BrainApi, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text=SUMMARY), system_contains=SUMMARY_PROMPT_PHRASE)
    fake_ollama.script.add(Reply(text="an answer"), model=MODEL)
    for action in (api.reset, api.summarize, api.close):
        with pytest.raises(ConversationNotFound) as missing:
            await action("t-1")
        assert missing.value.message == NOT_FOUND_MESSAGE

    await ask(brain, "q1", "t-1")
    assert await api.summarize("t-1") == SUMMARY
    await api.reset("t-1")
    assert await brain.services.conversations.messages("t-1") == []
    assert await api.summarize("t-1") is None  # nothing said since the reset
    await ask(brain, "q2", "t-1")
    await api.close("t-1")
    assert await brain.services.conversations.messages("t-1") == []
    with pytest.raises(ConversationNotFound):
        await api.reset("t-1")


async def ask(brain: Brain, request_id: str, conversation: str) -> None:
    frame = {
        "type": "request",
        "request_id": request_id,
        "user_id": "u1",
        "conversation_id": conversation,
        "content": f"question {request_id}",
        "model_override": MODEL,
    }
    async with BrainClient.connect(brain.url, brain.secret) as client:
        await client.send(frame)
        frames = await client.until_terminal(request_id)
    assert isinstance(frames[-1], DoneFrame)


async def test_health_reports_the_brain(api: BrainApi) -> None:
    report = await api.health()
    assert report["service"] == "trollama-brain"
    assert report["status"] in ("healthy", "degraded", "unhealthy")
    assert "store" in report["components"]


async def test_brain_down_is_a_user_safe_error() -> None:
    secret = fresh_secrets()["relay_shared_secret"]
    async with BrainApi(f"http://127.0.0.1:{free_port()}", secret, timeout=5) as api:
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: api.reset("t-1"),
            lambda: api.summarize("t-1"),
            lambda: api.close("t-1"),
            api.models,
            lambda: api.get_model("u1"),
            lambda: api.set_model("u1", MODEL),
            api.health,
        ]
        for call in calls:
            with pytest.raises(BrainUnavailable) as down:
                await call()
            assert down.value.message == UNAVAILABLE_MESSAGE
            assert secret not in str(down.value)


async def test_a_wrong_secret_is_refused(brain: Brain) -> None:
    wrong = fresh_secrets()["relay_shared_secret"]
    async with BrainApi(brain.url, wrong, timeout=5) as api:
        with pytest.raises(BrainRefused) as refused:
            await api.models()
    assert wrong not in refused.value.message
    assert isinstance(refused.value, BrainUnavailable)  # callers catching "down" catch it too
