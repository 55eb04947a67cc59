"""User profiles and their nickname history, on every store backend."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from trollama.brain.persona.errors import UnknownEntry
from trollama.brain.persona.profiles import (
    MAX_NAME_CHARS,
    MAX_NICKNAMES,
    MAX_WRITE_ATTEMPTS,
    TOUCH_SECONDS,
    UserProfiles,
    user_key,
)
from trollama.common.store.base import ItemStore, Table
from trollama.testkit.racing import RacingStore
from trollama.testkit.store_fixtures import StoreFactory

T0 = 1_700_000_000.0


async def version_of(store: ItemStore, user_id: str) -> int:
    item = await store.get(Table.USER_PROFILES, user_key(user_id), "profile")
    assert item is not None
    return int(item["version"])


async def test_unknown_user(store: ItemStore) -> None:
    profiles = UserProfiles(store)

    assert await profiles.get("42") is None
    with pytest.raises(UnknownEntry, match="no user '42'"):
        await profiles.require("42")


async def test_first_sighting_creates_the_profile(store: ItemStore) -> None:
    profiles = UserProfiles(store)

    created = await profiles.seen("42", "  Alice ", at=T0)

    assert await profiles.require("42") == created
    assert created.current_name == "Alice"
    assert (created.first_seen, created.last_seen) == (T0, T0)
    assert [(n.name, n.first_seen, n.last_seen) for n in created.nicknames] == [("Alice", T0, T0)]


async def test_nickname_history_keeps_first_and_last_seen(store: ItemStore) -> None:
    profiles = UserProfiles(store)
    await profiles.seen("42", "Alice", at=T0)
    await profiles.seen("42", "Bob", at=T0 + 2 * TOUCH_SECONDS)

    profile = await profiles.seen("42", "Alice", at=T0 + 5 * TOUCH_SECONDS)

    assert profile.current_name == "Alice"
    history = {n.name: (n.first_seen, n.last_seen) for n in profile.nicknames}
    assert history == {
        "Alice": (T0, T0 + 5 * TOUCH_SECONDS),
        "Bob": (T0 + 2 * TOUCH_SECONDS, T0 + 2 * TOUCH_SECONDS),
    }
    assert (profile.first_seen, profile.last_seen) == (T0, T0 + 5 * TOUCH_SECONDS)
    assert await profiles.get("42") == profile


async def test_same_name_within_touch_seconds_writes_nothing(store: ItemStore) -> None:
    profiles = UserProfiles(store)
    first = await profiles.seen("42", "Alice", at=T0)
    version = await version_of(store, "42")

    again = await profiles.seen("42", "Alice", at=T0 + TOUCH_SECONDS - 1)

    assert again == first
    assert await version_of(store, "42") == version
    later = await profiles.seen("42", "Alice", at=T0 + TOUCH_SECONDS)
    assert later.last_seen == T0 + TOUCH_SECONDS
    assert await version_of(store, "42") == version + 1


async def test_new_name_within_touch_seconds_is_written(store: ItemStore) -> None:
    profiles = UserProfiles(store)
    await profiles.seen("42", "Alice", at=T0)

    profile = await profiles.seen("42", "Alicia", at=T0 + 1)

    assert profile.current_name == "Alicia"
    assert await version_of(store, "42") == 2


async def test_empty_name_within_touch_seconds_writes_nothing(store: ItemStore) -> None:
    profiles = UserProfiles(store)
    await profiles.seen("42", "Alice", at=T0)

    await profiles.seen("42", "   ", at=T0 + 1)

    assert await version_of(store, "42") == 1
    profile = await profiles.seen("42", "", at=T0 + TOUCH_SECONDS)
    assert profile.last_seen == T0 + TOUCH_SECONDS
    assert [n.name for n in profile.nicknames] == ["Alice"]


async def test_long_names_are_cut(store: ItemStore) -> None:
    profile = await UserProfiles(store).seen("42", "n" * (MAX_NAME_CHARS + 50), at=T0)

    assert profile.current_name == "n" * MAX_NAME_CHARS


async def test_history_keeps_the_most_recent_names(store: ItemStore) -> None:
    profiles = UserProfiles(store)
    total = MAX_NICKNAMES + 5
    for n in range(total):
        await profiles.seen("42", f"name {n}", at=T0 + n)

    profile = await profiles.require("42")

    assert [n.name for n in profile.nicknames] == [f"name {n}" for n in range(5, total)]
    assert profile.first_seen == T0  # the profile remembers its first sighting


async def test_users_are_separate(store: ItemStore) -> None:
    profiles = UserProfiles(store)
    await profiles.seen("1", "Alice", at=T0)
    await profiles.seen("2", "Bob", at=T0)

    assert (await profiles.require("1")).current_name == "Alice"
    assert await profiles.delete("1") is True
    assert await profiles.get("1") is None
    assert await profiles.delete("1") is False
    assert (await profiles.require("2")).current_name == "Bob"


async def test_concurrent_sightings_all_land(store_factory: StoreFactory) -> None:
    # each writer loses at most one race to each other writer, so this many always land
    names = [f"name {n}" for n in range(MAX_WRITE_ATTEMPTS)]
    racers = [RacingStore(store_factory.open()) for _ in names]
    replicas = [UserProfiles(cast(ItemStore, r)) for r in racers]
    await replicas[0].seen("42", "origin", at=T0)

    await asyncio.gather(
        *(
            p.seen("42", name, at=T0 + 1 + n)
            for n, (p, name) in enumerate(zip(replicas, names, strict=True))
        )
    )

    assert sum(r.refused for r in racers) > 0  # the writers did race
    profile = await replicas[0].require("42")
    assert sorted(n.name for n in profile.nicknames) == sorted(["origin", *names])
    assert await version_of(store_factory.open(), "42") == 1 + len(names)
