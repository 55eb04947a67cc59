"""The brain's durable, fair, SQS-like request queue (see ``docs/queue.md``)."""

from trollama.brain.queue.models import (
    Enqueued,
    IllegalTransition,
    ItemState,
    LeaseLost,
    Position,
    QueueBusy,
    QueueError,
    QueueFull,
    QueueItem,
    QueueStats,
    RequestTooLarge,
)
from trollama.brain.queue.nodes import NodeRegistry
from trollama.brain.queue.request_queue import RequestQueue

__all__ = [
    "Enqueued",
    "IllegalTransition",
    "ItemState",
    "LeaseLost",
    "NodeRegistry",
    "Position",
    "QueueBusy",
    "QueueError",
    "QueueFull",
    "QueueItem",
    "QueueStats",
    "RequestQueue",
    "RequestTooLarge",
]
