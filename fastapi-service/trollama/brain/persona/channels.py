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

from trollama.common.store.base import ConditionFailed, Delete, ItemStore, Put, Table
from trollama.common.store.conditions import Eq, NotExists

#: Attempts at an update that raced with another admin's.
MAX_WRITE_ATTEMPTS = 5
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
        changes: dict[str, object] = {}
        if guild_id is not None:
            changes["guild_id"] = guild_id
        if log_opt_out is not None:
            changes["log_opt_out"] = log_opt_out
        if proactive is not None:
            changes["proactive"] = proactive
        for _ in range(MAX_WRITE_ATTEMPTS):
            item = await self._store.get(Table.CHANNEL_SETTINGS, channel_key(channel_id), _SK)
            current = (
                ChannelSettings.model_validate(item)
                if item
                else ChannelSettings(channel_id=channel_id)
            )
            updated = current.model_copy(update={**changes, "updated_at": self._clock()})
            version = int(item.get("version", 0)) if item else 0
            body = {
                "pk": channel_key(channel_id),
                "sk": _SK,
                "version": version + 1,
                **updated.model_dump(mode="json"),
            }
            write = Put(
                Table.CHANNEL_SETTINGS,
                body,
                condition=Eq("version", version) if item else NotExists(),
            )
            try:
                await self._store.transact([write, _listing(updated)])
            except ConditionFailed:
                continue  # another admin changed it meanwhile: apply ours on top of theirs
            return updated
        raise ConditionFailed("the channel's settings kept changing; try again")

    async def proactive_channels(self) -> list[str]:
        page = await self._store.query(
            Table.CHANNEL_SETTINGS, _PROACTIVE, limit=MAX_PROACTIVE_CHANNELS
        )
        return [str(item["sk"]) for item in page.items]


def _listing(settings: ChannelSettings) -> Put | Delete:
    """The channel's entry in the proactive listing, present exactly when enabled."""
    if settings.proactive:
        return Put(
            Table.CHANNEL_SETTINGS,
            {"pk": _PROACTIVE, "sk": settings.channel_id, "guild_id": settings.guild_id},
        )
    return Delete(Table.CHANNEL_SETTINGS, _PROACTIVE, settings.channel_id)
