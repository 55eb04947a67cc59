"""The message feed: what reaches the brain's short-term log, and what never does."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from trollama.brain.app import create_app
from trollama.brain.services import Services, build_services
from trollama.common.store.sqlite import SqliteStore
from trollama.relay.brain_api import BrainApi
from trollama.relay.message_feed import FeedMessage, MessageFeed
from trollama.testkit.brain import brain_settings
from trollama.testkit.fake_discord import FakeDiscord
from trollama.testkit.ports import free_port
from trollama.testkit.script import Reply

#: Seconds between two checks of a condition.
POLL_SECONDS = 0.02


@pytest.fixture
async def with_other_bot(
    fake_discord: FakeDiscord, stack_factory: Callable[..., Any]
) -> AsyncIterator[Any]:
    """The stack, plus another bot user in the guild (made before the relay connects)."""
    robot = fake_discord.state.add_user("robot", bot=True)
    fake_discord.state.add_member(fake_discord.guild.id, robot.id)
    async with stack_factory() as stack:
        stack.robot = robot
        yield stack


async def window(stack: Any, channel_id: int) -> list[Any]:
    return list(await stack.brain.persona.log.channel_window(str(channel_id)))


async def logged(stack: Any, channel_id: int, content: str) -> Any:
    """Wait until a message with ``content`` is in the channel's log; return it."""

    async def find() -> Any:
        for _ in range(500):
            found = [m for m in await window(stack, channel_id) if m.content == content]
            if found:
                return found[0]
            await asyncio.sleep(POLL_SECONDS)
        raise AssertionError(f"{content!r} never reached the log of {channel_id}")

    return await find()


async def test_channel_messages_and_the_bots_answers_reach_the_log(
    with_other_bot: Any, fake_ollama: Any
) -> None:
    stack = with_other_bot
    fake = stack.discord
    fake_ollama.script.add(Reply(text="Hello from the bridge!"), user_contains="anyone there")
    await fake.user_message(fake.general.id, fake.bob, "morning all")
    await fake.user_message(fake.general.id, stack.robot, "beep boop")
    asked = await fake.user_message(fake.general.id, fake.alice, "anyone there?", mentions_bot=True)
    await fake.wait_for(lambda: "✅" in fake.current_reactions(asked.id), timeout=20)
    thread = fake.threads()[0]
    answer = await logged(stack, thread.id, "Hello from the bridge!")
    morning = await logged(stack, fake.general.id, "morning all")
    general = await window(stack, fake.general.id)
    assert answer.from_bot and answer.author_id == str(fake.bot_user.id)
    assert not morning.from_bot and morning.author_name == "Bob"
    assert morning.guild_id == str(fake.guild.id)
    assert any("anyone there?" in m.content for m in general)
    assert all("beep boop" not in m.content for m in general)


async def test_direct_messages_are_never_logged(stack: Any) -> None:
    fake = stack.discord
    dm = await fake.dm(fake.alice, "just between us")
    await fake.wait_for(lambda: "✅" in fake.current_reactions(dm.id), timeout=20)
    await fake.user_message(fake.general.id, fake.bob, "after the dm")
    await logged(stack, fake.general.id, "after the dm")
    assert await window(stack, dm.channel_id) == []


async def test_an_opted_out_channel_is_not_stored(stack: Any) -> None:
    fake = stack.discord
    await stack.brain.persona.channels.update(str(fake.general.id), log_opt_out=True)
    elsewhere = await fake.add_channel("elsewhere")
    await fake.user_message(fake.general.id, fake.bob, "off the record")
    await fake.user_message(elsewhere.id, fake.bob, "on the record")
    await logged(stack, elsewhere.id, "on the record")
    assert await window(stack, fake.general.id) == []


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / POLL_SECONDS)):
        if condition():
            return
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"still not true after {timeout} s")


def feed_message(n: int) -> FeedMessage:
    return FeedMessage(
        message_id=f"m{n}",
        channel_id="c1",
        guild_id="g1",
        author_id="u1",
        author_name="Alice",
        content=f"message {n}",
        created_at=time.time() - 60 + n,
    )


@asynccontextmanager
async def brain_on(port: int, services: Services) -> AsyncIterator[None]:
    """The brain app on a fixed port (so a client can try it before it starts)."""
    config = uvicorn.Config(
        create_app(services), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the brain stopped while starting"
            await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await task


async def test_the_feed_keeps_messages_while_the_brain_is_down(
    tmp_path: Path, fake_ollama: Any
) -> None:
    settings = brain_settings(ollama_host=fake_ollama.url)
    services = build_services(settings, store=SqliteStore(tmp_path / "brain.db"))
    port = free_port()
    secret = settings.relay_shared_secret.get_secret_value()
    async with BrainApi(f"http://127.0.0.1:{port}", secret, timeout=2) as api:
        feed = MessageFeed(api.log_messages, flush_interval=0.05, retry_base=0.05, retry_max=0.2)
        feed.start()
        try:
            for n in range(3):
                feed.add(feed_message(n))
            await until(lambda: feed.failed_sends >= 2)
            assert len(feed.buffer) == 3 and feed.sent == 0
            async with brain_on(port, services):
                await until(lambda: feed.sent >= 3)
                kept = await services.persona.log.channel_window("c1")
        finally:
            await feed.stop()
    assert [m.content for m in kept] == ["message 0", "message 1", "message 2"]
    assert len(feed.buffer) == 0


async def test_a_batch_the_brain_refuses_is_dropped_not_retried(
    tmp_path: Path, fake_ollama: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = brain_settings(ollama_host=fake_ollama.url)
    services = build_services(settings, store=SqliteStore(tmp_path / "brain.db"))
    port = free_port()
    secret = settings.relay_shared_secret.get_secret_value()
    bad = FeedMessage.model_construct(**{**feed_message(0).model_dump(), "content": "x" * 5000})
    async with (
        brain_on(port, services),
        BrainApi(f"http://127.0.0.1:{port}", secret, timeout=5) as api,
    ):
        feed = MessageFeed(api.log_messages)
        feed.add(bad)
        with caplog.at_level(logging.ERROR, logger="trollama.relay.message_feed"):
            assert await feed.flush()
        feed.add(feed_message(1))
        assert await feed.flush()
        kept = await services.persona.log.channel_window("c1")
    assert [m.content for m in kept] == ["message 1"]
    assert any("refused 1 messages" in r.getMessage() for r in caplog.records)


async def test_a_full_buffer_drops_the_oldest_and_says_how_many(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with BrainApi(f"http://127.0.0.1:{free_port()}", "secret", timeout=2) as api:
        feed = MessageFeed(api.log_messages, capacity=3)
        for n in range(5):
            feed.add(feed_message(n))
        with caplog.at_level(logging.WARNING, logger="trollama.relay.message_feed"):
            sent = await feed.flush()
    assert not sent
    assert [m.message_id for m in feed.buffer.oldest(10)] == ["m2", "m3", "m4"]
    assert any("dropped the 2 oldest messages" in r.getMessage() for r in caplog.records)


def test_an_edited_message_replaces_its_waiting_version() -> None:
    feed = MessageFeed(lambda batch: asyncio.sleep(0))
    feed.add(feed_message(1))
    feed.add(feed_message(1).model_copy(update={"content": "edited"}))
    assert [m.content for m in feed.buffer.oldest(10)] == ["edited"]
