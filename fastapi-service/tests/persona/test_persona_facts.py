"""Long-term memory facts, on every store backend."""

from __future__ import annotations

import numpy as np
import pytest

from trollama.brain.persona import facts as facts_module
from trollama.brain.persona.errors import InvalidEntry, UnknownEntry
from trollama.brain.persona.facts import (
    DEFAULT_CATEGORY,
    MAX_CATEGORY_CHARS,
    MAX_FACT_CHARS,
    MAX_SOURCE_IDS,
    MemoryFact,
    MemoryFacts,
    new_fact,
    put_op,
    reinforce_op,
    supersede_op,
)
from trollama.brain.persona.vectors import decode, encode
from trollama.common.store.base import MAX_TRANSACT_ITEMS, ConditionFailed, ItemStore

T0 = 1_700_000_000.0
VECTOR = encode(np.linspace(-1.0, 1.0, 16, dtype=np.float32))


def fact(user_id: str, text: str, n: int = 0, **kwargs: object) -> MemoryFact:
    return new_fact(user_id, text, at=T0 + n, **kwargs)  # type: ignore[arg-type]


async def test_add_and_get(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    added = await memory.add(
        fact(
            "42",
            "  likes \n green   tea ",
            category=" Food ",
            source_message_ids=["m1", "m2"],
            embedding=VECTOR,
            embedding_model="qwen3-embedding:4b",
        )
    )

    got = await memory.get("42", added.fact_id)

    assert got == added
    assert (got.fact, got.category, got.reference_count) == ("likes green tea", "food", 1)
    assert (got.first_mentioned, got.last_mentioned) == (T0, T0)
    assert got.source_message_ids == ["m1", "m2"]
    assert got.embedding is not None
    assert decode(got.embedding).tolist() == decode(VECTOR).tolist()
    assert got.active


async def test_facts_are_oldest_first_and_per_user(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    for n, text in enumerate(["has a cat", "plays chess", "lives in Oslo"]):
        await memory.add(fact("42", text, n))
    await memory.add(fact("43", "someone else's", 1))

    assert [f.fact for f in await memory.facts("42")] == [
        "has a cat",
        "plays chess",
        "lives in Oslo",
    ]
    assert await memory.count("42") == 3
    assert [f.fact for f in await memory.facts("43")] == ["someone else's"]
    assert await memory.facts("nobody") == []


async def test_unknown_fact_is_refused(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    await memory.add(fact("42", "has a cat"))

    with pytest.raises(UnknownEntry, match="no memory 'nope' for user '42'"):
        await memory.get("42", "nope")
    with pytest.raises(UnknownEntry):
        await memory.edit("42", "nope", text="anything")
    with pytest.raises(UnknownEntry):
        await memory.delete("42", "nope")
    assert await memory.count("42") == 1  # the failed edit created nothing


async def test_facts_are_only_found_under_their_user(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    added = await memory.add(fact("42", "has a cat"))

    with pytest.raises(UnknownEntry):
        await memory.get("43", added.fact_id)
    with pytest.raises(UnknownEntry):
        await memory.delete("43", added.fact_id)


async def test_empty_or_oversize_fact_is_refused(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    kept = await memory.add(fact("42", "has a cat"))

    for text in ["", " \n ", "x" * (MAX_FACT_CHARS + 1)]:
        with pytest.raises(InvalidEntry):
            new_fact("42", text, at=T0)
        with pytest.raises(InvalidEntry):
            await memory.edit("42", kept.fact_id, text=text)
    assert await memory.get("42", kept.fact_id) == kept


async def test_fact_of_the_maximum_length_is_kept(store: ItemStore) -> None:
    memory = MemoryFacts(store)

    added = await memory.add(fact("42", "y" * MAX_FACT_CHARS))

    assert len((await memory.get("42", added.fact_id)).fact) == MAX_FACT_CHARS


def test_categories_are_normalised() -> None:
    assert fact("42", "a").category == DEFAULT_CATEGORY
    assert fact("42", "a", category="   ").category == DEFAULT_CATEGORY
    assert fact("42", "a", category="c" * 100).category == "c" * MAX_CATEGORY_CHARS


async def test_new_text_drops_the_embedding(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    added = await memory.add(fact("42", "has a cat", embedding=VECTOR, embedding_model="m"))

    edited = await memory.edit("42", added.fact_id, text="has two cats")

    assert (edited.fact, edited.embedding, edited.embedding_model) == ("has two cats", None, None)
    assert await memory.get("42", added.fact_id) == edited


async def test_new_text_with_a_new_embedding_keeps_it(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    added = await memory.add(fact("42", "has a cat"))
    other = encode([1.0, 0.0, 0.0])

    edited = await memory.edit(
        "42", added.fact_id, text="has a dog", embedding=other, embedding_model="m2"
    )

    assert (edited.fact, edited.embedding, edited.embedding_model) == ("has a dog", other, "m2")


async def test_category_edit_keeps_text_and_embedding(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    added = await memory.add(fact("42", "has a cat", embedding=VECTOR, embedding_model="m"))

    edited = await memory.edit("42", added.fact_id, category="Pets")

    assert edited == added.model_copy(update={"category": "pets"})


async def test_edit_without_changes_keeps_the_fact(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    added = await memory.add(fact("42", "has a cat", embedding=VECTOR, embedding_model="m"))

    assert await memory.edit("42", added.fact_id) == added
    assert await memory.get("42", added.fact_id) == added


async def test_delete_one(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    gone = await memory.add(fact("42", "has a cat", 0))
    kept = await memory.add(fact("42", "plays chess", 1))

    await memory.delete("42", gone.fact_id)

    assert await memory.facts("42") == [kept]
    with pytest.raises(UnknownEntry):
        await memory.delete("42", gone.fact_id)


async def test_delete_all_removes_more_than_one_transaction_holds(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    total = MAX_TRANSACT_ITEMS + 5
    batch = [fact("42", f"fact number {n}", n) for n in range(total)]
    for start in range(0, total, MAX_TRANSACT_ITEMS):
        await store.transact([put_op(f) for f in batch[start : start + MAX_TRANSACT_ITEMS]])
    other = await memory.add(fact("43", "stays"))
    assert await memory.count("42") == total

    assert await memory.delete_all("42") == total

    assert await memory.facts("42", include_superseded=True) == []
    assert await memory.count("42") == 0
    assert await memory.facts("43") == [other]
    assert await memory.delete_all("42") == 0


async def test_per_user_limit(store: ItemStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(facts_module, "MAX_FACTS_PER_USER", 3)
    memory = MemoryFacts(store)
    for n in range(3):
        await memory.add(fact("42", f"fact {n}", n))

    with pytest.raises(InvalidEntry, match="at most 3 memories"):
        await memory.add(fact("42", "one too many", 9))
    assert await memory.count("42") == 3
    await memory.add(fact("43", "another user is not limited by 42"))


async def test_adding_the_same_fact_id_twice_is_refused(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    added = await memory.add(fact("42", "has a cat"))

    with pytest.raises(ConditionFailed):
        await memory.add(added.model_copy(update={"fact": "overwritten"}))
    assert (await memory.get("42", added.fact_id)).fact == "has a cat"


async def test_reinforce_and_supersede_in_one_transaction(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    old = await memory.add(fact("42", "lives in Oslo", 0, source_message_ids=["m1"]))
    liked = await memory.add(fact("42", "likes tea", 1, source_message_ids=["m2"]))
    newer = fact("42", "lives in Bergen", 100, source_message_ids=["m9"])

    await store.transact(
        [
            put_op(newer),
            supersede_op(old, newer.fact_id),
            reinforce_op(liked, T0 + 100, ["m9"]),
        ]
    )

    assert [f.fact for f in await memory.facts("42")] == ["likes tea", "lives in Bergen"]
    everything = await memory.facts("42", include_superseded=True)
    assert [f.fact_id for f in everything] == [old.fact_id, liked.fact_id, newer.fact_id]
    superseded = await memory.get("42", old.fact_id)
    assert (superseded.superseded_by, superseded.active) == (newer.fact_id, False)
    reinforced = await memory.get("42", liked.fact_id)
    assert reinforced.reference_count == 2
    assert (reinforced.first_mentioned, reinforced.last_mentioned) == (T0 + 1, T0 + 100)
    assert reinforced.source_message_ids == ["m2", "m9"]


async def test_reinforce_never_moves_last_mentioned_back(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    liked = await memory.add(fact("42", "likes tea", 50))

    await store.transact([reinforce_op(liked, T0, ["old"])])

    again = await memory.get("42", liked.fact_id)
    assert (again.last_mentioned, again.reference_count) == (T0 + 50, 2)


async def test_reinforce_keeps_the_newest_sources(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    sources = [f"m{n}" for n in range(MAX_SOURCE_IDS)]
    liked = await memory.add(fact("42", "likes tea", source_message_ids=sources))

    await store.transact([reinforce_op(liked, T0 + 1, ["new1", "new2"])])

    again = await memory.get("42", liked.fact_id)
    assert again.source_message_ids == [*sources[2:], "new1", "new2"]


async def test_failed_transaction_changes_nothing(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    old = await memory.add(fact("42", "lives in Oslo", 0))
    gone = await memory.add(fact("42", "likes tea", 1))
    await memory.delete("42", gone.fact_id)
    newer = fact("42", "lives in Bergen", 100)

    with pytest.raises(ConditionFailed):
        await store.transact(
            [
                put_op(newer),
                supersede_op(old, newer.fact_id),
                reinforce_op(gone, T0 + 100, ["m9"]),  # deleted meanwhile: all is refused
            ]
        )

    assert await memory.facts("42", include_superseded=True) == [old]


async def test_ops_on_a_deleted_fact_are_refused(store: ItemStore) -> None:
    memory = MemoryFacts(store)
    liked = await memory.add(fact("42", "likes tea"))
    await memory.delete("42", liked.fact_id)

    with pytest.raises(ConditionFailed):
        await store.transact([reinforce_op(liked, T0 + 1, [])])
    with pytest.raises(ConditionFailed):
        await store.transact([supersede_op(liked, "newer")])
    assert await memory.count("42") == 0
