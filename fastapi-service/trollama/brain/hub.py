"""In-process fan-out of a request's frames to the clients watching it.

The worker publishes every frame of a request here; each WebSocket or HTTP
stream watching that request holds a :class:`Subscription`. Buffers are
bounded: a subscriber too slow to keep up loses intermediate deltas (and is
marked ``lagged``) but always receives the terminal frame, which carries the
whole answer.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator

from trollama.common.protocol import DoneFrame, ErrorCode, ErrorFrame, ServerFrame

#: Frames buffered per subscriber before deltas are dropped.
SUBSCRIBER_BUFFER_FRAMES = 2048
#: Subscribers allowed on one request (a relay and a few reconnects).
MAX_SUBSCRIBERS_PER_REQUEST = 8


def is_terminal(frame: ServerFrame) -> bool:
    return isinstance(frame, DoneFrame | ErrorFrame)


class Subscription:
    """Frames of one request, in order, ending with its terminal frame."""

    def __init__(self, hub: StreamHub, request_id: str) -> None:
        self.request_id = request_id
        self.lagged = False
        self._hub = hub
        self._frames: asyncio.Queue[ServerFrame] = asyncio.Queue()
        self._buffered = 0

    def offer(self, frame: ServerFrame) -> None:
        if not is_terminal(frame) and self._buffered >= SUBSCRIBER_BUFFER_FRAMES:
            self.lagged = True
            return
        self._buffered += 1
        self._frames.put_nowait(frame)

    async def next(self) -> ServerFrame:
        frame = await self._frames.get()
        self._buffered -= 1
        return frame

    async def frames(self) -> AsyncIterator[ServerFrame]:
        """Every frame until (and including) the terminal one."""
        while True:
            frame = await self.next()
            yield frame
            if is_terminal(frame):
                return

    def close(self) -> None:
        self._hub.unsubscribe(self)


class StreamHub:
    def __init__(self) -> None:
        self._subs: defaultdict[str, list[Subscription]] = defaultdict(list)

    def subscribe(self, request_id: str) -> Subscription:
        subs = self._subs[request_id]
        if len(subs) >= MAX_SUBSCRIBERS_PER_REQUEST:
            subs.pop(0).offer(
                ErrorFrame(
                    request_id=request_id,
                    code=ErrorCode.INTERNAL,
                    message="another client took over this request's stream",
                )
            )
        sub = Subscription(self, request_id)
        subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.request_id)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subs[sub.request_id]

    def publish(self, frame: ServerFrame) -> None:
        request_id = getattr(frame, "request_id", None)
        if request_id is None:
            return
        for sub in list(self._subs.get(request_id, ())):
            sub.offer(frame)

    def watching(self, request_id: str) -> int:
        return len(self._subs.get(request_id, ()))
