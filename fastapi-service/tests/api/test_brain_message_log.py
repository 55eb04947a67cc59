"""The relay's message feed: batches into the short-term log, opted-out channels dropped."""

from __future__ import annotations

import time
from typing import Any

import httpx

from trollama.brain.api.message_log import MAX_MESSAGES_PER_CALL


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def message(n: int, channel: str = "c1", **extra: Any) -> dict[str, Any]:
    return {
        "message_id": f"m{n}",
        "channel_id": channel,
        "guild_id": "g1",
        "author_id": "u1",
        "author_name": "Alice",
        "content": f"message number {n}",
        "created_at": time.time() - 100 + n,
        **extra,
    }


async def post(brain: Any, messages: list[dict[str, Any]], token: str | None = None) -> Any:
    headers = bearer(token or brain.relay_secret)
    async with httpx.AsyncClient(base_url=brain.url, timeout=20) as client:
        return await client.post("/api/log/messages", json={"messages": messages}, headers=headers)


async def test_messages_reach_the_channel_window(brain: Any) -> None:
    sent = [message(1), message(2, from_bot=True, author_id="bot")]
    first = await post(brain, sent)
    again = await post(brain, sent)  # a retried batch stores nothing twice
    window = await brain.services.persona.log.channel_window("c1")
    assert first.json() == {"logged": 2, "skipped_opted_out": 0}
    assert again.json() == {"logged": 2, "skipped_opted_out": 0}
    assert [(m.message_id, m.from_bot) for m in window] == [("m1", False), ("m2", True)]


async def test_opted_out_channels_and_their_threads_are_dropped(brain: Any) -> None:
    await brain.services.persona.channels.update("quiet", log_opt_out=True)
    result = await post(
        brain,
        [
            message(1, "quiet"),
            message(2, "thread-of-quiet", parent_channel_id="quiet"),
            message(3, "c1"),
            message(4, "thread-of-c1", parent_channel_id="c1"),
        ],
    )
    log = brain.services.persona.log
    assert result.json() == {"logged": 2, "skipped_opted_out": 2}
    assert await log.channel_window("quiet") == []
    assert await log.channel_window("thread-of-quiet") == []
    assert [m.message_id for m in await log.channel_window("thread-of-c1")] == ["m4"]


async def test_opting_back_in_applies_to_the_next_batch(brain: Any) -> None:
    channels = brain.services.persona.channels
    await channels.update("c1", log_opt_out=True)
    skipped = await post(brain, [message(1)])
    await channels.update("c1", log_opt_out=False)
    logged = await post(brain, [message(2)])
    window = await brain.services.persona.log.channel_window("c1")
    assert skipped.json()["skipped_opted_out"] == 1 and logged.json()["logged"] == 1
    assert [m.message_id for m in window] == ["m2"]


async def test_refusals(brain: Any) -> None:
    too_many = await post(brain, [message(n) for n in range(MAX_MESSAGES_PER_CALL + 1)])
    malformed = await post(brain, [{**message(1), "content": "x" * 5000}])
    user = await post(brain, [message(1)], token=brain.token("u1"))
    admin = await post(brain, [message(1)], token=brain.token("root", admin=True))
    assert too_many.status_code == 422 and malformed.status_code == 422
    assert user.status_code == 403 and admin.status_code == 403
    assert await brain.services.persona.log.channel_window("c1") == []


async def test_every_name_an_author_is_seen_under_lands_in_their_profile(brain: Any) -> None:
    now = time.time()
    await post(brain, [message(1, author_name="Alice", created_at=now - 7200)])
    await post(
        brain,
        [
            message(2, author_name="Ally", created_at=now - 10),
            message(3, author_id="bot", author_name="Trollama", from_bot=True),
        ],
    )
    profiles = brain.services.persona.profiles
    alice = await profiles.get("u1")
    assert alice is not None
    assert [n.name for n in alice.nicknames] == ["Alice", "Ally"]
    assert alice.current_name == "Ally"
    assert await profiles.get("bot") is None  # the bot's own messages are not a person's
