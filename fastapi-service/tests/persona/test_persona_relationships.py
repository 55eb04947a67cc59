"""How the bot feels about each user, on every store backend."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from pydantic import ValidationError

from trollama.brain.persona.errors import InvalidEntry
from trollama.brain.persona.relationships import (
    MAX_WRITE_ATTEMPTS,
    METRICS,
    RANGES,
    Relationship,
    RelationshipChange,
    Relationships,
)
from trollama.common.store.base import ItemStore
from trollama.testkit.racing import RacingStore
from trollama.testkit.store_fixtures import StoreFactory

T0 = 1_700_000_000.0
#: Nudges of :data:`BIG_STEP` that take every metric far past its bounds.
MANY_STEPS = 12
BIG_STEP = 1.5


class FakeClock:
    """A clock the test moves by hand (epoch seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def values(relationship: Relationship) -> dict[str, float]:
    return {metric: getattr(relationship, metric) for metric in METRICS}


def defaults() -> dict[str, float]:
    return {metric: default for metric, (_, _, default) in RANGES.items()}


async def test_unknown_user_has_the_defaults_and_nothing_is_written(store: ItemStore) -> None:
    relationships = Relationships(store)

    first = await relationships.get("42")

    assert values(first) == defaults()
    assert (first.user_id, first.interactions, first.updated_at) == ("42", 0, None)
    assert await relationships.reset("42") is False  # get stored nothing


async def test_nudge_moves_by_the_deltas_and_counts_the_interaction(store: ItemStore) -> None:
    clock = FakeClock(T0)
    relationships = Relationships(store, clock=clock)

    nudged = await relationships.nudge("42", {"rapport": 0.25, "anger": -1.0, "formality": -0.5})

    assert values(nudged) == {"anger": 0.0, "rapport": 5.25, "trust": 5.0, "formality": -0.5}
    assert (nudged.interactions, nudged.updated_at) == (1, T0)
    assert await relationships.get("42") == nudged


async def test_nudge_ignores_unknown_metrics(store: ItemStore) -> None:
    nudged = await Relationships(store).nudge("42", {"love": 3.0})

    assert values(nudged) == defaults()
    assert nudged.interactions == 1


@pytest.mark.parametrize("direction", [1.0, -1.0])
async def test_nudges_stop_at_the_bounds(store: ItemStore, direction: float) -> None:
    relationships = Relationships(store)
    step = {metric: direction * BIG_STEP for metric in METRICS}

    for _ in range(MANY_STEPS):
        latest = await relationships.nudge("42", step)

    bound = 1 if direction > 0 else 0
    assert values(latest) == {metric: RANGES[metric][bound] for metric in METRICS}
    assert latest.interactions == MANY_STEPS
    back = await relationships.nudge("42", {metric: -direction for metric in METRICS})
    assert all(
        getattr(back, m) == RANGES[m][bound] - direction for m in METRICS
    )  # one step back from the bound, not from beyond it


async def test_concurrent_nudges_are_all_counted(store_factory: StoreFactory) -> None:
    # each writer loses at most one race to each other writer, so this many always land
    racers = [RacingStore(store_factory.open()) for _ in range(MAX_WRITE_ATTEMPTS)]
    replicas = [Relationships(cast(ItemStore, r)) for r in racers]
    rounds = 3

    for _ in range(rounds):
        await asyncio.gather(*(r.nudge("42", {"rapport": 0.1}) for r in replicas))

    assert sum(r.refused for r in racers) > 0  # the writers did race
    final = await replicas[0].get("42")
    assert final.interactions == rounds * len(replicas)
    assert final.rapport == pytest.approx(5.0 + 0.1 * rounds * len(replicas))


async def test_admin_set_changes_only_the_given_values(store: ItemStore) -> None:
    relationships = Relationships(store)
    await relationships.nudge("42", {"trust": 1.0})

    changed = await relationships.set("42", RelationshipChange(anger=10, formality=-5))

    assert values(changed) == {"anger": 10.0, "rapport": 5.0, "trust": 6.0, "formality": -5.0}
    assert changed.interactions == 1  # setting is not an interaction
    assert await relationships.get("42") == changed


async def test_admin_set_with_nothing_is_refused(store: ItemStore) -> None:
    relationships = Relationships(store)

    with pytest.raises(InvalidEntry, match="nothing to change"):
        await relationships.set("42", RelationshipChange())
    assert await relationships.reset("42") is False


@pytest.mark.parametrize(
    "body",
    [
        {"anger": 10.5},
        {"rapport": -0.1},
        {"trust": 11},
        {"formality": 5.5},
        {"formality": -6},
        {"love": 3},
        {"anger": "very"},
    ],
)
def test_admin_values_out_of_range_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RelationshipChange.model_validate(body)


def test_admin_values_at_the_bounds_are_accepted() -> None:
    change = RelationshipChange.model_validate(
        {"anger": 0, "rapport": 10, "trust": 0, "formality": -5}
    )

    assert change.model_dump() == {"anger": 0, "rapport": 10, "trust": 0, "formality": -5}


async def test_reset_returns_to_the_defaults(store: ItemStore) -> None:
    relationships = Relationships(store)
    await relationships.set("42", RelationshipChange(anger=9))
    await relationships.nudge("43", {"anger": 1.0})

    assert await relationships.reset("42") is True

    fresh = await relationships.get("42")
    assert (values(fresh), fresh.interactions) == (defaults(), 0)
    assert (await relationships.get("43")).anger == 1.0
    again = await relationships.nudge("42", {"anger": 1.0})
    assert (again.anger, again.interactions) == (1.0, 1)
