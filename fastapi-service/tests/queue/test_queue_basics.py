"""Durability, idempotency, bounds, bad input, state machine and stats (every backend)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from trollama.brain.queue import (
    IllegalTransition,
    ItemState,
    LeaseLost,
    QueueFull,
    RequestTooLarge,
)
from trollama.brain.queue.keys import LEASED_PK, TABLE, WAITING_PK, item_key
from trollama.brain.queue.models import check_transition
from trollama.brain.queue.records import FINISHED_TTL_SECONDS
from trollama.brain.queue.transitions import RESULT_FALLBACK_CHARS
from trollama.common.protocol import Attachment, DoneFrame, RequestFrame
from trollama.common.store.base import ItemStore
from trollama.testkit.store_fixtures import StoreFactory

if TYPE_CHECKING:
    from conftest import FakeClock, MakeQueue

MakeRequest = Callable[..., RequestFrame]


async def test_enqueued_item_is_persisted_for_a_new_queue(
    store_factory: StoreFactory, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    first = make_queue()
    result = await first.enqueue(make_request("r1"))
    assert not result.duplicate
    assert result.item.state is ItemState.QUEUED

    other = make_queue(store_factory.open())
    seen = await other.get("r1")
    assert seen is not None
    assert seen.request == make_request("r1")
    assert seen.owner_node == seen.accepted_by == "brain-1"


async def test_same_request_id_twice_gives_one_item(
    store: ItemStore, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue()
    first = await queue.enqueue(make_request("r1"))
    again = await queue.enqueue(make_request("r1"))
    assert again.duplicate
    assert again.item == first.item
    assert await store.count(TABLE, WAITING_PK) == 1


@pytest.mark.usefixtures("atomic_concurrency")
async def test_concurrent_enqueues_from_two_brains_make_one_item(
    store: ItemStore, store_factory: StoreFactory, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    one, two = make_queue(node_id="a"), make_queue(store_factory.open(), node_id="b")
    results = await asyncio.gather(*(q.enqueue(make_request("same")) for q in (one, two, one, two)))
    assert sorted(r.duplicate for r in results) == [False, True, True, True]
    assert len({r.item.accepted_by for r in results}) == 1
    assert await store.count(TABLE, WAITING_PK) == 1


async def test_duplicate_of_a_finished_request_returns_its_result(
    make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue()
    await queue.enqueue(make_request("r1"))
    leased = await queue.lease()
    assert leased is not None
    done = DoneFrame(request_id="r1", text="forty-two").model_dump(mode="json")
    await queue.complete(leased, done)

    again = await queue.enqueue(make_request("r1"))
    assert again.duplicate
    assert again.item.state is ItemState.DONE
    assert again.item.result == done


async def test_full_queue_refuses_with_a_clear_message(
    make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue(max_size=3)
    for n in range(3):
        await queue.enqueue(make_request(f"r{n}", user=f"u{n}"))
    with pytest.raises(QueueFull) as caught:
        await queue.enqueue(make_request("r3"))
    assert str(caught.value) == "The queue is full (3 waiting). Please try again in a minute."

    assert (await queue.enqueue(make_request("r1", user="u1"))).duplicate
    assert await queue.lease() is not None  # one leaves the waiting set...
    assert not (await queue.enqueue(make_request("r3"))).duplicate  # ...and one fits again
    assert await queue.get("r3") is not None


async def test_unknown_and_absurd_ids_give_none(make_queue: MakeQueue) -> None:
    queue = make_queue()
    for request_id in ("nope", "", "x" * 5000, "é\x00/#"):
        assert await queue.get(request_id) is None
        assert await queue.position(request_id) is None
        assert await queue.cancel(request_id) is None
    assert await queue.lease() is None


async def test_request_too_large_for_the_store_is_refused(
    make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue()
    huge = Attachment(
        filename="a.png", content_type="image/png", size_bytes=1, data_b64="A" * 500_000
    )
    request = make_request("big").model_copy(update={"attachments": [huge]})
    with pytest.raises(RequestTooLarge):
        await queue.enqueue(request)
    assert await queue.get("big") is None
    assert not (await queue.enqueue(make_request("small"))).duplicate


async def test_finished_items_leave_the_index_shed_attachments_and_expire(
    store: ItemStore, clock: FakeClock, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue()
    image = Attachment(filename="a.png", content_type="image/png", size_bytes=3, data_b64="AAAA")
    await queue.enqueue(make_request("r1").model_copy(update={"attachments": [image]}))
    leased = await queue.lease()
    assert leased is not None
    assert leased.request.attachments[0].data_b64 == "AAAA"
    assert await store.count(TABLE, LEASED_PK) == 1
    done = await queue.complete(leased, {"type": "done", "request_id": "r1", "text": "ok"})
    assert done.request.attachments[0].data_b64 is None  # payloads go once finished
    assert done.request.attachments[0].filename == "a.png"

    assert await store.count(TABLE, WAITING_PK) == 0
    assert await store.count(TABLE, LEASED_PK) == 0
    record = await store.get(TABLE, *item_key("r1"))
    assert record is not None
    assert record["expires_at"] == pytest.approx(clock.now + FINISHED_TTL_SECONDS, abs=0.01)


async def test_only_the_leaseholder_can_finish_and_only_once(
    make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue()
    await queue.enqueue(make_request("r1"))
    leased = await queue.lease()
    assert leased is not None
    done = await queue.complete(leased, {"type": "done", "request_id": "r1", "text": "ok"})
    assert done.state is ItemState.DONE
    with pytest.raises(LeaseLost):
        await queue.complete(leased, {"type": "done", "request_id": "r1", "text": "again"})
    with pytest.raises(LeaseLost):
        await queue.fail(leased, {"code": "failed"}, retryable=True)
    stored = await queue.get("r1")
    assert stored is not None
    assert stored.result == {"type": "done", "request_id": "r1", "text": "ok"}


def test_illegal_transitions_raise_a_precise_error() -> None:
    with pytest.raises(IllegalTransition, match="Cannot move request r1 from done to leased"):
        check_transition("r1", ItemState.DONE, ItemState.LEASED)
    with pytest.raises(IllegalTransition, match="from queued to done"):
        check_transition("r1", ItemState.QUEUED, ItemState.DONE)
    check_transition("r1", ItemState.LEASED, ItemState.QUEUED)


async def test_annotate_records_route_and_refuses_unknown_fields(
    make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue()
    await queue.enqueue(make_request("r1"))
    leased = await queue.lease()
    assert leased is not None
    noted = await queue.annotate(leased, route="MATH", model="qwen3:8b", route_latency_ms=12.5)
    assert (noted.route, noted.model, noted.route_latency_ms) == ("MATH", "qwen3:8b", 12.5)
    stored = await queue.get("r1")
    assert stored is not None
    assert stored.route == "MATH"
    with pytest.raises(ValueError, match="invalid annotation"):
        await queue.annotate(leased, colour="blue")
    with pytest.raises(ValueError, match="invalid annotation"):
        await queue.annotate(leased, route_latency_ms=float("nan"))
    done = await queue.complete(noted, {"type": "done", "request_id": "r1", "text": "ok"})
    assert done.model == "qwen3:8b"


async def test_stats_count_waiting_running_and_users(
    clock: FakeClock, make_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_queue()
    for n in range(3):
        await queue.enqueue(make_request(f"a{n}", user="alice"))
    await queue.enqueue(make_request("b0", user="bob"))
    clock.advance(10)
    assert await queue.lease() is not None
    stats = await queue.stats()
    assert (stats.queued, stats.running, stats.max_size) == (3, 1, 50)
    assert stats.waiting_by_user == {"alice": 2, "bob": 1}
    assert stats.oldest_wait_seconds == pytest.approx(10, abs=0.01)


async def test_enqueue_wakes_a_waiting_worker(
    make_sqlite_queue: MakeQueue, make_request: MakeRequest
) -> None:
    queue = make_sqlite_queue()  # in-process notification: one backend is enough
    waiter = asyncio.create_task(queue.wait_for_work(60))
    await asyncio.sleep(0)
    assert not waiter.done()
    await queue.enqueue(make_request("r1"))
    await asyncio.wait_for(waiter, 30)
    await queue.wait_for_work(float("nan"))  # absurd timeouts return at once


def test_absurd_settings_are_refused(sqlite_store: ItemStore) -> None:
    from trollama.brain.queue import RequestQueue

    base = {
        "node_id": "n",
        "max_size": 5,
        "max_retries": 3,
        "visibility_timeout": 10.0,
        "backoff_seconds": 1.0,
        "concurrency": 1,
    }
    for bad in (
        {"max_size": 0},
        {"concurrency": 0},
        {"visibility_timeout": float("inf")},
        {"backoff_seconds": -1.0},
        {"node_id": ""},
    ):
        with pytest.raises(ValueError, match="must be"):
            RequestQueue(sqlite_store, **{**base, **bad})  # type: ignore[arg-type]


async def test_an_oversized_answer_is_kept_shortened(
    make_sqlite_queue: MakeQueue, make_request: MakeRequest
) -> None:
    # the size limit is the same rule on every backend (trollama.common.store.items)
    queue = make_sqlite_queue()
    await queue.enqueue(make_request("r1"))
    leased = await queue.lease()
    assert leased is not None
    huge = DoneFrame(request_id="r1", text="x" * 500_000).model_dump(mode="json")
    done = await queue.complete(leased, huge)
    assert done.state is ItemState.DONE
    assert done.result is not None
    assert done.result["text"] == "x" * RESULT_FALLBACK_CHARS
    assert DoneFrame.model_validate(done.result).request_id == "r1"
