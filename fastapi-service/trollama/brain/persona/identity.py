"""The bot's identity: core traits, lore, and facts & quirks.

Seeded once from a TOML file on first start (:meth:`IdentityStore.seed`);
from then on the store owns it and admins edit it. Layout in
:attr:`Table.PERSONA`: partition ``identity``, sort key = entry id; the
marker ``identity-meta`` / ``seeded`` records that seeding happened.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from trollama.brain.persona.errors import InvalidEntry, UnknownEntry
from trollama.brain.persona.ids import new_id
from trollama.common.store.base import (
    ConditionFailed,
    ItemStore,
    Put,
    Table,
)
from trollama.common.store.conditions import Exists, NotExists

#: Longest identity entry, in characters.
MAX_IDENTITY_TEXT_CHARS = 500
#: Most identity entries (the whole identity goes into every prompt; seeding writes
#: them and a marker in one transaction, so below ``MAX_TRANSACT_ITEMS``).
MAX_IDENTITY_ENTRIES = 60
#: The identity file shipped with the brain, used when no other is configured.
DEFAULT_IDENTITY_FILE = Path(__file__).with_name("identity.toml")
#: Seconds between the creation times of seeded entries (keeps the file's order:
#: a microsecond step is below a float timestamp's rounding error).
SEED_SPACING_SECONDS = 1e-3

_PK = "identity"
_SEEDED = ("identity-meta", "seeded")


class IdentityKind(StrEnum):
    TRAIT = "trait"
    LORE = "lore"
    FACT = "fact"  # facts & quirks


class IdentityEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    entry_id: str
    kind: IdentityKind
    text: str = Field(min_length=1, max_length=MAX_IDENTITY_TEXT_CHARS)
    created_at: float
    updated_at: float


def checked_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise InvalidEntry("an identity entry needs some text")
    if len(text) > MAX_IDENTITY_TEXT_CHARS:
        raise InvalidEntry(f"an identity entry holds at most {MAX_IDENTITY_TEXT_CHARS} characters")
    return text


def read_identity_file(path: Path) -> list[tuple[IdentityKind, str]]:
    """``traits``, ``lore`` and ``facts`` lists of strings from a TOML file."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    sections = {"traits": IdentityKind.TRAIT, "lore": IdentityKind.LORE, "facts": IdentityKind.FACT}
    entries: list[tuple[IdentityKind, str]] = []
    for section, kind in sections.items():
        values = data.get(section, [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidEntry(f"{path.name}: '{section}' must be a list of strings")
        entries.extend((kind, checked_text(v)) for v in values)
    if len(entries) > MAX_IDENTITY_ENTRIES:
        raise InvalidEntry(f"{path.name}: at most {MAX_IDENTITY_ENTRIES} entries")
    return entries


class IdentityStore:
    def __init__(self, store: ItemStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def entries(self) -> list[IdentityEntry]:
        """Every entry, oldest first."""
        page = await self._store.query(Table.PERSONA, _PK, limit=MAX_IDENTITY_ENTRIES)
        return [_entry(item) for item in page.items]

    async def get(self, entry_id: str) -> IdentityEntry:
        item = await self._store.get(Table.PERSONA, _PK, entry_id)
        if item is None:
            raise UnknownEntry(f"no identity entry {entry_id!r}")
        return _entry(item)

    async def add(self, kind: IdentityKind, text: str) -> IdentityEntry:
        text = checked_text(text)
        if await self._store.count(Table.PERSONA, _PK) >= MAX_IDENTITY_ENTRIES:
            raise InvalidEntry(f"the identity holds at most {MAX_IDENTITY_ENTRIES} entries")
        now = self._clock()
        entry = IdentityEntry(
            entry_id=new_id(now), kind=kind, text=text, created_at=now, updated_at=now
        )
        await self._store.put(Table.PERSONA, _item(entry), condition=NotExists())
        return entry

    async def update(
        self, entry_id: str, *, text: str | None = None, kind: IdentityKind | None = None
    ) -> IdentityEntry:
        changes: dict[str, object] = {"updated_at": self._clock()}
        if text is not None:
            changes["text"] = checked_text(text)
        if kind is not None:
            changes["kind"] = str(kind)
        try:
            item = await self._store.update(
                Table.PERSONA, _PK, entry_id, set=changes, condition=Exists()
            )
        except ConditionFailed:
            raise UnknownEntry(f"no identity entry {entry_id!r}") from None
        return _entry(item)

    async def delete(self, entry_id: str) -> None:
        try:
            await self._store.delete(Table.PERSONA, _PK, entry_id, condition=Exists())
        except ConditionFailed:
            raise UnknownEntry(f"no identity entry {entry_id!r}") from None

    async def seed(self, entries: Sequence[tuple[IdentityKind, str]]) -> bool:
        """Write the initial identity unless it was ever seeded; True when written.

        One transaction holds the marker and the entries: a crash leaves
        either both or neither."""
        if len(entries) > MAX_IDENTITY_ENTRIES:
            raise InvalidEntry(f"the identity holds at most {MAX_IDENTITY_ENTRIES} entries")
        now = self._clock()
        ops = [
            Put(
                Table.PERSONA,
                {"pk": _SEEDED[0], "sk": _SEEDED[1], "at": now},
                condition=NotExists(),
            )
        ]
        for offset, (kind, text) in enumerate(entries):
            at = now + offset * SEED_SPACING_SECONDS
            entry = IdentityEntry(
                entry_id=new_id(at),
                kind=kind,
                text=checked_text(text),
                created_at=at,
                updated_at=at,
            )
            ops.append(Put(Table.PERSONA, _item(entry)))
        try:
            await self._store.transact(ops)
        except ConditionFailed:
            return False
        return True


def _item(entry: IdentityEntry) -> dict[str, object]:
    return {"pk": _PK, "sk": entry.entry_id, **entry.model_dump(mode="json", exclude={"entry_id"})}


def _entry(item: dict[str, object]) -> IdentityEntry:
    return IdentityEntry.model_validate({**item, "entry_id": item["sk"]})
