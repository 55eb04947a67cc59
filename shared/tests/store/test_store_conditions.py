"""Write conditions mean the same on every backend as :func:`evaluate` says.

For each condition and each stored state (item present, missing, present but
expired), a conditional put and a conditional update must succeed exactly
when ``evaluate(condition, live_item)`` is true — on SQLite, moto and
DynamoDB Local alike.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from trollama.common.store.base import ConditionFailed, ItemStore, Table
from trollama.common.store.conditions import (
    And,
    AttrExists,
    AttrNotExists,
    Condition,
    Eq,
    Exists,
    Ge,
    Gt,
    In,
    Le,
    Lt,
    Ne,
    Not,
    NotExists,
    Or,
    evaluate,
)

T = Table.GLOBAL_STATE
ODD_NAME = 'odd name.with#chars :x "q"'
ATTRS: dict[str, Any] = {
    "n": 5,
    "f": 2.5,
    "s": "abc",
    "b": True,
    "z": None,
    "e": "",
    "l": [1, "two"],
    "m": {"k": "v"},
    ODD_NAME: "v",
}
CONDITIONS: list[Condition] = [
    Exists(),
    NotExists(),
    AttrExists("n"),
    AttrExists("missing"),
    AttrNotExists("n"),
    AttrNotExists("missing"),
    Eq("n", 5),
    Eq("n", 5.0),
    Eq("n", 6),
    Eq("f", 2.5),
    Eq("s", "abc"),
    Eq("s", "ABC"),
    Eq("b", True),
    Eq("b", False),
    Eq("z", None),
    Eq("e", ""),
    Eq("l", [1, "two"]),
    Eq("m", {"k": "v"}),
    Eq("missing", None),
    Eq(ODD_NAME, "v"),
    Eq("s", '"; DROP TABLE x; --'),
    Ne("n", 5),
    Ne("n", 6),
    Ne("missing", 1),
    Ne("s", "abc"),
    Lt("n", 6),
    Lt("n", 5),
    Le("n", 5),
    Gt("n", 4),
    Gt("n", 5),
    Ge("n", 5),
    Lt("f", 3),
    Gt("f", 2.4),
    Lt("s", "abd"),
    Gt("s", "abc"),
    Ge("s", "abc"),
    Lt("n", "zzz"),
    Gt("s", 1),
    Lt("missing", 1),
    In("n", [1, 5]),
    In("n", [1, 2]),
    In("s", ["x", "abc"]),
    In("n", []),
    In("missing", [1]),
    And([Exists(), Eq("n", 5)]),
    And([Eq("n", 5), Eq("s", "x")]),
    And([]),
    Or([Eq("n", 1), Eq("s", "abc")]),
    Or([NotExists(), Eq("n", 5)]),
    Or([]),
    Not(Exists()),
    Not(Eq("n", 5)),
    Not(And([Eq("n", 5), NotExists()])),
]
STATES = ("present", "missing", "expired")


def stored(state: str, sk: str) -> dict[str, Any] | None:
    """The item as written for a state (None: nothing written)."""
    if state == "missing":
        return None
    item = {"pk": "cond", "sk": sk, **ATTRS}
    if state == "expired":
        item["expires_at"] = time.time() - 60
    return item


async def outcome(store: ItemStore, write: str, sk: str, condition: Condition) -> bool:
    try:
        if write == "put":
            await store.put(T, {"pk": "cond", "sk": sk, "new": 1}, condition=condition)
        else:
            await store.update(T, "cond", sk, set={"new": 1}, condition=condition)
    except ConditionFailed:
        return False
    return True


@pytest.mark.parametrize("write", ["put", "update"])
async def test_conditions_agree_with_evaluate(store: ItemStore, write: str) -> None:
    cases = [(state, i, c) for state in STATES for i, c in enumerate(CONDITIONS)]
    items = [stored(state, f"{state}-{i}") for state, i, _ in cases]
    await store.batch_put(T, [item for item in items if item is not None])

    # Every case has its own key, so the writes may run concurrently.
    outcomes = await asyncio.gather(
        *(outcome(store, write, f"{state}-{i}", condition) for state, i, condition in cases)
    )

    mismatches = []
    for (state, _, condition), got in zip(cases, outcomes, strict=True):
        live = stored(state, "x") if state == "present" else None
        if got != evaluate(condition, live):
            mismatches.append(f"{state}: {condition!r} should be {not got}")
    assert mismatches == []


async def test_failed_conditions_leave_items_untouched(store: ItemStore) -> None:
    await store.put(T, {"pk": "cond", "sk": "keep", **ATTRS})

    for condition in CONDITIONS:
        if not evaluate(condition, {"pk": "cond", "sk": "keep", **ATTRS}):
            with pytest.raises(ConditionFailed):
                await store.update(T, "cond", "keep", set={"n": 0}, condition=condition)

    assert await store.get(T, "cond", "keep") == {"pk": "cond", "sk": "keep", **ATTRS}
