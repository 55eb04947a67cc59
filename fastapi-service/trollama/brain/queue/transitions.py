"""How an item looks after each move of its state machine (pure, no I/O)."""

from __future__ import annotations

import uuid
from typing import Any

from trollama.brain.queue.models import ItemState, LeaseLost, QueueItem
from trollama.common.protocol import ErrorCode, ErrorFrame, RequestFrame

#: Longest retry backoff, in seconds.
MAX_BACKOFF_SECONDS = 300.0
#: Largest exponent of the retry backoff (keeps 2**n finite).
MAX_BACKOFF_DOUBLINGS = 30
#: Answer text kept when a result is too large to store whole, in characters.
RESULT_FALLBACK_CHARS = 20_000
CANCELLED_MESSAGE = "The request was cancelled."


def error_json(request_id: str, code: ErrorCode, message: str) -> dict[str, Any]:
    """An ErrorFrame as JSON (``message`` must be safe to show the user)."""
    return ErrorFrame(request_id=request_id, code=code, message=message).model_dump(mode="json")


def backoff_seconds(base: float, attempts: int) -> float:
    """Delay before the next attempt: ``base × 2^(attempts − 1)``, capped."""
    doublings = min(max(attempts - 1, 0), MAX_BACKOFF_DOUBLINGS)
    return float(min(base * 2**doublings, MAX_BACKOFF_SECONDS))


def leased(item: QueueItem, *, node_id: str, now: float, visibility_timeout: float) -> QueueItem:
    """QUEUED (or an expired LEASED) → LEASED by ``node_id``."""
    return item.model_copy(
        update={
            "state": ItemState.LEASED,
            "lease_id": uuid.uuid4().hex,
            "lease_until": now + visibility_timeout,
            "attempts": item.attempts + 1,
            "owner_node": node_id,
            "not_before": None,
            "started_at": now,
        }
    )


def requeued(item: QueueItem, *, error: dict[str, Any] | None, not_before: float) -> QueueItem:
    """LEASED → QUEUED, visible again from ``not_before``."""
    update = {"state": ItemState.QUEUED, "lease_id": None, "lease_until": None}
    return item.model_copy(update={**update, "not_before": not_before, "error": error})


def finished(item: QueueItem, state: ItemState, *, now: float, **changes: Any) -> QueueItem:
    """→ DONE / FAILED / CANCELLED; attachment payloads are dropped (no longer needed)."""
    return item.model_copy(
        update={
            "state": state,
            "finished_at": now,
            "lease_id": None,
            "lease_until": None,
            "not_before": None,
            "request": _slim(item.request),
            **changes,
        }
    )


def cancelled(item: QueueItem, *, now: float) -> QueueItem:
    error = error_json(item.request_id, ErrorCode.CANCELLED, CANCELLED_MESSAGE)
    return finished(item, ItemState.CANCELLED, now=now, error=error)


def dead_lettered(item: QueueItem, *, now: float) -> QueueItem:
    """FAILED because its deliveries ran out while nobody acknowledged it."""
    message = (
        f"Your request could not be completed after {item.attempts} attempts. Please try again."
    )
    error = error_json(item.request_id, ErrorCode.FAILED, message)
    return finished(item, ItemState.FAILED, now=now, error=error)


def held(item: QueueItem, fresh: QueueItem | None) -> QueueItem:
    """``fresh`` when the caller's lease on ``item`` is still the current one, else LeaseLost."""
    if (
        fresh is None
        or fresh.state is not ItemState.LEASED
        or item.lease_id is None
        or fresh.lease_id != item.lease_id
    ):
        raise LeaseLost(
            f"Request {item.request_id} is no longer leased by this worker "
            "(it was taken over, finished or cancelled)."
        )
    return fresh


def shrunk_result(result: dict[str, Any]) -> dict[str, Any]:
    """A DoneFrame's JSON cut down to fit the store: shorter text, no artifacts."""
    text = result.get("text")
    keep: dict[str, Any] = {
        k: result[k] for k in ("type", "request_id", "route", "model") if k in result
    }
    return {**keep, "text": text[:RESULT_FALLBACK_CHARS] if isinstance(text, str) else ""}


def _slim(request: RequestFrame) -> RequestFrame:
    if not request.attachments:
        return request
    kept = [a.model_copy(update={"data_b64": None}) for a in request.attachments]
    return request.model_copy(update={"attachments": kept})
