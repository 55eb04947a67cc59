"""User profiles: every name a user was seen under, and when.

Layout in :attr:`Table.USER_PROFILES`: partition ``user#<id>``, sort key
``profile``. Updated when the user talks to the bot (at most one write per
interaction; none when nothing changed within :data:`TOUCH_SECONDS`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, Field

from trollama.brain.persona.errors import UnknownEntry
from trollama.common.store.base import ConditionFailed, ItemStore, Table
from trollama.common.store.conditions import Eq, NotExists

#: Names remembered per user (the most recently seen are kept).
MAX_NICKNAMES = 20
#: Longest name kept, in characters (Discord allows 32; display names 32).
MAX_NAME_CHARS = 100
#: Seconds during which seeing the same name again is not written.
TOUCH_SECONDS = 3600.0
#: Attempts at a write that raced with another one.
MAX_WRITE_ATTEMPTS = 5

_SK = "profile"


class Nickname(BaseModel):
    name: str
    first_seen: float
    last_seen: float


class UserProfile(BaseModel):
    user_id: str
    nicknames: list[Nickname] = Field(default_factory=list)
    first_seen: float
    last_seen: float

    @property
    def current_name(self) -> str | None:
        if not self.nicknames:
            return None
        return max(self.nicknames, key=lambda n: n.last_seen).name


def user_key(user_id: str) -> str:
    return f"user#{user_id}"


class UserProfiles:
    def __init__(self, store: ItemStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def get(self, user_id: str) -> UserProfile | None:
        item = await self._store.get(Table.USER_PROFILES, user_key(user_id), _SK)
        return _profile(item) if item else None

    async def require(self, user_id: str) -> UserProfile:
        profile = await self.get(user_id)
        if profile is None:
            raise UnknownEntry(f"no user {user_id!r} is known")
        return profile

    async def seen(self, user_id: str, name: str, *, at: float | None = None) -> UserProfile:
        """Record that ``user_id`` was seen as ``name`` (creates the profile)."""
        at = self._clock() if at is None else at
        name = name.strip()[:MAX_NAME_CHARS]
        for _ in range(MAX_WRITE_ATTEMPTS):
            item = await self._store.get(Table.USER_PROFILES, user_key(user_id), _SK)
            profile = _profile(item) if item else None
            updated = _with_name(profile, user_id, name, at)
            if updated is None and profile is not None:
                return profile
            assert updated is not None
            version = int(item.get("version", 0)) if item else 0
            condition = Eq("version", version) if item else NotExists()
            body = {"pk": user_key(user_id), "sk": _SK, "version": version + 1}
            try:
                await self._store.put(
                    Table.USER_PROFILES,
                    {**body, **updated.model_dump(mode="json")},
                    condition=condition,
                )
            except ConditionFailed:
                continue
            return updated
        raise ConditionFailed("the profile kept changing; try again")

    async def delete(self, user_id: str) -> bool:
        return await self._store.delete(Table.USER_PROFILES, user_key(user_id), _SK)


def _with_name(
    profile: UserProfile | None, user_id: str, name: str, at: float
) -> UserProfile | None:
    """The profile with ``name`` seen at ``at``; None when no write is needed."""
    if profile is None:
        nicknames = [Nickname(name=name, first_seen=at, last_seen=at)] if name else []
        return UserProfile(user_id=user_id, nicknames=nicknames, first_seen=at, last_seen=at)
    if not name and at - profile.last_seen < TOUCH_SECONDS:
        return None
    known = next((n for n in profile.nicknames if n.name == name), None)
    if known is not None and at - known.last_seen < TOUCH_SECONDS:
        return None
    nicknames = [n for n in profile.nicknames if n.name != name]
    if name:
        first = known.first_seen if known else at
        nicknames.append(Nickname(name=name, first_seen=first, last_seen=at))
    nicknames.sort(key=lambda n: n.last_seen)
    return profile.model_copy(
        update={"nicknames": nicknames[-MAX_NICKNAMES:], "last_seen": max(at, profile.last_seen)}
    )


def _profile(item: dict[str, object]) -> UserProfile:
    return UserProfile.model_validate(item)
