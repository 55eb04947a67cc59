"""The relay bot: discord.py client wiring, lifecycle and health."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import discord
from aiohttp import web
from discord.ext import commands

from trollama.common.health import HealthReport
from trollama.common.health_server import health_app
from trollama.relay.access import AccessRules
from trollama.relay.admin_commands import AdminCommands
from trollama.relay.brain_api import BrainApi, http_base
from trollama.relay.conversations import Conversations
from trollama.relay.health import MeteredBrainLink, RelayMetrics, relay_report
from trollama.relay.memory_commands import MemoryCommands
from trollama.relay.message_feed import MessageFeedCog
from trollama.relay.moderation import Moderation
from trollama.relay.outbox_consumer import OutboxConsumer
from trollama.relay.pacing import ChannelPacer
from trollama.relay.polls import Polls
from trollama.relay.settings import RelaySettings
from trollama.relay.slash import SlashCommands
from trollama.relay.triggers import addressed_to_bot
from trollama.relay.utility import Utility

log = logging.getLogger(__name__)

#: Seconds between two reaction changes in one channel (Discord: about 4 a second).
REACTION_INTERVAL_SECONDS = 0.3
#: Seconds a REST call to the brain may take.
BRAIN_API_TIMEOUT_SECONDS = 60.0


def relay_intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = True
    return intents


class RelayBot(commands.Bot):
    def __init__(self, settings: RelaySettings, *, serve: bool = True) -> None:
        """``serve=False`` only registers the commands (scripts/sync_commands.py)."""
        super().__init__(command_prefix=commands.when_mentioned, intents=relay_intents())
        self.settings = settings
        self.serve = serve
        self.access = AccessRules.from_settings(settings)
        self.pacer = ChannelPacer(settings.stream_chunk_interval)
        #: Reactions have their own, tighter Discord limit; they never wait for answers.
        self.reaction_pacer = ChannelPacer(REACTION_INTERVAL_SECONDS)
        secret = settings.relay_shared_secret.get_secret_value()
        self.metrics = RelayMetrics()
        self.link = MeteredBrainLink(
            settings.fastapi_ws_url,
            secret,
            max_pending=settings.max_pending_requests,
            metrics=self.metrics,
        )
        self.api = BrainApi(
            http_base(settings.fastapi_ws_url), secret, timeout=BRAIN_API_TIMEOUT_SECONDS
        )
        self.started_at = time.time()
        self._health: web.AppRunner | None = None
        self._closing = False

    async def setup_hook(self) -> None:
        await self.add_cog(Conversations(self))
        await self.add_cog(SlashCommands(self))
        # Moderation and Polls start their background work (audit retries, poll
        # timers re-armed from the brain) in cog_load, only when serving.
        await self.add_cog(Moderation(self))
        await self.add_cog(Polls(self))
        await self.add_cog(Utility(self))
        await self.add_cog(MemoryCommands(self))
        await self.add_cog(AdminCommands(self))
        if not self.serve:
            return
        await self.add_cog(MessageFeedCog(self))
        await self.add_cog(OutboxConsumer(self))
        await self.link.start()
        await self._start_health()
        await self.sync_commands()

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: messages are handled by the Conversations cog; here
        they are only counted."""
        me = self.user
        if me is None or message.author.bot or message.author.id == me.id:
            return
        by_name = self.settings.trigger_on_name
        self.metrics.message(addressed=addressed_to_bot(message, me, by_name=by_name))

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        """Count the unhandled error, then log it as discord.py does."""
        self.metrics.event_error(sys.exc_info()[1])
        await super().on_error(event_method, *args, **kwargs)

    async def sync_commands(self) -> list[discord.app_commands.AppCommand]:
        """Register the slash commands (instantly in the development guild)."""
        if self.settings.dev_guild_id.isdigit():
            guild = discord.Object(id=int(self.settings.dev_guild_id))
            self.tree.copy_global_to(guild=guild)
            return await self.tree.sync(guild=guild)
        return await self.tree.sync()

    async def _start_health(self) -> None:
        app = health_app(self.health_report, self.render_metrics)
        self._health = web.AppRunner(app, access_log=None)
        await self._health.setup()
        site = web.TCPSite(
            self._health, self.settings.relay_health_host, self.settings.relay_health_port
        )
        await site.start()

    def health_report(self) -> HealthReport:
        return relay_report(
            discord_ready=self.is_ready() and not self.is_closed(),
            latency_s=self.latency if self.is_ready() else None,
            brain_state=str(self.link.state),
            started_at=self.started_at,
            pending=self.link.pending(),
        )

    def render_metrics(self) -> tuple[bytes, str]:
        """The relay's Prometheus text, its gauges read from the live state."""
        ready = self.is_ready() and not self.is_closed()
        latency = self.latency if ready else None
        self.metrics.refresh(link=self.link, discord_ready=ready, latency_s=latency)
        return self.metrics.render()

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        await super().close()
        await self.link.stop()
        await self.api.aclose()
        if self._health is not None:
            await self._health.cleanup()
