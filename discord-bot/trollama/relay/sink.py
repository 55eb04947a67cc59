"""The renderer's view of a Discord channel: send, edit and upload messages."""

from __future__ import annotations

import io

import discord


class ChannelSink:
    """A Discord channel or thread as a :class:`~trollama.relay.rendering.MessageSink`."""

    def __init__(self, channel: discord.abc.Messageable) -> None:
        self.channel = channel

    async def send(self, content: str) -> discord.Message:
        return await self.channel.send(content, allowed_mentions=discord.AllowedMentions.none())

    async def edit(self, handle: discord.Message, content: str) -> None:
        await handle.edit(content=content, allowed_mentions=discord.AllowedMentions.none())

    async def upload(self, filename: str, data: bytes) -> None:
        await self.channel.send(file=discord.File(io.BytesIO(data), filename=filename))
