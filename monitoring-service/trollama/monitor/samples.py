"""Health samples: one per target per poll, kept a few days.

Layout in :data:`Table.MONITORING_SAMPLES`: partition ``<target>#<YYYY-MM-DD>``
(UTC day), sort key the sample time in zero-padded milliseconds. A 24-hour
read touches at most two partitions per target; old samples expire by TTL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from trollama.common.store.base import Item, ItemStore, Table
from trollama.common.store.conditions import Ge

#: How long a sample is kept, in seconds (three days).
SAMPLE_TTL_SECONDS = 3 * 24 * 3600
#: Most samples one read returns per target (24 h at a 10 s poll is 8,640).
MAX_SAMPLES_READ = 10_000
#: Samples fetched per store round trip.
READ_PAGE_SIZE = 1000
#: Width of the zero-padded millisecond sort key, in digits.
SK_DIGITS = 15
#: Longest stored reason, in characters.
MAX_REASON_CHARS = 200


class State(StrEnum):
    """What one poll found: up, degraded (answering, but not fully healthy) or down."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True)
class Sample:
    """One poll of one target."""

    target: str
    at: float
    state: State
    latency_ms: float | None
    reason: str


def day_of(at: float) -> str:
    """The UTC day (``YYYY-MM-DD``) of an epoch time."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def sort_key(at: float) -> str:
    """The sort key of a sample taken at ``at`` (epoch seconds)."""
    return f"{round(at * 1000):0{SK_DIGITS}d}"


def to_item(sample: Sample) -> Item:
    """The stored form of a sample, with its expiry."""
    return {
        "pk": f"{sample.target}#{day_of(sample.at)}",
        "sk": sort_key(sample.at),
        "target": sample.target,
        "at": sample.at,
        "state": sample.state.value,
        "latency_ms": sample.latency_ms,
        "reason": sample.reason[:MAX_REASON_CHARS],
        "expires_at": int(sample.at + SAMPLE_TTL_SECONDS),
    }


def from_item(item: Item) -> Sample:
    """A sample read back from the store."""
    latency = item.get("latency_ms")
    return Sample(
        target=str(item["target"]),
        at=float(item["at"]),
        state=State(item["state"]),
        latency_ms=float(latency) if latency is not None else None,
        reason=str(item.get("reason", "")),
    )


class SampleRepository:
    """Writes and reads samples; the only code touching the samples table."""

    def __init__(self, store: ItemStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def add(self, sample: Sample) -> None:
        """Store one sample."""
        await self._store.put(Table.MONITORING_SAMPLES, to_item(sample))

    async def since(self, target: str, start: float) -> list[Sample]:
        """The target's samples taken at or after ``start``, oldest first (bounded)."""
        found: list[Sample] = []
        for day in reversed(self._days(start)):
            found.extend(await self._read_day(target, day, start, MAX_SAMPLES_READ - len(found)))
            if len(found) >= MAX_SAMPLES_READ:
                break
        return sorted(found, key=lambda s: s.at)

    async def latest(self, target: str) -> Sample | None:
        """The target's newest sample of today or yesterday, if any."""
        now = self._clock()
        for day in (day_of(now), day_of(now - 24 * 3600)):
            page = await self._store.query(
                Table.MONITORING_SAMPLES, f"{target}#{day}", descending=True, limit=1
            )
            if page.items:
                return from_item(page.items[0])
        return None

    async def count_today(self, target: str) -> int:
        """How many samples of the target today's partition holds."""
        day = day_of(self._clock())
        return await self._store.count(Table.MONITORING_SAMPLES, f"{target}#{day}")

    def _days(self, start: float) -> list[str]:
        first = datetime.fromtimestamp(start, UTC).date()
        last = datetime.fromtimestamp(self._clock(), UTC).date()
        count = max(0, (last - first).days)
        return [(first + timedelta(days=i)).isoformat() for i in range(count + 1)]

    async def _read_day(self, target: str, day: str, start: float, budget: int) -> list[Sample]:
        """Newest-first read of one day's partition, at most ``budget`` samples."""
        out: list[Sample] = []
        cursor: str | None = None
        while len(out) < budget:
            page = await self._store.query(
                Table.MONITORING_SAMPLES,
                f"{target}#{day}",
                start_after=cursor,
                limit=min(READ_PAGE_SIZE, budget - len(out)),
                descending=True,
                filter=Ge("at", start),
            )
            out.extend(from_item(item) for item in page.items)
            if page.last_sk is None:
                break
            cursor = page.last_sk
        return out
