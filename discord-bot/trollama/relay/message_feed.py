"""The message feed: every message the bot can see in a server, to the brain's log.

The brain keeps a short-term log of the channels (for context and for the
daily consolidation of what it learns about people). The relay feeds it:
every message in server channels and threads, other bots' excluded, the
bot's own included with ``from_bot`` (its answers are logged as they are
edited, so the final text wins). Direct messages are never logged. Channels
opted out with ``/channel logging off`` are dropped by the brain.

Messages wait in a bounded buffer and go out in batches (at most
:data:`MAX_BATCH_MESSAGES`, at most :data:`FLUSH_INTERVAL_SECONDS` after they
arrive). While the brain is away the buffer keeps them and sending is retried
with backoff; past :data:`MAX_BUFFERED_MESSAGES` the oldest are dropped, with
a warning that counts them. A batch the brain refuses as invalid is dropped
with an error (retrying it would block every later message). Nothing here
ever delays an answer: the listener only appends to the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands
from pydantic import BaseModel, Field

from trollama.common.protocol import MAX_ID_CHARS
from trollama.common.tasks import cancel_and_wait
from trollama.relay.brain_api import BrainApiError, ValueRefused

if TYPE_CHECKING:
    from trollama.relay.bot import RelayBot

log = logging.getLogger(__name__)

#: Most messages in one call to the brain (its limit).
MAX_BATCH_MESSAGES = 100
#: Longest a message waits before it is sent, in seconds (while the brain is up).
FLUSH_INTERVAL_SECONDS = 1.0
#: Messages kept while the brain is away; past this the oldest are dropped.
MAX_BUFFERED_MESSAGES = 5000
#: First pause after a failed send, in seconds; it doubles up to the maximum.
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
#: Seconds the relay spends at shutdown sending what is still buffered.
FINAL_FLUSH_SECONDS = 2.0
#: Longest message text kept, in characters (the brain's limit).
MAX_LOGGED_CHARS = 4000
#: Longest author name kept, in characters (the brain's limit).
MAX_AUTHOR_NAME_CHARS = 100

Send = Callable[[Sequence[Mapping[str, Any]]], Awaitable[object]]


class FeedMessage(BaseModel):
    """One message as the brain's log takes it."""

    message_id: str = Field(max_length=MAX_ID_CHARS)
    channel_id: str = Field(max_length=MAX_ID_CHARS)
    #: The parent channel of a thread (its opt-out covers the thread).
    parent_channel_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    guild_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    author_id: str = Field(max_length=MAX_ID_CHARS)
    author_name: str = Field(default="", max_length=MAX_AUTHOR_NAME_CHARS)
    content: str = Field(max_length=MAX_LOGGED_CHARS)
    created_at: float
    from_bot: bool = False


def feed_message(message: discord.Message, *, from_bot: bool) -> FeedMessage:
    """What the log keeps of a Discord message (attachments by name)."""
    files = [f"[attachment: {a.filename}]" for a in message.attachments]
    content = "\n".join([message.content, *files]) if files else message.content
    return FeedMessage(
        message_id=str(message.id),
        channel_id=str(message.channel.id),
        parent_channel_id=_parent_id(message.channel),
        guild_id=str(message.guild.id) if message.guild else None,
        author_id=str(message.author.id),
        author_name=message.author.display_name[:MAX_AUTHOR_NAME_CHARS],
        content=content[:MAX_LOGGED_CHARS],
        created_at=message.created_at.timestamp(),
        from_bot=from_bot,
    )


def _parent_id(channel: object) -> str | None:
    parent = getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None
    return str(parent) if parent else None


class MessageBuffer:
    """Messages waiting to be sent, oldest first, keyed by message id (an edited
    message replaces its waiting version); bounded, dropping the oldest."""

    def __init__(self, capacity: int = MAX_BUFFERED_MESSAGES) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[str, FeedMessage] = OrderedDict()
        #: Messages dropped since the last warning.
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def add(self, message: FeedMessage) -> None:
        self._items[message.message_id] = message
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
            self.dropped += 1

    def oldest(self, limit: int) -> list[FeedMessage]:
        return [message for _, message in zip(range(limit), self._items.values(), strict=False)]

    def remove(self, sent: Sequence[FeedMessage]) -> None:
        """Forget sent messages, unless an edit replaced them meanwhile."""
        for message in sent:
            if self._items.get(message.message_id) is message:
                del self._items[message.message_id]


class MessageFeed:
    """The buffer and the task that empties it into the brain."""

    def __init__(
        self,
        send: Send,
        *,
        capacity: int = MAX_BUFFERED_MESSAGES,
        flush_interval: float = FLUSH_INTERVAL_SECONDS,
        retry_base: float = RETRY_BASE_SECONDS,
        retry_max: float = RETRY_MAX_SECONDS,
    ) -> None:
        self._send = send
        self.buffer = MessageBuffer(capacity)
        self._flush_interval = flush_interval
        self._retry_base, self._retry_max = retry_base, retry_max
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Messages the brain took, and sends that failed, in all.
        self.sent = 0
        self.failed_sends = 0

    def add(self, message: FeedMessage) -> None:
        """Queue a message for the log (never waits)."""
        self.buffer.add(message)
        self._arrived.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="message-feed")

    async def stop(self) -> None:
        """Stop sending, after one last try (at most FINAL_FLUSH_SECONDS) to send what
        is buffered; what is left then is lost with the process."""
        task, self._task = self._task, None
        if task is None:
            return
        await cancel_and_wait(task)
        if len(self.buffer):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FINAL_FLUSH_SECONDS):
                    await self.flush()

    async def _run(self) -> None:
        failures = 0
        while True:
            await self._arrived.wait()
            await asyncio.sleep(
                0 if len(self.buffer) >= MAX_BATCH_MESSAGES else self._flush_interval
            )
            if await self.flush():
                failures = 0
            else:
                failures += 1
                await asyncio.sleep(min(self._retry_max, self._retry_base * 2 ** (failures - 1)))

    async def flush(self) -> bool:
        """Send everything buffered, a batch at a time; False when the brain failed."""
        self._warn_dropped()
        while batch := self.buffer.oldest(MAX_BATCH_MESSAGES):
            try:
                await self._send([m.model_dump(mode="json") for m in batch])
            except ValueRefused as exc:  # never accepted: retrying would block the feed
                log.error("the message log refused %d messages; dropped: %s", len(batch), exc)
                self.buffer.remove(batch)
                continue
            except BrainApiError as exc:
                self.failed_sends += 1
                log.warning(
                    "the message log is not reachable (%d waiting): %s", len(self.buffer), exc
                )
                return False
            self.buffer.remove(batch)
            self.sent += len(batch)
        self._arrived.clear()
        return True

    def _warn_dropped(self) -> None:
        if self.buffer.dropped:
            log.warning(
                "message log buffer full: dropped the %d oldest messages", self.buffer.dropped
            )
            self.buffer.dropped = 0


class MessageFeedCog(commands.Cog, name="MessageFeed"):
    """Listens to every server message and feeds the brain's log."""

    def __init__(self, bot: RelayBot, feed: MessageFeed | None = None) -> None:
        self.bot = bot
        self.feed = feed or MessageFeed(bot.api.log_messages)

    async def cog_load(self) -> None:
        self.feed.start()

    async def cog_unload(self) -> None:
        await self.feed.stop()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        self._take(message)

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """The bot's own answers grow by edits: log the latest text."""
        me = self.bot.user
        if me is not None and payload.message.author.id == me.id:
            self._take(payload.message)

    def _take(self, message: discord.Message) -> None:
        if not self.bot.settings.message_log_enabled or message.guild is None:
            return
        me = self.bot.user
        own = me is not None and message.author.id == me.id
        if (message.author.bot and not own) or message.is_system() or message.flags.ephemeral:
            return
        self.feed.add(feed_message(message, from_bot=own))
