"""The context builder: history, summaries past the threshold, and failure fallbacks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from trollama.brain.backends.base import ChatMessage
from trollama.brain.backends.ollama import OllamaBackend
from trollama.brain.context.builder import SUMMARY_HEADING, ContextBuilder
from trollama.brain.context.history import ConversationStore, StoredMessage
from trollama.brain.context.summarizer import Summarizer, SummarizerError
from trollama.common.store.sqlite import SqliteStore
from trollama.testkit.fake_ollama import FakeOllama
from trollama.testkit.script import Reply
from trollama.testkit.server import ServerThread

FakeServer = ServerThread[FakeOllama]
SUMMARY_MODEL = "gpt-oss:20b"
THRESHOLD_TOKENS = 100
KEEP_LAST = 2
SUMMARIZER_TIMEOUT_SECONDS = 5.0
SHORT_TIMEOUT_SECONDS = 0.3
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SYSTEM = "You are a test assistant."
#: A phrase of the summarizer's request, to script its replies.
SUMMARY_REQUEST = "Summarize the conversation"


@pytest.fixture
async def backend(fake_ollama: FakeServer) -> AsyncIterator[OllamaBackend]:
    ollama = OllamaBackend(
        fake_ollama.url, keep_alive_seconds=0, connect_timeout=2.0, read_timeout=10.0
    )
    yield ollama
    await ollama.close()


@pytest.fixture
def conversations(sqlite_store: SqliteStore) -> ConversationStore:
    return ConversationStore(sqlite_store)


def make_builder(
    conversations: ConversationStore,
    backend: OllamaBackend,
    *,
    timeout_seconds: float = SUMMARIZER_TIMEOUT_SECONDS,
    keep_last: int = KEEP_LAST,
) -> ContextBuilder:
    summarizer = Summarizer(lambda _model: backend, SUMMARY_MODEL, timeout_seconds)
    return ContextBuilder(
        conversations,
        summarizer,
        summary_threshold_tokens=THRESHOLD_TOKENS,
        keep_last_messages=keep_last,
    )


def turn(n: int, content: str | None = None) -> StoredMessage:
    return StoredMessage(
        message_id=f"m{n}",
        role="user" if n % 2 == 0 else "assistant",
        content=content if content is not None else f"turn {n}: " + "word " * 30,
        created_at=T0 + timedelta(seconds=n),
    )


async def fill(conversations: ConversationStore, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        assert await conversations.append("c1", turn(n))


def summary_requests(fake: FakeServer) -> list[dict[str, Any]]:
    return [
        r.body
        for r in fake.requests_to("/api/chat")
        if SUMMARY_REQUEST in r.body["messages"][-1]["content"]
    ]


USER = ChatMessage(role="user", content="and now?")


async def test_short_history_is_sent_verbatim(
    fake_ollama: FakeServer, conversations: ConversationStore, backend: OllamaBackend
) -> None:
    await fill(conversations, 2)
    built = await make_builder(conversations, backend).build("c1", SYSTEM, USER)
    assert built.messages == (
        ChatMessage(role="system", content=SYSTEM),
        ChatMessage(role="user", content=turn(0).content),
        ChatMessage(role="assistant", content=turn(1).content),
        USER,
    )
    assert (built.summary, built.summarized, built.truncated) == (None, False, False)
    assert built.history_messages == 2
    assert built.prompt_tokens > built.history_tokens > 0
    assert fake_ollama.requests_to("/api/chat") == []


async def test_history_past_the_threshold_is_summarized(
    fake_ollama: FakeServer, conversations: ConversationStore, backend: OllamaBackend
) -> None:
    fake_ollama.script.add(
        Reply(text="<think>hmm</think>SUMMARY-ONE"), user_contains=SUMMARY_REQUEST
    )
    await fill(conversations, 6)
    builder = make_builder(conversations, backend)
    built = await builder.build("c1", SYSTEM, USER)

    assert built.summarized
    assert not built.truncated
    assert built.messages[0].content == f"{SYSTEM}\n\n{SUMMARY_HEADING}SUMMARY-ONE"
    assert [m.content for m in built.messages[1:-1]] == [turn(4).content, turn(5).content]
    assert built.messages[-1] == USER
    assert built.summary_tokens > 0
    stored = await conversations.summary("c1")
    assert stored is not None
    assert (stored.text, stored.last_message_id, stored.message_count) == ("SUMMARY-ONE", "m3", 4)
    assert stored.model == SUMMARY_MODEL

    (request,) = summary_requests(fake_ollama)
    assert request["model"] == SUMMARY_MODEL
    sent = request["messages"][-1]["content"]
    assert "turn 0:" in sent
    assert "turn 3:" in sent
    assert "turn 4:" not in sent

    again = await builder.build("c1", SYSTEM, USER)
    assert again.messages == built.messages
    assert not again.summarized
    assert len(summary_requests(fake_ollama)) == 1


async def test_a_second_summary_folds_in_the_first(
    fake_ollama: FakeServer, conversations: ConversationStore, backend: OllamaBackend
) -> None:
    fake_ollama.script.add(Reply(text="SUMMARY-ONE"), user_contains=SUMMARY_REQUEST, times=1)
    fake_ollama.script.add(Reply(text="SUMMARY-TWO"), user_contains=SUMMARY_REQUEST)
    builder = make_builder(conversations, backend)
    await fill(conversations, 6)
    await builder.build("c1", SYSTEM, USER)
    await fill(conversations, 4, start=6)
    built = await builder.build("c1", SYSTEM, USER)

    assert built.summary == "SUMMARY-TWO"
    assert [m.content for m in built.messages[1:-1]] == [turn(8).content, turn(9).content]
    second = summary_requests(fake_ollama)[1]["messages"][-1]["content"]
    assert "SUMMARY-ONE" in second
    assert "turn 4:" in second
    assert "turn 7:" in second
    assert "turn 3:" not in second
    stored = await conversations.summary("c1")
    assert stored is not None
    assert (stored.last_message_id, stored.message_count) == ("m7", 8)


@pytest.mark.parametrize(
    "reply",
    [
        Reply.failing(500, "summarizer crashed"),
        Reply(text="SUMMARY", ttft_seconds=3.0),
        Reply(text="<think>only thoughts</think>   "),
    ],
    ids=["server-error", "timeout", "empty-answer"],
)
async def test_a_failing_summarizer_falls_back_to_the_last_messages(
    fake_ollama: FakeServer,
    conversations: ConversationStore,
    backend: OllamaBackend,
    reply: Reply,
) -> None:
    fake_ollama.script.add(reply, user_contains=SUMMARY_REQUEST)
    await fill(conversations, 6)
    builder = make_builder(conversations, backend, timeout_seconds=SHORT_TIMEOUT_SECONDS)
    built = await builder.build("c1", SYSTEM, USER)
    assert built.truncated
    assert not built.summarized
    assert built.summary is None
    assert built.messages[0] == ChatMessage(role="system", content=SYSTEM)
    assert [m.content for m in built.messages[1:-1]] == [turn(4).content, turn(5).content]
    assert await conversations.summary("c1") is None


async def test_a_retried_user_turn_is_not_repeated(
    conversations: ConversationStore, backend: OllamaBackend
) -> None:
    await fill(conversations, 2)
    await conversations.append("c1", turn(2, content=USER.content))
    built = await make_builder(conversations, backend).build("c1", SYSTEM, USER)
    assert [m.content for m in built.messages].count(USER.content) == 1
    assert built.history_messages == 2


async def test_summarize_now(
    fake_ollama: FakeServer, conversations: ConversationStore, backend: OllamaBackend
) -> None:
    builder = make_builder(conversations, backend)
    empty = await builder.summarize_now("c1")
    assert empty.nothing_to_summarize
    assert empty.summary is None

    fake_ollama.script.add(Reply(text="MANUAL SUMMARY"), user_contains=SUMMARY_REQUEST)
    await fill(conversations, 3)
    done = await builder.summarize_now("c1")
    assert (done.summary, done.new_messages) == ("MANUAL SUMMARY", 3)

    unchanged = await builder.summarize_now("c1")
    assert unchanged.nothing_to_summarize
    assert unchanged.summary == "MANUAL SUMMARY"
    built = await builder.build("c1", SYSTEM, USER)
    assert built.history_messages == 0
    assert built.summary == "MANUAL SUMMARY"


async def test_summarize_now_reports_a_failure(
    fake_ollama: FakeServer, conversations: ConversationStore, backend: OllamaBackend
) -> None:
    fake_ollama.script.add(Reply.failing(500, "down"), user_contains=SUMMARY_REQUEST)
    await fill(conversations, 3)
    with pytest.raises(SummarizerError):
        await make_builder(conversations, backend).summarize_now("c1")


async def test_unicode_and_huge_messages(
    fake_ollama: FakeServer, conversations: ConversationStore, backend: OllamaBackend
) -> None:
    fake_ollama.script.add(Reply(text="要約 🧠"), user_contains=SUMMARY_REQUEST)
    huge = "思考🧠 " * 5000
    await conversations.append("c1", turn(0, content=huge))
    await conversations.append("c1", turn(1, content="~~~~~~ fences ~~~ inside"))
    await conversations.append("c1", turn(2, content="ok ✅"))
    await conversations.append("c1", turn(3, content="last"))
    built = await make_builder(conversations, backend).build("c1", SYSTEM, USER)
    assert built.summary == "要約 🧠"
    assert [m.content for m in built.messages[1:-1]] == ["ok ✅", "last"]
    (request,) = summary_requests(fake_ollama)
    sent = request["messages"][-1]["content"]
    assert "思考🧠" in sent
    assert "[…]" in sent
    assert "~~~~~~~\n" in sent  # the fence is longer than any run of tildes inside
