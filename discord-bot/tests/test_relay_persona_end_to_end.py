"""End to end through the fake Discord, the real relay and brain, and the fake model:
an admin's change and a user's "forget" apply to the very next prompt."""

from __future__ import annotations

import time
from typing import Any

from trollama.brain.persona.facts import new_fact

SECRET_FACTS = ("Keeps bees on the roof", "Plays the bagpipes badly", "Was born in Reykjavik")


def response_text(stack: Any, interaction_id: int) -> str:
    return " ".join(str(r.data) for r in stack.discord.interaction_responses(interaction_id))


async def run_command(stack: Any, command: str, options: Any = None, **kwargs: Any) -> str:
    """Run a slash command and wait for its answer (after a defer, the followup)."""
    fake = stack.discord
    interaction = await fake.interaction(command, options, **kwargs)

    def answered() -> bool:
        responses = fake.interaction_responses(interaction.id)
        return any(r.kind == "followup" or r.callback_type == 4 for r in responses)

    await fake.wait_for(answered, timeout=10)
    return response_text(stack, interaction.id)


async def suggestions(stack: Any, command: str, option: str, typed: str, user: Any) -> list[Any]:
    fake = stack.discord
    interaction = await fake.interaction(command, {option: typed}, user=user, focused=option)
    [response] = await fake.wait_for(lambda: fake.interaction_responses(interaction.id))
    return list(response.data["data"]["choices"])


async def ask(
    stack: Any, fake_ollama: Any, channel_id: int, author: Any, text: str, *, mention: bool
) -> str:
    """Send a message, wait for the answer, and return the system prompt the model got."""
    fake = stack.discord
    message = await fake.user_message(channel_id, author, text, mentions_bot=mention)
    await fake.wait_for(lambda: "✅" in fake.current_reactions(message.id), timeout=20)
    messages = fake_ollama.requests_to("/api/chat")[-1].body["messages"]
    return "\n".join(m["content"] for m in messages if m["role"] == "system")


async def test_an_admin_edits_a_trait_and_the_next_prompt_carries_it(
    stack: Any, fake_ollama: Any
) -> None:
    fake = stack.discord
    [choice] = await suggestions(stack, "identity edit", "entry", "curious", fake.alice)
    assert choice["name"] == "[trait] curious and playful"
    answer = await run_command(
        stack,
        "identity edit",
        {"entry": choice["value"], "text": "obsessed with lighthouses"},
        user=fake.alice,
    )
    assert "Changed" in answer and "obsessed with lighthouses" in answer
    prompt = await ask(
        stack, fake_ollama, fake.general.id, fake.bob, "tell me about yourself", mention=True
    )
    assert "obsessed with lighthouses" in prompt
    assert "curious and playful" not in prompt


async def test_a_non_admin_cannot_change_the_identity(stack: Any) -> None:
    fake = stack.discord
    before = await stack.brain.persona.identity.entries()
    answer = await run_command(
        stack, "identity add", {"kind": "trait", "text": "secretly evil"}, user=fake.bob
    )
    assert "Only bot admins" in answer
    assert await stack.brain.persona.identity.entries() == before


async def test_forget_all_leaves_none_of_the_facts_in_the_next_prompt(
    stack: Any, fake_ollama: Any
) -> None:
    fake = stack.discord
    user_id = str(fake.alice.id)
    for offset, text in enumerate(SECRET_FACTS):
        await stack.brain.persona.facts.add(new_fact(user_id, text, at=time.time() + offset))
    first = await ask(stack, fake_ollama, fake.general.id, fake.alice, "hello", mention=True)
    assert all(fact in first for fact in SECRET_FACTS), first
    view = await run_command(stack, "memory view", user=fake.alice)
    assert all(fact in view for fact in SECRET_FACTS)
    forgot = await run_command(stack, "memory forget", {"memory": "all"}, user=fake.alice)
    assert "all 3" in forgot
    thread = fake.threads()[0]
    second = await ask(stack, fake_ollama, thread.id, fake.alice, "hello again", mention=False)
    assert not any(fact in second for fact in SECRET_FACTS), second
    assert "What you remember about" not in second
    assert await stack.brain.persona.facts.facts(user_id, include_superseded=True) == []
