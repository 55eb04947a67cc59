"""Node heartbeats and liveness (every backend)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from trollama.brain.queue import NodeRegistry
from trollama.common.store.base import ItemStore

if TYPE_CHECKING:
    from conftest import FakeClock


def registry(store: ItemStore, clock: FakeClock, node_id: str) -> NodeRegistry:
    return NodeRegistry(store, node_id=node_id, heartbeat_seconds=2.0, clock=clock)


async def test_a_node_is_alive_until_it_misses_three_beats(
    store: ItemStore, clock: FakeClock
) -> None:
    a, b = registry(store, clock, "a"), registry(store, clock, "b")
    for unknown in ("a", "nobody", "", "n" * 5000):
        assert not await a.alive(unknown)
    await a.beat()
    await b.beat()
    assert await b.alive("a")
    assert sorted(await b.alive_nodes()) == ["a", "b"]
    clock.advance(5.9)
    await b.beat()
    assert await b.alive("a")
    clock.advance(0.2)
    assert not await b.alive("a")
    assert await b.alive_nodes() == ["b"]


async def test_beat_if_due_writes_at_most_once_per_interval(
    store: ItemStore, clock: FakeClock
) -> None:
    a, watcher = registry(store, clock, "a"), registry(store, clock, "w")
    await a.beat_if_due()
    clock.advance(5.0)
    await a.beat_if_due()  # 5 s after the last beat: due, so it beats
    clock.advance(1.5)
    await a.beat_if_due()  # not due: the record still says 1.5 s ago
    clock.advance(4.6)
    assert not await watcher.alive("a")


def test_absurd_heartbeats_are_refused(sqlite_store: ItemStore) -> None:
    for seconds in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="heartbeat_seconds"):
            NodeRegistry(sqlite_store, node_id="a", heartbeat_seconds=seconds)
