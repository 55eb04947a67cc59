"""The fact index reuses decoded facts only while the store says they are unchanged."""

from __future__ import annotations

from trollama.brain.persona.fact_index import FACT_OVERHEAD_BYTES, FactIndex
from trollama.brain.persona.facts import MemoryFacts, bump_op, new_fact, reinforce_op
from trollama.brain.persona.vectors import encode
from trollama.common.store.base import ItemStore

NOW = 1_900_000_000.0


def vector(seed: int, size: int = 8) -> str:
    return encode([float(seed + i) for i in range(size)])


async def test_unchanged_facts_are_reused_and_every_change_is_seen(store: ItemStore) -> None:
    facts = MemoryFacts(store, clock=lambda: NOW)
    index = FactIndex(facts)
    first = await facts.add(new_fact("u1", "Likes tea", at=NOW, embedding=vector(1)))

    one = await index.active("u1")
    assert [f.fact for f in one.facts] == ["Likes tea"]
    assert one.matrix is not None and one.matrix.shape == (1, 8)
    assert await index.active("u1") is one  # nothing changed: reused

    await facts.add(new_fact("u1", "Rides bikes", at=NOW + 1))
    two = await index.active("u1")
    assert [f.fact for f in two.facts] == ["Likes tea", "Rides bikes"]

    await facts.edit("u1", first.fact_id, text="Loves green tea")
    assert (await index.active("u1")).facts[0].fact == "Loves green tea"

    await store.transact([reinforce_op(first, NOW + 5, ["m9"]), bump_op("u1")])
    reinforced = (await index.active("u1")).facts[0]
    assert reinforced.reference_count == 2 and reinforced.source_message_ids[-1] == "m9"

    await facts.delete("u1", first.fact_id)
    assert [f.fact for f in (await index.active("u1")).facts] == ["Rides bikes"]

    await facts.delete_all("u1")
    assert (await index.active("u1")).facts == ()


async def test_users_do_not_see_each_others_facts(store: ItemStore) -> None:
    facts = MemoryFacts(store, clock=lambda: NOW)
    index = FactIndex(facts)
    await facts.add(new_fact("u1", "Plays chess", at=NOW))
    await facts.add(new_fact("u2", "Plays go", at=NOW))
    assert [f.fact for f in (await index.active("u1")).facts] == ["Plays chess"]
    assert [f.fact for f in (await index.active("u2")).facts] == ["Plays go"]


async def test_the_index_stays_within_its_byte_budget(sqlite_store: ItemStore) -> None:
    facts = MemoryFacts(sqlite_store, clock=lambda: NOW)
    per_user = 8 * 4 + FACT_OVERHEAD_BYTES  # one fact with an 8-dimension vector
    index = FactIndex(facts, max_bytes=3 * per_user)
    for user in range(6):
        await facts.add(new_fact(f"u{user}", f"Fact {user}", at=NOW, embedding=vector(user)))
        await index.active(f"u{user}")
        assert index.nbytes <= 3 * per_user
    assert len(index) == 3
    # the evicted users are read again, correctly
    assert [f.fact for f in (await index.active("u0")).facts] == ["Fact 0"]


async def test_facts_without_embeddings_have_no_matrix(sqlite_store: ItemStore) -> None:
    facts = MemoryFacts(sqlite_store, clock=lambda: NOW)
    await facts.add(new_fact("u1", "No vector yet", at=NOW))
    indexed = await FactIndex(facts).active("u1")
    assert indexed.matrix is None and len(indexed.facts) == 1


async def test_only_vectors_of_the_current_embedder_are_used(sqlite_store: ItemStore) -> None:
    facts = MemoryFacts(sqlite_store, clock=lambda: NOW)
    await facts.add(
        new_fact("u1", "Ours", at=NOW, embedding=vector(1), embedding_model="embed@256")
    )
    await facts.add(
        new_fact("u1", "Older model", at=NOW + 1, embedding=vector(2), embedding_model="old@1024")
    )
    indexed = await FactIndex(facts, embedder_label="embed@256").active("u1")
    assert indexed.matrix is not None
    assert indexed.matrix[0].any() and not indexed.matrix[1].any()  # the other one: no similarity
