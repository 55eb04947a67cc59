"""How long one request takes to serve: a moving average kept in the store.

Positions turn into ETAs with it (``eta = position × average / concurrency``).
Every brain sharing the store feeds and reads the same average.
"""

from __future__ import annotations

import contextlib
import math
from decimal import Decimal

from trollama.brain.queue.keys import META_PK, SERVICE_SK, TABLE
from trollama.common.store.base import ConditionFailed, ItemStore
from trollama.common.store.conditions import Eq, NotExists

#: Assumed service time before any request finished, in seconds.
DEFAULT_SERVICE_SECONDS = 30.0
#: Weight of the newest sample in the exponential moving average.
SERVICE_EWMA_WEIGHT = 0.2
#: Samples are clamped to this range, in seconds (a clock jump must not poison ETAs).
MIN_SERVICE_SECONDS = 0.0
MAX_SERVICE_SECONDS = 3600.0


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


async def average_service_seconds(store: ItemStore) -> float:
    """The moving average of recent service times, in seconds."""
    record = await store.get(TABLE, META_PK, SERVICE_SK)
    value = None if record is None else _seconds(record.get("avg_seconds"))
    return DEFAULT_SERVICE_SECONDS if value is None else value


async def record_service_seconds(store: ItemStore, seconds: float) -> None:
    """Fold one finished request's service time into the average (best effort)."""
    if not math.isfinite(seconds):
        return
    sample = min(max(seconds, MIN_SERVICE_SECONDS), MAX_SERVICE_SECONDS)
    record = await store.get(TABLE, META_PK, SERVICE_SK)
    old = None if record is None else record.get("avg_seconds")
    current = _seconds(old)
    new = sample if current is None else current + SERVICE_EWMA_WEIGHT * (sample - current)
    guard = NotExists() if record is None else Eq("avg_seconds", old)
    # a lost race means another brain already wrote a newer value
    with contextlib.suppress(ConditionFailed):
        await store.update(TABLE, META_PK, SERVICE_SK, set={"avg_seconds": new}, condition=guard)
