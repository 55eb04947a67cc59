"""Global state and the daily mood drawn from it, on every store backend."""

from __future__ import annotations

import random
import statistics
from datetime import date, timedelta

import pytest

from trollama.brain.persona import state as state_module
from trollama.brain.persona.errors import InvalidEntry, UnknownEntry
from trollama.brain.persona.mood import (
    BASELINES,
    DATE_KEY,
    MAX_DAILY_STEP,
    MOOD_MAX,
    MOOD_MIN,
    Mood,
    drift_mood,
    drifted,
    mood_key,
    read_mood,
)
from trollama.brain.persona.state import MAX_STATE_TEXT_CHARS, GlobalState, StateValue
from trollama.common.store.base import ItemStore, Table

#: Days the pure drift runs for (no store involved).
LONG_RUN_DAYS = 2000
#: Days the stored drift runs for.
STORED_DAYS = 6
#: Float noise allowed on top of the step bound.
EPSILON = 1e-9


def days(count: int, start: date = date(2024, 1, 1)) -> list[str]:
    return [(start + timedelta(days=n)).isoformat() for n in range(count)]


# ---------------------------------------------------------------- global state


async def test_set_get_items_delete(store: ItemStore) -> None:
    state = GlobalState(store)
    values: dict[str, StateValue] = {
        "motto": "stay curious",
        "counter": 3,
        "ratio": 2.5,
        "enabled": True,
        "off": False,
    }
    for key, value in values.items():
        await state.set(key, value)

    for key, value in values.items():
        got = await state.get(key)
        assert (got, type(got)) == (value, type(value))
    assert await state.items() == values
    await state.delete("counter")
    assert await state.get("counter") is None
    assert "counter" not in await state.items()


async def test_set_replaces_the_value(store: ItemStore) -> None:
    state = GlobalState(store)
    await state.set("motto", "one")

    await state.set("motto", "two")

    assert await state.require("motto") == "two"
    assert await state.items() == {"motto": "two"}


async def test_unknown_key(store: ItemStore) -> None:
    state = GlobalState(store)

    assert await state.get("nothing") is None
    with pytest.raises(UnknownEntry, match="no state key 'nothing'"):
        await state.require("nothing")
    with pytest.raises(UnknownEntry):
        await state.delete("nothing")


async def test_falsy_values_are_values(store: ItemStore) -> None:
    state = GlobalState(store)
    await state.set("zero", 0)
    await state.set("empty", "")

    assert await state.require("zero") == 0
    assert await state.require("empty") == ""


async def test_bad_keys_are_refused(store: ItemStore) -> None:
    state = GlobalState(store)

    for key in ["", "Upper", "with space", "a/b", "ümlaut", "k" * 65, "x\n"]:
        with pytest.raises(InvalidEntry, match="1-64 characters"):
            await state.set(key, "value")
        with pytest.raises(InvalidEntry):
            await state.get(key)
        with pytest.raises(InvalidEntry):
            await state.delete(key)
    assert await state.items() == {}


async def test_key_characters_and_length_at_the_limit(store: ItemStore) -> None:
    state = GlobalState(store)
    keys = ["a_b.c:d-e9", "k" * 64]

    for key in keys:
        await state.set(key, 1)

    assert sorted(await state.items()) == sorted(keys)


async def test_value_size(store: ItemStore) -> None:
    state = GlobalState(store)
    await state.set("long", "v" * MAX_STATE_TEXT_CHARS)

    with pytest.raises(InvalidEntry, match=f"at most {MAX_STATE_TEXT_CHARS}"):
        await state.set("long", "v" * (MAX_STATE_TEXT_CHARS + 1))
    assert await state.require("long") == "v" * MAX_STATE_TEXT_CHARS


async def test_key_limit_refuses_new_keys_only(
    store: ItemStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_module, "MAX_STATE_KEYS", 2)
    state = GlobalState(store)
    await state.set("one", 1)
    await state.set("two", 2)

    with pytest.raises(InvalidEntry, match="at most 2 keys"):
        await state.set("three", 3)
    await state.set("two", 22)  # replacing is not adding
    assert await state.items() == {"one": 1, "two": 22}


async def test_items_leave_other_partitions_alone(store: ItemStore) -> None:
    await store.put(Table.GLOBAL_STATE, {"pk": "maintenance", "sk": "mode", "value": "on"})
    state = GlobalState(store)
    await state.set("mode", "off")

    assert await state.items() == {"mode": "off"}


# ---------------------------------------------------------------- mood


async def test_mood_starts_at_the_baselines(store: ItemStore) -> None:
    mood = await read_mood(GlobalState(store))

    assert mood == Mood(**BASELINES, date=None)


async def test_mood_ignores_values_that_are_not_numbers(store: ItemStore) -> None:
    state = GlobalState(store)
    await state.set(mood_key("anger"), "furious")
    await state.set(mood_key("energy"), True)
    await state.set(mood_key("cheer"), 25)
    await state.set(DATE_KEY, 7)

    mood = await read_mood(state)

    assert mood == Mood(
        anger=BASELINES["anger"], energy=BASELINES["energy"], cheer=MOOD_MAX, date=None
    )


async def test_drift_once_per_day(store: ItemStore) -> None:
    state = GlobalState(store)
    today, tomorrow = days(2)

    drifted_mood = await drift_mood(state, today, random.Random(1))
    again = await drift_mood(state, today, random.Random(2))

    assert drifted_mood.date == today
    assert (drifted_mood.anger, drifted_mood.energy, drifted_mood.cheer) != tuple(
        BASELINES.values()
    )
    assert again == drifted_mood
    assert await read_mood(state) == drifted_mood
    assert (await drift_mood(state, tomorrow, random.Random(2))).date == tomorrow


async def test_drift_starts_from_values_an_admin_set(store: ItemStore) -> None:
    state = GlobalState(store)
    await state.set(mood_key("anger"), 9.0)

    mood = await drift_mood(state, days(1)[0], random.Random(7))

    assert abs(mood.anger - 9.0) <= MAX_DAILY_STEP + EPSILON


async def test_stored_drift_stays_bounded(store: ItemStore) -> None:
    state = GlobalState(store)
    rng = random.Random(3)
    previous = await read_mood(state)

    for day in days(STORED_DAYS):
        mood = await drift_mood(state, day, rng)
        assert await read_mood(state) == mood
        for name in BASELINES:
            assert abs(getattr(mood, name) - getattr(previous, name)) <= MAX_DAILY_STEP + EPSILON
        previous = mood


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_long_drift_is_bounded_and_wanders_around_the_baseline(seed: int) -> None:
    rng = random.Random(seed)
    mood = Mood(anger=MOOD_MAX, energy=MOOD_MIN, cheer=MOOD_MAX, date=None)  # extremes
    history: dict[str, list[float]] = {name: [] for name in BASELINES}

    for _ in range(LONG_RUN_DAYS):
        values = drifted(mood, rng)
        for name, value in values.items():
            assert MOOD_MIN <= value <= MOOD_MAX
            assert abs(value - getattr(mood, name)) <= MAX_DAILY_STEP + EPSILON
            history[name].append(value)
        mood = Mood(**values, date=None)

    for name, baseline in BASELINES.items():
        assert abs(statistics.fmean(history[name]) - baseline) < 1.0
        assert len(set(history[name])) > LONG_RUN_DAYS // 4  # it keeps moving
        assert min(history[name]) < baseline < max(history[name])


def test_same_seed_same_drift() -> None:
    mood = Mood(**BASELINES, date=None)

    assert drifted(mood, random.Random(5)) == drifted(mood, random.Random(5))


@pytest.mark.parametrize(
    ("mood", "words"),
    [
        (Mood(0, 0, 0, None), "calm, sleepy, gloomy"),
        (Mood(10, 10, 10, None), "openly annoyed, bursting with energy, delighted"),
        (Mood(2.0, 6.0, 6.0, None), "calm, lively, cheerful"),
    ],
)
def test_describe(mood: Mood, words: str) -> None:
    assert mood.describe() == words
