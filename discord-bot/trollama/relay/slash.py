"""Slash commands about conversations: /help /reset /summarize /close /cancel /model.

Each answers within Discord's 3-second interaction deadline; commands that
wait on the brain defer first and follow up.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from trollama.relay.brain_api import BrainUnavailable, ConversationNotFound, UnknownModel

if TYPE_CHECKING:
    from trollama.relay.bot import RelayBot

HELP_TEXT = """**Talking to me**
• Mention me in a channel: I start a thread and answer there.
  Keep talking in the thread, no mention needed.
• Send me a DM, or reply to one of my messages.
• Attach images or text files (up to {limit} MB) and I'll look at them.

**Commands**
• `/reset`: forget this thread's history
• `/summarize`: summarize this thread so far
• `/close`: close this thread and delete its history
• `/cancel`: stop your request that is queued or running here
• `/model`: choose the model for your requests (`auto` lets me choose)
• `/memory view`, `/memory export`, `/memory forget`: see, download or delete
  what I remember about you
• `/poll`, `/userinfo`, `/serverinfo`, `/serverstats`

Moderators also have `/kick`, `/ban`, `/mute`, `/unmute` and `/audit`; bot admins
have `/identity`, `/memories`, `/relationship`, `/state`, `/channel` and `/status`.
"""
AUTO_MODEL = "auto"
#: Seconds the model list for autocomplete is reused.
MODELS_CACHE_SECONDS = 60.0
#: Choices Discord shows in an autocomplete list.
MAX_AUTOCOMPLETE_CHOICES = 25


class SlashCommands(commands.Cog):
    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot
        self._models: tuple[float, list[str]] = (0.0, [])

    @app_commands.command(name="help", description="How to talk to the assistant")
    async def help(self, interaction: discord.Interaction) -> None:
        text = HELP_TEXT.format(limit=self.bot.settings.max_file_size_mb)
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="reset", description="Forget this thread's history")
    async def reset(self, interaction: discord.Interaction) -> None:
        await self._conversation_op(interaction, "reset", "🧹 History cleared.")

    @app_commands.command(name="summarize", description="Summarize this thread so far")
    async def summarize(self, interaction: discord.Interaction) -> None:
        await self._conversation_op(interaction, "summarize", "📝 Summary:\n{summary}")

    @app_commands.command(name="close", description="Close this thread and delete its history")
    async def close(self, interaction: discord.Interaction) -> None:
        await self._conversation_op(interaction, "close", "🔒 Conversation closed.")
        channel = interaction.channel
        if isinstance(channel, discord.Thread):
            await channel.edit(archived=True, locked=False)

    async def _conversation_op(self, interaction: discord.Interaction, op: str, done: str) -> None:
        await interaction.response.defer(thinking=True)
        conversation = str(interaction.channel_id)
        try:
            if op == "summarize":
                summary = await self.bot.api.summarize(conversation)
                text = done.format(summary=summary or "(nothing to summarize yet)")
            else:
                await getattr(self.bot.api, op)(conversation)
                text = done
        except ConversationNotFound:
            text = "There is no conversation with me in this channel yet."
        except BrainUnavailable as exc:
            text = f"⚠️ {exc}"
        await interaction.followup.send(text[:2000])

    @app_commands.command(name="cancel", description="Stop your request in this thread")
    async def cancel(self, interaction: discord.Interaction) -> None:
        conversations = self.bot.get_cog("Conversations")
        active = getattr(conversations, "active", {})
        request_id = active.get((interaction.channel_id, interaction.user.id))
        if request_id is None:
            await interaction.response.send_message(
                "Nothing of yours is running here.", ephemeral=True
            )
            return
        await self.bot.link.cancel(request_id)
        await interaction.response.send_message("🛑 Cancelling your request…", ephemeral=True)

    @app_commands.command(name="model", description="Choose the model for your requests")
    @app_commands.describe(name="a model name, or 'auto' to let the assistant choose")
    async def model(self, interaction: discord.Interaction, name: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        chosen = None if name == AUTO_MODEL else name
        try:
            await self.bot.api.set_model(str(interaction.user.id), chosen)
            text = (
                f"✅ Your requests now use **{name}**."
                if chosen
                else "✅ Back to automatic model choice."
            )
        except UnknownModel as exc:
            text = f"⚠️ {exc}"
        except BrainUnavailable as exc:
            text = f"⚠️ {exc}"
        await interaction.followup.send(text[:2000], ephemeral=True)

    @model.autocomplete("name")
    async def model_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = [AUTO_MODEL, *await self._model_names()]
        matches = [n for n in names if current.lower() in n.lower()]
        return [app_commands.Choice(name=n, value=n) for n in matches[:MAX_AUTOCOMPLETE_CHOICES]]

    async def _model_names(self) -> list[str]:
        fetched_at, names = self._models
        if time.monotonic() - fetched_at < MODELS_CACHE_SECONDS and names:
            return names
        try:
            names = await self.bot.api.models()
        except BrainUnavailable:
            return names
        self._models = (time.monotonic(), names)
        return names
