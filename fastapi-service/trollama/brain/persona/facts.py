"""Long-term memory: facts about each user.

Layout in :attr:`Table.MEMORY_FACTS`: partition ``user#<id>``, sort key
``fact#<fact id>`` (ids sort by creation time). A fact that a newer one
contradicts is not deleted: its ``superseded_by`` names the newer fact, and
prompts leave it out. ``embedding`` (base64 float32, see :mod:`.vectors`) is
what consolidation compares new facts with and what prompts rank facts by.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from trollama.brain.persona.errors import InvalidEntry, UnknownEntry
from trollama.brain.persona.ids import new_id
from trollama.brain.persona.profiles import user_key
from trollama.common.store.base import (
    MAX_TRANSACT_ITEMS,
    ConditionFailed,
    Delete,
    ItemStore,
    Put,
    Table,
    Update,
)
from trollama.common.store.conditions import Exists, NotExists

#: Longest fact, in characters (a fact is one sentence, not a document).
MAX_FACT_CHARS = 300
#: Longest category name, in characters.
MAX_CATEGORY_CHARS = 40
#: Source message ids kept per fact (the most recent).
MAX_SOURCE_IDS = 20
#: Most facts kept per user (also bounds every read of a user's facts).
MAX_FACTS_PER_USER = 2000
DEFAULT_CATEGORY = "general"

_PREFIX = "fact#"
#: Sort key of the item counting every change to a user's facts.
_VERSION_SK = "facts-version"


class MemoryFact(BaseModel):
    fact_id: str
    user_id: str
    fact: str = Field(min_length=1, max_length=MAX_FACT_CHARS)
    category: str = Field(default=DEFAULT_CATEGORY, max_length=MAX_CATEGORY_CHARS)
    first_mentioned: float
    last_mentioned: float
    reference_count: int = Field(default=1, ge=0)
    source_message_ids: list[str] = Field(default_factory=list)
    superseded_by: str | None = None
    #: base64 float32 vector (not shown to users); None until embedded.
    embedding: str | None = None
    embedding_model: str | None = None

    @property
    def active(self) -> bool:
        return self.superseded_by is None


def checked_fact(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise InvalidEntry("a memory fact needs some text")
    if len(text) > MAX_FACT_CHARS:
        raise InvalidEntry(f"a memory fact holds at most {MAX_FACT_CHARS} characters")
    return text


def checked_category(category: str | None) -> str:
    category = (category or DEFAULT_CATEGORY).strip().lower() or DEFAULT_CATEGORY
    return category[:MAX_CATEGORY_CHARS]


def new_fact(
    user_id: str,
    text: str,
    *,
    at: float,
    category: str | None = None,
    source_message_ids: Sequence[str] = (),
    embedding: str | None = None,
    embedding_model: str | None = None,
) -> MemoryFact:
    return MemoryFact(
        fact_id=new_id(at),
        user_id=user_id,
        fact=checked_fact(text),
        category=checked_category(category),
        first_mentioned=at,
        last_mentioned=at,
        reference_count=1,
        source_message_ids=list(source_message_ids)[-MAX_SOURCE_IDS:],
        embedding=embedding,
        embedding_model=embedding_model,
    )


def fact_sk(fact_id: str) -> str:
    return _PREFIX + fact_id


def put_op(fact: MemoryFact) -> Put:
    """Insert a new fact (fails if the id exists)."""
    return Put(Table.MEMORY_FACTS, _item(fact), condition=NotExists())


def reinforce_op(fact: MemoryFact, at: float, source_message_ids: Sequence[str]) -> Update:
    """Mentioned again: newer last-mentioned, one more reference, sources appended."""
    sources = [*fact.source_message_ids, *source_message_ids][-MAX_SOURCE_IDS:]
    return Update(
        Table.MEMORY_FACTS,
        user_key(fact.user_id),
        fact_sk(fact.fact_id),
        set={"last_mentioned": max(at, fact.last_mentioned), "source_message_ids": sources},
        add={"reference_count": 1},
        condition=Exists(),
    )


def bump_op(user_id: str) -> Update:
    """Count one change to the user's facts (once per transaction: readers that
    keep decoded facts compare this number to know they are still current)."""
    return Update(Table.MEMORY_FACTS, user_key(user_id), _VERSION_SK, add={"version": 1})


def supersede_op(old: MemoryFact, newer_fact_id: str) -> Update:
    return Update(
        Table.MEMORY_FACTS,
        user_key(old.user_id),
        fact_sk(old.fact_id),
        set={"superseded_by": newer_fact_id},
        condition=Exists(),
    )


class MemoryFacts:
    def __init__(self, store: ItemStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def facts(self, user_id: str, *, include_superseded: bool = False) -> list[MemoryFact]:
        """The user's facts, oldest first (at most :data:`MAX_FACTS_PER_USER`)."""
        page = await self._store.query(
            Table.MEMORY_FACTS, user_key(user_id), sk_prefix=_PREFIX, limit=MAX_FACTS_PER_USER
        )
        facts = [_fact(item) for item in page.items]
        return facts if include_superseded else [f for f in facts if f.active]

    async def version(self, user_id: str) -> int:
        """How many times the user's facts changed (0 when never)."""
        item = await self._store.get(Table.MEMORY_FACTS, user_key(user_id), _VERSION_SK)
        return int(item.get("version", 0)) if item else 0

    async def count(self, user_id: str) -> int:
        return await self._store.count(Table.MEMORY_FACTS, user_key(user_id), sk_prefix=_PREFIX)

    async def get(self, user_id: str, fact_id: str) -> MemoryFact:
        item = await self._store.get(Table.MEMORY_FACTS, user_key(user_id), fact_sk(fact_id))
        if item is None:
            raise UnknownEntry(f"no memory {fact_id!r} for user {user_id!r}")
        return _fact(item)

    async def add(self, fact: MemoryFact) -> MemoryFact:
        """Store a new fact (an admin's, or consolidation's)."""
        if await self.count(fact.user_id) >= MAX_FACTS_PER_USER:
            raise InvalidEntry(f"a user holds at most {MAX_FACTS_PER_USER} memories")
        await self._store.transact([put_op(fact), bump_op(fact.user_id)])
        return fact

    async def edit(
        self,
        user_id: str,
        fact_id: str,
        *,
        text: str | None = None,
        category: str | None = None,
        embedding: str | None = None,
        embedding_model: str | None = None,
    ) -> MemoryFact:
        """Change a fact's text or category (a new text drops the old embedding
        unless a new one is given)."""
        changes: dict[str, object] = {}
        remove: list[str] = []
        if text is not None:
            changes["fact"] = checked_fact(text)
            if embedding is None:
                remove += ["embedding", "embedding_model"]
        if category is not None:
            changes["category"] = checked_category(category)
        if embedding is not None:
            changes |= {"embedding": embedding, "embedding_model": embedding_model}
        try:
            item = await self._store.update(
                Table.MEMORY_FACTS,
                user_key(user_id),
                fact_sk(fact_id),
                set=changes,
                remove=remove,
                condition=Exists(),
            )
        except ConditionFailed:
            raise UnknownEntry(f"no memory {fact_id!r} for user {user_id!r}") from None
        await self._store.transact([bump_op(user_id)])
        return _fact(item)

    async def delete(self, user_id: str, fact_id: str) -> None:
        try:
            await self._store.transact(
                [
                    Delete(
                        Table.MEMORY_FACTS, user_key(user_id), fact_sk(fact_id), condition=Exists()
                    ),
                    bump_op(user_id),
                ]
            )
        except ConditionFailed:
            raise UnknownEntry(f"no memory {fact_id!r} for user {user_id!r}") from None

    async def delete_all(self, user_id: str) -> int:
        """Forget everything about the user; how many facts were deleted."""
        deleted = 0
        while True:
            page = await self._store.query(
                Table.MEMORY_FACTS,
                user_key(user_id),
                sk_prefix=_PREFIX,
                limit=MAX_TRANSACT_ITEMS - 1,
            )
            if not page.items:
                return deleted
            await self._store.transact(
                [
                    *(Delete(Table.MEMORY_FACTS, item["pk"], item["sk"]) for item in page.items),
                    bump_op(user_id),
                ]
            )
            deleted += len(page.items)


def _item(fact: MemoryFact) -> dict[str, object]:
    body = fact.model_dump(mode="json", exclude_none=True)
    return {"pk": user_key(fact.user_id), "sk": fact_sk(fact.fact_id), **body}


def _fact(item: dict[str, object]) -> MemoryFact:
    return MemoryFact.model_validate(item)
