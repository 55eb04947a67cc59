"""The outbox consumer: what the brain wants to say or show on its own.

The brain's background jobs (the dynamic status after consolidation,
proactive engagement) put items in a durable outbox; the relay polls it every
:data:`POLL_SECONDS`, carries each item out and acknowledges it:

* ``presence`` — the text becomes the bot's custom status;
* ``say`` — the text is posted in the channel (custom emoji rendered, split
  at Discord's limit, paced with the channel's other messages).

At start the relay shows the status the brain keeps (global state
:data:`STATUS_STATE_KEY`) again. An item for a channel the bot cannot find or may not write in is
acknowledged with a warning (it would never succeed); a Discord hiccup is
retried at the next poll, :data:`MAX_SAY_ATTEMPTS` times at most. A brain
outage only delays the next poll. An item posted whose acknowledgement failed
is acknowledged again at the next poll, never posted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, TypeVar

import discord
from discord.ext import commands

from trollama.common.tasks import cancel_and_wait
from trollama.relay.brain_api import BrainApiError, OutboxItem
from trollama.relay.emotes import guild_emotes, render_emotes
from trollama.relay.splitting import DISCORD_MESSAGE_LIMIT, split_message

if TYPE_CHECKING:
    from trollama.relay.bot import RelayBot

log = logging.getLogger(__name__)

#: Seconds between two polls of the outbox.
POLL_SECONDS = 5.0
#: Items fetched per poll.
POLL_LIMIT = 20
#: Attempts at posting one ``say`` item before it is given up (acknowledged).
MAX_SAY_ATTEMPTS = 3
#: Longest custom status Discord shows, in characters.
MAX_PRESENCE_CHARS = 128
#: The global state key where the brain keeps the bot's current status text.
STATUS_STATE_KEY = "bot_status"
#: Who the relay names as acting when it reads the state for itself.
RELAY_ACTOR = "relay"
#: Item ids remembered (done but not yet acknowledged, or failed attempts).
MAX_REMEMBERED_ITEMS = 1000


V = TypeVar("V")


def _remember(memory: OrderedDict[str, V], key: str, value: V) -> None:
    """Keep ``key`` as the newest entry of a bounded memory."""
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > MAX_REMEMBERED_ITEMS:
        memory.popitem(last=False)


class _Gone(Exception):
    """The item can never be carried out (no such channel, no access)."""


class OutboxConsumer(commands.Cog, name="Outbox"):
    """Polls the brain's outbox and carries out each item."""

    def __init__(self, bot: RelayBot, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.bot = bot
        self.poll_seconds = poll_seconds
        #: The custom status the relay set last (None until the brain sends one).
        self.status: str | None = None
        self._done: OrderedDict[str, None] = OrderedDict()
        self._attempts: OrderedDict[str, int] = OrderedDict()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-consumer")

    async def cog_unload(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def wake(self) -> None:
        """Poll now instead of at the next interval."""
        self._wake.set()

    async def _run(self) -> None:
        await self.bot.wait_until_ready()
        await self._restore_status()
        while True:
            try:
                await self.poll()
            except Exception:  # one bad poll must not end the loop
                log.exception("polling the outbox failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def _restore_status(self) -> None:
        """Show the brain's current status again after a relay restart (best effort)."""
        try:
            values = await self.bot.api.state_values(RELAY_ACTOR)
        except BrainApiError as exc:
            log.info("the last status could not be read: %s", exc)
            return
        status = values.get(STATUS_STATE_KEY)
        if isinstance(status, str) and status.strip():
            await self._set_presence(status)

    async def poll(self) -> int:
        """Fetch and carry out pending items; how many were acknowledged."""
        try:
            items = await self.bot.api.outbox(POLL_LIMIT)
        except BrainApiError as exc:
            log.info("the outbox is not reachable: %s", exc)
            return 0
        acked = 0
        for item in items:
            if await self._handle(item):
                acked += 1
        return acked

    async def _handle(self, item: OutboxItem) -> bool:
        """Carry out the item unless done before, then acknowledge it; True when acknowledged."""
        if item.id not in self._done:
            try:
                await self._carry_out(item)
            except _Gone as exc:
                log.warning("outbox item %s dropped: %s", item.id, exc)
            except discord.HTTPException as exc:
                if self._count_attempt(item.id) < MAX_SAY_ATTEMPTS:
                    log.warning("outbox item %s failed, retrying later: %s", item.id, exc)
                    return False
                log.warning("outbox item %s given up after %d attempts", item.id, MAX_SAY_ATTEMPTS)
            _remember(self._done, item.id, None)
        try:
            await self.bot.api.ack_outbox(item.id)
        except BrainApiError as exc:
            log.info("acknowledging outbox item %s failed; again later: %s", item.id, exc)
            return False
        self._done.pop(item.id, None)
        self._attempts.pop(item.id, None)
        return True

    async def _carry_out(self, item: OutboxItem) -> None:
        if item.kind == "presence":
            await self._set_presence(item.text)
        elif item.kind == "say":
            await self._say(item)
        else:
            raise _Gone(f"unknown kind {item.kind!r}")

    async def _set_presence(self, text: str) -> None:
        status = " ".join(text.split())[:MAX_PRESENCE_CHARS]
        await self.bot.change_presence(activity=discord.CustomActivity(name=status))
        self.status = status

    async def _say(self, item: OutboxItem) -> None:
        channel = await self._channel(item.channel_id)
        text = render_emotes(item.text, guild_emotes(getattr(channel, "guild", None)))
        for part in split_message(text, DISCORD_MESSAGE_LIMIT):
            try:
                async with self.bot.pacer.turn(channel.id):
                    await channel.send(part, allowed_mentions=discord.AllowedMentions.none())
            except (discord.Forbidden, discord.NotFound) as exc:
                raise _Gone(f"cannot post in channel {channel.id}: {exc.text}") from exc

    async def _channel(self, channel_id: str | None) -> discord.TextChannel | discord.Thread:
        if not channel_id or not channel_id.isdigit():
            raise _Gone(f"no channel given ({channel_id!r})")
        channel = self.bot.get_channel(int(channel_id))
        if channel is None:
            try:
                channel = await self.bot.fetch_channel(int(channel_id))
            except (discord.Forbidden, discord.NotFound) as exc:
                raise _Gone(f"channel {channel_id} is unknown or hidden") from exc
        if not isinstance(channel, discord.TextChannel | discord.Thread):
            raise _Gone(f"channel {channel_id} is not a text channel or thread")
        return channel

    def _count_attempt(self, item_id: str) -> int:
        attempts = self._attempts.get(item_id, 0) + 1
        _remember(self._attempts, item_id, attempts)
        return attempts
