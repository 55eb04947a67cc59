"""Start-time fair queueing across users, persisted in the store.

Every request costs one unit. The queue keeps a *virtual time* ``V`` (the
largest start tag handed to a worker so far) and each user a *finish tag*
``F[user]`` (one past the start tag of that user's newest request). A new
request of ``user`` gets the start tag ``S = max(V, F[user])`` and moves
``F[user]`` to ``S + 1``; workers take the waiting request with the smallest
tag (arrival time breaks ties).

So a user's burst of 20 requests gets tags ``V .. V+19`` while another user's
single request gets ``V``: it is served right after the request running
now, never behind the whole burst. A user idle for a while restarts at ``V``
and gains no credit for the idle time.

``V`` and ``F`` live in the store, so every brain sharing it computes the same
order. ``F`` is written in the same transaction as the item (guarded by its
old value); ``V`` only ever grows and a lagging ``V`` costs a little fairness,
never correctness.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal

from trollama.brain.queue.keys import META_PK, TABLE, VCLOCK_SK, fair_key
from trollama.common.store.base import TTL_ATTRIBUTE, ConditionFailed, ItemStore, Put
from trollama.common.store.conditions import AttrNotExists, Condition, Eq, Lt, NotExists, Or

#: A user's finish tag is forgotten this long after their last request, in seconds.
FAIR_STATE_TTL_SECONDS = 24 * 3600


def _tag(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return 0
    return max(int(value), 0)


async def virtual_time(store: ItemStore) -> int:
    """The queue's virtual time ``V``."""
    record = await store.get(TABLE, META_PK, VCLOCK_SK)
    return 0 if record is None else _tag(record.get("vtime"))


async def advance_virtual_time(store: ItemStore, tag: int) -> None:
    """Move ``V`` up to ``tag`` (never down); a lost race means it is already higher."""
    guard = Or([AttrNotExists("vtime"), Lt("vtime", tag)])
    # a lost race means another brain already wrote a newer value
    with contextlib.suppress(ConditionFailed):
        await store.update(TABLE, META_PK, VCLOCK_SK, set={"vtime": tag}, condition=guard)


async def start_tag(store: ItemStore, user_id: str) -> tuple[int, Condition]:
    """The start tag for a new request of ``user_id`` and the guard for writing ``F``."""
    keys = [(META_PK, VCLOCK_SK), fair_key(user_id)]
    found = {(r["pk"], r["sk"]): r for r in await store.batch_get(TABLE, keys)}
    clock, fair = found.get(keys[0]), found.get(keys[1])
    vtime = 0 if clock is None else _tag(clock.get("vtime"))
    if fair is None:
        return vtime, NotExists()
    finish = fair.get("finish")
    return max(vtime, _tag(finish)), Eq("finish", finish)


def finish_put(user_id: str, start: int, guard: Condition, now: float) -> Put:
    """The write moving ``F[user_id]`` past a request that starts at ``start``."""
    pk, sk = fair_key(user_id)
    record = {"pk": pk, "sk": sk, "finish": start + 1, TTL_ATTRIBUTE: now + FAIR_STATE_TTL_SECONDS}
    return Put(TABLE, record, condition=guard)
