"""Global bot state: key → value (the daily mood and anything an admin adds).

Layout in :attr:`Table.GLOBAL_STATE`: partition ``state``, sort key = the key.
(Other partitions of that table belong to other parts of the brain, such as
the maintenance mode.)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from trollama.brain.persona.errors import InvalidEntry, UnknownEntry
from trollama.common.store.base import ConditionFailed, ItemStore, Table
from trollama.common.store.conditions import Exists

StateValue = str | int | float | bool
#: Keys: lower-case letters, digits, ``_ . : -``; at most 64 characters.
KEY_PATTERN = re.compile(r"^[a-z0-9_.:-]{1,64}$")
#: Longest text value, in characters.
MAX_STATE_TEXT_CHARS = 500
#: Most keys (the whole state is read at once).
MAX_STATE_KEYS = 200

_PK = "state"


def checked_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key):  # match() would let a trailing newline through
        raise InvalidEntry(
            "a state key has 1-64 characters: lower-case letters, digits, '_', '.', ':', '-'"
        )
    return key


def checked_value(value: StateValue) -> StateValue:
    if isinstance(value, str) and len(value) > MAX_STATE_TEXT_CHARS:
        raise InvalidEntry(f"a state value holds at most {MAX_STATE_TEXT_CHARS} characters")
    return value


class GlobalState:
    def __init__(self, store: ItemStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def items(self) -> dict[str, StateValue]:
        page = await self._store.query(Table.GLOBAL_STATE, _PK, limit=MAX_STATE_KEYS)
        return {str(item["sk"]): item["value"] for item in page.items}

    async def get(self, key: str) -> StateValue | None:
        item = await self._store.get(Table.GLOBAL_STATE, _PK, checked_key(key))
        return item["value"] if item else None

    async def require(self, key: str) -> StateValue:
        value = await self.get(key)
        if value is None:
            raise UnknownEntry(f"no state key {key!r}")
        return value

    async def set(self, key: str, value: StateValue) -> None:
        """Create or replace ``key`` (a new key is refused once there are
        :data:`MAX_STATE_KEYS`: :meth:`items` would not see it)."""
        key, value = checked_key(key), checked_value(value)
        if await self._is_full() and await self._is_new(key):
            raise InvalidEntry(f"the state holds at most {MAX_STATE_KEYS} keys")
        await self._store.put(
            Table.GLOBAL_STATE,
            {"pk": _PK, "sk": key, "value": value, "updated_at": self._clock()},
        )

    async def _is_full(self) -> bool:
        return await self._store.count(Table.GLOBAL_STATE, _PK) >= MAX_STATE_KEYS

    async def _is_new(self, key: str) -> bool:
        return await self._store.get(Table.GLOBAL_STATE, _PK, key) is None

    async def set_many(self, values: dict[str, StateValue]) -> None:
        for key, value in values.items():
            await self.set(key, value)

    async def delete(self, key: str) -> None:
        try:
            await self._store.delete(Table.GLOBAL_STATE, _PK, checked_key(key), condition=Exists())
        except ConditionFailed:
            raise UnknownEntry(f"no state key {key!r}") from None
