"""Per-channel settings: opting a channel out of the message log, and
opting it in to proactive engagement.

Layout in :attr:`Table.CHANNEL_SETTINGS`: partition ``channel#<id>``, sort
key ``settings``; plus partition ``proactive`` listing the channels where
proactive engagement is on (sort key = channel id), so the job need not scan.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel

from trollama.common.store.base import Delete, ItemStore, Put, Table

#: Most channels with proactive engagement (bounds the job's work).
MAX_PROACTIVE_CHANNELS = 500

_SK = "settings"
_PROACTIVE = "proactive"


class ChannelSettings(BaseModel):
    channel_id: str
    guild_id: str | None = None
    #: Messages here are not kept in the short-term log (nor archived).
    log_opt_out: bool = False
    #: The bot may speak here unprompted.
    proactive: bool = False
    updated_at: float | None = None


def channel_key(channel_id: str) -> str:
    return f"channel#{channel_id}"


class ChannelSettingsStore:
    def __init__(self, store: ItemStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def get(self, channel_id: str) -> ChannelSettings:
        item = await self._store.get(Table.CHANNEL_SETTINGS, channel_key(channel_id), _SK)
        return (
            ChannelSettings.model_validate(item) if item else ChannelSettings(channel_id=channel_id)
        )

    async def update(
        self,
        channel_id: str,
        *,
        guild_id: str | None = None,
        log_opt_out: bool | None = None,
        proactive: bool | None = None,
    ) -> ChannelSettings:
        current = await self.get(channel_id)
        changes: dict[str, object] = {"updated_at": self._clock()}
        if guild_id is not None:
            changes["guild_id"] = guild_id
        if log_opt_out is not None:
            changes["log_opt_out"] = log_opt_out
        if proactive is not None:
            changes["proactive"] = proactive
        updated = current.model_copy(update=changes)
        listing = (
            Put(
                Table.CHANNEL_SETTINGS,
                {"pk": _PROACTIVE, "sk": channel_id, "guild_id": updated.guild_id},
            )
            if updated.proactive
            else Delete(Table.CHANNEL_SETTINGS, _PROACTIVE, channel_id)
        )
        body = {"pk": channel_key(channel_id), "sk": _SK, **updated.model_dump(mode="json")}
        await self._store.transact([Put(Table.CHANNEL_SETTINGS, body), listing])
        return updated

    async def proactive_channels(self) -> list[str]:
        page = await self._store.query(
            Table.CHANNEL_SETTINGS, _PROACTIVE, limit=MAX_PROACTIVE_CHANNELS
        )
        return [str(item["sk"]) for item in page.items]
