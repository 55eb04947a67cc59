"""Leases, visibility timeout, two brains, failover, recovery, retries, cancellation."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from trollama.brain.queue import ItemState, LeaseLost, QueueItem, RequestQueue
from trollama.common.protocol import ErrorCode, ErrorFrame, RequestFrame
from trollama.testkit.store_fixtures import StoreFactory

if TYPE_CHECKING:
    from conftest import FakeClock, MakeQueue

MakeRequest = Callable[..., RequestFrame]
DONE = {"type": "done", "request_id": "r1", "text": "ok"}


def _error(retryable: bool = True) -> dict[str, object]:
    frame = ErrorFrame(
        request_id="r1",
        code=ErrorCode.MODEL_UNAVAILABLE,
        message="The model server is not answering.",
        retryable=retryable,
    )
    return frame.model_dump(mode="json")


async def _leased(queue: RequestQueue) -> QueueItem:
    item = await queue.lease()
    assert item is not None
    return item


async def test_lease_marks_the_item_and_hides_it(
    clock: FakeClock, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue(visibility_timeout=30.0)
    await queue.enqueue(make_request("r1"))
    item = await _leased(queue)
    assert item.state is ItemState.LEASED
    assert (item.attempts, item.owner_node) == (1, "brain-1")
    assert item.lease_until == pytest.approx(clock.now + 30, abs=0.01)
    assert item.started_at == pytest.approx(clock.now, abs=0.01)
    assert await queue.lease() is None


async def test_expired_lease_is_delivered_again_and_the_old_holder_loses_it(
    store_factory: StoreFactory, clock: FakeClock, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    # slow heartbeats: both nodes stay alive, only the visibility timeout acts
    queue = make_queue(visibility_timeout=30.0, heartbeat_seconds=100.0)
    other = make_queue(store_factory.open(), node_id="brain-2", heartbeat_seconds=100.0)
    await queue.enqueue(make_request("r1"))
    first = await _leased(queue)
    clock.advance(29)
    assert await other.lease() is None
    clock.advance(2)
    second = await _leased(other)
    assert (second.request_id, second.attempts, second.owner_node) == ("r1", 2, "brain-2")
    for call in (
        queue.complete(first, DONE),
        queue.extend(first),
        queue.fail(first, _error(), retryable=True),
        queue.annotate(first, route="MATH"),
    ):
        with pytest.raises(LeaseLost):
            await call
    done = await other.complete(second, DONE)
    assert done.state is ItemState.DONE


async def test_extend_keeps_a_long_stream_leased(
    store_factory: StoreFactory, clock: FakeClock, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue(visibility_timeout=30.0)
    other = make_queue(store_factory.open(), node_id="brain-2")
    await queue.enqueue(make_request("r1"))
    item = await _leased(queue)
    for _ in range(3):
        clock.advance(20)
        item = await queue.extend(item)
        assert await other.lease() is None
    assert item.lease_until == pytest.approx(clock.now + 30, abs=0.01)
    assert (await queue.complete(item, DONE)).state is ItemState.DONE


@pytest.mark.usefixtures("atomic_concurrency")
async def test_two_brains_never_lease_the_same_item(
    store_factory: StoreFactory, clock: FakeClock, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    accepting = make_queue(node_id="gone")  # accepts everything, then dies
    for n in range(10):
        await accepting.enqueue(make_request(f"r{n}", user=f"u{n % 3}"))
    clock.advance(60)  # "gone" is dead now; the workers below beat on lease()
    stores = [store_factory.open(), store_factory.open()]
    workers = [make_queue(stores[n % 2], node_id=f"brain-{n % 2}") for n in range(4)]

    async def drain(queue: RequestQueue) -> list[str]:
        got = []
        while (item := await queue.lease()) is not None:
            got.append(item.request_id)
        return got

    results = await asyncio.gather(*(drain(q) for q in workers for _ in range(2)))
    counts = Counter(rid for got in results for rid in got)
    assert sorted(counts) == sorted(f"r{n}" for n in range(10))
    assert set(counts.values()) == {1}


async def test_a_dead_brains_items_move_to_a_live_one(
    store_factory: StoreFactory, clock: FakeClock, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    a = make_queue(node_id="brain-a", heartbeat_seconds=1.0, visibility_timeout=600.0)
    b = make_queue(store_factory.open(), node_id="brain-b", heartbeat_seconds=1.0)
    await a.enqueue(make_request("r1"))
    await a.enqueue(make_request("r2"))
    running = await _leased(a)
    await b.registry.beat()
    assert await b.lease() is None  # a is alive: its items stay with it
    clock.advance(3.5)  # a stops beating: dead after 3 beats
    taken = [await _leased(b), await _leased(b)]
    assert [t.request_id for t in taken] == ["r1", "r2"]
    assert all(t.owner_node == "brain-b" and t.accepted_by == "brain-a" for t in taken)
    assert taken[0].attempts == 2
    with pytest.raises(LeaseLost):
        await a.complete(running, DONE)


async def test_recover_requeues_this_nodes_leases_after_a_crash(
    store_factory: StoreFactory, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    before = make_queue()
    await before.enqueue(make_request("r1"))
    await before.enqueue(make_request("r2"))
    await _leased(before)
    await _leased(before)
    restarted = make_queue(store_factory.open())
    assert await restarted.lease() is None  # leases are still live
    assert await restarted.recover() == 2
    again = await _leased(restarted)
    assert (again.request_id, again.attempts) == ("r1", 2)
    assert await restarted.recover() == 1  # r1, leased again just now
    recovered = await restarted.get("r1")
    assert recovered is not None
    assert (recovered.state, recovered.lease_id) == (ItemState.QUEUED, None)


async def test_retries_back_off_exponentially_then_fail_and_permanent_errors_fail_at_once(
    clock: FakeClock, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue(max_retries=3, backoff_seconds=2.0)
    await queue.enqueue(make_request("r1"))
    for attempt, delay in ((1, 2.0), (2, 4.0)):
        item = await _leased(queue)
        assert item.attempts == attempt
        retried = await queue.fail(item, _error(), retryable=True)
        assert retried.state is ItemState.QUEUED
        assert retried.not_before == pytest.approx(clock.now + delay, abs=0.01)
        clock.advance(delay - 0.5)
        assert await queue.lease() is None
        clock.advance(0.5)
    last = await _leased(queue)
    failed = await queue.fail(last, _error(), retryable=True)
    assert (failed.state, failed.attempts, failed.error) == (ItemState.FAILED, 3, _error())
    assert await queue.lease() is None
    await queue.enqueue(make_request("r2"))
    permanent = await queue.fail(await _leased(queue), _error(False), retryable=False)
    assert (permanent.state, permanent.attempts, permanent.error) == (
        ItemState.FAILED,
        1,
        _error(False),
    )


async def test_a_lease_that_expires_on_its_last_attempt_is_dead_lettered(
    clock: FakeClock, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue(max_retries=1, visibility_timeout=10.0)
    await queue.enqueue(make_request("r1"))
    await queue.enqueue(make_request("r2"))
    await _leased(queue)
    clock.advance(11)
    assert (await _leased(queue)).request_id == "r2"
    item = await queue.get("r1")
    assert item is not None
    assert item.state is ItemState.FAILED
    assert item.error is not None
    assert "after 1 attempts" in item.error["message"]


async def test_cancel_a_queued_request_removes_it_for_good(
    make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue()
    await queue.enqueue(make_request("r1"))
    cancelled = await queue.cancel("r1")
    assert cancelled is not None
    assert cancelled.state is ItemState.CANCELLED
    assert cancelled.error is not None
    assert (cancelled.error["code"], cancelled.error["message"]) == (
        ErrorCode.CANCELLED,
        "The request was cancelled.",
    )
    assert await queue.lease() is None
    assert (await queue.cancel("r1")) == cancelled  # finished: unchanged


async def test_cancel_a_running_request_tells_its_worker(
    make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue()
    await queue.enqueue(make_request("r1"))
    item = await _leased(queue)
    flagged = await queue.cancel("r1")
    assert flagged is not None
    assert (flagged.state, flagged.cancel_requested) == (ItemState.LEASED, True)
    seen = await queue.extend(item)
    assert seen.cancel_requested
    stopped = await queue.mark_cancelled(seen)
    assert stopped.state is ItemState.CANCELLED


async def test_a_cancelled_request_is_neither_retried_nor_run_again(
    clock: FakeClock, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue(visibility_timeout=10.0)
    await queue.enqueue(make_request("r1"))
    await queue.enqueue(make_request("r2"))
    first, second = await _leased(queue), await _leased(queue)
    await queue.cancel("r1")
    await queue.cancel("r2")
    assert (await queue.fail(first, _error(), retryable=True)).state is ItemState.CANCELLED
    clock.advance(11)  # r2's worker died without noticing the cancel
    assert await queue.lease() is None
    stored = await queue.get(second.request_id)
    assert stored is not None
    assert stored.state is ItemState.CANCELLED
