"""The pure state-machine helpers, without a store."""

from __future__ import annotations

import pytest

from trollama.brain.queue import ItemState, LeaseLost, QueueItem
from trollama.brain.queue.keys import order_key
from trollama.brain.queue.transitions import (
    MAX_BACKOFF_SECONDS,
    RESULT_FALLBACK_CHARS,
    backoff_seconds,
    held,
    leased,
    requeued,
    shrunk_result,
)
from trollama.common.protocol import RequestFrame


def item() -> QueueItem:
    request = RequestFrame(request_id="r1", user_id="u", conversation_id="c", content="hi")
    return QueueItem(
        request_id="r1",
        user_id="u",
        conversation_id="c",
        state=ItemState.QUEUED,
        request=request,
        enqueued_at=100.0,
        accepted_by="n",
        owner_node="n",
        tag=0,
        order=order_key(0, 100.0, "r1"),
    )


def test_backoff_doubles_and_is_capped_even_for_absurd_attempts() -> None:
    assert [backoff_seconds(2.0, n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert backoff_seconds(2.0, 10**9) == MAX_BACKOFF_SECONDS
    assert backoff_seconds(0.0, 5) == 0.0


def test_only_the_current_lease_counts_as_held() -> None:
    first = leased(item(), node_id="n", now=200.0, visibility_timeout=10.0)
    assert (first.attempts, first.lease_until) == (1, 210.0)
    assert held(first, first) == first
    again = leased(
        requeued(first, error=None, not_before=0.0), node_id="m", now=300.0, visibility_timeout=10.0
    )
    for fresh in (again, None, item()):
        with pytest.raises(LeaseLost, match="no longer leased"):
            held(first, fresh)


def test_shrunk_result_keeps_the_frame_shape() -> None:
    big = {"type": "done", "request_id": "r1", "text": "x" * 10**6, "artifacts": [{"a": 1}]}
    small = shrunk_result(big)
    assert small == {"type": "done", "request_id": "r1", "text": "x" * RESULT_FALLBACK_CHARS}
    assert shrunk_result({"text": None}) == {"text": ""}
