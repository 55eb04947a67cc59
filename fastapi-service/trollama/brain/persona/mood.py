"""The bot's daily mood: a few numbers in the global state that drift once a day.

Keys: ``daily_mood_anger``, ``daily_mood_energy``, ``daily_mood_cheer`` (0–10)
and ``daily_mood_date`` (the day they were last drifted, ``YYYY-MM-DD``).
Each day every value moves by at most :data:`MAX_DAILY_STEP`, pulled gently
back toward its baseline so the mood wanders without getting stuck at an
extreme. Admins may set the values by hand (they then drift from there).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from trollama.brain.persona.state import GlobalState

MOOD_MIN, MOOD_MAX = 0.0, 10.0
#: Largest change of one mood value from one day to the next.
MAX_DAILY_STEP = 2.0
#: Share of the distance to the baseline recovered each day.
BASELINE_PULL = 0.2
BASELINES: Final[Mapping[str, float]] = {"anger": 2.0, "energy": 6.0, "cheer": 6.0}
DATE_KEY = "daily_mood_date"


def mood_key(name: str) -> str:
    return f"daily_mood_{name}"


@dataclass(frozen=True)
class Mood:
    anger: float
    energy: float
    cheer: float
    date: str | None

    def describe(self) -> str:
        """The mood in words, for prompts."""
        return ", ".join(
            (
                _scale(self.anger, ("calm", "a little irritable", "grumpy", "openly annoyed")),
                _scale(self.energy, ("sleepy", "relaxed", "lively", "bursting with energy")),
                _scale(self.cheer, ("gloomy", "a bit flat", "cheerful", "delighted")),
            )
        )


def _scale(value: float, words: tuple[str, str, str, str]) -> str:
    index = min(len(words) - 1, int(value / (MOOD_MAX / len(words))))
    return words[index]


def _number(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return min(MOOD_MAX, max(MOOD_MIN, float(value)))


async def read_mood(state: GlobalState) -> Mood:
    values = await state.items()
    numbers = {
        name: _number(values.get(mood_key(name)), baseline) for name, baseline in BASELINES.items()
    }
    date = values.get(DATE_KEY)
    return Mood(**numbers, date=date if isinstance(date, str) else None)


def drifted(mood: Mood, rng: random.Random) -> dict[str, float]:
    """Tomorrow's values: a random step, pulled toward the baseline, clamped."""
    values: dict[str, float] = {}
    for name, baseline in BASELINES.items():
        current = float(getattr(mood, name))
        step = rng.uniform(-MAX_DAILY_STEP, MAX_DAILY_STEP) + BASELINE_PULL * (baseline - current)
        step = max(-MAX_DAILY_STEP, min(MAX_DAILY_STEP, step))
        values[name] = round(min(MOOD_MAX, max(MOOD_MIN, current + step)), 2)
    return values


async def drift_mood(state: GlobalState, today: str, rng: random.Random) -> Mood:
    """Drift once per day: a second call on the same ``today`` changes nothing."""
    mood = await read_mood(state)
    if mood.date == today:
        return mood
    values = drifted(mood, rng)
    await state.set_many({**{mood_key(k): v for k, v in values.items()}, DATE_KEY: today})
    return Mood(**values, date=today)
