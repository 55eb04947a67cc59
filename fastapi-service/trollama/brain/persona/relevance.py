"""Which of a user's memory facts go into a prompt.

Each active fact scores

    SIMILARITY_WEIGHT * cosine(fact, message)      (0 without embeddings)
  + RECENCY_WEIGHT    * 0.5 ** (age of last mention / RECENCY_HALF_LIFE_DAYS)
  + REFERENCE_WEIGHT  * log(1 + references) / log(1 + REFERENCE_SATURATION)

and the best-scoring facts are taken until :attr:`memory_token_budget` is
spent. The message is embedded once per request; when that fails (or a fact
has no embedding yet) the similarity part is 0, so the facts are ranked by
recency and references alone.

This runs for every request over up to :data:`~.facts.MAX_FACTS_PER_USER`
facts, so the vector work is one numpy product over the user's decoded
embeddings, kept by :class:`~.fact_index.FactIndex` while the facts are
unchanged.
"""

from __future__ import annotations

import binascii
import logging
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from trollama.brain.persona.embedder import Embedder, EmbeddingError
from trollama.brain.persona.fact_index import FACT_OVERHEAD_TOKENS, FactIndex, fact_tokens
from trollama.brain.persona.facts import MemoryFact
from trollama.brain.persona.vectors import Vector, similarities

log = logging.getLogger(__name__)

SIMILARITY_WEIGHT = 0.6
RECENCY_WEIGHT = 0.25
REFERENCE_WEIGHT = 0.15
#: Days after which a fact's recency counts half.
RECENCY_HALF_LIFE_DAYS = 30.0
#: References from which on more references add nothing.
REFERENCE_SATURATION = 50
#: Characters of the message embedded for ranking (its start says what it is about).
MAX_QUERY_CHARS = 2000
SECONDS_PER_DAY = 86_400.0
#: Bytes of one float32 vector component.
FLOAT32_BYTES = 4

Scores = npt.NDArray[np.float64]


async def relevant_facts(
    index: FactIndex,
    embedder: Embedder,
    user_id: str,
    message: str,
    *,
    budget_tokens: int,
    now: float,
) -> list[MemoryFact]:
    """The user's most relevant active facts within ``budget_tokens``, best first."""
    if budget_tokens <= 0:
        return []
    indexed = await index.active(user_id)
    if not indexed.facts:
        return []
    query = await query_vector(embedder, message)
    order = rank_order(indexed.facts, query, now, indexed.matrix)
    return _take_within(indexed.facts, indexed.tokens, order, budget_tokens)


async def query_vector(embedder: Embedder, message: str) -> Vector | None:
    """The message's embedding, or None (logged) when the model fails."""
    text = message.strip()[:MAX_QUERY_CHARS]
    if not text:
        return None
    try:
        return await embedder.embed_one(text)
    except EmbeddingError as exc:
        log.warning("memory facts ranked without similarity: %s", exc)
        return None


def ranked(
    facts: Sequence[MemoryFact], query: Vector | None, now: float, matrix: Vector | None = None
) -> list[MemoryFact]:
    """``facts`` (oldest first, as stored) best first; ties go to the newer fact.

    ``matrix`` holds the facts' decoded embeddings (decoded here when not given)."""
    return [facts[index] for index in rank_order(facts, query, now, matrix)]


def rank_order(
    facts: Sequence[MemoryFact], query: Vector | None, now: float, matrix: Vector | None = None
) -> list[int]:
    """Positions of ``facts``, best first; ties go to the later (newer) fact."""
    total = scores(facts, query, now, matrix)
    return [int(index) for index in np.lexsort((-np.arange(len(facts)), -total))]


def scores(
    facts: Sequence[MemoryFact], query: Vector | None, now: float, matrix: Vector | None = None
) -> Scores:
    """Each fact's score (see the module docstring)."""
    count = len(facts)
    last = np.fromiter((f.last_mentioned for f in facts), dtype=np.float64, count=count)
    age_days = np.maximum(now - last, 0.0) / SECONDS_PER_DAY
    recency = np.power(0.5, age_days / RECENCY_HALF_LIFE_DAYS)
    references = np.fromiter((f.reference_count for f in facts), dtype=np.float64, count=count)
    saturation = math.log1p(REFERENCE_SATURATION)
    reference_part = np.minimum(np.log1p(references) / saturation, 1.0)
    total: Scores = RECENCY_WEIGHT * recency + REFERENCE_WEIGHT * reference_part
    if query is not None and query.size:
        if matrix is None or matrix.shape[1] != query.size:
            matrix = decode_rows([f.embedding for f in facts], query.size)
        similarity = np.nan_to_num(similarities(query, matrix), nan=0.0)
        total = total + SIMILARITY_WEIGHT * np.clip(similarity, 0.0, 1.0).astype(np.float64)
    return total


def decode_rows(texts: Sequence[str | None], dimensions: int) -> Vector:
    """Stored embeddings (base64 of little-endian float32, see :mod:`.vectors`) as
    the rows of one matrix, built from one buffer. A missing embedding, one of
    another length (another model) or an unreadable one becomes a zero row."""
    size = dimensions * FLOAT32_BYTES
    width = 4 * math.ceil(size / 3)
    blank = bytes(size)
    blobs = [_raw(text, width, size) or blank for text in texts]
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(texts), dimensions)


def _raw(text: str | None, width: int, size: int) -> bytes | None:
    """The bytes of one stored embedding, or None when it cannot be one of ``size`` bytes."""
    if text is None or len(text) != width:
        return None
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        return None
    return raw if len(raw) == size else None


def within_budget(facts: Sequence[MemoryFact], budget_tokens: int) -> list[MemoryFact]:
    """The leading facts that fit ``budget_tokens`` (a fact too long to fit is
    skipped, so a shorter one after it may still be taken)."""
    kept: list[MemoryFact] = []
    left = budget_tokens
    for fact in facts:
        cost = fact_tokens(fact)
        if cost <= left:
            kept.append(fact)
            left -= cost
        if left < FACT_OVERHEAD_TOKENS + 1:
            break
    return kept


def _take_within(
    facts: Sequence[MemoryFact], tokens: Sequence[int], order: Sequence[int], budget_tokens: int
) -> list[MemoryFact]:
    """:func:`within_budget` over ``facts`` taken in ``order``, with each fact's
    cost known (``tokens``): stops as soon as no fact left could fit."""
    kept: list[MemoryFact] = []
    left = budget_tokens
    cheapest = min(tokens, default=0)
    for index in order:
        if tokens[index] <= left:
            kept.append(facts[index])
            left -= tokens[index]
        if left < max(cheapest, FACT_OVERHEAD_TOKENS + 1):
            break
    return kept
