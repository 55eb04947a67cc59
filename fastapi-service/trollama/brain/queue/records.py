"""The queue's reads and writes in the item store (key layout in :mod:`.keys`).

Every change of an item is one store transaction: the item record guarded by
its ``version`` (optimistic concurrency), its index entry, and — when a lease
starts or ends — the conversation lock. A lost race raises ConditionFailed and
changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal

from pydantic import ValidationError

from trollama.brain.queue.keys import (
    LEASED_PK,
    TABLE,
    WAITING_PK,
    Entry,
    index_record,
    item_key,
    item_record,
    lock_key,
    parse_entry,
    parse_item,
)
from trollama.brain.queue.models import (
    ItemState,
    LeaseLost,
    QueueItem,
    RequestTooLarge,
    check_transition,
)
from trollama.common.store.base import Delete, Item, ItemStore, ItemTooLarge, Put, TransactOp
from trollama.common.store.conditions import Condition, Eq, Le, NotExists, Or

logger = logging.getLogger(__name__)

#: Finished items stay readable (result replay, idempotency) this long, in seconds.
FINISHED_TTL_SECONDS = 7 * 24 * 3600
#: A conversation lock outlives its lease by this much before the store drops it, in seconds.
LOCK_TTL_GRACE_SECONDS = 3600
#: Index entries read per store query.
SCAN_PAGE_ITEMS = 100
#: Most index entries one scan reads.
MAX_SCAN_ITEMS = 5000


def index_entry(item: QueueItem) -> Entry:
    """The index entry of an active item."""
    record = index_record(item)
    if record is None:
        raise ValueError(f"request {item.request_id} is finished and has no index entry")
    return parse_entry(record)


class QueueRecords:
    """Item records, index entries and conversation locks of one queue."""

    def __init__(self, store: ItemStore, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock

    async def load(self, request_id: str) -> QueueItem | None:
        """The item, or None when missing, expired or unreadable."""
        record = await self.store.get(TABLE, *item_key(request_id))
        if record is None:
            return None
        try:
            return parse_item(record)
        except ValidationError:
            logger.error("queue item %s is unreadable; ignoring it", request_id)
            return None

    async def insert(self, item: QueueItem, extra: Sequence[TransactOp] = ()) -> None:
        """Write a new item; ConditionFailed when its id exists (or ``extra`` fails)."""
        record = index_record(item)
        assert record is not None, "a new item is active"
        ops = [Put(TABLE, item_record(item, None), condition=NotExists()), Put(TABLE, record)]
        try:
            await self.store.transact([*ops, *extra])
        except ItemTooLarge:
            raise RequestTooLarge() from None

    async def commit(
        self, old: QueueItem, new: QueueItem, extra: Sequence[TransactOp] = ()
    ) -> QueueItem:
        """Write ``new`` over ``old`` (index entry and lock included) if nobody changed
        it since ``old`` was read; returns what was stored."""
        check_transition(old.request_id, old.state, new.state)
        stored = new.model_copy(update={"version": old.version + 1})
        expires = None
        if stored.state.finished:
            expires = (stored.finished_at or self._clock()) + FINISHED_TTL_SECONDS
        ops: list[TransactOp] = [
            Put(TABLE, item_record(stored, expires), condition=Eq("version", old.version)),
            *_index_ops(old, stored),
            *extra,
        ]
        if old.state is ItemState.LEASED and stored.state is not ItemState.LEASED:
            ops += await self._unlock_ops(old)
        await self.store.transact(ops)
        return stored

    async def count_waiting(self, where: Condition | None = None) -> int:
        """Waiting items (that match ``where``)."""
        return await self.store.count(TABLE, WAITING_PK, filter=where)

    async def entries(self, pk: str) -> list[Entry]:
        return [entry async for entry in self.scan(pk)]

    async def scan(self, pk: str) -> AsyncIterator[Entry]:
        """Index entries of one partition in order, at most :data:`MAX_SCAN_ITEMS`."""
        start, seen = None, 0
        while seen < MAX_SCAN_ITEMS:
            page = await self.store.query(TABLE, pk, start_after=start, limit=SCAN_PAGE_ITEMS)
            for record in page.items:
                seen += 1
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    yield parse_entry(record)
            if page.last_sk is None:
                return
            start = page.last_sk

    async def drop_orphan(self, entry: Entry) -> None:
        """Remove an index entry whose item vanished (e.g. deleted by hand)."""
        for pk in (WAITING_PK, LEASED_PK):
            await self.store.delete(TABLE, pk, entry.order)

    # ------------------------------------------------------------ conversation locks

    def lock_put(self, item: QueueItem, now: float) -> Put:
        """Take (or renew) the conversation lock for ``item``'s lease; fails while
        another request of the conversation holds a live lease."""
        pk, sk = lock_key(item.conversation_id)
        until = item.lease_until or now
        record: Item = {
            "pk": pk,
            "sk": sk,
            "request_id": item.request_id,
            "lease_until": until,
            "expires_at": until + LOCK_TTL_GRACE_SECONDS,
        }
        free = Or([NotExists(), Eq("request_id", item.request_id), Le("lease_until", now)])
        return Put(TABLE, record, condition=free)

    async def check_lock_free(self, item: QueueItem, now: float) -> None:
        """LeaseLost when another request of the conversation holds a live lock."""
        lock = await self.store.get(TABLE, *lock_key(item.conversation_id))
        if lock is None or lock.get("request_id") == item.request_id:
            return
        until = lock.get("lease_until")
        if isinstance(until, int | float | Decimal) and float(until) > now:
            raise LeaseLost(f"Another request of this conversation took over {item.request_id}.")

    async def _unlock_ops(self, old: QueueItem) -> list[TransactOp]:
        pk, sk = lock_key(old.conversation_id)
        lock = await self.store.get(TABLE, pk, sk)
        if lock is None or lock.get("request_id") != old.request_id:
            return []
        return [Delete(TABLE, pk, sk, condition=Eq("request_id", old.request_id))]


def _index_ops(old: QueueItem, new: QueueItem) -> list[TransactOp]:
    """Move, rewrite or drop the index entry (never two ops on one key)."""
    before, after = index_record(old), index_record(new)
    ops: list[TransactOp] = []
    moved = after is None or (before is not None and before["pk"] != after["pk"])
    if before is not None and moved:
        ops.append(Delete(TABLE, before["pk"], before["sk"]))
    if after is not None:
        ops.append(Put(TABLE, after))
    return ops
