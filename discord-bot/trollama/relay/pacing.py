"""One send budget per Discord channel.

Every Discord operation in a channel or thread (send, edit, reaction, upload)
takes a turn first::

    async with pacer.turn(channel_id):
        await message.edit(content=...)

(``turn`` yields the clock reading its slot started at, for logs and tests.)

Two turns in the same channel start at least ``min_interval`` seconds apart
(1.1 s keeps under Discord's 5 operations per 5 s), and never more than
:data:`WINDOW_OPS` start within :data:`WINDOW_SECONDS`. An *urgent* turn (the
first text of an answer) skips the spacing but never the window, so a status
line shown a moment earlier does not delay the answer by a whole interval.
Waiters are served first come first served, and channels do not wait for one
another. The operation
itself runs outside the pacer's lock: a slow request does not hold up the
next turn once its interval has passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)

#: Most channels remembered at once; idle ones (interval elapsed, nobody waiting) go first.
MAX_TRACKED_CHANNELS = 10_000
#: Discord's per-channel budget: operations per window, and the window in seconds
#: (5 per 5 s, plus a margin so request jitter can never put a sixth inside one).
WINDOW_OPS = 5
WINDOW_SECONDS = 5.5

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


class _Channel:
    """A channel's turn lock and the start time of its last operation."""

    __slots__ = ("last_start", "lock", "recent")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()  # FIFO: a newcomer never overtakes a waiter
        self.last_start: float | None = None
        #: Start times of the last WINDOW_OPS operations.
        self.recent: deque[float] = deque(maxlen=WINDOW_OPS)

    def idle(self, now: float, interval: float) -> bool:
        """Forgetting it changes nothing: nobody waits and its interval is over."""
        recent = self.last_start is not None and now - self.last_start < interval
        return not (self.lock.locked() or recent)


class ChannelPacer:
    """Spaces the operations in each channel by at least ``min_interval`` seconds."""

    def __init__(
        self,
        min_interval: float,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_channels: int = MAX_TRACKED_CHANNELS,
    ) -> None:
        if min_interval < 0:
            raise ValueError(f"min_interval must not be negative, got {min_interval}")
        if max_channels < 1:
            raise ValueError(f"max_channels must be at least 1, got {max_channels}")
        self._interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._max_channels = max_channels
        self._channels: OrderedDict[Hashable, _Channel] = OrderedDict()

    @property
    def min_interval(self) -> float:
        """Seconds between the starts of two operations in one channel."""
        return self._interval

    @property
    def tracked(self) -> int:
        """Channels currently remembered."""
        return len(self._channels)

    @asynccontextmanager
    async def turn(self, channel_id: Hashable, *, urgent: bool = False) -> AsyncIterator[float]:
        """Wait for this channel's next slot; the body is the operation."""
        channel = self._channel(channel_id)
        async with channel.lock:
            await self._wait_for_slot(channel, urgent)
            started = channel.last_start = self._clock()
            channel.recent.append(started)
        yield started

    def ready_in(self, channel_id: Hashable) -> float:
        """Seconds until a normal (non-urgent) turn could start in this channel."""
        channel = self._channels.get(channel_id)
        return 0.0 if channel is None else max(0.0, self._delay(channel, urgent=False))

    def _delay(self, channel: _Channel, *, urgent: bool) -> float:
        now = self._clock()
        spacing = 0.0
        if channel.last_start is not None and not urgent:
            spacing = channel.last_start + self._interval - now
        window = 0.0
        if len(channel.recent) == WINDOW_OPS:
            window = channel.recent[0] + WINDOW_SECONDS - now
        return max(spacing, window)

    async def _wait_for_slot(self, channel: _Channel, urgent: bool) -> None:
        # Loop: a sleep may end a moment early, the guarantee must not.
        while (delay := self._delay(channel, urgent=urgent)) > 0:
            await self._sleep(delay)

    def _channel(self, channel_id: Hashable) -> _Channel:
        channel = self._channels.get(channel_id)
        if channel is not None:
            self._channels.move_to_end(channel_id)
            return channel
        self._forget_idle()
        channel = self._channels[channel_id] = _Channel()
        return channel

    def _forget_idle(self) -> None:
        now = self._clock()
        while self._channels:  # least recently used first
            oldest_id, oldest = next(iter(self._channels.items()))
            if not oldest.idle(now, self._interval):
                break
            del self._channels[oldest_id]
        if len(self._channels) >= self._max_channels:
            self._evict(now)

    def _evict(self, now: float) -> None:
        """At the cap: forget an idle channel, else the oldest nobody waits on."""
        unlocked = [key for key, channel in self._channels.items() if not channel.lock.locked()]
        idle = [key for key in unlocked if self._channels[key].idle(now, self._interval)]
        if idle:
            del self._channels[idle[0]]
        elif unlocked:
            log.warning("pacer tracks %d channels; forgetting a busy one", len(self._channels))
            del self._channels[unlocked[0]]
