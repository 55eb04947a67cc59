"""Utility commands: /userinfo, /serverinfo and /serverstats, as embeds.

Every text is cut to Discord's embed limits. Online counts need the Presence
intent, which the relay does not ask for: /serverstats says so instead of
showing a wrong number.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import escape_markdown, format_dt

from trollama.relay.brain_api import BrainApiError

if TYPE_CHECKING:
    from trollama.relay.bot import RelayBot

#: Discord's embed limits, in characters.
MAX_EMBED_TITLE_CHARS = 256
MAX_EMBED_FIELD_VALUE_CHARS = 1024
#: Roles /userinfo lists at most (highest first).
MAX_ROLES_SHOWN = 10
EMBED_COLOUR = discord.Colour.blurple()
NOT_TRACKED = "not tracked (the relay does not use the Presence intent)"


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def add_field(embed: discord.Embed, name: str, value: str, *, inline: bool = True) -> None:
    embed.add_field(name=name, value=clip(value or "—", MAX_EMBED_FIELD_VALUE_CHARS), inline=inline)


def when(moment: datetime | None) -> str:
    """A date Discord shows in each reader's time zone, and how long ago."""
    return f"{format_dt(moment, 'D')} ({format_dt(moment, 'R')})" if moment else "unknown"


def top_roles(member: discord.Member) -> str:
    """The member's roles, highest first, without ``@everyone``."""
    roles = [r for r in reversed(member.roles) if not r.is_default()]
    shown = " ".join(r.mention for r in roles[:MAX_ROLES_SHOWN])
    more = f" and {len(roles) - MAX_ROLES_SHOWN} more" if len(roles) > MAX_ROLES_SHOWN else ""
    return (shown + more) or "none"


def user_embed(member: discord.Member) -> discord.Embed:
    embed = discord.Embed(
        title=clip(escape_markdown(member.display_name), MAX_EMBED_TITLE_CHARS),
        colour=EMBED_COLOUR,
    )
    add_field(embed, "ID", f"`{member.id}`")
    add_field(embed, "Username", escape_markdown(member.name))
    add_field(embed, "Display name", escape_markdown(member.global_name or member.name))
    add_field(embed, "Nickname", escape_markdown(member.nick) if member.nick else "none")
    add_field(embed, "Bot", "yes" if member.bot else "no")
    add_field(embed, "Account created", when(member.created_at), inline=False)
    add_field(embed, "Joined this server", when(member.joined_at), inline=False)
    add_field(embed, "Top roles", top_roles(member), inline=False)
    return embed


def channel_counts(guild: discord.Guild) -> str:
    """Channels by type, e.g. ``3 text · 1 voice · 1 category · 2 threads``."""
    kinds = Counter(str(channel.type) for channel in guild.channels)
    kinds["thread"] += len(guild.threads)
    return " · ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()) if count) or "none"


def server_embed(guild: discord.Guild) -> discord.Embed:
    embed = discord.Embed(
        title=clip(escape_markdown(guild.name), MAX_EMBED_TITLE_CHARS), colour=EMBED_COLOUR
    )
    add_field(embed, "ID", f"`{guild.id}`")
    add_field(embed, "Owner", f"<@{guild.owner_id}>" if guild.owner_id else "unknown")
    add_field(embed, "Members", str(guild.member_count or len(guild.members)))
    add_field(embed, "Roles", str(len(guild.roles)))
    add_field(embed, "Emojis", f"{len(guild.emojis)} of {guild.emoji_limit}")
    add_field(
        embed, "Boosts", f"level {guild.premium_tier}, {guild.premium_subscription_count} boosts"
    )
    add_field(embed, "Channels", channel_counts(guild), inline=False)
    add_field(embed, "Created", when(guild.created_at), inline=False)
    return embed


def member_counts(guild: discord.Guild, *, presences: bool) -> tuple[str, str]:
    """(humans and bots, online) from the members the relay knows."""
    bots = sum(1 for m in guild.members if m.bot)
    humans = len(guild.members) - bots
    online = NOT_TRACKED
    if presences:
        online = str(sum(1 for m in guild.members if m.status is not discord.Status.offline))
    return f"{plural(humans, 'human')} · {plural(bots, 'bot')}", online


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class Utility(commands.Cog):
    """Facts about members and the server."""

    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot

    @app_commands.command(name="userinfo", description="Facts about a member (default: you)")
    @app_commands.guild_only()
    @app_commands.describe(member="whom to describe")
    async def userinfo(
        self, interaction: discord.Interaction, member: discord.Member | None = None
    ) -> None:
        target = member or interaction.user
        if not isinstance(target, discord.Member):
            await interaction.response.send_message("That is not a member here.", ephemeral=True)
            return
        await interaction.response.send_message(embed=user_embed(target))

    @app_commands.command(name="serverinfo", description="Facts about this server")
    @app_commands.guild_only()
    async def serverinfo(self, interaction: discord.Interaction) -> None:
        if interaction.guild is None:
            await interaction.response.send_message("Only in a server.", ephemeral=True)
            return
        await interaction.response.send_message(embed=server_embed(interaction.guild))

    @app_commands.command(
        name="serverstats", description="Members, channels and the assistant's queue"
    )
    @app_commands.guild_only()
    async def serverstats(self, interaction: discord.Interaction) -> None:
        guild = interaction.guild
        if guild is None:
            await interaction.response.send_message("Only in a server.", ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(embed=await self._stats_embed(guild))

    async def _stats_embed(self, guild: discord.Guild) -> discord.Embed:
        kinds, online = member_counts(guild, presences=self.bot.intents.presences)
        embed = discord.Embed(
            title=clip(f"{escape_markdown(guild.name)}: statistics", MAX_EMBED_TITLE_CHARS),
            colour=EMBED_COLOUR,
        )
        add_field(embed, "Members", str(guild.member_count or len(guild.members)))
        add_field(embed, "Humans and bots", kinds)
        add_field(embed, "Online", online)
        add_field(embed, "Channels", channel_counts(guild), inline=False)
        add_field(embed, "Assistant queue", await self._queue(), inline=False)
        return embed

    async def _queue(self) -> str:
        try:
            stats = await self.bot.api.queue_stats()
        except BrainApiError as exc:
            return f"unavailable: {exc.message}"
        return f"{stats.queued} waiting · {stats.running} running (room for {stats.max_size})"
