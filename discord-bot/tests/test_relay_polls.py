"""Polls end to end: the real relay against the fake Discord and a real brain."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from trollama.brain.community.polls import PollStore
from trollama.relay.bot import RelayBot
from trollama.relay.polls import Polls
from trollama.testkit.discord_fixtures import running_client
from trollama.testkit.fake_discord import InteractionRecord, MessageRecord, UserRecord
from trollama.testkit.ports import free_port

#: Seconds one "minute" of /poll lasts in these tests (long enough for a few clicks).
TEST_MINUTE_SECONDS = 3.0


def polls_of(bot: RelayBot, minute: float = TEST_MINUTE_SECONDS) -> Polls:
    cog = bot.get_cog("Polls")
    assert isinstance(cog, Polls)
    cog.seconds_per_minute = minute
    return cog


async def answer(stack: Any, interaction: InteractionRecord) -> str:
    """The text the user finally sees in answer to an interaction."""
    fake = stack.discord

    def final() -> str:
        responses = fake.interaction_responses(interaction.id)
        texts = [
            r.data.get("content") or (r.data.get("data") or {}).get("content") for r in responses
        ]
        return next((t for t in reversed(texts) if t), "")

    text: str = await fake.wait_for(final, timeout=10)
    return text


async def post_poll(
    stack: Any, question: str, options: str, *, minutes: int = 1, user: Any = None
) -> MessageRecord:
    """Run /poll and return the posted poll message once it has its buttons."""
    fake = stack.discord
    before = {m.id for m in fake.messages(fake.general.id)}
    command = await fake.interaction(
        "poll",
        {"question": question, "options": options, "minutes": minutes},
        user=user or fake.alice,
    )
    assert "Poll posted" in await answer(stack, command)

    def posted() -> MessageRecord | None:
        new = [m for m in fake.messages(fake.general.id) if m.id not in before]
        return next((m for m in new if m.components), None)

    message: MessageRecord = await fake.wait_for(posted)
    return message


def button_ids(message: MessageRecord) -> list[str]:
    return [b["custom_id"] for row in message.components for b in row["components"]]


async def click(stack: Any, message: MessageRecord, option: int, user: UserRecord) -> str:
    interaction = await stack.discord.click(message.id, button_ids(message)[option], user=user)
    return await answer(stack, interaction)


async def closed(stack: Any, message: MessageRecord, timeout: float = 15) -> MessageRecord:
    """The poll message once it shows its result."""
    fake = stack.discord
    done: MessageRecord = await fake.wait_for(
        lambda: (m := fake.message(message.id)) and "— closed" in m.content and m, timeout=timeout
    )
    return done


async def test_votes_change_and_the_deadline_shows_the_result(stack: Any) -> None:
    fake = stack.discord
    polls_of(stack.bot)
    message = await post_poll(stack, "Lunch?", "pizza | pasta | salad")
    assert "**Lunch?**" in message.content and "Closes <t:" in message.content
    ids = button_ids(message)
    assert len(ids) == 3 and all(
        i.startswith("poll:") and i.endswith(f":{n}") for n, i in enumerate(ids)
    )
    assert "You voted for **pasta**" in await click(stack, message, 1, fake.alice)
    assert "You voted for **pizza**" in await click(stack, message, 0, fake.bob)
    assert "changed your vote from **pizza** to **pasta**" in await click(
        stack, message, 1, fake.bob
    )
    assert "already voted for **pasta**" in await click(stack, message, 1, fake.bob)
    result = await closed(stack, message)
    assert "pasta — **2** votes (100%) 🏆" in result.content
    assert "pizza — **0** votes (0%)" in result.content
    assert "🏆 Winner: **pasta** with 2 of 2 votes." in result.content
    assert result.components == ()
    poll_id = ids[0].split(":")[1]
    stored = await PollStore(stack.brain.store).get(poll_id)
    assert stored.closed and stored.counts == [0, 2, 0]


async def test_a_click_on_a_closed_poll_shows_its_result(stack: Any) -> None:
    fake = stack.discord
    polls = polls_of(stack.bot, minute=60.0)
    message = await post_poll(stack, "Tabs or spaces?", "tabs|spaces")
    assert "You voted for **tabs**" in await click(stack, message, 0, fake.alice)
    poll_id = button_ids(message)[0].split(":")[1]
    assert polls.armed == {poll_id}
    await PollStore(stack.brain.store).close(poll_id)  # an admin closed it early
    late = await fake.click(message.id, button_ids(message)[1], user=fake.bob)
    result = await closed(stack, message)
    assert fake.interaction_responses(late.id)[0].callback_type == 7  # UPDATE_MESSAGE
    assert "🏆 Winner: **tabs** with 1 of 1 votes." in result.content
    assert result.components == ()
    assert polls.armed == set()


async def test_bad_polls_are_refused_and_nothing_is_posted(stack: Any) -> None:
    fake = stack.discord
    for options, expected in [
        ("only one", "needs 2 to 10 options"),
        ("a|b|c|d|e|f|g|h|i|j|k", "needs 2 to 10 options"),
        ("yes | YES", "must be different"),
        ("x" * 81 + "|y", "at most 80 characters"),
    ]:
        command = await fake.interaction(
            "poll", {"question": "Q?", "options": options, "minutes": 5}, user=fake.bob
        )
        assert expected in await answer(stack, command)
    posted = [m for m in fake.messages(fake.general.id) if not m.ephemeral]
    assert posted == []


async def test_a_poll_survives_a_relay_restart(stack: Any) -> None:
    fake = stack.discord
    polls_of(stack.bot, minute=2.0)
    long = await post_poll(stack, "Keep going?", "yes|no", minutes=3)
    short = await post_poll(stack, "Quick one?", "a|b", minutes=1)
    assert "You voted for **yes**" in await click(stack, long, 0, fake.alice)
    short_id = button_ids(short)[0].split(":")[1]
    closes_at = (await PollStore(stack.brain.store).get(short_id)).closes_at
    await stack.bot.close()  # the relay goes away ...
    # ... until the short poll's deadline has passed
    await asyncio.sleep(max(0.0, closes_at.timestamp() - time.time()) + 0.05)
    assert not (await PollStore(stack.brain.store).get(short_id)).closed

    settings = stack.bot.settings.model_copy(update={"relay_health_port": free_port()})
    async with running_client(fake, RelayBot(settings)) as restarted:
        bot = restarted.client
        assert isinstance(bot, RelayBot)
        gone_by = await closed(stack, short, timeout=10)  # closed at once on start
        assert "No votes were cast." in gone_by.content
        polls = polls_of(bot)
        await fake.wait_for(lambda: polls.armed == {button_ids(long)[0].split(":")[1]})
        assert "You voted for **no**" in await click(stack, long, 1, fake.bob)
        result = await closed(stack, long)
    assert "🤝 Tie between **yes** and **no** (1 vote each)." in result.content
