"""An item store wrapper that makes concurrent read-modify-write cycles overlap.

SQLite answers small calls inline, without yielding to other tasks, so
"concurrent" writers in one event loop would never really race. Wrapped in a
:class:`RacingStore`, every call yields once after it returns, and refused
conditional writes are counted, so a test can show that writers did race."""

from __future__ import annotations

import asyncio
from typing import Any

from trollama.common.store.base import ConditionFailed, ItemStore


class RacingStore:
    def __init__(self, inner: ItemStore) -> None:
        self._inner = inner
        #: Writes refused because their condition failed (lost races).
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await method(*args, **kwargs)
            except ConditionFailed:
                self.refused += 1
                raise
            await asyncio.sleep(0)
            return result

        return call
