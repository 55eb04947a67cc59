"""Relevance: which memory facts go into a prompt, with embeddings from the fake Ollama."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import numpy as np
import pytest

from trollama.brain.backends.ollama import OllamaBackend
from trollama.brain.persona.embedder import Embedder
from trollama.brain.persona.fact_index import FactIndex
from trollama.brain.persona.facts import MemoryFact, MemoryFacts, new_fact, supersede_op
from trollama.brain.persona.relevance import (
    FACT_OVERHEAD_TOKENS,
    fact_tokens,
    ranked,
    relevant_facts,
    within_budget,
)
from trollama.brain.persona.vectors import encode
from trollama.common.store.base import ItemStore
from trollama.testkit.fake_ollama import FakeOllama
from trollama.testkit.server import DEFAULT_MODELS, ServerThread

EMBEDDING_MODEL = "qwen3-embedding:4b"
NOW = 1_800_000_000.0
DAY = 86_400.0
TEA = "Drinks green tea every morning and likes trying new tea kinds"


@asynccontextmanager
async def embedder_for(url: str) -> AsyncIterator[Embedder]:
    backend = OllamaBackend(url, keep_alive_seconds=60, connect_timeout=2.0, read_timeout=10.0)
    try:
        yield Embedder(lambda _model: backend, EMBEDDING_MODEL, timeout_seconds=5.0)
    finally:
        await backend.close()


@pytest.fixture
async def embedder(fake_ollama: ServerThread[FakeOllama]) -> AsyncIterator[Embedder]:
    async with embedder_for(fake_ollama.url) as made:
        yield made


@pytest.fixture
def no_embedding_server() -> Iterator[ServerThread[FakeOllama]]:
    """A model server that does not have the embedding model."""
    models = [m for m in DEFAULT_MODELS if m != EMBEDDING_MODEL]
    with FakeOllama(models=models).start_in_thread() as handle:
        yield handle


async def store_facts(
    store: ItemStore, embedder: Embedder | None, texts: list[tuple[str, float, int]]
) -> MemoryFacts:
    """Facts of user u1 as (text, days ago, references), embedded when ``embedder`` is given."""
    repo = MemoryFacts(store)
    vectors = await embedder.embed([t for t, _, _ in texts]) if embedder else None
    for index, (text, days_ago, references) in enumerate(texts):
        fact = new_fact("u1", text, at=NOW - days_ago * DAY)
        fact = fact.model_copy(
            update={
                "reference_count": references,
                "embedding": encode(vectors[index]) if vectors is not None else None,
            }
        )
        await repo.add(fact)
    return repo


def unrelated(count: int) -> list[tuple[str, float, int]]:
    return [(f"Their locker code number {i} opens box {i * 7}", 1.0, 1) for i in range(count)]


async def test_tea_fact_wins_among_200_unrelated(
    sqlite_store: ItemStore, embedder: Embedder
) -> None:
    texts = [*unrelated(100), (TEA, 1.0, 1), *unrelated(100)]
    repo = await store_facts(sqlite_store, embedder, texts)
    picked = await relevant_facts(
        FactIndex(repo), embedder, "u1", "Which tea should I try next?", budget_tokens=400, now=NOW
    )
    assert picked[0].fact == TEA
    assert sum(fact_tokens(f) for f in picked) <= 400
    assert 1 < len(picked) < 201


async def test_similarity_beats_a_newer_unrelated_fact(
    sqlite_store: ItemStore, embedder: Embedder
) -> None:
    texts = [(TEA, 40.0, 1), *[(t, 0.0, 3) for t, _, _ in unrelated(20)]]
    repo = await store_facts(sqlite_store, embedder, texts)
    picked = await relevant_facts(
        FactIndex(repo),
        embedder,
        "u1",
        "I drink green tea every morning",
        budget_tokens=40,
        now=NOW,
    )
    assert picked[0].fact == TEA


async def test_token_budget_is_respected(sqlite_store: ItemStore, embedder: Embedder) -> None:
    repo = await store_facts(sqlite_store, embedder, [(TEA, 1.0, 1), *unrelated(200)])
    for budget in (0, 5, 30, 120):
        picked = await relevant_facts(
            FactIndex(repo), embedder, "u1", "tea please", budget_tokens=budget, now=NOW
        )
        assert sum(fact_tokens(f) for f in picked) <= budget
    small = await relevant_facts(
        FactIndex(repo), embedder, "u1", "green tea", budget_tokens=30, now=NOW
    )
    assert [f.fact for f in small][:1] == [TEA]


async def test_superseded_facts_are_left_out(sqlite_store: ItemStore, embedder: Embedder) -> None:
    repo = await store_facts(sqlite_store, embedder, [(TEA, 1.0, 1)])
    (old,) = await repo.facts("u1")
    await sqlite_store.transact([supersede_op(old, "newer")])
    assert (
        await relevant_facts(FactIndex(repo), embedder, "u1", "tea", budget_tokens=400, now=NOW)
        == []
    )


async def test_embedding_failure_ranks_by_recency_and_references(
    sqlite_store: ItemStore,
    no_embedding_server: ServerThread[FakeOllama],
    caplog: pytest.LogCaptureFixture,
) -> None:
    texts = [("Old fact about tea", 90.0, 1), ("Fresh fact about bikes", 0.0, 1)]
    texts += [("Often mentioned fact about cats", 60.0, 40)]
    repo = await store_facts(sqlite_store, None, texts)
    async with embedder_for(no_embedding_server.url) as failing:
        with caplog.at_level(logging.WARNING, logger="trollama.brain.persona.relevance"):
            picked = await relevant_facts(
                FactIndex(repo), failing, "u1", "tea?", budget_tokens=400, now=NOW
            )
    assert [f.fact for f in picked] == [
        "Fresh fact about bikes",
        "Often mentioned fact about cats",
        "Old fact about tea",
    ]
    warnings = [r for r in caplog.records if r.name == "trollama.brain.persona.relevance"]
    assert len(warnings) == 1 and "without similarity" in warnings[0].getMessage()
    assert no_embedding_server.requests_to("/api/embed")


async def test_no_facts_means_no_embedding_call(
    sqlite_store: ItemStore, fake_ollama: ServerThread[FakeOllama], embedder: Embedder
) -> None:
    repo = MemoryFacts(sqlite_store)
    assert (
        await relevant_facts(FactIndex(repo), embedder, "u1", "tea", budget_tokens=400, now=NOW)
        == []
    )
    assert not fake_ollama.requests_to("/api/embed")


def fact(text: str, *, days_ago: float = 0.0, embedding: str | None = None) -> MemoryFact:
    return new_fact("u1", text, at=NOW - days_ago * DAY).model_copy(update={"embedding": embedding})


def test_unreadable_or_foreign_embeddings_score_as_unrelated() -> None:
    query = [1.0, 0.0, 0.0, 0.0]
    facts = [
        fact("broken", embedding="not base64!"),
        fact("other model", embedding=encode([1.0, 0.0])),
        fact("match", days_ago=5.0, embedding=encode(query)),
    ]
    order = ranked(facts, np.asarray(query, dtype=np.float32), NOW)
    assert order[0].fact == "match"


def test_a_long_fact_that_does_not_fit_is_skipped_not_the_rest() -> None:
    long = fact("word " * 50)
    short = fact("short fact")
    budget = fact_tokens(short) + FACT_OVERHEAD_TOKENS
    assert within_budget([long, short], budget) == [short]
