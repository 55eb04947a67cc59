"""Liveness of the brain processes that share one store.

Each brain writes a heartbeat record (``Table.NODES``, pk ``node``, sk = its
node id) every ``heartbeat_seconds``. A node whose last beat is older than
:data:`DEAD_AFTER_BEATS` beats is dead: other brains take over its requests.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from decimal import Decimal

from trollama.common.store.base import TTL_ATTRIBUTE, ItemStore, Table
from trollama.common.store.conditions import Ge

#: A node silent for this many heartbeats counts as dead.
DEAD_AFTER_BEATS = 3
#: Heartbeat records disappear this long after the last beat, in seconds.
HEARTBEAT_TTL_SECONDS = 24 * 3600
#: Most nodes :meth:`NodeRegistry.alive_nodes` reports.
MAX_NODES = 100
#: Shortest accepted heartbeat interval, in seconds.
MIN_HEARTBEAT_SECONDS = 0.01
NODES_PK = "node"


class NodeRegistry:
    """Heartbeats of brain processes; who is alive right now."""

    def __init__(
        self,
        store: ItemStore,
        *,
        node_id: str,
        heartbeat_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not node_id:
            raise ValueError("node_id must not be empty")
        if not math.isfinite(heartbeat_seconds) or heartbeat_seconds < MIN_HEARTBEAT_SECONDS:
            raise ValueError(f"heartbeat_seconds must be at least {MIN_HEARTBEAT_SECONDS}")
        self._store = store
        self.node_id = node_id
        self.heartbeat_seconds = heartbeat_seconds
        self._clock = clock
        self._last_beat: float | None = None

    @property
    def dead_after_seconds(self) -> float:
        """Silence after which a node counts as dead, in seconds."""
        return DEAD_AFTER_BEATS * self.heartbeat_seconds

    async def beat(self) -> None:
        """Record that this node is alive now."""
        now = self._clock()
        record = {
            "pk": NODES_PK,
            "sk": self.node_id,
            "beat_at": now,
            TTL_ATTRIBUTE: now + HEARTBEAT_TTL_SECONDS,
        }
        await self._store.put(Table.NODES, record)
        self._last_beat = now

    async def beat_if_due(self) -> None:
        """Beat unless this node already beat within the last interval."""
        last = self._last_beat
        if last is None or self._clock() - last >= self.heartbeat_seconds:
            await self.beat()

    async def alive(self, node_id: str) -> bool:
        """True when ``node_id`` beat within the last :attr:`dead_after_seconds`."""
        if not node_id or len(node_id.encode()) > 1024:
            return False
        record = await self._store.get(Table.NODES, NODES_PK, node_id)
        return record is not None and self._fresh(record.get("beat_at"))

    async def alive_nodes(self) -> list[str]:
        """Ids of the nodes alive now (at most :data:`MAX_NODES`)."""
        cutoff = self._clock() - self.dead_after_seconds
        page = await self._store.query(
            Table.NODES, NODES_PK, filter=Ge("beat_at", cutoff), limit=MAX_NODES
        )
        return [str(record["sk"]) for record in page.items]

    async def run(self) -> None:
        """Beat every ``heartbeat_seconds`` until cancelled (the brain's lifespan owns it)."""
        while True:
            await self.beat()
            await asyncio.sleep(self.heartbeat_seconds)

    def _fresh(self, beat_at: object) -> bool:
        if isinstance(beat_at, bool) or not isinstance(beat_at, int | float | Decimal):
            return False
        return float(beat_at) >= self._clock() - self.dead_after_seconds
