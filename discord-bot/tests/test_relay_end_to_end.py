"""End to end: a user on (fake) Discord, the real relay, the real brain, a fake model."""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx

from trollama.relay.splitting import DISCORD_MESSAGE_LIMIT
from trollama.testkit.script import Reply

ROUTER_PHRASE = "Answer with exactly one route name"
FENCE = re.compile(r"^(```|~~~)", re.MULTILINE)


def answer_text(stack: Any, thread_id: int) -> list[str]:
    """The bot's messages in a thread, in order."""
    bot_id = stack.discord.bot_user.id
    return [m.content for m in stack.discord.messages(thread_id) if m.author_id == bot_id]


async def only_thread(stack: Any) -> Any:
    threads = await stack.discord.wait_for(lambda: stack.discord.threads())
    return threads[0]


async def settled(stack: Any, message_id: int, emoji: str) -> None:
    await stack.discord.wait_for(
        lambda: emoji in stack.discord.current_reactions(message_id), timeout=20
    )


async def test_mention_starts_a_thread_and_streams_the_answer(stack: Any, fake_ollama: Any) -> None:
    answer = " ".join(f"llama{i}" for i in range(60))
    fake_ollama.script.add(Reply(text="SELF_HANDLE"), system_contains=ROUTER_PHRASE)
    fake_ollama.script.add(Reply(text=answer, tokens_per_second=40), model="gpt-oss:20b")
    fake = stack.discord
    message = await fake.user_message(
        fake.general.id, fake.alice, "tell me about llamas", mentions_bot=True
    )
    thread = await only_thread(stack)
    await settled(stack, message.id, "✅")
    assert thread.name == "tell me about llamas"
    texts = answer_text(stack, thread.id)
    assert texts == [answer]
    edits = fake.edits(fake.messages(thread.id)[0].id)
    assert len(edits) >= 2, "the answer was streamed in several edits"
    times = [e.at for e in edits]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Streaming edits are paced; only the answer's first text may follow a status quickly.
    assert sum(gap < 0.25 for gap in gaps) <= 1, gaps
    assert "⏳" not in fake.current_reactions(message.id)


async def test_long_answer_with_code_is_split_at_safe_points(stack: Any, fake_ollama: Any) -> None:
    code = "\n".join(f"    total += {i}  # step {i}" for i in range(160))
    answer = (
        "Here is the code:\n\n```python\ndef f():\n    total = 0\n"
        + code
        + "\n```\n\n"
        + ("Some explanation follows. " * 60)
    )
    assert len(answer) > 5000
    fake_ollama.script.add(Reply(text=answer, tokens_per_second=2000), model="gpt-oss:20b")
    fake = stack.discord
    message = await fake.user_message(fake.general.id, fake.bob, "write code", mentions_bot=True)
    await settled(stack, message.id, "✅")
    parts = answer_text(stack, (await only_thread(stack)).id)
    assert len(parts) >= 3
    assert all(len(p) <= DISCORD_MESSAGE_LIMIT for p in parts)
    assert all(len(FENCE.findall(p)) % 2 == 0 for p in parts), "every message closes its fences"
    assert any(p.startswith("```python") for p in parts[1:]), (
        "a split fence is reopened with its tag"
    )
    assert (
        "".join(parts).replace("```python\n", "").replace("```", "").split()
        == answer.replace("```python\n", "").replace("```", "").split()
    )


async def test_thread_messages_continue_without_mention(stack: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="first answer"), user_contains="first")
    fake_ollama.script.add(Reply(text="second answer"), user_contains="second")
    fake = stack.discord
    first = await fake.user_message(
        fake.general.id, fake.alice, "first question", mentions_bot=True
    )
    await settled(stack, first.id, "✅")
    thread = await only_thread(stack)
    second = await fake.user_message(thread.id, fake.alice, "second question")
    await settled(stack, second.id, "✅")
    assert answer_text(stack, thread.id) == ["first answer", "second answer"]
    assert len(fake.threads()) == 1
    history = await stack.brain.conversations.messages(str(thread.id), 10)
    assert [m.content for m in history] == [
        "first question",
        "first answer",
        "second question",
        "second answer",
    ]


async def test_dm_is_a_conversation(stack: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="hello in private"), user_contains="psst")
    fake = stack.discord
    message = await fake.dm(fake.alice, "psst, hi")
    await settled(stack, message.id, "✅")
    channel = fake.dm_channel_id(fake.alice)
    assert channel is not None and answer_text(stack, channel) == ["hello in private"]
    assert fake.threads() == []


async def test_messages_not_for_the_bot_and_from_bots_are_ignored(
    stack: Any, fake_ollama: Any
) -> None:
    fake = stack.discord
    await fake.user_message(fake.general.id, fake.alice, "just chatting with bob")
    await fake.user_message(fake.general.id, fake.bob, "<#1> nothing for the bot")
    mentioned = await fake.user_message(fake.general.id, fake.bob, "now you", mentions_bot=True)
    await settled(stack, mentioned.id, "✅")
    assert len(fake.threads()) == 1
    asked = [r.body["messages"][-1]["content"] for r in fake_ollama.requests_to("/api/chat")]
    assert not any("chatting" in q for q in asked)


async def test_two_users_at_once_both_get_answers(stack: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(
        Reply(text="for alice " * 20, tokens_per_second=50), user_contains="from alice"
    )
    fake_ollama.script.add(
        Reply(text="for bob " * 20, tokens_per_second=50), user_contains="from bob"
    )
    fake = stack.discord
    a = await fake.user_message(fake.general.id, fake.alice, "from alice", mentions_bot=True)
    b = await fake.user_message(fake.general.id, fake.bob, "from bob", mentions_bot=True)
    await settled(stack, a.id, "✅")
    await settled(stack, b.id, "✅")
    by_name = {t.name: answer_text(stack, t.id) for t in fake.threads()}
    assert [t.strip() for t in by_name["from alice"]] == [("for alice " * 20).strip()]
    assert [t.strip() for t in by_name["from bob"]] == [("for bob " * 20).strip()]


async def test_rate_limit_storm_loses_nothing(stack: Any, fake_ollama: Any) -> None:
    answer = " ".join(f"token{i}" for i in range(80))
    fake_ollama.script.add(Reply(text=answer, tokens_per_second=40), model="gpt-oss:20b")
    fake = stack.discord
    await fake.rate_limit("PATCH /channels/*/messages/*", count=6, retry_after=0.3)
    message = await fake.user_message(fake.general.id, fake.alice, "storm", mentions_bot=True)
    await settled(stack, message.id, "✅")
    assert answer_text(stack, (await only_thread(stack)).id) == [answer]
    limited = [r for r in fake.requests() if r.status == 429]
    assert len(limited) == 6


async def test_model_server_down_shows_a_clear_error(stack_factory: Any) -> None:
    async with stack_factory(ollama_host="http://127.0.0.1:9", max_retries=1) as stack:
        fake = stack.discord
        message = await fake.user_message(
            fake.general.id, fake.alice, "anyone home?", mentions_bot=True
        )
        await settled(stack, message.id, "❌")
        texts = answer_text(stack, (await only_thread(stack)).id)
    assert texts and texts[-1].startswith("❌") and "not reachable" in texts[-1]


async def test_maintenance_modes_reach_the_user(stack: Any, fake_ollama: Any) -> None:
    from trollama.brain.admission import MaintenanceMode, MaintenanceState

    fake = stack.discord
    await stack.brain.admission.set_maintenance(MaintenanceState(mode=MaintenanceMode.HARD))
    hard = await fake.user_message(fake.general.id, fake.alice, "hello?", mentions_bot=True)
    await settled(stack, hard.id, "❌")
    thread = await only_thread(stack)
    assert "emergency maintenance" in answer_text(stack, thread.id)[-1]


async def test_health_endpoint_reports_both_links(stack: Any) -> None:
    async with httpx.AsyncClient() as client:
        report = (await client.get(stack.health_url)).json()
    assert report["components"]["discord"]["status"] == "healthy"
    assert report["components"]["brain"]["status"] == "healthy"
    assert report["info"]["websocket_connected"] is True


async def test_slash_commands_are_synced_and_answer(stack: Any, fake_ollama: Any) -> None:
    fake = stack.discord
    names = {c["name"] for c in fake.commands()} | {
        c["name"] for g in (fake.guild.id,) for c in fake.commands(g)
    }
    assert {"help", "reset", "summarize", "close", "cancel", "model"} <= names
    interaction = await fake.interaction("help", user=fake.alice)
    responses = await fake.wait_for(lambda: fake.interaction_responses(interaction.id))
    assert "Mention me" in str(responses[0])


async def test_soft_maintenance_notice_then_the_answer(stack: Any, fake_ollama: Any) -> None:
    from trollama.brain.admission import MaintenanceMode, MaintenanceState

    fake_ollama.script.add(Reply(text="still answering", ttft_seconds=1.0), user_contains="soft")
    fake = stack.discord
    await stack.brain.admission.set_maintenance(MaintenanceState(mode=MaintenanceMode.SOFT))
    message = await fake.user_message(fake.general.id, fake.alice, "soft please", mentions_bot=True)
    await settled(stack, message.id, "✅")
    thread = await only_thread(stack)
    first = fake.messages(thread.id)[0]
    shown = [e.content for e in fake.edits(first.id)] + [first.content]
    assert any("maintenance" in text for text in shown), shown
    assert answer_text(stack, thread.id) == ["still answering"]
