"""Fair order across users, threads in order, real positions and ETAs (every backend)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from trollama.brain.queue import Position, RequestQueue
from trollama.brain.queue.service_time import DEFAULT_SERVICE_SECONDS
from trollama.common.protocol import RequestFrame
from trollama.testkit.store_fixtures import StoreFactory

if TYPE_CHECKING:
    from conftest import FakeClock, MakeQueue

MakeRequest = Callable[..., RequestFrame]


async def _lease_ids(queue: RequestQueue, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        item = await queue.lease()
        assert item is not None
        ids.append(item.request_id)
    return ids


async def test_one_user_burst_does_not_starve_another(
    make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue()
    for n in range(20):
        await queue.enqueue(make_request(f"a{n}", user="alice"))
    await queue.enqueue(make_request("b0", user="bob"))
    assert await _lease_ids(queue, 2) == ["a0", "b0"]


async def test_fair_order_holds_across_two_queue_instances(
    store_factory: StoreFactory, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    first, second = make_queue(), make_queue(store_factory.open())
    for n in range(20):
        await first.enqueue(make_request(f"a{n}", user="alice"))
    await second.enqueue(make_request("b0", user="bob"))
    assert await _lease_ids(second, 1) == ["a0"]
    assert await _lease_ids(first, 1) == ["b0"]


async def test_users_alternate_and_newcomers_join_at_the_current_round(
    make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue()
    for n in range(3):
        await queue.enqueue(make_request(f"a{n}", user="alice"))
    for n in range(3):
        await queue.enqueue(make_request(f"b{n}", user="bob"))
    assert await _lease_ids(queue, 3) == ["a0", "b0", "a1"]
    await queue.enqueue(make_request("c0", user="carol"))  # joins now, not behind everyone
    assert await _lease_ids(queue, 4) == ["b1", "c0", "a2", "b2"]


async def test_a_thread_runs_one_request_at_a_time_in_order(
    store_factory: StoreFactory, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue, other = make_queue(), make_queue(store_factory.open())
    await queue.enqueue(make_request("t1", user="alice", conversation="thread"))
    await queue.enqueue(make_request("t2", user="bob", conversation="thread"))
    await queue.enqueue(make_request("x1", user="carol"))
    first = await queue.lease()
    assert first is not None
    assert first.request_id == "t1"
    assert await _lease_ids(other, 1) == ["x1"]  # t2 waits for t1
    assert await other.lease() is None
    await queue.complete(first, {"type": "done", "request_id": "t1", "text": "ok"})
    assert await _lease_ids(other, 1) == ["t2"]


async def test_a_retry_in_backoff_keeps_its_place_in_the_thread(
    clock: FakeClock, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue(backoff_seconds=5.0)
    await queue.enqueue(make_request("t1", conversation="thread"))
    await queue.enqueue(make_request("t2", user="bob", conversation="thread"))
    first = await queue.lease()
    assert first is not None
    await queue.fail(first, {"code": "model_unavailable"}, retryable=True)
    assert await queue.lease() is None  # t2 must not overtake t1's retry
    clock.advance(5)
    assert await _lease_ids(queue, 1) == ["t1"]


async def test_position_counts_the_fair_order_not_the_queue_length(
    make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue(concurrency=2)
    for n in range(5):
        await queue.enqueue(make_request(f"a{n}", user="alice"))
    await queue.enqueue(make_request("b0", user="bob"))
    assert await queue.position("b0") == Position(2, 2 * DEFAULT_SERVICE_SECONDS / 2)
    assert await queue.position("a4") == Position(6, 6 * DEFAULT_SERVICE_SECONDS / 2)
    await queue.lease()
    assert await queue.position("a0") == Position(0, 0.0)
    assert await queue.position("b0") == Position(1, DEFAULT_SERVICE_SECONDS / 2)
    await queue.cancel("b0")
    assert await queue.position("b0") is None  # finished: no longer in line
    assert await queue.position("a1") == Position(1, DEFAULT_SERVICE_SECONDS / 2)


async def test_eta_follows_measured_service_times(
    clock: FakeClock, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue(concurrency=1)
    for n in range(3):
        await queue.enqueue(make_request(f"r{n}", user=f"u{n}"))
    for seconds in (10.0, 20.0):
        item = await queue.lease()
        assert item is not None
        clock.advance(seconds)
        await queue.complete(item, {"type": "done", "request_id": item.request_id, "text": ""})
    # first sample seeds the average (10), the second moves it 20 % of the way to 20
    position = await queue.position("r2")
    assert position is not None
    assert position.position == 1
    assert position.eta_seconds == pytest.approx(12.0)
    stats = await queue.stats()
    assert stats.avg_service_seconds == pytest.approx(12.0)
