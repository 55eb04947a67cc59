"""The outbox consumer: the brain's presence and proactive messages reach Discord."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from trollama.brain.persona.outbox import Outbox
from trollama.relay.brain_api import BrainApi
from trollama.relay.outbox_consumer import OutboxConsumer
from trollama.testkit.ports import free_port

#: Seconds between two looks at the outbox.
POLL_SECONDS = 0.02


def consumer(stack: Any) -> OutboxConsumer:
    cog = stack.bot.get_cog("Outbox")
    assert isinstance(cog, OutboxConsumer)
    return cog


async def delivered(stack: Any) -> None:
    """Poll now and wait until the brain's outbox is empty."""
    outbox = Outbox(stack.brain.store)
    consumer(stack).wake()
    for _ in range(500):
        if not await outbox.pending(10):
            return
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"outbox items left: {await outbox.pending(10)}")


def bot_texts(stack: Any, channel_id: int) -> list[str]:
    fake = stack.discord
    return [m.content for m in fake.messages(channel_id) if m.author_id == fake.bot_user.id]


async def test_presence_and_say_reach_discord_and_are_acked(stack: Any) -> None:
    fake = stack.discord
    outbox = Outbox(stack.brain.store)
    await outbox.post("presence", "Pondering the existence of sharks")
    await outbox.post("say", "Anyone seen a goat around here? :trollface:", str(fake.general.id))
    await delivered(stack)
    presences = await fake.wait_for(lambda: fake.presence_updates())
    assert presences[-1].activities[0]["state"] == "Pondering the existence of sharks"
    assert consumer(stack).status == "Pondering the existence of sharks"
    emoji = fake.emoji
    assert bot_texts(stack, fake.general.id) == [
        f"Anyone seen a goat around here? <:trollface:{emoji.id}>"
    ]


async def test_a_long_say_is_split_at_discords_limit(stack: Any) -> None:
    fake = stack.discord
    text = ("word " * 396).strip() + " :trollface:"  # fits 2,000 until rendered
    await Outbox(stack.brain.store).post("say", text, str(fake.general.id))
    await delivered(stack)
    parts = bot_texts(stack, fake.general.id)
    assert len(parts) == 2 and all(len(p) <= 2000 for p in parts)
    assert parts[-1].endswith(f"<:trollface:{fake.emoji.id}>")


async def test_an_item_for_an_unknown_channel_is_acked_with_a_warning(
    stack: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake = stack.discord
    outbox = Outbox(stack.brain.store)
    with caplog.at_level(logging.WARNING, logger="trollama.relay.outbox_consumer"):
        await outbox.post("say", "into the void", "123456789012345678")
        await outbox.post("say", "hello", str(fake.general.id))
        await delivered(stack)
    assert bot_texts(stack, fake.general.id) == ["hello"]
    assert any("dropped" in r.getMessage() for r in caplog.records)


async def test_a_restarted_relay_shows_the_brains_status_again(stack: Any) -> None:
    fake = stack.discord
    await stack.brain.persona.state.set("bot_status", "Counting bridge planks")
    await stack.bot.remove_cog("Outbox")
    await stack.bot.add_cog(OutboxConsumer(stack.bot))

    def shown() -> bool:
        updates = fake.presence_updates()
        return bool(updates) and updates[-1].activities[0]["state"] == "Counting bridge planks"

    await fake.wait_for(shown)
    assert consumer(stack).status == "Counting bridge planks"


class _Offline:
    """A relay bot whose brain is not running."""

    def __init__(self, api: BrainApi) -> None:
        self.api = api


async def test_a_brain_outage_only_delays_the_next_poll() -> None:
    async with BrainApi(f"http://127.0.0.1:{free_port()}", "secret", timeout=2) as api:
        offline = OutboxConsumer(_Offline(api))  # type: ignore[arg-type]
        assert await offline.poll() == 0
