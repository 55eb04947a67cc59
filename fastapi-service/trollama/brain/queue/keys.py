"""Where the queue keeps things in ``Table.QUEUE``, and how records look.

=====================  ==========  ==============================================
pk                     sk          holds
=====================  ==========  ==============================================
``item#<request_id>``  ``item``    the full :class:`QueueItem` (TTL once finished)
``waiting``            order key   a small index entry per QUEUED item
``leased``             order key   a small index entry per LEASED item
``conv#<conv_id>``     ``lock``    which request of a conversation runs now
``fair#<user_id>``     ``fair``    the user's fair-queueing finish tag
``meta``               ``vclock``  the queue's virtual time
``meta``               ``service`` moving average of service times
=====================  ==========  ==============================================

Finished items leave both index partitions, so finding work never reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trollama.brain.queue.models import ItemState, QueueItem
from trollama.common.store.base import TTL_ATTRIBUTE, Item, Table

TABLE = Table.QUEUE
ITEM_SK = "item"
WAITING_PK = "waiting"
LEASED_PK = "leased"
LOCK_SK = "lock"
FAIR_SK = "fair"
META_PK = "meta"
VCLOCK_SK = "vclock"
SERVICE_SK = "service"
#: Digits of the tag and of the enqueue time (microseconds) in an order key.
TAG_DIGITS = 12
MICROS_DIGITS = 17
_MAX_MICROS = 10**MICROS_DIGITS - 1
_MAX_TAG = 10**TAG_DIGITS - 1


def item_key(request_id: str) -> tuple[str, str]:
    return f"item#{request_id}", ITEM_SK


def lock_key(conversation_id: str) -> tuple[str, str]:
    return f"conv#{conversation_id}", LOCK_SK


def fair_key(user_id: str) -> tuple[str, str]:
    return f"fair#{user_id}", FAIR_SK


def order_key(tag: int, enqueued_at: float, request_id: str) -> str:
    """Sorts by start tag, then arrival, then id (fixed-width, so text order works)."""
    micros = min(max(int(enqueued_at * 1_000_000), 0), _MAX_MICROS)
    return f"{min(max(tag, 0), _MAX_TAG):0{TAG_DIGITS}d}#{micros:0{MICROS_DIGITS}d}#{request_id}"


def index_pk(state: ItemState) -> str | None:
    """The index partition an item in ``state`` lives in (None once finished)."""
    return {ItemState.QUEUED: WAITING_PK, ItemState.LEASED: LEASED_PK}.get(state)


def item_record(item: QueueItem, expires_at: float | None) -> Item:
    """The stored form of an item."""
    pk, sk = item_key(item.request_id)
    record: Item = {"pk": pk, "sk": sk, **item.model_dump(mode="json")}
    if expires_at is not None:
        record[TTL_ATTRIBUTE] = expires_at
    return record


def parse_item(record: Item) -> QueueItem:
    """The item back from its stored form."""
    fields = {k: v for k, v in record.items() if k not in ("pk", "sk", TTL_ATTRIBUTE)}
    return QueueItem.model_validate(fields)


@dataclass(frozen=True)
class Entry:
    """An index entry: just what picking the next item needs."""

    request_id: str
    user_id: str
    conversation_id: str
    owner_node: str
    order: str
    enqueued_at: float
    not_before: float
    lease_until: float


def index_record(item: QueueItem) -> Item | None:
    """The index entry of an active item (None for a finished one)."""
    pk = index_pk(item.state)
    if pk is None:
        return None
    return {
        "pk": pk,
        "sk": item.order,
        "order": item.order,
        "request_id": item.request_id,
        "user_id": item.user_id,
        "conversation_id": item.conversation_id,
        "owner_node": item.owner_node,
        "enqueued_at": item.enqueued_at,
        "not_before": item.not_before or 0.0,
        "lease_until": item.lease_until or 0.0,
    }


def parse_entry(record: Item) -> Entry:
    return Entry(
        request_id=str(record["request_id"]),
        user_id=str(record["user_id"]),
        conversation_id=str(record["conversation_id"]),
        owner_node=str(record["owner_node"]),
        order=str(record["order"]),
        enqueued_at=_number(record.get("enqueued_at")),
        not_before=_number(record.get("not_before")),
        lease_until=_number(record.get("lease_until")),
    )


def _number(value: Any) -> float:
    return 0.0 if value is None else float(value)
