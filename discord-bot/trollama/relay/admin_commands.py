"""Admin slash commands: the bot's identity, anyone's memories, relationships,
global state, per-channel logging and proactive engagement, and its status.

Only bot admins may use them (Administrator or Manage Server permission, or a
role in ``ADMIN_ROLE_IDS``); anyone else gets a clear refusal. Every change is
made through the brain's admin API, names the acting admin for the brain's
log, applies to the bot's very next reply, and is acknowledged with what
changed. Answers are ephemeral.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from trollama.relay.access import is_bot_admin
from trollama.relay.brain_api import BrainApiError, IdentityInfo, SavedFact, StateValue
from trollama.relay.memory_commands import (
    MAX_AUTOCOMPLETE_CHOICES,
    choice_name,
    fact_line,
    relationship_line,
    send_pages,
)
from trollama.relay.outbox_consumer import STATUS_STATE_KEY

if TYPE_CHECKING:
    from trollama.relay.bot import RelayBot

#: Prefix of the global state keys holding the daily mood.
MOOD_KEY_PREFIX = "daily_mood_"

NOT_ADMIN = "⛔ Only bot admins (Administrator or Manage Server, or an admin role) may do that."
CLIPPED = "-# …more than fits here."
IdentityKindOption = Literal["trait", "lore", "fact"]
OnOff = Literal["on", "off"]
Action = Callable[[str], Awaitable[str]]


def identity_line(entry: IdentityInfo) -> str:
    return f"`{entry.entry_id}` · *{entry.kind}* · {entry.text}"


def saved_text(verb: str, user: discord.abc.User, saved: SavedFact) -> str:
    lines = [f"✅ {verb} for {user.mention}: {fact_line(saved.fact)}"]
    if saved.notice:
        lines.append(f"-# {saved.notice}")
    return "\n".join(lines)


def state_value(raw: str) -> StateValue:
    """A state value typed from a slash-command string: true/false, a number, or text."""
    text = raw.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def status_text(values: Mapping[str, StateValue], shown: str | None, link: str) -> str:
    """What ``/status`` says: the status the brain keeps (else the one the relay
    shows), the day's mood, and the brain link."""
    kept = values.get(STATUS_STATE_KEY)
    status = kept if isinstance(kept, str) and kept else shown
    mood = [
        f"{key.removeprefix(MOOD_KEY_PREFIX)} {value}"
        for key, value in sorted(values.items())
        if key.startswith(MOOD_KEY_PREFIX)
    ]
    return "\n".join(
        [
            f"🪧 **Status**: {status or '(none yet)'}",
            f"🌦️ **Mood**: {' · '.join(mood) or '(not drifted yet)'}",
            f"🔌 **Brain link**: {link}",
        ]
    )


class AdminCommands(commands.Cog, name="Admin"):
    identity = app_commands.Group(name="identity", description="Admin: the bot's identity")
    memories = app_commands.Group(name="memories", description="Admin: what the bot remembers")
    relationship = app_commands.Group(
        name="relationship", description="Admin: how the bot feels about someone"
    )
    state = app_commands.Group(name="state", description="Admin: the bot's global state")
    channel = app_commands.Group(name="channel", description="Admin: this channel's settings")

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot

    async def _admin(self, interaction: discord.Interaction, action: Action) -> None:
        """Refuse non-admins; else run ``action`` (given the admin's id) and show its text."""
        if not is_bot_admin(interaction.user, self.bot.settings):
            await interaction.response.send_message(NOT_ADMIN, ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            text = await action(str(interaction.user.id))
        except BrainApiError as exc:
            text = f"⚠️ {exc.message}"
        await send_pages(interaction, text, clipped_note=CLIPPED)

    def _may_suggest(self, interaction: discord.Interaction) -> bool:
        return is_bot_admin(interaction.user, self.bot.settings)

    # ------------------------------------------------------------ identity

    @identity.command(name="list", description="The bot's traits, lore and facts & quirks")
    async def identity_list(self, interaction: discord.Interaction) -> None:
        async def run(actor: str) -> str:
            entries = await self.bot.api.identity_entries(actor)
            lines = [f"🎭 **Identity** ({len(entries)} entries)"]
            return "\n".join(lines + [f"• {identity_line(e)}" for e in entries])

        await self._admin(interaction, run)

    @identity.command(name="add", description="Add a trait, lore or a fact & quirk")
    @app_commands.describe(kind="trait, lore or fact (facts & quirks)", text="the entry")
    async def identity_add(
        self, interaction: discord.Interaction, kind: IdentityKindOption, text: str
    ) -> None:
        async def run(actor: str) -> str:
            entry = await self.bot.api.add_identity(actor, kind, text)
            return f"✅ Added: {identity_line(entry)}"

        await self._admin(interaction, run)

    @identity.command(name="edit", description="Change an identity entry's text or kind")
    @app_commands.describe(entry="the entry (start typing)", text="new text", kind="new kind")
    async def identity_edit(
        self,
        interaction: discord.Interaction,
        entry: str,
        text: str | None = None,
        kind: IdentityKindOption | None = None,
    ) -> None:
        async def run(actor: str) -> str:
            changed = await self.bot.api.edit_identity(actor, entry, text=text, kind=kind)
            return f"✅ Changed: {identity_line(changed)}"

        await self._admin(interaction, run)

    @identity.command(name="remove", description="Delete an identity entry")
    @app_commands.describe(entry="the entry (start typing)")
    async def identity_remove(self, interaction: discord.Interaction, entry: str) -> None:
        async def run(actor: str) -> str:
            await self.bot.api.remove_identity(actor, entry)
            return f"🗑️ Removed identity entry `{entry}`."

        await self._admin(interaction, run)

    @identity_edit.autocomplete("entry")
    @identity_remove.autocomplete("entry")
    async def identity_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if not self._may_suggest(interaction):
            return []
        try:
            entries = await self.bot.api.identity_entries(str(interaction.user.id))
        except BrainApiError:
            return []
        wanted = current.lower()
        return [
            app_commands.Choice(name=choice_name(f"[{e.kind}] {e.text}"), value=e.entry_id)
            for e in entries
            if wanted in e.text.lower() or wanted in e.entry_id
        ][:MAX_AUTOCOMPLETE_CHOICES]

    # ------------------------------------------------------------ memories

    @memories.command(name="list", description="What the bot remembers about someone")
    async def memories_list(self, interaction: discord.Interaction, user: discord.User) -> None:
        async def run(actor: str) -> str:
            facts = await self.bot.api.user_memories(actor, str(user.id))
            lines = [f"🧠 **Memories of {user.mention}** ({len(facts)})"]
            return "\n".join(lines + [f"• {fact_line(f)}" for f in facts])

        await self._admin(interaction, run)

    @memories.command(name="add", description="Make the bot remember a fact about someone")
    @app_commands.describe(fact="one sentence", category="e.g. hobbies, work, pets")
    async def memories_add(
        self,
        interaction: discord.Interaction,
        user: discord.User,
        fact: str,
        category: str | None = None,
    ) -> None:
        async def run(actor: str) -> str:
            saved = await self.bot.api.add_user_memory(actor, str(user.id), fact, category)
            return saved_text("Remembered", user, saved)

        await self._admin(interaction, run)

    @memories.command(name="edit", description="Change a memory's text or category")
    @app_commands.describe(memory="the memory (start typing)")
    async def memories_edit(
        self,
        interaction: discord.Interaction,
        user: discord.User,
        memory: str,
        fact: str | None = None,
        category: str | None = None,
    ) -> None:
        async def run(actor: str) -> str:
            saved = await self.bot.api.edit_user_memory(
                actor, str(user.id), memory, fact=fact, category=category
            )
            return saved_text("Changed", user, saved)

        await self._admin(interaction, run)

    @memories.command(name="remove", description="Make the bot forget one memory")
    @app_commands.describe(memory="the memory (start typing)")
    async def memories_remove(
        self, interaction: discord.Interaction, user: discord.User, memory: str
    ) -> None:
        async def run(actor: str) -> str:
            await self.bot.api.remove_user_memory(actor, str(user.id), memory)
            return f"🗑️ Forgot memory `{memory}` of {user.mention}."

        await self._admin(interaction, run)

    @memories.command(name="clear", description="Make the bot forget everything about someone")
    async def memories_clear(self, interaction: discord.Interaction, user: discord.User) -> None:
        async def run(actor: str) -> str:
            count = await self.bot.api.clear_user_memories(actor, str(user.id))
            return f"🗑️ Forgot all {count} memories of {user.mention}."

        await self._admin(interaction, run)

    @memories_edit.autocomplete("memory")
    @memories_remove.autocomplete("memory")
    async def memory_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        user_id = getattr(interaction.namespace.user, "id", None)
        if not self._may_suggest(interaction) or user_id is None:
            return []
        try:
            facts = await self.bot.api.user_memories(str(interaction.user.id), str(user_id))
        except BrainApiError:
            return []
        wanted = current.lower()
        return [
            app_commands.Choice(name=choice_name(f.fact), value=f.fact_id)
            for f in facts
            if wanted in f.fact.lower() or wanted in f.fact_id
        ][:MAX_AUTOCOMPLETE_CHOICES]

    # ------------------------------------------------------------ relationship

    @relationship.command(name="show", description="How the bot feels about someone")
    async def relationship_show(self, interaction: discord.Interaction, user: discord.User) -> None:
        async def run(actor: str) -> str:
            values = await self.bot.api.relationship(actor, str(user.id))
            return f"💞 {user.mention}: {relationship_line(values)}"

        await self._admin(interaction, run)

    @relationship.command(name="set", description="Set how the bot feels about someone")
    async def relationship_set(
        self,
        interaction: discord.Interaction,
        user: discord.User,
        anger: app_commands.Range[float, 0, 10] | None = None,
        rapport: app_commands.Range[float, 0, 10] | None = None,
        trust: app_commands.Range[float, 0, 10] | None = None,
        formality: app_commands.Range[float, -5, 5] | None = None,
    ) -> None:
        given = {"anger": anger, "rapport": rapport, "trust": trust, "formality": formality}
        changes = {name: value for name, value in given.items() if value is not None}

        async def run(actor: str) -> str:
            values = await self.bot.api.set_relationship(actor, str(user.id), changes)
            return f"✅ Now {user.mention}: {relationship_line(values)}"

        await self._admin(interaction, run)

    @relationship.command(name="reset", description="Back to neutral for someone")
    async def relationship_reset(
        self, interaction: discord.Interaction, user: discord.User
    ) -> None:
        async def run(actor: str) -> str:
            values = await self.bot.api.reset_relationship(actor, str(user.id))
            return f"✅ Reset {user.mention}: {relationship_line(values)}"

        await self._admin(interaction, run)

    # ------------------------------------------------------------ global state

    @state.command(name="list", description="Every global state key (the daily mood among them)")
    async def state_list(self, interaction: discord.Interaction) -> None:
        async def run(actor: str) -> str:
            values = await self.bot.api.state_values(actor)
            lines = [f"🗂️ **Global state** ({len(values)} keys)"]
            return "\n".join(lines + [f"• `{k}` = `{v}`" for k, v in sorted(values.items())])

        await self._admin(interaction, run)

    @state.command(name="set", description="Set a global state key")
    @app_commands.describe(key="e.g. daily_mood_anger", value="text, a number, or true/false")
    async def state_set(self, interaction: discord.Interaction, key: str, value: str) -> None:
        async def run(actor: str) -> str:
            typed = state_value(value)
            await self.bot.api.set_state(actor, key, typed)
            return f"✅ `{key}` = `{typed}`"

        await self._admin(interaction, run)

    @state.command(name="remove", description="Delete a global state key")
    async def state_remove(self, interaction: discord.Interaction, key: str) -> None:
        async def run(actor: str) -> str:
            await self.bot.api.remove_state(actor, key)
            return f"🗑️ Removed `{key}`."

        await self._admin(interaction, run)

    # ------------------------------------------------------------ this channel

    @channel.command(name="logging", description="Keep this channel's messages in the bot's log")
    async def channel_logging(self, interaction: discord.Interaction, state: OnOff) -> None:
        async def run(actor: str) -> str:
            await self._update_channel(interaction, actor, log_opt_out=state == "off")
            where = f"<#{interaction.channel_id}>"
            if state == "off":
                return f"🙈 Messages in {where} (and its threads) are no longer logged."
            return f"📝 Messages in {where} are logged again."

        await self._admin(interaction, run)

    @channel.command(name="proactive", description="Let the bot speak up here on its own")
    async def channel_proactive(self, interaction: discord.Interaction, state: OnOff) -> None:
        async def run(actor: str) -> str:
            await self._update_channel(interaction, actor, proactive=state == "on")
            where = f"<#{interaction.channel_id}>"
            if state == "on":
                return f"💬 I may now speak up in {where} on my own, now and then."
            return f"🤐 I no longer speak up in {where} unless asked."

        await self._admin(interaction, run)

    async def _update_channel(
        self, interaction: discord.Interaction, actor: str, **change: bool
    ) -> None:
        guild = str(interaction.guild_id) if interaction.guild_id else None
        await self.bot.api.update_channel(
            actor, str(interaction.channel_id), guild_id=guild, **change
        )

    # ------------------------------------------------------------ status

    @app_commands.command(name="status", description="Admin: the bot's current status and mood")
    async def status(self, interaction: discord.Interaction) -> None:
        async def run(actor: str) -> str:
            values = await self.bot.api.state_values(actor)
            shown = getattr(self.bot.get_cog("Outbox"), "status", None)
            return status_text(values, shown, str(self.bot.link.state))

        await self._admin(interaction, run)
