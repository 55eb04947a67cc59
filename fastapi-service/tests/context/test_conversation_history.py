"""Conversation history on every store backend: ordered, idempotent, resettable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from trollama.brain.context.history import (
    MAX_HISTORY_MESSAGES,
    MAX_STORED_CONTENT_CHARS,
    ConversationStore,
    StoredMessage,
    Summary,
)
from trollama.common.store.base import ItemStore

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def message(n: int, *, role: str = "user", content: str | None = None) -> StoredMessage:
    return StoredMessage.model_validate(
        {
            "message_id": f"m{n}",
            "role": role,
            "content": content if content is not None else f"message {n}",
            "user_id": "u1",
            "created_at": T0 + timedelta(seconds=n),
            "tokens": 3,
            "request_id": f"r{n}",
        }
    )


async def test_messages_come_back_in_order(store: ItemStore) -> None:
    conversations = ConversationStore(store)
    for n in (3, 1, 2):
        assert await conversations.append("c1", message(n))
    got = await conversations.messages("c1", 10)
    assert [m.message_id for m in got] == ["m1", "m2", "m3"]
    assert got[0] == message(1)
    assert await conversations.messages("c2", 10) == []


async def test_a_retried_append_writes_nothing(store: ItemStore) -> None:
    conversations = ConversationStore(store)
    first = message(1)
    retry = first.model_copy(update={"created_at": T0 + timedelta(minutes=5), "content": "again"})
    assert await conversations.append("c1", first)
    assert not await conversations.append("c1", first)
    assert not await conversations.append("c1", retry)
    assert await conversations.messages("c1") == [first]


async def test_limit_keeps_the_newest_messages(store: ItemStore) -> None:
    conversations = ConversationStore(store)
    for n in range(6):
        await conversations.append("c1", message(n, role="user" if n % 2 else "assistant"))
    got = await conversations.messages("c1", 2)
    assert [m.message_id for m in got] == ["m4", "m5"]
    assert await conversations.messages("c1", 0) == []
    assert MAX_HISTORY_MESSAGES >= 100


async def test_summary_round_trip_never_goes_backwards(store: ItemStore) -> None:
    conversations = ConversationStore(store)
    assert await conversations.summary("c1") is None
    newer = Summary(text="newer", last_message_id="m5", last_message_key=message(5).sort_key)
    older = Summary(text="older", last_message_id="m2", last_message_key=message(2).sort_key)
    assert await conversations.set_summary("c1", newer)
    assert not await conversations.set_summary("c1", older)
    stored = await conversations.summary("c1")
    assert stored is not None
    assert (stored.text, stored.last_message_id) == ("newer", "m5")


async def test_reset_and_close(store: ItemStore) -> None:
    conversations = ConversationStore(store)
    assert not await conversations.exists("c1")
    assert not await conversations.is_closed("c1")
    await conversations.append("c1", message(1))
    summary = Summary(text="s", last_message_id="m1", last_message_key=message(1).sort_key)
    await conversations.set_summary("c1", summary)
    assert await conversations.exists("c1")

    await conversations.reset("c1")
    assert await conversations.messages("c1") == []
    assert await conversations.summary("c1") is None
    assert await conversations.exists("c1")
    assert await conversations.append("c1", message(1))  # the id may be used again

    await conversations.close("c1")
    assert await conversations.messages("c1") == []
    assert await conversations.is_closed("c1")
    assert not await conversations.exists("c1")
    assert await conversations.append("c1", message(2))
    assert await conversations.exists("c1")


async def test_reset_deletes_more_than_one_page(store: ItemStore) -> None:
    conversations = ConversationStore(store)
    for n in range(101):  # one at a time: appends to one conversation share its meta item
        await conversations.append("big", message(n))
    await conversations.append("other", message(1))
    await conversations.reset("big")
    assert await conversations.messages("big") == []
    assert len(await conversations.messages("other")) == 1


async def test_unicode_and_huge_messages(store: ItemStore) -> None:
    conversations = ConversationStore(store)
    text = '思考 🧠 "quotes" \\ back\nslash \u0000 nul é'
    await conversations.append("c1", message(1, content=text))
    huge = "🧠" * (MAX_STORED_CONTENT_CHARS + 500)
    await conversations.append("c1", message(2, role="assistant", content=huge))
    first, second = await conversations.messages("c1")
    assert first.content == text
    assert second.content == "🧠" * MAX_STORED_CONTENT_CHARS


def test_naive_times_are_taken_as_utc() -> None:
    naive = StoredMessage(message_id="m", role="user", content="x", created_at=datetime(2026, 1, 1))
    assert naive.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert naive.sort_key.startswith("msg#001767225600000#")
