"""The brain's durable, fair request queue, modelled on SQS, on the item store.

Life of a request: :meth:`RequestQueue.enqueue` persists it (QUEUED) before
the client hears "accepted"; a worker :meth:`~RequestQueue.lease`\\ s it
(LEASED for ``visibility_timeout`` seconds, renewable with
:meth:`~RequestQueue.extend`), then acknowledges it with
:meth:`~RequestQueue.complete` (DONE, result kept for reconnecting clients) or
:meth:`~RequestQueue.fail` (back to QUEUED after an exponential backoff while
attempts remain, else FAILED with the error kept). A lease nobody renews
expires and the item is delivered again.

Design:

* **Keys** (:mod:`.keys`, :mod:`.records`): every item has one full record
  plus a small index entry in the ``waiting`` or ``leased`` partition while it
  is active. Both are written in one store transaction, guarded by the item's
  ``version``, so two brains can never both move the same item (e.g. lease it
  twice). Finished items leave the index and expire after seven days.
* **Fairness** (:mod:`.fairness`): start-time fair queueing with a virtual
  time persisted in the store; the index is sorted by start tag.
* **Threads in order**: a per-conversation lock record, taken in the lease
  transaction, keeps two items of one conversation from running at once, and
  an item never overtakes a waiting earlier item of its conversation.
* **Ownership** (:mod:`.selection`, :mod:`.nodes`): a brain leases the items
  it accepted (it holds the client's connection), items of dead brains, and
  items whose lease expired. :meth:`~RequestQueue.recover` re-queues this
  node's leased items after a crash.
* **Bounded**: at most ``max_size`` items wait; every scan stops after
  ``MAX_SCAN_ITEMS`` index entries. Two brains enqueueing at the very same
  moment may overshoot ``max_size`` by the number of concurrent enqueues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trollama.brain.queue import transitions as moves
from trollama.brain.queue.fairness import advance_virtual_time, finish_put, start_tag
from trollama.brain.queue.keys import LEASED_PK, WAITING_PK, Entry, order_key
from trollama.brain.queue.models import (
    Enqueued,
    ItemState,
    Position,
    QueueBusy,
    QueueFull,
    QueueItem,
    QueueStats,
)
from trollama.brain.queue.nodes import NodeRegistry
from trollama.brain.queue.records import QueueRecords, index_entry
from trollama.brain.queue.selection import Picker, View, lease_is_live
from trollama.brain.queue.service_time import average_service_seconds, record_service_seconds
from trollama.common.protocol import MAX_ID_CHARS, RequestFrame
from trollama.common.store.base import ConditionFailed, ItemStore, ItemTooLarge
from trollama.common.store.conditions import Lt

logger = logging.getLogger(__name__)

#: Optimistic write attempts before :class:`QueueBusy`.
MAX_WRITE_ATTEMPTS = 8
#: Candidates one :meth:`RequestQueue.lease` call tries before reporting no work.
MAX_LEASE_CANDIDATES = 16
#: Longest sleep of :meth:`RequestQueue.wait_for_work`, in seconds.
MAX_WAIT_SECONDS = 60.0
#: Busiest users listed in :class:`QueueStats`.
MAX_STATS_USERS = 20
#: Heartbeat interval of the registry a queue builds for itself, in seconds.
DEFAULT_HEARTBEAT_SECONDS = 5.0

T = TypeVar("T")
Step = Callable[[QueueItem | None], Awaitable[T]]


class _Annotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    route: str | None = Field(default=None, max_length=100)
    model: str | None = Field(default=None, max_length=200)
    route_latency_ms: float | None = Field(default=None, ge=0, allow_inf_nan=False)


def _valid_id(request_id: object) -> bool:
    return isinstance(request_id, str) and 0 < len(request_id) <= MAX_ID_CHARS


def _check_config(node_id: str, max_size: int, concurrency: int, timeouts: Sequence[float]) -> None:
    if not _valid_id(node_id):
        raise ValueError(f"node_id must be 1 to {MAX_ID_CHARS} characters")
    if max_size < 1 or concurrency < 1:
        raise ValueError("max_size and concurrency must be at least 1")
    if not all(math.isfinite(t) and t >= 0 for t in timeouts) or timeouts[0] <= 0:
        raise ValueError("visibility_timeout must be > 0 and backoff_seconds >= 0 (finite)")


class RequestQueue:
    """Durable, fair, SQS-like queue of :class:`RequestFrame`\\ s shared by brains."""

    def __init__(
        self,
        store: ItemStore,
        *,
        node_id: str,
        max_size: int,
        max_retries: int,
        visibility_timeout: float,
        backoff_seconds: float,
        concurrency: int,
        clock: Callable[[], float] = time.time,
        registry: NodeRegistry | None = None,
    ) -> None:
        _check_config(node_id, max_size, concurrency, (visibility_timeout, backoff_seconds))
        self._store = store
        self._records = QueueRecords(store, clock=clock)
        self.node_id = node_id
        self.max_size = max_size
        #: Deliveries an item gets in total (MAX_RETRIES; at least one).
        self.max_attempts = max(max_retries, 1)
        self.visibility_timeout = visibility_timeout
        self.backoff_seconds = backoff_seconds
        self.concurrency = concurrency
        self._clock = clock
        self.registry = registry or NodeRegistry(
            store, node_id=node_id, heartbeat_seconds=DEFAULT_HEARTBEAT_SECONDS, clock=clock
        )
        self._work = asyncio.Event()
        self._lease_lock = asyncio.Lock()
        self._enqueue_lock = asyncio.Lock()

    # ------------------------------------------------------------ enqueue / read

    async def enqueue(self, request: RequestFrame) -> Enqueued:
        """Persist ``request`` (QUEUED); a known ``request_id`` returns the existing item."""
        await self.registry.beat_if_due()
        async with self._enqueue_lock:
            for _ in range(MAX_WRITE_ATTEMPTS):
                try:
                    item = await self._insert(request)
                except (ConditionFailed, QueueFull):
                    # the id may be known already: that is a duplicate, never "full"
                    existing = await self._records.load(request.request_id)
                    if existing is not None:
                        return Enqueued(existing, duplicate=True)
                    if await self._full():
                        raise QueueFull(self.max_size) from None
                    continue
                self.wake()
                return Enqueued(item, duplicate=False)
        raise QueueBusy()

    async def _full(self) -> bool:
        return await self._records.count_waiting() >= self.max_size

    async def _insert(self, request: RequestFrame) -> QueueItem:
        """Write a new item; ConditionFailed when the id exists or a race was lost."""
        if await self._full():
            raise QueueFull(self.max_size)
        now = self._clock()
        tag, guard = await start_tag(self._store, request.user_id)
        item = QueueItem(
            request_id=request.request_id,
            user_id=request.user_id,
            conversation_id=request.conversation_id,
            state=ItemState.QUEUED,
            request=request,
            enqueued_at=now,
            accepted_by=self.node_id,
            owner_node=self.node_id,
            tag=tag,
            order=order_key(tag, now, request.request_id),
            version=1,
        )
        await self._records.insert(item, [finish_put(request.user_id, tag, guard, now)])
        return item

    async def get(self, request_id: str) -> QueueItem | None:
        """The item, or None when unknown (or expired after finishing)."""
        if not _valid_id(request_id):
            return None
        return await self._records.load(request_id)

    async def position(self, request_id: str) -> Position | None:
        """Place in the fair order (1 = next, 0 = running); None when unknown or finished."""
        item = await self.get(request_id)
        if item is None or item.state.finished:
            return None
        if item.state is ItemState.LEASED:
            return Position(position=0, eta_seconds=0.0)
        ahead = await self._records.count_waiting(Lt("order", item.order))
        average = await average_service_seconds(self._store)
        place = ahead + 1
        return Position(position=place, eta_seconds=place * average / self.concurrency)

    # ------------------------------------------------------------ leasing

    async def lease(self) -> QueueItem | None:
        """The next item in fair order that this node may run now, leased to it; or None."""
        await self.registry.beat_if_due()
        async with self._lease_lock:
            skip: set[str] = set()
            alive = frozenset(await self.registry.alive_nodes())
            for _ in range(MAX_LEASE_CANDIDATES):
                view = View(node_id=self.node_id, now=self._clock(), alive=alive)
                entry = await self._next_entry(view, frozenset(skip))
                if entry is None:
                    return None
                item = await self._claim(entry, view)
                if item is not None:
                    return item
                skip.add(entry.request_id)
        return None

    async def _next_entry(self, view: View, skip: frozenset[str]) -> Entry | None:
        picker = Picker(view, skip)
        picker.take_leased(await self._records.entries(LEASED_PK))
        waiting = None
        async for entry in self._records.scan(WAITING_PK):
            if picker.done_before(entry):
                break
            if picker.offer(entry):
                waiting = entry
                break
        return picker.best(waiting)

    async def _claim(self, entry: Entry, view: View) -> QueueItem | None:
        """Lease the item behind ``entry``; None when it moved or was settled instead."""
        item = await self._records.load(entry.request_id)
        if item is None:
            await self._records.drop_orphan(entry)
            return None
        if not await self._may_claim(item, view):
            return None
        now = self._clock()
        try:
            if item.cancel_requested:
                await self._records.commit(item, moves.cancelled(item, now=now))
                return None
            if item.attempts >= self.max_attempts:
                await self._records.commit(item, moves.dead_lettered(item, now=now))
                return None
            leased = await self._lease_item(item, now)
        except ConditionFailed:
            return None
        await advance_virtual_time(self._store, leased.tag)
        return leased

    async def _may_claim(self, item: QueueItem, view: View) -> bool:
        """Whether the item, as read just now, is free for this node.

        Taking over from a node the snapshot in ``view`` calls dead is
        confirmed with a fresh read of its heartbeat, made after reading the
        item: a node beats before it leases, so a node that started after the
        snapshot and leased this item is seen alive here."""
        if item.state.finished:
            return False
        entry = index_entry(item)
        if item.state is ItemState.LEASED and entry.lease_until <= view.now:
            return True  # the lease expired: anyone may take it
        if item.state is ItemState.LEASED and lease_is_live(entry, view):
            return False
        if item.state is ItemState.QUEUED and entry.not_before > view.now:
            return False
        if not view.may_take_from(item.owner_node):
            return False
        return item.owner_node == self.node_id or not await self.registry.alive(item.owner_node)

    async def _lease_item(self, item: QueueItem, now: float) -> QueueItem:
        new = moves.leased(
            item, node_id=self.node_id, now=now, visibility_timeout=self.visibility_timeout
        )
        return await self._records.commit(item, new, [self._records.lock_put(new, now)])

    # ------------------------------------------------------------ the leaseholder's calls

    async def extend(self, item: QueueItem) -> QueueItem:
        """Renew the lease for another ``visibility_timeout``; the result tells whether
        cancellation was requested. Raises :class:`LeaseLost`."""

        async def step(fresh: QueueItem | None) -> QueueItem:
            held, now = moves.held(item, fresh), self._clock()
            await self._records.check_lock_free(held, now)
            new = held.model_copy(update={"lease_until": now + self.visibility_timeout})
            return await self._records.commit(held, new, [self._records.lock_put(new, now)])

        return await self._retrying(item.request_id, step)

    async def annotate(self, item: QueueItem, **fields: Any) -> QueueItem:
        """Record ``route``, ``model`` and/or ``route_latency_ms`` on the leased item."""
        try:
            values = _Annotation.model_validate(fields).model_dump(include=set(fields))
        except ValidationError as exc:
            raise ValueError(f"invalid annotation: {exc.errors()[0]['msg']}") from None

        async def step(fresh: QueueItem | None) -> QueueItem:
            held = moves.held(item, fresh)
            return await self._records.commit(held, held.model_copy(update=values))

        return await self._retrying(item.request_id, step)

    async def complete(self, item: QueueItem, result: dict[str, Any]) -> QueueItem:
        """LEASED → DONE with ``result`` (a DoneFrame as JSON) kept for replay."""
        try:
            done = await self._finish_done(item, result)
        except ItemTooLarge:
            logger.warning("result of %s too large to keep whole; shortened", item.request_id)
            done = await self._finish_done(item, moves.shrunk_result(result))
        if done.started_at is not None and done.finished_at is not None:
            await record_service_seconds(self._store, done.finished_at - done.started_at)
        return done

    async def _finish_done(self, item: QueueItem, result: dict[str, Any]) -> QueueItem:
        async def step(fresh: QueueItem | None) -> QueueItem:
            held = moves.held(item, fresh)
            done = moves.finished(held, ItemState.DONE, now=self._clock(), result=result)
            return await self._records.commit(held, done)

        return await self._retrying(item.request_id, step)

    async def fail(self, item: QueueItem, error: dict[str, Any], *, retryable: bool) -> QueueItem:
        """Retry later (QUEUED with exponential backoff) while attempts remain and the
        error is retryable; otherwise FAILED with ``error`` (an ErrorFrame as JSON) kept."""

        async def step(fresh: QueueItem | None) -> QueueItem:
            held, now = moves.held(item, fresh), self._clock()
            if held.cancel_requested:
                new = moves.cancelled(held, now=now)
            elif retryable and held.attempts < self.max_attempts:
                delay = moves.backoff_seconds(self.backoff_seconds, held.attempts)
                new = moves.requeued(held, error=error, not_before=now + delay)
            else:
                new = moves.finished(held, ItemState.FAILED, now=now, error=error)
            return await self._records.commit(held, new)

        return await self._retrying(item.request_id, step)

    async def mark_cancelled(self, item: QueueItem) -> QueueItem:
        """LEASED → CANCELLED, by the worker that stopped a cancelled request."""

        async def step(fresh: QueueItem | None) -> QueueItem:
            held = moves.held(item, fresh)
            return await self._records.commit(held, moves.cancelled(held, now=self._clock()))

        return await self._retrying(item.request_id, step)

    # ------------------------------------------------------------ anyone's calls

    async def cancel(self, request_id: str) -> QueueItem | None:
        """QUEUED → CANCELLED now; LEASED → ``cancel_requested`` (the worker stops it);
        a finished item is returned unchanged; None when unknown."""
        if not _valid_id(request_id):
            return None
        return await self._retrying(request_id, self._cancel_step)

    async def _cancel_step(self, fresh: QueueItem | None) -> QueueItem | None:
        if fresh is None or fresh.state.finished:
            return fresh
        if fresh.state is ItemState.QUEUED:
            return await self._records.commit(fresh, moves.cancelled(fresh, now=self._clock()))
        if fresh.cancel_requested:
            return fresh
        flagged = fresh.model_copy(update={"cancel_requested": True})
        return await self._records.commit(fresh, flagged)

    async def recover(self) -> int:
        """At start-up: make this node's LEASED items (its last run died) visible again."""
        recovered = 0
        for entry in await self._records.entries(LEASED_PK):
            if entry.owner_node == self.node_id:
                recovered += await self._retrying(entry.request_id, self._recover_step)
        if recovered:
            logger.info("recovered %d leased requests of node %s", recovered, self.node_id)
            self.wake()
        return recovered

    async def _recover_step(self, fresh: QueueItem | None) -> int:
        if fresh is None or fresh.state is not ItemState.LEASED:
            return 0
        if fresh.owner_node != self.node_id:
            return 0
        now = self._clock()
        if fresh.cancel_requested:
            new = moves.cancelled(fresh, now=now)
        else:
            new = moves.requeued(fresh, error=fresh.error, not_before=now)
        await self._records.commit(fresh, new)
        return 1

    async def stats(self) -> QueueStats:
        """Counts, oldest wait and average service time, for health pages and admins."""
        now = self._clock()
        waiting = await self._records.entries(WAITING_PK)
        leased = await self._records.entries(LEASED_PK)
        oldest = min((e.enqueued_at for e in waiting), default=now)
        users = Counter(e.user_id for e in waiting).most_common(MAX_STATS_USERS)
        return QueueStats(
            queued=len(waiting),
            running=sum(1 for e in leased if e.lease_until > now),
            oldest_wait_seconds=max(now - oldest, 0.0),
            avg_service_seconds=await average_service_seconds(self._store),
            waiting_by_user=dict(users),
            max_size=self.max_size,
        )

    # ------------------------------------------------------------ in-process notification

    def wake(self) -> None:
        """Tell this process's waiting workers that there may be work."""
        self._work.set()

    async def wait_for_work(self, timeout: float) -> None:
        """Sleep until :meth:`wake` or ``timeout`` seconds (workers still poll for
        items of other brains)."""
        delay = min(max(timeout, 0.0), MAX_WAIT_SECONDS) if math.isfinite(timeout) else 0.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._work.wait(), delay)
        self._work.clear()

    # ------------------------------------------------------------ plumbing

    async def _retrying(self, request_id: str, step: Step[T]) -> T:
        """Read the item and apply ``step``; again when another writer got in between.

        Beats first: a node busy streaming (only extending leases) is alive."""
        await self.registry.beat_if_due()
        for _ in range(MAX_WRITE_ATTEMPTS):
            try:
                return await step(await self._records.load(request_id))
            except ConditionFailed:
                continue
        raise QueueBusy()
