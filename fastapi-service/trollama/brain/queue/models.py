"""What the queue hands out: items, their state machine, positions and errors."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trollama.common.protocol import RequestFrame


class ItemState(StrEnum):
    """Lifecycle of a queue item: ``queued → leased → done | failed | cancelled``."""

    QUEUED = "queued"
    LEASED = "leased"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for the end states, which never change again."""
        return self in FINISHED_STATES

    @property
    def active(self) -> bool:
        """True while the item waits or runs."""
        return not self.finished


FINISHED_STATES = frozenset({ItemState.DONE, ItemState.FAILED, ItemState.CANCELLED})

#: Every legal move. LEASED → LEASED is a re-lease after the lease expired or
#: its node died; QUEUED → FAILED is the dead letter of an item whose attempts
#: ran out while it sat in the queue (its worker died on the last one).
TRANSITIONS: dict[ItemState, frozenset[ItemState]] = {
    ItemState.QUEUED: frozenset({ItemState.LEASED, ItemState.CANCELLED, ItemState.FAILED}),
    ItemState.LEASED: frozenset(
        {
            ItemState.LEASED,
            ItemState.QUEUED,
            ItemState.DONE,
            ItemState.FAILED,
            ItemState.CANCELLED,
        }
    ),
    ItemState.DONE: frozenset(),
    ItemState.FAILED: frozenset(),
    ItemState.CANCELLED: frozenset(),
}


class QueueError(Exception):
    """Base of the queue's own errors; ``str(error)`` is safe to show a user."""


class IllegalTransition(QueueError):
    """The item's state machine does not allow the requested move."""

    def __init__(self, request_id: str, current: ItemState, target: ItemState) -> None:
        super().__init__(f"Cannot move request {request_id} from {current.value} to {target.value}")
        self.request_id = request_id
        self.current = current
        self.target = target


class QueueFull(QueueError):
    """The queue holds its maximum of waiting requests; try again later."""

    def __init__(self, max_size: int) -> None:
        super().__init__(f"The queue is full ({max_size} waiting). Please try again in a minute.")
        self.max_size = max_size


class RequestTooLarge(QueueError):
    """The request (with its attachments) is too large to store."""

    def __init__(self) -> None:
        super().__init__("This request is too large to queue. Please send smaller attachments.")


class QueueBusy(QueueError):
    """Too many brains changed the same record at once; the caller may retry."""

    def __init__(self) -> None:
        super().__init__("The queue is busy right now. Please try again in a moment.")


class LeaseLost(QueueError):
    """This node no longer holds the item's lease (another node took it over,
    it was finished elsewhere, or it no longer exists)."""


def check_transition(request_id: str, current: ItemState, target: ItemState) -> None:
    """Raise :class:`IllegalTransition` unless ``current → target`` is legal."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(request_id, current, target)


class QueueItem(BaseModel):
    """One request in the queue, as stored. Times are epoch seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    user_id: str
    conversation_id: str
    state: ItemState
    request: RequestFrame
    enqueued_at: float
    #: Leases handed out so far (the first delivery counts).
    attempts: int = 0
    #: The node that accepted the request (it holds the client's connection).
    accepted_by: str
    #: The node responsible now: the one that accepted it, then the last leaseholder.
    owner_node: str
    lease_id: str | None = None
    lease_until: float | None = None
    #: Not leased before this time (retry backoff).
    not_before: float | None = None
    cancel_requested: bool = False
    #: A DoneFrame as JSON once DONE.
    result: dict[str, Any] | None = None
    #: An ErrorFrame as JSON: the last failure (kept when FAILED).
    error: dict[str, Any] | None = None
    route: str | None = None
    model: str | None = None
    route_latency_ms: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    #: Fair-queueing start tag (virtual time); lower is served first.
    tag: int = Field(ge=0)
    #: Sort key of the item in the waiting / leased index.
    order: str
    #: Bumped on every write; guards optimistic concurrency.
    version: int = 0


#: Fields a worker may record with :meth:`RequestQueue.annotate`.
ANNOTATION_FIELDS = frozenset({"route", "model", "route_latency_ms"})


@dataclass(frozen=True)
class Enqueued:
    """The result of an enqueue: the stored item and whether it already existed."""

    item: QueueItem
    duplicate: bool


@dataclass(frozen=True)
class Position:
    """Where a waiting request stands: 1 = next, 0 = running now."""

    position: int
    eta_seconds: float


class QueueStats(BaseModel):
    """A snapshot for health pages and admins."""

    queued: int
    running: int
    oldest_wait_seconds: float
    avg_service_seconds: float
    #: Waiting requests per user, the busiest users first (bounded).
    waiting_by_user: dict[str, int]
    max_size: int
