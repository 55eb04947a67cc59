"""``/memory``: anyone can see and delete what the assistant remembers about them.

``/memory view`` lists the facts the assistant keeps about you (with their
ids and categories) and how it feels about you; ``/memory forget`` deletes
one fact (autocomplete lists yours) or ``all`` of them; ``/memory export``
sends everything as a JSON file. Every answer is ephemeral: only you see it.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from trollama.relay.brain_api import (
    BrainApiError,
    EntryNotFound,
    FactInfo,
    MemoryExport,
    RelationshipInfo,
)
from trollama.relay.splitting import DISCORD_MESSAGE_LIMIT, split_message

if TYPE_CHECKING:
    from trollama.relay.bot import RelayBot

#: Ephemeral messages one answer may take; the rest is left out with a notice.
MAX_PAGES = 5
#: Choices Discord shows in an autocomplete list, and the longest choice name.
MAX_AUTOCOMPLETE_CHOICES = 25
MAX_CHOICE_CHARS = 100
FORGET_ALL = "all"
EXPORT_FILENAME = "memory-{user_id}.json"

NOTHING_REMEMBERED = "🫙 I don't remember anything about you yet."
VIEW_HEADER = "🧠 **What I remember about you** ({count})"
VIEW_FOOTER = (
    "-# `/memory forget` deletes one fact, `/memory forget all` every one; "
    "`/memory export` gives you all of it as a file."
)
SUPERSEDED_NOTE = "-# {count} older fact(s) that newer ones replaced are kept too (see the export)."
CLIPPED_NOTE = "-# …more than fits here: `/memory export` has all of it."
FORGOT_ONE = "🗑️ Forgotten: memory `{fact_id}`."
FORGOT_ALL = "🗑️ Forgotten: all {count} thing(s) I remembered about you."
NO_SUCH_MEMORY = "⚠️ I have no memory `{fact_id}` about you (see `/memory view`)."
EXPORTED = "📦 Everything I keep about you, as JSON."


def fact_line(fact: FactInfo) -> str:
    """``id`` · category · the fact (and how often it came up)."""
    mentions = f" (×{fact.reference_count})" if fact.reference_count > 1 else ""
    return f"`{fact.fact_id}` · *{fact.category}* · {fact.fact}{mentions}"


def relationship_line(relationship: RelationshipInfo) -> str:
    return (
        f"anger {relationship.anger:g}/10 · rapport {relationship.rapport:g}/10 · "
        f"trust {relationship.trust:g}/10 · formality {relationship.formality:+g} "
        "(−5 casual … +5 formal)"
    )


def view_text(export: MemoryExport) -> str:
    """What ``/memory view`` shows."""
    active = [f for f in export.facts if f.superseded_by is None]
    superseded = len(export.facts) - len(active)
    lines = [VIEW_HEADER.format(count=len(active))] if active else [NOTHING_REMEMBERED]
    lines += [f"• {fact_line(fact)}" for fact in active]
    if superseded:
        lines.append(SUPERSEDED_NOTE.format(count=superseded))
    lines += ["", f"💞 **How I feel about you**: {relationship_line(export.relationship)}"]
    return "\n".join([*lines, VIEW_FOOTER])


def pages(text: str, *, max_pages: int = MAX_PAGES, clipped_note: str = CLIPPED_NOTE) -> list[str]:
    """``text`` as Discord messages: split at its limit, at most ``max_pages``."""
    parts = split_message(text, DISCORD_MESSAGE_LIMIT)
    if len(parts) <= max_pages:
        return parts
    kept = parts[:max_pages]
    last = split_message(kept[-1], DISCORD_MESSAGE_LIMIT - len(clipped_note) - 1)[0]
    kept[-1] = f"{last}\n{clipped_note}"
    return kept


async def send_pages(
    interaction: discord.Interaction, text: str, *, clipped_note: str = CLIPPED_NOTE
) -> None:
    """Answer a deferred interaction with ``text``, ephemeral, over as many messages
    as it needs (at most MAX_PAGES; ``clipped_note`` ends the last when clipped)."""
    for page in pages(text, clipped_note=clipped_note):
        await interaction.followup.send(
            page, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


def choice_name(text: str) -> str:
    return text if len(text) <= MAX_CHOICE_CHARS else text[: MAX_CHOICE_CHARS - 1] + "…"


class MemoryCommands(commands.Cog, name="Memory"):
    memory = app_commands.Group(
        name="memory", description="See and delete what the assistant remembers about you"
    )

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot

    @memory.command(name="view", description="What the assistant remembers about you")
    async def view(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            text = view_text(await self.bot.api.memory_export(str(interaction.user.id)))
        except BrainApiError as exc:
            text = f"⚠️ {exc.message}"
        await send_pages(interaction, text)

    @memory.command(name="forget", description="Delete one memory about you, or all of them")
    @app_commands.describe(memory="a memory (start typing to pick one), or 'all'")
    async def forget(self, interaction: discord.Interaction, memory: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        user_id, target = str(interaction.user.id), memory.strip()
        try:
            if target.lower() == FORGET_ALL:
                count = await self.bot.api.forget_all_memories(user_id)
                text = FORGOT_ALL.format(count=count)
            else:
                await self.bot.api.forget_memory(user_id, target)
                text = FORGOT_ONE.format(fact_id=target)
        except EntryNotFound:
            text = NO_SUCH_MEMORY.format(fact_id=target)
        except BrainApiError as exc:
            text = f"⚠️ {exc.message}"
        await send_pages(interaction, text)

    @forget.autocomplete("memory")
    async def forget_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        try:
            export = await self.bot.api.memory_export(str(interaction.user.id))
        except BrainApiError:
            return [app_commands.Choice(name="all of them", value=FORGET_ALL)]
        wanted = current.lower()
        choices = [app_commands.Choice(name="all of them", value=FORGET_ALL)]
        choices += [
            app_commands.Choice(name=choice_name(f.fact), value=f.fact_id)
            for f in export.facts
            if f.superseded_by is None and (wanted in f.fact.lower() or wanted in f.fact_id)
        ]
        return choices[:MAX_AUTOCOMPLETE_CHOICES]

    @memory.command(
        name="export", description="Everything the assistant keeps about you, as a file"
    )
    async def export(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        user_id = str(interaction.user.id)
        try:
            export = await self.bot.api.memory_export(user_id)
        except BrainApiError as exc:
            await send_pages(interaction, f"⚠️ {exc.message}")
            return
        data = export.model_dump_json(indent=2).encode()
        file = discord.File(io.BytesIO(data), filename=EXPORT_FILENAME.format(user_id=user_id))
        await interaction.followup.send(EXPORTED, file=file, ephemeral=True)
