"""Rapid messages merge into one request per user and conversation."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from trollama.relay.merging import MAX_BATCH_MESSAGES, MessageMerger


async def test_messages_within_the_window_merge_per_key() -> None:
    flushed: list[tuple[Hashable, list[str]]] = []

    async def flush(key: Hashable, items: list[str]) -> None:
        flushed.append((key, items))

    merger: MessageMerger[str] = MessageMerger(0.05, flush)
    merger.add(("alice", "t1"), "hello")
    merger.add(("alice", "t1"), "are you there?")
    merger.add(("bob", "t1"), "hi")
    await asyncio.sleep(0.15)
    merger.add(("alice", "t1"), "later")
    await merger.drain()
    assert flushed == [
        (("alice", "t1"), ["hello", "are you there?"]),
        (("bob", "t1"), ["hi"]),
        (("alice", "t1"), ["later"]),
    ]


async def test_a_full_batch_flushes_early_and_failures_are_contained() -> None:
    seen: list[int] = []

    async def flush(key: Hashable, items: list[int]) -> None:
        seen.append(len(items))
        raise RuntimeError("brain away")

    merger: MessageMerger[int] = MessageMerger(10.0, flush)
    for i in range(MAX_BATCH_MESSAGES + 1):
        merger.add("k", i)
    await merger.drain()
    assert seen == [MAX_BATCH_MESSAGES, 1]
