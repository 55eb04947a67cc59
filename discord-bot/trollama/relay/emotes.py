"""The server's custom emoji: offered to the model by name, rendered in its answers.

Requests carry the guild's custom emoji names (``RequestFrame.emojis``); the
model writes ``:name:``, and the relay turns each one that names a custom
emoji of the guild into Discord's ``<:name:id>`` (``<a:name:id>`` when
animated). Text inside code blocks and inline code is left alone, as is any
other ``:word:``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Generic, TypeVar

import discord

from trollama.common.protocol import MAX_EMOJI_NAME_CHARS, MAX_EMOJIS
from trollama.relay.rendering import MessageSink
from trollama.relay.splitting import DISCORD_MESSAGE_LIMIT

#: ``:name:`` not already part of ``<:name:id>`` / ``<a:name:id>``.
_SHORTCODE = re.compile(r"(?<!<)(?<!<a):(?P<name>\w{2,32}):(?!\d+>)")
#: Code the renderer must not touch: fenced blocks (also one left open) and inline code.
_CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.DOTALL)

Handle = TypeVar("Handle")


def emoji_names(guild: discord.Guild | None) -> list[str]:
    """The guild's usable custom emoji names for a request (at most MAX_EMOJIS)."""
    if guild is None:
        return []
    names = [e.name for e in guild.emojis if e.available and len(e.name) <= MAX_EMOJI_NAME_CHARS]
    return list(dict.fromkeys(names))[:MAX_EMOJIS]


def guild_emotes(guild: discord.Guild | None) -> dict[str, str]:
    """Name → how Discord writes the emoji (``<:name:id>`` or ``<a:name:id>``)."""
    if guild is None:
        return {}
    return {e.name: str(e) for e in guild.emojis if e.available}


def render_emotes(text: str, emotes: Mapping[str, str]) -> str:
    """``text`` with every ``:name:`` of a known emoji rendered, code left alone."""
    if not emotes or ":" not in text:
        return text
    parts: list[str] = []
    last = 0
    for code in _CODE.finditer(text):
        parts.append(_render_prose(text[last : code.start()], emotes))
        parts.append(code.group())
        last = code.end()
    parts.append(_render_prose(text[last:], emotes))
    return "".join(parts)


def _render_prose(text: str, emotes: Mapping[str, str]) -> str:
    return _SHORTCODE.sub(lambda m: emotes.get(m["name"], m.group()), text)


def fitting(text: str, emotes: Mapping[str, str], limit: int = DISCORD_MESSAGE_LIMIT) -> str:
    """The rendered text, or the text as it was when rendering would pass ``limit``
    (``<:name:id>`` is longer than ``:name:``; the message was split before)."""
    rendered = render_emotes(text, emotes)
    return rendered if len(rendered) <= limit else text


class EmoteSink(Generic[Handle]):
    """A :class:`MessageSink` that renders custom emoji in what it sends and edits."""

    def __init__(self, sink: MessageSink[Handle], emotes: Mapping[str, str]) -> None:
        self._sink = sink
        self._emotes = dict(emotes)

    async def send(self, content: str) -> Handle:
        return await self._sink.send(fitting(content, self._emotes))

    async def edit(self, handle: Handle, content: str) -> None:
        await self._sink.edit(handle, fitting(content, self._emotes))

    async def upload(self, filename: str, data: bytes) -> None:
        await self._sink.upload(filename, data)
