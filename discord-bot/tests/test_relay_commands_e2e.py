"""End to end: slash commands, replies, attachments and queue pressure through the relay."""

from __future__ import annotations

from typing import Any

from trollama.testkit.script import Reply

ROUTER_PHRASE = "Answer with exactly one route name"


def bot_texts(stack: Any, channel_id: int) -> list[str]:
    bot_id = stack.discord.bot_user.id
    return [m.content for m in stack.discord.messages(channel_id) if m.author_id == bot_id]


async def answered(stack: Any, message_id: int, emoji: str = "✅") -> None:
    await stack.discord.wait_for(
        lambda: emoji in stack.discord.current_reactions(message_id), timeout=20
    )


async def first_thread(stack: Any) -> Any:
    return (await stack.discord.wait_for(lambda: stack.discord.threads()))[0]


def response_text(stack: Any, interaction_id: int) -> str:
    return " ".join(str(r.data) for r in stack.discord.interaction_responses(interaction_id))


async def test_cancel_stops_a_running_answer(stack: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="SELF_HANDLE"), system_contains=ROUTER_PHRASE)
    fake_ollama.script.add(Reply(text="slow " * 300, tokens_per_second=20), model="gpt-oss:20b")
    fake = stack.discord
    message = await fake.user_message(fake.general.id, fake.alice, "go slowly", mentions_bot=True)
    thread = await first_thread(stack)
    await fake.wait_for(lambda: any("slow" in t for t in bot_texts(stack, thread.id)), timeout=15)
    cancel = await fake.interaction("cancel", user=fake.alice, channel_id=thread.id)
    await answered(stack, message.id, "❌")
    assert "Cancelling" in response_text(stack, cancel.id)
    texts = bot_texts(stack, thread.id)
    assert any("cancelled" in t.lower() for t in texts), texts
    assert fake_ollama.client_disconnects >= 1


async def test_cancel_with_nothing_running_says_so(stack: Any) -> None:
    fake = stack.discord
    cancel = await fake.interaction("cancel", user=fake.bob)
    await fake.wait_for(lambda: fake.interaction_responses(cancel.id))
    assert "Nothing of yours" in response_text(stack, cancel.id)


async def test_model_choice_with_autocomplete_applies_to_next_answer(
    stack: Any, fake_ollama: Any
) -> None:
    fake_ollama.script.add(Reply(text="answer from rnj"), model="rnj-1:8b")
    fake = stack.discord
    suggest = await fake.interaction("model", {"name": "rnj"}, user=fake.alice, focused="name")
    await fake.wait_for(lambda: fake.interaction_responses(suggest.id))
    assert "rnj-1:8b" in response_text(stack, suggest.id)
    choose = await fake.interaction("model", {"name": "rnj-1:8b"}, user=fake.alice)
    await fake.wait_for(lambda: "rnj-1:8b" in response_text(stack, choose.id), timeout=10)
    bad = await fake.interaction("model", {"name": "gpt-9000"}, user=fake.alice)
    await fake.wait_for(lambda: "not a model" in response_text(stack, bad.id), timeout=10)
    message = await fake.user_message(fake.general.id, fake.alice, "hello", mentions_bot=True)
    await answered(stack, message.id)
    assert bot_texts(stack, (await first_thread(stack)).id) == ["answer from rnj"]


async def test_reset_and_unknown_conversation(stack: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="remembered"), model="gpt-oss:20b")
    fake = stack.discord
    message = await fake.user_message(fake.general.id, fake.alice, "remember", mentions_bot=True)
    await answered(stack, message.id)
    thread = await first_thread(stack)
    reset = await fake.interaction("reset", user=fake.alice, channel_id=thread.id)
    await fake.wait_for(lambda: "History cleared" in response_text(stack, reset.id), timeout=10)
    assert await stack.brain.conversations.messages(str(thread.id), 10) == []
    nowhere = await fake.interaction("reset", user=fake.alice)
    await fake.wait_for(lambda: "no conversation" in response_text(stack, nowhere.id), timeout=10)


async def test_reply_to_the_bot_continues_the_conversation(stack: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="the first answer"), user_contains="start")
    fake_ollama.script.add(Reply(text="a follow-up answer"), user_contains="more please")
    fake = stack.discord
    start = await fake.user_message(fake.general.id, fake.bob, "start", mentions_bot=True)
    await answered(stack, start.id)
    thread = await first_thread(stack)
    bot_message = next(m for m in fake.messages(thread.id) if m.author_id == fake.bot_user.id)
    reply = await fake.user_message(thread.id, fake.bob, "more please", reference=bot_message.id)
    await answered(stack, reply.id)
    assert bot_texts(stack, thread.id)[-1] == "a follow-up answer"


async def test_text_attachment_reaches_the_model_and_oversize_is_refused(
    stack: Any, fake_ollama: Any
) -> None:
    fake_ollama.script.add(Reply(text="I read your notes."), model="gpt-oss:20b")
    fake = stack.discord
    stack.bot.settings.max_file_size_mb = 1
    big = ("big.bin", b"\0" * (2 * 1024 * 1024))
    notes = ("notes.txt", b"remember the llamas")
    message = await fake.user_message(
        fake.general.id, fake.alice, "read this", mentions_bot=True, attachments=[notes, big]
    )
    await answered(stack, message.id)
    prompt = fake_ollama.requests_to("/api/chat")[-1].body["messages"][-1]["content"]
    assert "[notes.txt]" in prompt and "remember the llamas" in prompt
    notices = [m.content for m in fake.messages(fake.general.id) if m.author_id == fake.bot_user.id]
    assert any("big.bin" in n and "larger than 1 MB" in n for n in notices)


async def test_queue_full_is_shown_in_the_thread(stack_factory: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="busy " * 100, tokens_per_second=10), model="gpt-oss:20b")
    async with stack_factory(max_queue_size=1, worker_concurrency=1) as stack:
        fake = stack.discord
        users = [fake.alice, fake.bob, await fake.add_user("carol")]
        sent = [
            await fake.user_message(fake.general.id, user, f"question {i}", mentions_bot=True)
            for i, user in enumerate(users)
        ]
        # one runs, one waits, one is refused; which one depends on the order the
        # three threads were created in, so look for the refusal on any of them
        await fake.wait_for(
            lambda: any("❌" in fake.current_reactions(m.id) for m in sent), timeout=20
        )
        texts = [t for th in fake.threads() for t in bot_texts(stack, th.id)]
        refused = [m for m in sent if "❌" in fake.current_reactions(m.id)]
    assert len(refused) == 1
    assert any("queue is full" in t.lower() for t in texts)
