"""Per-user preferences kept by the brain (so every client shares them).

Today: the model a user chose instead of the router's pick (Discord ``/model``,
the web chat's model picker). A request's own ``model_override`` wins over it.
"""

from __future__ import annotations

from trollama.common.store.base import ItemStore, Table

_SORT_KEY = "preferences"


def _key(user_id: str) -> str:
    return f"user#{user_id}"


class UserPreferences:
    def __init__(self, store: ItemStore) -> None:
        self._store = store

    async def model(self, user_id: str) -> str | None:
        """The user's chosen model, or None to let the router choose."""
        item = await self._store.get(Table.USERS, _key(user_id), _SORT_KEY)
        value = item.get("model_override") if item else None
        return value if isinstance(value, str) else None

    async def set_model(self, user_id: str, model: str | None) -> None:
        """Choose a model (None goes back to automatic routing)."""
        if model is None:
            await self._store.update(
                Table.USERS, _key(user_id), _SORT_KEY, remove=("model_override",)
            )
        else:
            await self._store.update(
                Table.USERS, _key(user_id), _SORT_KEY, set={"model_override": model}
            )
