"""How the bot feels about each user: anger, rapport, trust (0–10) and
formality (−5 very casual … +5 very formal).

Layout in :attr:`Table.RELATIONSHIPS`: partition ``user#<id>``, sort key
``relationship``. A user never seen has the defaults. After each interaction
:meth:`Relationships.nudge` moves the values by small steps (see
:mod:`.tone`), clamped to their ranges; an admin may set them directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from trollama.brain.persona.errors import InvalidEntry
from trollama.brain.persona.profiles import user_key
from trollama.common.store.base import ConditionFailed, ItemStore, Table
from trollama.common.store.conditions import Eq, NotExists

#: (lowest, highest, default) of each metric.
RANGES: Final[Mapping[str, tuple[float, float, float]]] = {
    "anger": (0.0, 10.0, 0.0),
    "rapport": (0.0, 10.0, 5.0),
    "trust": (0.0, 10.0, 5.0),
    "formality": (-5.0, 5.0, 0.0),
}
METRICS: Final = tuple(RANGES)
#: Attempts at a nudge that raced with another write.
MAX_WRITE_ATTEMPTS = 5
_SK = "relationship"


class Relationship(BaseModel):
    user_id: str
    anger: float = Field(default=RANGES["anger"][2], ge=0, le=10)
    rapport: float = Field(default=RANGES["rapport"][2], ge=0, le=10)
    trust: float = Field(default=RANGES["trust"][2], ge=0, le=10)
    formality: float = Field(default=RANGES["formality"][2], ge=-5, le=5)
    interactions: int = Field(default=0, ge=0)
    updated_at: float | None = None


class RelationshipChange(BaseModel):
    """An admin's new values (unset fields keep theirs)."""

    model_config = ConfigDict(extra="forbid")

    anger: float | None = Field(default=None, ge=0, le=10)
    rapport: float | None = Field(default=None, ge=0, le=10)
    trust: float | None = Field(default=None, ge=0, le=10)
    formality: float | None = Field(default=None, ge=-5, le=5)


def clamp(metric: str, value: float) -> float:
    low, high, _ = RANGES[metric]
    return round(min(high, max(low, value)), 2)


class Relationships:
    def __init__(self, store: ItemStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def get(self, user_id: str) -> Relationship:
        item = await self._store.get(Table.RELATIONSHIPS, user_key(user_id), _SK)
        return Relationship.model_validate(item) if item else Relationship(user_id=user_id)

    async def set(self, user_id: str, change: RelationshipChange) -> Relationship:
        values = change.model_dump(exclude_none=True)
        if not values:
            raise InvalidEntry("nothing to change: give anger, rapport, trust or formality")
        return await self._write(user_id, lambda current: current.model_copy(update=values))

    async def nudge(self, user_id: str, deltas: Mapping[str, float]) -> Relationship:
        """Move each metric by its delta (clamped) and count one interaction."""

        def apply(current: Relationship) -> Relationship:
            values = {
                metric: clamp(metric, getattr(current, metric) + deltas.get(metric, 0.0))
                for metric in METRICS
            }
            return current.model_copy(update={**values, "interactions": current.interactions + 1})

        return await self._write(user_id, apply)

    async def reset(self, user_id: str) -> bool:
        return await self._store.delete(Table.RELATIONSHIPS, user_key(user_id), _SK)

    async def _write(
        self, user_id: str, change: Callable[[Relationship], Relationship]
    ) -> Relationship:
        for _ in range(MAX_WRITE_ATTEMPTS):
            item = await self._store.get(Table.RELATIONSHIPS, user_key(user_id), _SK)
            current = Relationship.model_validate(item) if item else Relationship(user_id=user_id)
            updated = Relationship.model_validate(
                change(current).model_dump() | {"updated_at": self._clock()}
            )
            version = int(item.get("version", 0)) if item else 0
            try:
                await self._store.put(
                    Table.RELATIONSHIPS,
                    {
                        "pk": user_key(user_id),
                        "sk": _SK,
                        "version": version + 1,
                        **updated.model_dump(mode="json"),
                    },
                    condition=Eq("version", version) if item else NotExists(),
                )
            except ConditionFailed:
                continue
            return updated
        raise ConditionFailed("the relationship kept changing; try again")
