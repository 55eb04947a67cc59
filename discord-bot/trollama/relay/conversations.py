"""Conversations: which messages go to the brain, and where the answer appears.

A mention in a channel starts a thread from that message; later messages in
the thread continue the conversation without a mention; a DM channel is one
conversation per user. The thread (or DM channel) id is the conversation id.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import mimetypes
from collections.abc import Coroutine, Hashable
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from trollama.common.logging import request_id_var
from trollama.common.protocol import (
    MAX_CONTENT_CHARS,
    Attachment,
    DoneFrame,
    ErrorCode,
    ErrorFrame,
    PongFrame,
    RequestFrame,
    ServerFrame,
    StatusFrame,
    StatusKind,
)
from trollama.relay.access import is_bot_admin
from trollama.relay.brain_link import LinkFull, LinkState, LinkStateError
from trollama.relay.emotes import EmoteSink, emoji_names, guild_emotes
from trollama.relay.merging import MessageMerger
from trollama.relay.rendering import AnswerRenderer
from trollama.relay.sink import ChannelSink
from trollama.relay.triggers import addressed_to_bot, strip_mentions, thread_name

if TYPE_CHECKING:
    from trollama.relay.bot import RelayBot

log = logging.getLogger(__name__)

WAITING, DONE, FAILED = "⏳", "✅", "❌"
RESTARTING_MESSAGE = (
    "🔄 The assistant is restarting. Your message is kept and will be answered shortly."
)
SHUTTING_DOWN_MESSAGE = "The relay is shutting down; please send your message again in a minute."
TOO_BIG_ATTACHMENT = "📎 {name} is larger than {limit} MB and was not sent to the assistant."


def content_type_of(item: discord.Attachment) -> str:
    """Discord's content type, else a guess from the file name."""
    guessed, _ = mimetypes.guess_type(item.filename)
    return item.content_type or guessed or "application/octet-stream"


class Conversations(commands.Cog):
    def __init__(self, bot: RelayBot) -> None:
        self.bot = bot
        self.merger: MessageMerger[discord.Message] = MessageMerger(
            bot.settings.merge_window_seconds, self._submit_batch
        )
        #: (conversation id, user id) → the user's request running there (for /cancel).
        self.active: dict[tuple[int, int], str] = {}
        #: Answers being flushed to Discord before their final reaction.
        self._finishing: set[asyncio.Task[None]] = set()

    async def cog_unload(self) -> None:
        await self.merger.drain()
        await asyncio.gather(*self._finishing, return_exceptions=True)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.author.bot or message.author.id == me.id:
            return
        if not addressed_to_bot(message, me, by_name=self.bot.settings.trigger_on_name):
            return
        if not self._permitted(message):
            return
        channel = await self._conversation_channel(message)
        key: Hashable = (channel.id, message.author.id)
        self.merger.add(key, message)

    def _permitted(self, message: discord.Message) -> bool:
        author = message.author
        roles = [r.id for r in getattr(author, "roles", [])]
        channels = [message.channel.id]
        parent = getattr(message.channel, "parent_id", None)
        if parent:
            channels.append(parent)
        return self.bot.access.permits(author.id, roles, channels)

    async def _conversation_channel(
        self, message: discord.Message
    ) -> discord.Thread | discord.DMChannel:
        """The thread or DM the answer goes to (a mention in a channel starts a thread)."""
        me = self.bot.user
        assert me is not None
        channel = message.channel
        if isinstance(channel, discord.DMChannel | discord.Thread):
            return channel
        name = thread_name(strip_mentions(message.content, me.id))
        return await message.create_thread(name=name)

    async def _submit_batch(self, key: Hashable, messages: list[discord.Message]) -> None:
        channel_id = int(key[0]) if isinstance(key, tuple) else messages[0].channel.id
        channel = self.bot.get_channel(channel_id) or messages[0].channel
        first = messages[0]
        # This batch runs in its own task: every line it (and the tasks it
        # starts) writes carries the request id, the Discord message id.
        request_id_var.set(str(first.id))
        request = await self._request(messages, channel_id)
        renderer = AnswerRenderer(
            EmoteSink(ChannelSink(channel), guild_emotes(first.guild)),  # type: ignore[arg-type]
            self.bot.pacer,
            channel_id,
            edit_interval=self.bot.settings.stream_chunk_interval,
        )
        waiting = asyncio.create_task(self._react(first, WAITING))  # never delays the request
        self.active[(channel_id, first.author.id)] = request.request_id

        async def on_frame(frame: ServerFrame) -> None:
            if isinstance(frame, PongFrame):
                return
            await renderer.handle(frame)
            if isinstance(frame, DoneFrame | ErrorFrame) and frame.request_id:
                self.active.pop((channel_id, first.author.id), None)
                ok = isinstance(frame, DoneFrame)
                self._track(self._finish(renderer, first, ok, waiting))

        try:
            await self.bot.link.submit(request, on_frame)
        except (LinkFull, LinkStateError) as exc:
            message = str(exc) if isinstance(exc, LinkFull) else SHUTTING_DOWN_MESSAGE
            await renderer.handle(
                ErrorFrame(
                    request_id=request.request_id, code=ErrorCode.RATE_LIMITED, message=message
                )
            )
            await waiting
            await self._settle(first, FAILED)
            return
        except ValueError:
            log.info("request %s is already in progress", request.request_id)
            return
        if self.bot.link.state is not LinkState.CONNECTED:
            await renderer.handle(
                StatusFrame(
                    request_id=request.request_id,
                    status=StatusKind.QUEUED,
                    message=RESTARTING_MESSAGE,
                )
            )

    async def _request(self, messages: list[discord.Message], channel_id: int) -> RequestFrame:
        me = self.bot.user
        assert me is not None
        first = messages[0]
        text = "\n".join(strip_mentions(m.content, me.id) for m in messages)
        attachments = [a for m in messages for a in await self._attachments(m)]
        author = first.author
        return RequestFrame(
            request_id=str(first.id),
            user_id=str(author.id),
            user_name=author.display_name[:100],
            conversation_id=str(channel_id),
            channel_id=str(first.channel.id),
            guild_id=str(first.guild.id) if first.guild else None,
            content=text[:MAX_CONTENT_CHARS],
            attachments=attachments[:10],
            is_admin=is_bot_admin(author, self.bot.settings),
            emojis=emoji_names(first.guild),
        )

    async def _attachments(self, message: discord.Message) -> list[Attachment]:
        limit_mb = self.bot.settings.max_file_size_mb
        kept: list[Attachment] = []
        for item in message.attachments:
            if item.size > limit_mb * 1024 * 1024:
                await message.reply(
                    TOO_BIG_ATTACHMENT.format(name=item.filename, limit=limit_mb),
                    mention_author=False,
                )
                continue
            data = await item.read()
            kept.append(
                Attachment(
                    filename=item.filename[:256],
                    content_type=content_type_of(item)[:128],
                    size_bytes=len(data),
                    data_b64=base64.b64encode(data).decode(),
                )
            )
        return kept

    def _track(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(
        self,
        renderer: AnswerRenderer[discord.Message],
        message: discord.Message,
        ok: bool,
        waiting: asyncio.Task[None],
    ) -> None:
        """✅ or ❌ once the whole answer is on Discord (and after the ⏳ went on)."""
        shown = await renderer.wait_done()
        await waiting
        await self._settle(message, DONE if ok and shown else FAILED)

    async def _react(self, message: discord.Message, emoji: str) -> None:
        try:
            async with self.bot.reaction_pacer.turn(message.channel.id):
                await message.add_reaction(emoji)
        except discord.HTTPException:
            log.warning("could not add a reaction", exc_info=True)

    async def _settle(self, message: discord.Message, emoji: str) -> None:
        me = self.bot.user
        try:
            async with self.bot.reaction_pacer.turn(message.channel.id):
                if me is not None:
                    await message.remove_reaction(WAITING, me)
            await self._react(message, emoji)
        except discord.HTTPException:
            log.warning("could not update reactions", exc_info=True)
