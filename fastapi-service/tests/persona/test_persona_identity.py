"""The bot's identity repository, on every store backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from trollama.brain.persona.errors import InvalidEntry, UnknownEntry
from trollama.brain.persona.identity import (
    DEFAULT_IDENTITY_FILE,
    MAX_IDENTITY_ENTRIES,
    MAX_IDENTITY_TEXT_CHARS,
    IdentityKind,
    IdentityStore,
    read_identity_file,
)
from trollama.common.store.base import ItemStore
from trollama.testkit.store_fixtures import StoreFactory


class FakeClock:
    """A clock the test moves by hand (epoch seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def write_toml(path: Path, traits: list[str], lore: list[str], facts: list[str]) -> Path:
    def strings(values: list[str]) -> str:
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"

    path.write_text(
        f"traits = {strings(traits)}\nlore = {strings(lore)}\nfacts = {strings(facts)}\n",
        encoding="utf-8",
    )
    return path


async def test_seed_writes_every_entry_in_file_order(store: ItemStore, tmp_path: Path) -> None:
    # a start time where microsecond steps used to round onto the same sort key
    identity = IdentityStore(store, clock=FakeClock(1_700_000_000.0000005))
    traits = [f"trait {n}" for n in range(8)]
    entries = read_identity_file(write_toml(tmp_path / "a.toml", traits, ["born"], ["quirk"]))

    assert await identity.seed(entries) is True

    written = await identity.entries()
    assert [(e.kind, e.text) for e in written] == [
        *((IdentityKind.TRAIT, t) for t in traits),
        (IdentityKind.LORE, "born"),
        (IdentityKind.FACT, "quirk"),
    ]


async def test_second_seed_from_another_file_and_instance_is_a_no_op(
    store_factory: StoreFactory, tmp_path: Path
) -> None:
    first = IdentityStore(store_factory.open())
    second = IdentityStore(store_factory.open())  # another brain process
    await first.seed(read_identity_file(write_toml(tmp_path / "a.toml", ["one"], [], [])))
    before = await first.entries()

    seeded = await second.seed(
        read_identity_file(write_toml(tmp_path / "b.toml", ["two"], ["three"], []))
    )

    assert seeded is False
    assert await second.entries() == before


async def test_seed_after_the_admin_deleted_everything_stays_empty(store: ItemStore) -> None:
    identity = IdentityStore(store)
    await identity.seed([(IdentityKind.TRAIT, "curious")])
    for entry in await identity.entries():
        await identity.delete(entry.entry_id)

    assert await identity.seed([(IdentityKind.TRAIT, "curious")]) is False
    assert await identity.entries() == []


async def test_shipped_identity_file_is_valid() -> None:
    entries = read_identity_file(DEFAULT_IDENTITY_FILE)

    assert entries
    assert {kind for kind, _ in entries} == set(IdentityKind)


async def test_add_get_update_delete(store: ItemStore) -> None:
    clock = FakeClock(1_700_000_000.0)
    identity = IdentityStore(store, clock=clock)
    added = await identity.add(IdentityKind.LORE, "  grew up in a server rack  ")
    assert added.text == "grew up in a server rack"
    assert await identity.get(added.entry_id) == added

    clock.now += 60
    updated = await identity.update(
        added.entry_id, text="moved to the cloud", kind=IdentityKind.FACT
    )

    assert (updated.kind, updated.text) == (IdentityKind.FACT, "moved to the cloud")
    assert (updated.created_at, updated.updated_at) == (added.created_at, clock.now)
    assert await identity.get(added.entry_id) == updated
    await identity.delete(added.entry_id)
    assert await identity.entries() == []


async def test_update_of_kind_only_keeps_the_text(store: ItemStore) -> None:
    identity = IdentityStore(store)
    added = await identity.add(IdentityKind.TRAIT, "patient")

    updated = await identity.update(added.entry_id, kind=IdentityKind.LORE)

    assert (updated.kind, updated.text) == (IdentityKind.LORE, "patient")


async def test_entries_are_oldest_first(store: ItemStore) -> None:
    clock = FakeClock(1_700_000_000.0)
    identity = IdentityStore(store, clock=clock)
    for text in ["first", "second", "third"]:
        await identity.add(IdentityKind.TRAIT, text)
        clock.now += 1

    assert [e.text for e in await identity.entries()] == ["first", "second", "third"]


async def test_unknown_entry_is_refused_everywhere(store: ItemStore) -> None:
    identity = IdentityStore(store)

    with pytest.raises(UnknownEntry, match="no identity entry 'nope'"):
        await identity.get("nope")
    with pytest.raises(UnknownEntry):
        await identity.update("nope", text="anything")
    with pytest.raises(UnknownEntry):
        await identity.delete("nope")
    assert await identity.entries() == []  # the failed update created nothing


async def test_empty_or_oversize_text_is_refused(store: ItemStore) -> None:
    identity = IdentityStore(store)
    kept = await identity.add(IdentityKind.TRAIT, "kept")

    for text in ["", "   ", "x" * (MAX_IDENTITY_TEXT_CHARS + 1)]:
        with pytest.raises(InvalidEntry):
            await identity.add(IdentityKind.TRAIT, text)
        with pytest.raises(InvalidEntry):
            await identity.update(kept.entry_id, text=text)
    assert await identity.entries() == [kept]


async def test_text_of_the_maximum_length_is_accepted(store: ItemStore) -> None:
    identity = IdentityStore(store)

    added = await identity.add(IdentityKind.FACT, "y" * MAX_IDENTITY_TEXT_CHARS)

    assert len((await identity.get(added.entry_id)).text) == MAX_IDENTITY_TEXT_CHARS


async def test_entry_limit(store: ItemStore) -> None:
    identity = IdentityStore(store)
    await identity.seed([(IdentityKind.TRAIT, f"trait {n}") for n in range(MAX_IDENTITY_ENTRIES)])

    with pytest.raises(InvalidEntry, match=f"at most {MAX_IDENTITY_ENTRIES}"):
        await identity.add(IdentityKind.LORE, "one too many")
    assert len(await identity.entries()) == MAX_IDENTITY_ENTRIES


async def test_seed_refuses_more_entries_than_the_limit(store: ItemStore) -> None:
    identity = IdentityStore(store)
    too_many = [(IdentityKind.TRAIT, f"trait {n}") for n in range(MAX_IDENTITY_ENTRIES + 1)]

    with pytest.raises(InvalidEntry):
        await identity.seed(too_many)
    assert await identity.entries() == []
    assert await identity.seed(too_many[:2]) is True


def test_identity_file_with_a_wrong_section_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('traits = "not a list"\n', encoding="utf-8")

    with pytest.raises(InvalidEntry, match="'traits' must be a list of strings"):
        read_identity_file(path)


def test_identity_file_with_too_many_entries_is_refused(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path / "big.toml", [f"t{n}" for n in range(MAX_IDENTITY_ENTRIES + 1)], [], []
    )

    with pytest.raises(InvalidEntry):
        read_identity_file(path)
