"""Admission: may this request enter the queue right now?

Checks, in order: hard maintenance (reject), the user's rate limit (reject),
soft maintenance (accept with a notice). Maintenance can be switched at run
time by an admin; the state is kept in the store so every brain sharing it
agrees and a restart keeps it.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel

from trollama.common.protocol import ErrorCode, ErrorFrame
from trollama.common.store.base import ItemStore, Table

SOFT_MAINTENANCE_NOTICE = "🔧 Bot is under maintenance. Your request has been queued."
HARD_MAINTENANCE_MESSAGE = "🚫 Bot is under emergency maintenance. Please try again later."
#: Window of the per-user rate limit, in seconds.
RATE_WINDOW_SECONDS = 60.0
#: Users whose recent request times are remembered (least recently seen forgotten first).
MAX_TRACKED_USERS = 10_000
#: Seconds a brain trusts its cached copy of the maintenance state.
MAINTENANCE_CACHE_SECONDS = 2.0
_STATE_KEY = ("maintenance", "current")


class MaintenanceMode(StrEnum):
    OFF = "off"
    SOFT = "soft"
    HARD = "hard"


class MaintenanceState(BaseModel):
    mode: MaintenanceMode = MaintenanceMode.OFF
    #: Shown to users instead of the default message when set.
    message: str | None = None


@dataclass(frozen=True)
class Decision:
    error: ErrorFrame | None = None
    notice: str | None = None

    @property
    def admitted(self) -> bool:
        return self.error is None


class RateLimiter:
    """Sliding-window request counter per user, bounded in users tracked."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, user_id: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = self._clock()
        times = self._recent.pop(user_id, None) or deque(maxlen=self.per_minute)
        self._recent[user_id] = times
        while times and now - times[0] >= RATE_WINDOW_SECONDS:
            times.popleft()
        if len(times) >= self.per_minute:
            return False
        times.append(now)
        while len(self._recent) > MAX_TRACKED_USERS:
            self._recent.popitem(last=False)
        return True


class Admission:
    def __init__(
        self,
        store: ItemStore,
        *,
        initial: MaintenanceState,
        rate_limiter: RateLimiter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._initial = initial
        self._limiter = rate_limiter
        self._clock = clock
        self._cached: tuple[float, MaintenanceState] | None = None

    async def maintenance(self) -> MaintenanceState:
        now = self._clock()
        if self._cached and now - self._cached[0] < MAINTENANCE_CACHE_SECONDS:
            return self._cached[1]
        item = await self._store.get(Table.GLOBAL_STATE, *_STATE_KEY)
        state = MaintenanceState.model_validate(item["state"]) if item else self._initial
        self._cached = (now, state)
        return state

    async def set_maintenance(self, state: MaintenanceState) -> None:
        pk, sk = _STATE_KEY
        await self._store.put(
            Table.GLOBAL_STATE, {"pk": pk, "sk": sk, "state": state.model_dump(mode="json")}
        )
        self._cached = (self._clock(), state)

    async def check(self, request_id: str, user_id: str) -> Decision:
        state = await self.maintenance()
        if state.mode is MaintenanceMode.HARD:
            message = state.message or HARD_MAINTENANCE_MESSAGE
            return Decision(error=_error(request_id, ErrorCode.MAINTENANCE, message, True))
        if not self._limiter.allow(user_id):
            message = (
                f"You're sending requests too fast (limit {self._limiter.per_minute} a minute). "
                "Please wait a moment."
            )
            return Decision(error=_error(request_id, ErrorCode.RATE_LIMITED, message, True))
        if state.mode is MaintenanceMode.SOFT:
            return Decision(notice=state.message or SOFT_MAINTENANCE_NOTICE)
        return Decision()


def _error(request_id: str, code: ErrorCode, message: str, retryable: bool) -> ErrorFrame:
    return ErrorFrame(request_id=request_id, code=code, message=message, retryable=retryable)
