"""The relay outbox: what the brain wants said or shown on Discord unprompted.

The background jobs post items (a proactive message for a channel, a new
presence text); the relay polls ``GET /api/relay/outbox``, carries each item
out, then acknowledges it with ``DELETE /api/relay/outbox/{id}``. Durable:
an item stays until acknowledged, or until it is :data:`OUTBOX_TTL_SECONDS`
old (a day-old "thought" is no longer worth saying).

Layout in :attr:`Table.OUTBOX`: partition ``relay``, sort key = item id
(time-ordered, so the partition reads oldest first).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from trollama.brain.persona.ids import new_id
from trollama.common.store.base import ItemStore, Table
from trollama.common.store.conditions import NotExists

OutboxKind = Literal["say", "presence"]

#: Seconds an unacknowledged item is kept.
OUTBOX_TTL_SECONDS = 24 * 3600
#: Items waiting at most; posting more is refused until the relay catches up.
MAX_OUTBOX_ITEMS = 1000
#: Most items returned by one read.
MAX_OUTBOX_PAGE = 100
#: Longest ``say`` text, in characters (Discord's message limit).
MAX_SAY_CHARS = 2000
#: Longest ``presence`` text, in characters (Discord's custom status limit).
MAX_PRESENCE_CHARS = 128
#: Longest item id accepted, in characters.
MAX_ITEM_ID_CHARS = 64

_PK = "relay"


class OutboxFull(Exception):
    """:data:`MAX_OUTBOX_ITEMS` are waiting: the relay is not collecting them."""


class OutboxItem(BaseModel):
    id: str
    kind: OutboxKind
    channel_id: str | None = None
    text: str = Field(min_length=1, max_length=MAX_SAY_CHARS)
    created_at: float


class Outbox:
    def __init__(self, store: ItemStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def post(self, kind: OutboxKind, text: str, channel_id: str | None = None) -> OutboxItem:
        """Queue an item for the relay (``say`` needs a channel; texts are cut
        to Discord's limits)."""
        if kind == "say" and not channel_id:
            raise ValueError("a 'say' item needs a channel_id")
        if await self._store.count(Table.OUTBOX, _PK) >= MAX_OUTBOX_ITEMS:
            raise OutboxFull(f"{MAX_OUTBOX_ITEMS} outbox items are waiting for the relay")
        limit = MAX_SAY_CHARS if kind == "say" else MAX_PRESENCE_CHARS
        now = self._clock()
        item = OutboxItem(
            id=new_id(now), kind=kind, channel_id=channel_id, text=text[:limit], created_at=now
        )
        body = {"pk": _PK, "sk": item.id, **item.model_dump(mode="json", exclude={"id"})}
        body["expires_at"] = int(now + OUTBOX_TTL_SECONDS)
        await self._store.put(Table.OUTBOX, body, condition=NotExists())
        return item

    async def pending(self, limit: int = 20) -> list[OutboxItem]:
        """Unacknowledged items, oldest first (at most :data:`MAX_OUTBOX_PAGE`)."""
        page = await self._store.query(Table.OUTBOX, _PK, limit=max(1, min(limit, MAX_OUTBOX_PAGE)))
        return [OutboxItem.model_validate({**item, "id": item["sk"]}) for item in page.items]

    async def ack(self, id: str) -> None:
        """Done with the item; acknowledging an unknown or old id is fine too."""
        await self._store.delete(Table.OUTBOX, _PK, id)
