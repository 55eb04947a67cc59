"""Admin slash commands through the fake Discord and a real brain: who may use
them, and that each change reaches the store and is acknowledged."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from trollama.brain.persona.facts import MAX_FACT_CHARS, new_fact
from trollama.relay.admin_commands import state_value
from trollama.testkit.fake_discord import FakeDiscord
from trollama.testkit.fake_discord.state import EVERYONE_PERMISSIONS


def replies(stack: Any, interaction_id: int) -> list[dict[str, Any]]:
    responses = stack.discord.interaction_responses(interaction_id)
    return [r.data for r in responses if r.kind == "followup" or r.callback_type == 4]


async def run_command(stack: Any, command: str, options: Any = None, *, user: Any) -> str:
    fake = stack.discord
    interaction = await fake.interaction(command, options, user=user)
    await fake.wait_for(lambda: replies(stack, interaction.id), timeout=10)
    return "\n".join(str(body) for body in replies(stack, interaction.id))


@pytest.fixture
async def moderated(
    fake_discord: FakeDiscord, stack_factory: Callable[..., Any]
) -> AsyncIterator[Any]:
    """The stack, plus ``carol`` holding a role with no admin permissions (made
    before the bot connects)."""
    state = fake_discord.state
    role = state.add_role(fake_discord.guild.id, "keepers", EVERYONE_PERMISSIONS)
    carol = state.add_user("carol")
    state.add_member(fake_discord.guild.id, carol.id, [role.id])
    async with stack_factory() as stack:
        stack.keepers, stack.carol = role, carol
        yield stack


async def test_non_admins_are_refused_until_their_role_is_an_admin_role(moderated: Any) -> None:
    stack = moderated
    fake = stack.discord
    commands = [
        ("identity list", None),
        ("memories clear", {"user": fake.alice}),
        ("state set", {"key": "daily_mood_anger", "value": "9"}),
        ("channel logging", {"state": "off"}),
        ("status", None),
    ]
    for command, options in commands:
        answer = await run_command(stack, command, options, user=fake.bob)
        assert "Only bot admins" in answer, command
    refused = await run_command(stack, "state set", {"key": "k", "value": "1"}, user=stack.carol)
    stack.bot.settings.admin_role_ids = str(stack.keepers.id)
    allowed = await run_command(stack, "state set", {"key": "k", "value": "1"}, user=stack.carol)
    persona = stack.brain.persona
    assert "Only bot admins" in refused and "`k` = `1`" in allowed
    assert await persona.state.items() == {"k": 1}
    assert not (await persona.channels.get(str(fake.general.id))).log_opt_out


async def test_identity_list_add_edit_remove(stack: Any) -> None:
    fake = stack.discord
    identity = stack.brain.persona.identity
    listed = await run_command(stack, "identity list", user=fake.alice)
    assert "curious and playful" in listed
    added = await run_command(
        stack, "identity add", {"kind": "lore", "text": "Once met a goat"}, user=fake.alice
    )
    [entry] = [e for e in await identity.entries() if e.text == "Once met a goat"]
    assert f"Added: `{entry.entry_id}` · *lore* · Once met a goat" in added
    edited = await run_command(
        stack, "identity edit", {"entry": entry.entry_id, "kind": "fact"}, user=fake.alice
    )
    assert "*fact* · Once met a goat" in edited
    removed = await run_command(
        stack, "identity remove", {"entry": entry.entry_id}, user=fake.alice
    )
    assert f"Removed identity entry `{entry.entry_id}`" in removed
    unknown = await run_command(stack, "identity remove", {"entry": "nope"}, user=fake.alice)
    assert "No identity entry 'nope'" in unknown
    too_long = await run_command(
        stack, "identity add", {"kind": "trait", "text": "x" * 600}, user=fake.alice
    )
    assert "at most 500 characters" in too_long
    assert all(e.text != "Once met a goat" for e in await identity.entries())


async def test_memories_of_a_user(stack: Any) -> None:
    fake = stack.discord
    facts = stack.brain.persona.facts
    bob = str(fake.bob.id)
    unknown = await run_command(stack, "memories list", {"user": fake.bob}, user=fake.alice)
    assert "is known" in unknown
    await stack.brain.persona.profiles.seen(bob, "Bob")
    added = await run_command(
        stack,
        "memories add",
        {"user": fake.bob, "fact": "Grows chillies", "category": "garden"},
        user=fake.alice,
    )
    [fact] = await facts.facts(bob)
    assert f"Remembered for <@{bob}>: `{fact.fact_id}` · *garden* · Grows chillies" in added
    assert fact.embedding is not None
    oversize = await run_command(
        stack,
        "memories add",
        {"user": fake.bob, "fact": "y" * (MAX_FACT_CHARS + 1)},
        user=fake.alice,
    )
    assert f"at most {MAX_FACT_CHARS} characters" in oversize
    suggest = await fake.interaction(
        "memories edit", {"user": fake.bob, "memory": "chil"}, user=fake.alice, focused="memory"
    )
    [response] = await fake.wait_for(lambda: fake.interaction_responses(suggest.id))
    assert response.data["data"]["choices"] == [{"name": "Grows chillies", "value": fact.fact_id}]
    edited = await run_command(
        stack,
        "memories edit",
        {"user": fake.bob, "memory": fact.fact_id, "fact": "Grows very hot chillies"},
        user=fake.alice,
    )
    assert "Grows very hot chillies" in edited
    listed = await run_command(stack, "memories list", {"user": fake.bob}, user=fake.alice)
    assert "Grows very hot chillies" in listed
    removed = await run_command(
        stack, "memories remove", {"user": fake.bob, "memory": fact.fact_id}, user=fake.alice
    )
    assert f"Forgot memory `{fact.fact_id}`" in removed
    await facts.add(new_fact(bob, "Owns a kayak", at=time.time()))
    cleared = await run_command(stack, "memories clear", {"user": fake.bob}, user=fake.alice)
    assert "Forgot all 1 memories" in cleared
    assert await facts.facts(bob, include_superseded=True) == []


async def test_relationship_show_set_reset(stack: Any) -> None:
    fake = stack.discord
    bob = str(fake.bob.id)
    await stack.brain.persona.profiles.seen(bob, "Bob")
    shown = await run_command(stack, "relationship show", {"user": fake.bob}, user=fake.alice)
    assert "anger 0/10 · rapport 5/10 · trust 5/10 · formality +0" in shown
    changed = await run_command(
        stack,
        "relationship set",
        {"user": fake.bob, "anger": 6.5, "formality": -3},
        user=fake.alice,
    )
    assert "anger 6.5/10" in changed and "formality -3" in changed
    relationships = stack.brain.persona.relationships
    assert (await relationships.get(bob)).anger == 6.5
    nothing = await run_command(stack, "relationship set", {"user": fake.bob}, user=fake.alice)
    assert "Nothing to change" in nothing
    reset = await run_command(stack, "relationship reset", {"user": fake.bob}, user=fake.alice)
    assert "anger 0/10" in reset
    assert (await relationships.get(bob)).anger == 0


async def test_state_and_status(stack: Any) -> None:
    fake = stack.discord
    state = stack.brain.persona.state
    await run_command(
        stack, "state set", {"key": "daily_mood_cheer", "value": "7.5"}, user=fake.alice
    )
    await run_command(stack, "state set", {"key": "motto", "value": "toll first"}, user=fake.alice)
    assert await state.items() == {"daily_mood_cheer": 7.5, "motto": "toll first"}
    listed = await run_command(stack, "state list", user=fake.alice)
    assert "`motto` = `toll first`" in listed
    status = await run_command(stack, "status", user=fake.alice)
    assert "cheer 7.5" in status and "connected" in status and "(none yet)" in status
    await state.set("bot_status", "Counting bridge planks")
    status = await run_command(stack, "status", user=fake.alice)
    assert "Counting bridge planks" in status
    await state.delete("bot_status")
    bad = await run_command(stack, "state set", {"key": "Bad Key", "value": "1"}, user=fake.alice)
    assert "state key" in bad
    removed = await run_command(stack, "state remove", {"key": "motto"}, user=fake.alice)
    assert "Removed `motto`" in removed
    missing = await run_command(stack, "state remove", {"key": "motto"}, user=fake.alice)
    assert "No state key 'motto'" in missing
    assert await state.items() == {"daily_mood_cheer": 7.5}


async def test_channel_logging_and_proactive(stack: Any) -> None:
    fake = stack.discord
    channels = stack.brain.persona.channels
    general = str(fake.general.id)
    off = await run_command(stack, "channel logging", {"state": "off"}, user=fake.alice)
    assert "no longer logged" in off
    assert (await channels.get(general)).log_opt_out
    on = await run_command(stack, "channel proactive", {"state": "on"}, user=fake.alice)
    assert "speak up" in on
    settings = await channels.get(general)
    assert settings.proactive and settings.guild_id == str(fake.guild.id)
    assert await channels.proactive_channels() == [general]
    await run_command(stack, "channel logging", {"state": "on"}, user=fake.alice)
    assert not (await channels.get(general)).log_opt_out


def test_state_values_are_typed_from_text() -> None:
    assert state_value("true") is True and state_value("False") is False
    assert state_value("7") == 7 and isinstance(state_value("7"), int)
    assert state_value("7.5") == 7.5
    assert state_value(" hello ") == "hello"
