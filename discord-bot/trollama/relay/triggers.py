"""When the bot answers, and what the user actually said."""

from __future__ import annotations

import re

import discord

#: Longest thread name Discord accepts, in characters.
THREAD_NAME_LIMIT = 100
#: Shown when a message has no words to name its thread after.
DEFAULT_THREAD_NAME = "Conversation"


def is_bot_thread(channel: object, bot_id: int) -> bool:
    """A thread the bot started: every message in it continues the conversation."""
    return isinstance(channel, discord.Thread) and channel.owner_id == bot_id


def replies_to_bot(message: discord.Message, bot_id: int) -> bool:
    ref = message.reference
    resolved = ref.resolved if ref else None
    return isinstance(resolved, discord.Message) and resolved.author.id == bot_id


def addressed_to_bot(message: discord.Message, bot: discord.ClientUser, *, by_name: bool) -> bool:
    """A DM, a mention, a reply to the bot, a message in its thread, or (opt-in) its name."""
    if isinstance(message.channel, discord.DMChannel):
        return True
    if bot in message.mentions or is_bot_thread(message.channel, bot.id):
        return True
    if replies_to_bot(message, bot.id):
        return True
    return by_name and bot.name.lower() in message.content.lower()


def strip_mentions(content: str, bot_id: int) -> str:
    """The text without the bot's mention tokens."""
    return re.sub(rf"<@!?{bot_id}>", "", content).strip()


def thread_name(text: str) -> str:
    """A thread name from the first line of the message."""
    first = " ".join(text.split("\n", 1)[0].split())
    if not first:
        return DEFAULT_THREAD_NAME
    if len(first) <= THREAD_NAME_LIMIT:
        return first
    return first[: THREAD_NAME_LIMIT - 1].rstrip() + "…"
