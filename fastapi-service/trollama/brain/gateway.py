"""The one door every client goes through: submit a request, watch it.

The WebSocket endpoints and the streaming HTTP endpoint differ only in how
frames travel; admission, idempotency and the frames themselves are here.
Watching works wherever the request runs: frames of a request processed in
this brain arrive from the hub as they happen; for one processed by another
brain sharing the store, the stored state is polled and its final answer sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from trollama.brain.admission import Admission
from trollama.brain.auth import Caller, CallerKind
from trollama.brain.hub import StreamHub, is_terminal
from trollama.brain.metrics import BrainMetrics
from trollama.brain.pipeline import CANCELLED_MESSAGE, Pipeline
from trollama.brain.queue import (
    ItemState,
    QueueBusy,
    QueueFull,
    QueueItem,
    RequestQueue,
    RequestTooLarge,
)
from trollama.common.protocol import (
    AcceptedFrame,
    DoneFrame,
    ErrorCode,
    ErrorFrame,
    RequestFrame,
    ServerFrame,
    StatusFrame,
    StatusKind,
)

#: Seconds between two looks at the stored state of a watched request.
WATCH_POLL_SECONDS = 1.0
#: How a request's state reads to a user.
_STATE_WORDS = {
    ItemState.QUEUED: "Waiting in the queue",
    ItemState.LEASED: "Being answered now",
    ItemState.DONE: "Answered",
    ItemState.FAILED: "Failed",
    ItemState.CANCELLED: "Cancelled",
}
EMPTY_MESSAGE = "The message is empty: write something (or attach a file)."


class Gateway:
    def __init__(
        self,
        *,
        queue: RequestQueue,
        hub: StreamHub,
        admission: Admission,
        pipeline: Pipeline,
        metrics: BrainMetrics | None = None,
    ) -> None:
        self.queue = queue
        self.hub = hub
        self.admission = admission
        self.pipeline = pipeline
        self.metrics = metrics or pipeline.metrics

    async def submit(self, request: RequestFrame, caller: Caller) -> AcceptedFrame | ErrorFrame:
        """Persist the request (or find it again) and say where it stands."""
        if caller.kind is CallerKind.USER:
            request = request.model_copy(
                update={"user_id": caller.user_id, "is_admin": caller.is_admin}
            )
        if not request.content.strip() and not request.attachments:
            return _error(request.request_id, ErrorCode.INVALID_FRAME, EMPTY_MESSAGE)
        existing = await self.queue.get(request.request_id)
        if existing is not None and existing.user_id != request.user_id:
            return _error(request.request_id, ErrorCode.INVALID_FRAME, "request id already used")
        notice = None
        if existing is None:
            decision = await self.admission.check(request.request_id, request.user_id)
            if decision.error is not None:
                return decision.error
            notice = decision.notice
        try:
            enqueued = await self.queue.enqueue(request)
        except QueueFull as exc:
            return _error(request.request_id, ErrorCode.QUEUE_FULL, str(exc), retryable=True)
        except RequestTooLarge as exc:
            return _error(request.request_id, ErrorCode.INVALID_FRAME, str(exc))
        except QueueBusy as exc:
            return _error(request.request_id, ErrorCode.INTERNAL, str(exc), retryable=True)
        position = await self.queue.position(request.request_id)
        return AcceptedFrame(
            request_id=request.request_id,
            position=position.position if position else 0,
            eta_seconds=position.eta_seconds if position else 0.0,
            duplicate=enqueued.duplicate,
            notice=notice,
        )

    def watch(self, request_id: str) -> Watch:
        """Start watching now (before submitting, so no early frame is missed)."""
        return Watch(self, request_id)

    async def position_update(
        self, item: QueueItem, last: StatusFrame | None
    ) -> StatusFrame | None:
        """A queued-status frame when the request's position or ETA changed."""
        if item.state is not ItemState.QUEUED:
            return None
        position = await self.queue.position(item.request_id)
        if position is None:
            return None
        if last is not None and (last.position, round(last.eta_seconds or 0)) == (
            position.position,
            round(position.eta_seconds),
        ):
            return None
        return StatusFrame(
            request_id=item.request_id,
            status=StatusKind.QUEUED,
            message=f"Position {position.position} in the queue",
            position=position.position,
            eta_seconds=position.eta_seconds,
        )

    async def position(self, request_id: str) -> StatusFrame | ErrorFrame:
        item = await self.queue.get(request_id)
        if item is None:
            return _error(request_id, ErrorCode.NOT_FOUND, "unknown request")
        position = await self.queue.position(request_id)
        queued = item.state is ItemState.QUEUED
        place = position.position if position else 0
        return StatusFrame(
            request_id=request_id,
            status=StatusKind.QUEUED if queued else StatusKind.GENERATING,
            message=f"Position {place} in the queue" if queued else _STATE_WORDS[item.state],
            position=position.position if position else 0,
            eta_seconds=position.eta_seconds if position else 0.0,
        )

    async def cancel(self, request_id: str, caller: Caller) -> ErrorFrame | None:
        """Cancel; returns an error frame when the request can't be cancelled."""
        item = await self.queue.get(request_id)
        if item is None or (caller.kind is CallerKind.USER and item.user_id != caller.user_id):
            return _error(request_id, ErrorCode.NOT_FOUND, "unknown request")
        after = await self.queue.cancel(request_id)
        self.pipeline.cancel_local(request_id)
        if after is not None and after.state is ItemState.CANCELLED:
            if item.state is not ItemState.CANCELLED:  # not counted twice on a repeat
                self.metrics.outcome("cancelled")
            self.hub.publish(_error(request_id, ErrorCode.CANCELLED, CANCELLED_MESSAGE))
        return None


class Watch:
    """Frames of one request from the moment it was created."""

    def __init__(self, gateway: Gateway, request_id: str) -> None:
        self.request_id = request_id
        self._gateway = gateway
        self._sub = gateway.hub.subscribe(request_id)

    def close(self) -> None:
        self._sub.close()

    async def frames(self, *, just_accepted: bool = False) -> AsyncIterator[ServerFrame]:
        """Every frame until the terminal one (which is always sent).

        ``just_accepted``: the request was queued a moment ago and its position
        already sent, so the first look at the store can wait for a quiet second."""
        try:
            last_status: StatusFrame | None = None
            if just_accepted:
                async for frame in self._live(WATCH_POLL_SECONDS):
                    yield frame
                    if is_terminal(frame):
                        return
            while True:
                item = await self._gateway.queue.get(self.request_id)
                if item is None:
                    yield _error(self.request_id, ErrorCode.NOT_FOUND, "unknown request")
                    return
                if item.state.finished:
                    yield stored_terminal(item)
                    return
                update = await self._gateway.position_update(item, last_status)
                if update is not None:
                    last_status = update
                    yield update
                async for frame in self._live(WATCH_POLL_SECONDS):
                    yield frame
                    if is_terminal(frame):
                        return
        finally:
            self.close()

    async def _live(self, seconds: float) -> AsyncIterator[ServerFrame]:
        """Frames published here within ``seconds`` of quiet, then back to the store."""
        while True:
            try:
                frame = await asyncio.wait_for(self._sub.next(), seconds)
            except TimeoutError:
                return
            yield frame
            if is_terminal(frame):
                return


def stored_terminal(item: QueueItem) -> ServerFrame:
    """The terminal frame of a finished request, rebuilt from the store."""
    if item.state is ItemState.DONE and item.result is not None:
        return DoneFrame.model_validate(item.result)
    if item.state is ItemState.CANCELLED:
        return _error(item.request_id, ErrorCode.CANCELLED, CANCELLED_MESSAGE)
    if item.error is not None:
        return ErrorFrame.model_validate(item.error)
    return _error(item.request_id, ErrorCode.FAILED, "The request failed.")


def _error(
    request_id: str | None, code: ErrorCode, message: str, *, retryable: bool = False
) -> ErrorFrame:
    return ErrorFrame(request_id=request_id, code=code, message=message, retryable=retryable)
