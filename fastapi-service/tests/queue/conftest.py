"""Fixtures for the queue tests: an injected clock, request and queue factories."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import pytest

from trollama.brain.queue import NodeRegistry, RequestQueue
from trollama.common.protocol import RequestFrame
from trollama.common.store.base import ItemStore

#: Queue settings of the tests unless a test overrides them.
DEFAULTS: dict[str, Any] = {
    "max_size": 50,
    "max_retries": 3,
    "visibility_timeout": 60.0,
    "backoff_seconds": 2.0,
    "concurrency": 2,
}
HEARTBEAT_SECONDS = 5.0


#: The fake clock moves this much on every reading, in seconds, so that two
#: requests never arrive at the very same instant.
TICK_SECONDS = 1e-6


class FakeClock:
    """Epoch seconds that move only when told, plus a tick per reading (starts at
    the real time, because the store's TTL compares ``expires_at`` with it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        self.now += TICK_SECONDS
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MakeQueue(Protocol):
    def __call__(
        self, store: ItemStore | None = None, *, node_id: str = "brain-1", **settings: Any
    ) -> RequestQueue: ...


#: Why the concurrency tests skip moto (reproduced with plain boto3 against
#: ``moto.server`` 5.2: two conditional TransactWriteItems on one item can
#: both succeed while the table is large enough for the race window).
MOTO_NOT_ATOMIC = (
    "moto's TransactWriteItems is not atomic under concurrent requests: a cancelled "
    "transaction restores a whole-table snapshot, undoing a concurrent one; "
    "SQLite and DynamoDB Local run this test"
)


@pytest.fixture
def atomic_concurrency(store_backend: str) -> None:
    """Skips the test on moto, whose transactions race (see :data:`MOTO_NOT_ATOMIC`)."""
    if store_backend == "moto":
        pytest.skip(MOTO_NOT_ATOMIC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _queue_factory(store: ItemStore, clock: FakeClock) -> MakeQueue:
    def make(
        on: ItemStore | None = None, *, node_id: str = "brain-1", **settings: Any
    ) -> RequestQueue:
        target = store if on is None else on
        heartbeat = settings.pop("heartbeat_seconds", HEARTBEAT_SECONDS)
        registry = NodeRegistry(target, node_id=node_id, heartbeat_seconds=heartbeat, clock=clock)
        return RequestQueue(
            target, node_id=node_id, clock=clock, registry=registry, **{**DEFAULTS, **settings}
        )

    return make


@pytest.fixture
def make_queue(store: ItemStore, clock: FakeClock) -> MakeQueue:
    """Builds a queue (and its node registry) on ``store`` (every backend) or another store."""
    return _queue_factory(store, clock)


@pytest.fixture
def make_sqlite_queue(sqlite_store: ItemStore, clock: FakeClock) -> MakeQueue:
    """Like ``make_queue`` on SQLite only, for behaviour that does not depend on the backend."""
    return _queue_factory(sqlite_store, clock)


@pytest.fixture
def make_request() -> Callable[..., RequestFrame]:
    """``make_request("r1", user="alice")``: each request in its own thread by default."""

    def make(
        request_id: str, *, user: str = "alice", conversation: str | None = None
    ) -> RequestFrame:
        return RequestFrame(
            request_id=request_id,
            user_id=user,
            conversation_id=conversation or f"thread-{request_id}",
            content=f"question {request_id}",
        )

    return make
