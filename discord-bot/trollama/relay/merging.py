"""Rapid messages from one user in one conversation become one request.

The first message opens a short window; messages from the same user in the
same conversation within it join the batch; when the window closes the
batch is handed on as one request (identified by its first message).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Batches open at once; beyond this a new batch is flushed at once.
MAX_OPEN_BATCHES = 1000
#: Messages in one batch; the batch is flushed when it is full.
MAX_BATCH_MESSAGES = 20


@dataclass
class _Batch(Generic[T]):
    items: list[T] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class MessageMerger(Generic[T]):
    def __init__(
        self, window_seconds: float, flush: Callable[[Hashable, list[T]], Awaitable[None]]
    ) -> None:
        self.window = window_seconds
        self._flush = flush
        self._open: dict[Hashable, _Batch[T]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, key: Hashable, item: T) -> None:
        batch = self._open.get(key)
        if batch is None:
            if len(self._open) >= MAX_OPEN_BATCHES or self.window <= 0:
                self._start_flush(key, [item])
                return
            batch = self._open[key] = _Batch()
            loop = asyncio.get_running_loop()
            batch.timer = loop.call_later(self.window, self._close, key)
        batch.items.append(item)
        if len(batch.items) >= MAX_BATCH_MESSAGES:
            self._close(key)

    def _close(self, key: Hashable) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        self._start_flush(key, batch.items)

    def _start_flush(self, key: Hashable, items: list[T]) -> None:
        task = asyncio.create_task(self._run(key, items))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: Hashable, items: list[T]) -> None:
        try:
            await self._flush(key, items)
        except Exception:
            log.exception("handing a message batch to the brain failed")

    async def drain(self) -> None:
        """Flush every open batch now and wait for the hand-overs (shutdown)."""
        for key in list(self._open):
            self._close(key)
        await asyncio.gather(*self._tasks, return_exceptions=True)
