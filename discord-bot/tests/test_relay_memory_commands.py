"""/memory view, forget and export through the fake Discord and a real brain."""

from __future__ import annotations

import json
import time
from typing import Any

from trollama.brain.persona.facts import new_fact
from trollama.brain.persona.relationships import RelationshipChange
from trollama.relay.memory_commands import CLIPPED_NOTE, MAX_PAGES, pages
from trollama.relay.splitting import DISCORD_MESSAGE_LIMIT


def followups(stack: Any, interaction_id: int) -> list[dict[str, Any]]:
    responses = stack.discord.interaction_responses(interaction_id)
    return [r.data for r in responses if r.kind == "followup"]


async def run_command(stack: Any, command: str, options: Any = None, *, user: Any) -> str:
    fake = stack.discord
    interaction = await fake.interaction(command, options, user=user)
    await fake.wait_for(lambda: followups(stack, interaction.id), timeout=10)
    return "\n".join(str(body.get("content", "")) for body in followups(stack, interaction.id))


async def remember(stack: Any, user: Any, *texts: str) -> list[str]:
    facts = stack.brain.persona.facts
    ids = []
    for offset, text in enumerate(texts):
        fact = new_fact(str(user.id), text, at=time.time() + offset, category="hobbies")
        ids.append((await facts.add(fact)).fact_id)
    return ids


async def test_view_lists_facts_ids_categories_and_relationship(stack: Any) -> None:
    fake = stack.discord
    tea, cat = await remember(stack, fake.alice, "Likes green tea", "Has a cat named Miso")
    await stack.brain.persona.relationships.set(str(fake.alice.id), RelationshipChange(trust=8))
    await remember(stack, fake.bob, "Collects stamps")
    view = await run_command(stack, "memory view", user=fake.alice)
    assert f"`{tea}` · *hobbies* · Likes green tea" in view
    assert f"`{cat}` · *hobbies* · Has a cat named Miso" in view
    assert "trust 8/10" in view and "Collects stamps" not in view
    bobs = await run_command(stack, "memory view", user=fake.bob)
    assert "Collects stamps" in bobs and "green tea" not in bobs


async def test_view_of_a_stranger_says_nothing_is_remembered(stack: Any) -> None:
    view = await run_command(stack, "memory view", user=stack.discord.bob)
    assert "don't remember anything" in view
    assert "rapport 5/10" in view


async def test_forget_one_with_autocomplete_then_all(stack: Any) -> None:
    fake = stack.discord
    tea, cat, _ = await remember(stack, fake.alice, "Likes green tea", "Has a cat", "Runs daily")
    suggest = await fake.interaction(
        "memory forget", {"memory": "cat"}, user=fake.alice, focused="memory"
    )
    [response] = await fake.wait_for(lambda: fake.interaction_responses(suggest.id))
    choices = response.data["data"]["choices"]
    assert {"name": "Has a cat", "value": cat} in choices
    assert all(c["value"] in (cat, "all") for c in choices)
    one = await run_command(stack, "memory forget", {"memory": cat}, user=fake.alice)
    assert f"Forgotten: memory `{cat}`" in one
    again = await run_command(stack, "memory forget", {"memory": cat}, user=fake.alice)
    assert "no memory" in again
    left = [f.fact_id for f in await stack.brain.persona.facts.facts(str(fake.alice.id))]
    assert tea in left and cat not in left
    everything = await run_command(stack, "memory forget", {"memory": "all"}, user=fake.alice)
    assert "all 2 thing(s)" in everything
    assert await stack.brain.persona.facts.facts(str(fake.alice.id)) == []


async def test_nobody_forgets_someone_elses_memory(stack: Any) -> None:
    fake = stack.discord
    [stamps] = await remember(stack, fake.bob, "Collects stamps")
    answer = await run_command(stack, "memory forget", {"memory": stamps}, user=fake.alice)
    assert "no memory" in answer
    assert [f.fact_id for f in await stack.brain.persona.facts.facts(str(fake.bob.id))] == [stamps]


async def test_export_is_a_json_file_without_embeddings(stack: Any) -> None:
    fake = stack.discord
    facts = stack.brain.persona.facts
    fact = new_fact(str(fake.alice.id), "Likes green tea", at=time.time(), embedding="AACAPw==")
    await facts.add(fact)
    await stack.brain.persona.profiles.seen(str(fake.alice.id), "Alice")
    answer = await run_command(stack, "memory export", user=fake.alice)
    [upload] = await fake.wait_for(lambda: fake.uploads())
    data = json.loads(upload.data)
    assert "Everything I keep" in answer
    assert upload.filename == f"memory-{fake.alice.id}.json"
    assert data["user_id"] == str(fake.alice.id)
    assert [f["fact"] for f in data["facts"]] == ["Likes green tea"]
    assert data["profile"]["nicknames"][0]["name"] == "Alice"
    assert "rapport" in data["relationship"]
    assert b'embedding"' not in upload.data and b"AACAPw" not in upload.data


def test_long_text_is_paged_and_clipped_within_discord_limits() -> None:
    lines = [f"• fact number {n} " + "x" * 80 for n in range(300)]
    parts = pages("\n".join(lines))
    assert len(parts) == MAX_PAGES
    assert all(len(part) <= DISCORD_MESSAGE_LIMIT for part in parts)
    assert parts[-1].endswith(CLIPPED_NOTE)
    assert pages("short") == ["short"]
