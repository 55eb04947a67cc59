"""A user's active facts with their embeddings decoded, reused while unchanged.

Ranking memories runs for every request over up to 1,000 or more facts per
user; reading and decoding them every time costs more than the rest of the
prompt together. The index keeps each user's decoded facts together with the
user's facts version (:meth:`~.facts.MemoryFacts.version`, counted up by every
write to the user's facts). Every request still reads that version from the
store, so a change made by an admin, a forget or a consolidation run applies
to the very next prompt; only an unchanged set of facts is reused.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from trollama.brain.context.tokens import count_tokens
from trollama.brain.persona.facts import MemoryFact, MemoryFacts
from trollama.brain.persona.vectors import Vector, decode

#: Bytes of decoded facts kept for all users together (least recently used go first).
MAX_INDEX_BYTES = 64 * 2**20
#: Tokens each fact costs in a prompt besides its text (bullet and quotes).
FACT_OVERHEAD_TOKENS = 2
#: Bytes counted per fact besides its vector (text, ids, numbers).
FACT_OVERHEAD_BYTES = 1024


@dataclass(frozen=True)
class IndexedFacts:
    version: int
    #: Active facts, oldest first.
    facts: tuple[MemoryFact, ...]
    #: One row per fact (zero rows for facts without an embedding, or with one
    #: another embedder made); None when no fact has a usable embedding.
    matrix: Vector | None
    nbytes: int
    #: Tokens each fact costs in a prompt (counted once per version, not per request).
    tokens: tuple[int, ...] = ()


def fact_tokens(fact: MemoryFact) -> int:
    """Estimated tokens one fact costs in the prompt."""
    return count_tokens(fact.fact) + FACT_OVERHEAD_TOKENS


def index_facts(
    version: int, facts: list[MemoryFact], embedder_label: str | None = None
) -> IndexedFacts:
    """The facts and their vectors; with ``embedder_label``, only vectors that
    embedder made (or of unknown origin) count."""
    vectors = [
        decode(f.embedding)
        if f.embedding and (embedder_label is None or f.embedding_model in (None, embedder_label))
        else None
        for f in facts
    ]
    sizes = [v.size for v in vectors if v is not None]
    matrix: Vector | None = None
    if sizes:
        width = max(set(sizes), key=sizes.count)  # the embedding model most facts used
        matrix = np.zeros((len(facts), width), dtype=np.float32)
        for row, vector in enumerate(vectors):
            if vector is not None and vector.size == width:
                matrix[row] = vector
    nbytes = (matrix.nbytes if matrix is not None else 0) + FACT_OVERHEAD_BYTES * len(facts)
    tokens = tuple(fact_tokens(f) for f in facts)
    return IndexedFacts(version, tuple(facts), matrix, nbytes, tokens)


class FactIndex:
    """Bounded (:data:`MAX_INDEX_BYTES`) least-recently-used index, per user."""

    def __init__(
        self,
        facts: MemoryFacts,
        *,
        embedder_label: str | None = None,
        max_bytes: int = MAX_INDEX_BYTES,
    ) -> None:
        self._facts = facts
        self._embedder_label = embedder_label
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, IndexedFacts] = OrderedDict()
        self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def active(self, user_id: str) -> IndexedFacts:
        """The user's active facts as the store holds them now."""
        # the version first: a write landing between the two reads makes the
        # next request read again, never keeps older facts under a newer version
        version = await self._facts.version(user_id)
        cached = self._entries.get(user_id)
        if cached is not None and cached.version == version:
            self._entries.move_to_end(user_id)
            return cached
        facts = await self._facts.facts(user_id)
        indexed = index_facts(version, facts, self._embedder_label)
        self._put(user_id, indexed)
        return indexed

    def _put(self, user_id: str, indexed: IndexedFacts) -> None:
        old = self._entries.pop(user_id, None)
        if old is not None:
            self._bytes -= old.nbytes
        if indexed.nbytes > self._max_bytes:
            return
        self._entries[user_id] = indexed
        self._bytes += indexed.nbytes
        while self._bytes > self._max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.nbytes
