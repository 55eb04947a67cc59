"""Daily memory consolidation: the short-term log becomes long-term facts.

For each author with pending messages (written before the run's start), in
chunks of at most :data:`MAX_CHUNK_MESSAGES` messages and
:data:`MAX_CHUNK_CHARS` characters:

1. the summarization model extracts facts about the author
   (:mod:`.extraction`; the bot's own messages are archived, never mined);
2. every fact is embedded (one call per chunk) and compared with the
   author's active facts: similarity ≥ :data:`MATCH_THRESHOLD` reinforces the
   known fact, a fact that contradicts a known one supersedes it, any other
   is inserted;
3. the chunk's fact writes and the author's cursor ("consolidated through
   sort key X") go to the store in ONE transaction, then the chunk moves to
   the archive.

Idempotent and resumable: a message at or before the cursor is archived but
never mined again, so a run interrupted anywhere (crash, cancel, a failing
model) and run again loses no message and counts none twice. A failing model
stops that author only; their remaining log stays for the next run.
Memory stays bounded whatever the log size: authors and messages are read
page by page, and at most :data:`DEFAULT_CONCURRENCY` authors are in memory.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from pydantic import ValidationError

from trollama.brain.persona.bundle import Persona
from trollama.brain.persona.embedder import EmbeddingError
from trollama.brain.persona.errors import PersonaError
from trollama.brain.persona.extraction import (
    MAX_MESSAGE_CHARS,
    ExtractedFact,
    FactExtractor,
    JobModelError,
)
from trollama.brain.persona.facts import (
    MAX_FACTS_PER_USER,
    MAX_SOURCE_IDS,
    MemoryFact,
    bump_op,
    new_fact,
    put_op,
    reinforce_op,
    supersede_op,
)
from trollama.brain.persona.message_log import PENDING_PAGE, LoggedMessage
from trollama.brain.persona.vectors import Vector, decode, encode, similarities, stack
from trollama.common.store.base import (
    ConditionFailed,
    ItemStore,
    Put,
    Table,
    TransactOp,
)
from trollama.common.store.conditions import Lt, NotExists, Or

log = logging.getLogger(__name__)

#: Similarity at or above which a new fact is a known one said again.
MATCH_THRESHOLD = 0.85
#: Similarity at or above which the known fact a contradiction names is found by meaning.
CONTRADICTION_THRESHOLD = 0.6
#: Messages sent to the model in one call at most.
MAX_CHUNK_MESSAGES = PENDING_PAGE
#: Characters of messages sent to the model in one call at most (~3,000 tokens).
MAX_CHUNK_CHARS = 12_000
#: Authors read from the pending directory at once.
AUTHOR_PAGE = 50
#: Authors consolidated at once (each holds its facts and one page of messages).
DEFAULT_CONCURRENCY = 4
#: Failed authors named in a report (the count is always exact).
MAX_REPORTED_FAILURES = 50
#: Source messages recorded per new fact (those sharing the most words with it).
MAX_SOURCES_PER_FACT = 5
#: Attempts at one chunk's transaction when a known fact changed under it.
MAX_COMMIT_ATTEMPTS = 2

_CURSOR_PK = "cursor#consolidation"
_WORD = re.compile(r"\w{4,}")


@dataclass
class ConsolidationReport:
    """What one consolidation run did."""

    cutoff: float
    authors: int = 0
    messages_archived: int = 0
    messages_mined: int = 0
    model_calls: int = 0
    facts_inserted: int = 0
    facts_reinforced: int = 0
    facts_superseded: int = 0
    facts_dropped: int = 0
    failed_count: int = 0
    failed_authors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def failed(self, author_id: str) -> None:
        self.failed_count += 1
        if len(self.failed_authors) < MAX_REPORTED_FAILURES:
            self.failed_authors.append(author_id)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Known:
    """An active fact of the author (its stored embedding dropped) and its vector."""

    fact: MemoryFact
    vector: Vector


@dataclass
class AuthorState:
    author_id: str
    cursor: str
    known: list[Known]
    #: Facts stored for the author, superseded ones included.
    total: int


@dataclass
class ChunkPlan:
    """The writes one chunk makes, before they become transaction ops."""

    at: float
    inserts: dict[str, MemoryFact] = field(default_factory=dict)
    reinforced: dict[str, tuple[MemoryFact, list[str]]] = field(default_factory=dict)
    superseded: dict[str, tuple[MemoryFact, str]] = field(default_factory=dict)
    vectors: dict[str, Vector] = field(default_factory=dict)
    dropped: int = 0

    def ops(self) -> list[TransactOp]:
        ops: list[TransactOp] = [put_op(f) for f in self.inserts.values()]
        ops += [
            reinforce_op(fact, self.at, sources)
            for fact_id, (fact, sources) in self.reinforced.items()
            if fact_id not in self.superseded
        ]
        ops += [supersede_op(old, newer) for old, newer in self.superseded.values()]
        return ops


class CommitConflict(Exception):
    """A chunk's facts kept changing under it (an admin edited them meanwhile)."""


class Consolidator:
    """Runs consolidation over a persona's message log."""

    def __init__(
        self,
        persona: Persona,
        store: ItemStore,
        extractor: FactExtractor,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._persona = persona
        self._store = store
        self._extractor = extractor
        self._concurrency = max(1, concurrency)
        self._clock = clock

    async def run(self, *, cutoff: float | None = None) -> ConsolidationReport:
        """Consolidate every message written before ``cutoff`` (default: now)."""
        started = self._clock()
        report = ConsolidationReport(cutoff=started if cutoff is None else cutoff)
        try:
            await self._all_authors(report)
        except ExceptionGroup as group:  # a store failure: the run stops, resumable
            raise group.exceptions[0] from None
        report.seconds = round(self._clock() - started, 3)
        log.info("consolidation finished", extra={"report": report.as_dict()})
        return report

    async def _all_authors(self, report: ConsolidationReport) -> None:
        """Page through the pending directory, a few authors at a time."""
        slots = asyncio.Semaphore(self._concurrency)
        start_after: str | None = None
        async with asyncio.TaskGroup() as group:
            while True:
                page = await self._persona.log.pending_authors(
                    start_after=start_after, limit=AUTHOR_PAGE
                )
                for entry in page.items:
                    await slots.acquire()
                    group.create_task(self._author_slot(entry, report, slots))
                if page.last_sk is None or not page.items:
                    return
                start_after = page.last_sk

    async def _author_slot(
        self, entry: dict[str, Any], report: ConsolidationReport, slots: asyncio.Semaphore
    ) -> None:
        author_id = str(entry["sk"])
        try:
            report.authors += 1
            await self.consolidate_author(author_id, float(entry["listed_at"]), report)
        except (JobModelError, EmbeddingError, CommitConflict, PersonaError) as exc:
            log.warning("consolidation of author %s stopped: %s", author_id, exc)
            report.failed(author_id)
        except ValidationError:
            log.exception("consolidation of author %s met a malformed record", author_id)
            report.failed(author_id)
        finally:
            slots.release()

    async def consolidate_author(
        self, author_id: str, listed_at: float, report: ConsolidationReport
    ) -> None:
        """Consolidate one author's pending messages, chunk by chunk."""
        state: AuthorState | None = None
        start_after: str | None = None
        while True:
            page = await self._persona.log.pending(
                author_id, before=report.cutoff, start_after=start_after, limit=PENDING_PAGE
            )
            for chunk in chunks(page):
                fresh = [m for m in chunk if _minable(m)]
                if fresh:
                    state = state or await self._load(author_id)
                    fresh = [m for m in fresh if m.sort_key > state.cursor]
                if state is not None and fresh:
                    await self._mine(state, fresh, chunk[-1].sort_key, report)
                await self._persona.log.archive(chunk)
                report.messages_archived += len(chunk)
            if len(page) < PENDING_PAGE:
                break
            start_after = page[-1].sort_key
        await self._persona.log.unlist_if_done(author_id, listed_at)

    async def _mine(
        self,
        state: AuthorState,
        messages: list[LoggedMessage],
        through: str,
        report: ConsolidationReport,
    ) -> None:
        """Extract facts from ``messages`` and commit them with the cursor ``through``."""
        report.model_calls += 1
        screened = await self._extractor.extract(
            _author_name(messages), _recent_texts(state.known), messages
        )
        report.facts_dropped += sum(screened.dropped.values())
        await self._apply(state, screened.facts, messages, through, report)
        report.messages_mined += len(messages)

    async def _load(self, author_id: str) -> AuthorState:
        """The author's cursor and active facts, with an embedding for each."""
        cursor_item = await self._store.get(Table.JOB_LEASES, _CURSOR_PK, author_id)
        facts = await self._persona.facts.facts(author_id, include_superseded=True)
        active = [f for f in facts if f.active]
        vectors = await self._vectors_of(active)
        known = [
            Known(f.model_copy(update={"embedding": None}), v)
            for f, v in zip(active, vectors, strict=True)
        ]
        cursor = str(cursor_item["through"]) if cursor_item else ""
        return AuthorState(author_id, cursor, known, total=len(facts))

    async def _vectors_of(self, facts: Sequence[MemoryFact]) -> list[Vector]:
        """Stored vectors of the current model; missing ones embedded and saved."""
        model = self._persona.embedder.label
        found: list[Vector | None] = [
            decode(f.embedding) if f.embedding and f.embedding_model in (None, model) else None
            for f in facts
        ]
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            fresh = await self._persona.embedder.embed([facts[i].fact for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                found[i] = vector
                await self._save_vector(facts[i], vector)
        return [v for v in found if v is not None]

    async def _save_vector(self, fact: MemoryFact, vector: Vector) -> None:
        try:
            await self._persona.facts.edit(
                fact.user_id,
                fact.fact_id,
                embedding=encode(vector),
                embedding_model=self._persona.embedder.label,
            )
        except PersonaError:
            log.info("fact %s was deleted while consolidating", fact.fact_id)

    async def _apply(
        self,
        state: AuthorState,
        facts: list[ExtractedFact],
        messages: list[LoggedMessage],
        through: str,
        report: ConsolidationReport,
    ) -> None:
        """Plan the chunk's writes and commit them with the cursor (re-planned
        once when a known fact changed meanwhile)."""
        vectors = await self._embed_facts(facts)
        for attempt in range(MAX_COMMIT_ATTEMPTS):
            plan = plan_chunk(state, facts, vectors, messages, self._persona.embedder.label)
            try:
                await self._store.transact(
                    [*plan.ops(), bump_op(state.author_id), _cursor_op(state.author_id, through)]
                )
            except ConditionFailed:
                fresh = await self._load(state.author_id)
                state.cursor, state.known, state.total = fresh.cursor, fresh.known, fresh.total
                if state.cursor >= through:
                    return  # another run committed this chunk already
                log.info("facts changed during consolidation (attempt %d)", attempt + 1)
                continue
            _remember(state, plan, through)
            _count(report, plan)
            return
        raise CommitConflict(f"the facts of {state.author_id} kept changing")

    async def _embed_facts(self, facts: list[ExtractedFact]) -> list[tuple[Vector, Vector | None]]:
        """One embedding call for the facts and the known facts they contradict."""
        texts = [f.fact for f in facts] + [f.contradicts for f in facts if f.contradicts]
        if not texts:
            return []
        embedded = await self._persona.embedder.embed(texts)
        probes = iter(embedded[len(facts) :])
        return [
            (vector, next(probes) if fact.contradicts else None)
            for fact, vector in zip(facts, embedded, strict=False)
        ]


def plan_chunk(
    state: AuthorState,
    facts: Sequence[ExtractedFact],
    vectors: Sequence[tuple[Vector, Vector | None]],
    messages: Sequence[LoggedMessage],
    embedding_model: str,
) -> ChunkPlan:
    """Decide, for each new fact, whether it reinforces, supersedes or is new."""
    plan = ChunkPlan(at=messages[-1].created_at)
    dims = len(vectors[0][0]) if vectors else 0
    matrix = stack([k.vector for k in state.known], dims)
    for fact, (vector, probe) in zip(facts, vectors, strict=True):
        sources = source_ids(fact.fact, messages)
        gone = {i for i, k in enumerate(state.known) if k.fact.fact_id in plan.superseded}
        target = _contradicted(fact, probe if probe is not None else vector, state, matrix, gone)
        best, score = _best(vector, matrix, gone)
        if target is None and best is not None and score >= MATCH_THRESHOLD:
            _reinforce(plan, state.known[best].fact, sources)
            continue
        if target is None and _merge_into_new(plan, vector, sources):
            continue
        if state.total + len(plan.inserts) >= MAX_FACTS_PER_USER:
            log.warning("author %s holds %d facts; new fact dropped", state.author_id, state.total)
            plan.dropped += 1
            continue
        _insert(plan, state, fact, vector, sources, target, embedding_model)
    return plan


def _insert(
    plan: ChunkPlan,
    state: AuthorState,
    fact: ExtractedFact,
    vector: Vector,
    sources: list[str],
    target: int | None,
    embedding_model: str,
) -> None:
    created = new_fact(
        state.author_id,
        fact.fact,
        at=plan.at,
        category=fact.category,
        source_message_ids=sources,
        embedding=encode(vector),
        embedding_model=embedding_model,
    )
    plan.inserts[created.fact_id] = created
    plan.vectors[created.fact_id] = vector
    if target is not None:
        old = state.known[target].fact
        plan.superseded[old.fact_id] = (old, created.fact_id)


def _reinforce(plan: ChunkPlan, fact: MemoryFact, sources: list[str]) -> None:
    """One reinforcement per known fact per chunk (a transaction writes an item once)."""
    _, earlier = plan.reinforced.get(fact.fact_id, (fact, []))
    plan.reinforced[fact.fact_id] = (fact, [*earlier, *(s for s in sources if s not in earlier)])


def _merge_into_new(plan: ChunkPlan, vector: Vector, sources: list[str]) -> bool:
    """A fact said twice in one chunk is one new fact with both sources."""
    for fact_id, other in plan.vectors.items():
        if float(np.dot(vector, other)) >= MATCH_THRESHOLD:
            fact = plan.inserts[fact_id]
            merged = [*fact.source_message_ids]
            merged += [s for s in sources if s not in merged]
            plan.inserts[fact_id] = fact.model_copy(
                update={"source_message_ids": merged[-MAX_SOURCE_IDS:]}
            )
            return True
    return False


def _best(vector: Vector, matrix: Vector, gone: set[int]) -> tuple[int | None, float]:
    """The most similar known fact (index, score), skipping superseded ones."""
    if matrix.size == 0:
        return None, 0.0
    scores = similarities(vector, matrix)
    for index in gone:
        scores[index] = -1.0
    best = int(np.argmax(scores))
    return best, float(scores[best])


def _contradicted(
    fact: ExtractedFact, probe: Vector, state: AuthorState, matrix: Vector, gone: set[int]
) -> int | None:
    """The known fact the model says this one replaces: same text, else the
    closest in meaning when close enough. None when there is none, or when
    the "replacement" is that very fact said again (then it is reinforced)."""
    if fact.contradicts is None:
        return None
    wanted = fact.contradicts.casefold()
    target = next(
        (
            i
            for i, k in enumerate(state.known)
            if i not in gone and k.fact.fact.casefold() == wanted
        ),
        None,
    )
    if target is None:
        best, score = _best(probe, matrix, gone)
        target = best if score >= CONTRADICTION_THRESHOLD else None
    if target is not None and state.known[target].fact.fact.casefold() == fact.fact.casefold():
        return None
    return target


def _remember(state: AuthorState, plan: ChunkPlan, through: str) -> None:
    """Bring the in-memory state up to the committed chunk."""
    state.cursor = through
    kept: list[Known] = []
    for known in state.known:
        fact_id = known.fact.fact_id
        if fact_id in plan.superseded:
            continue
        if fact_id in plan.reinforced:
            fact, sources = plan.reinforced[fact_id]
            updated = _reinforced(fact, plan.at, sources)
            known = Known(updated, known.vector)
        kept.append(known)
    for fact_id, fact in plan.inserts.items():
        if fact_id not in plan.superseded:
            kept.append(Known(fact.model_copy(update={"embedding": None}), plan.vectors[fact_id]))
    state.known = kept
    state.total += len(plan.inserts)


def _reinforced(fact: MemoryFact, at: float, sources: list[str]) -> MemoryFact:
    op = reinforce_op(fact, at, sources)
    return fact.model_copy(update={**op.set, "reference_count": fact.reference_count + 1})


def _count(report: ConsolidationReport, plan: ChunkPlan) -> None:
    report.facts_inserted += len(plan.inserts)
    report.facts_reinforced += len(set(plan.reinforced) - set(plan.superseded))
    report.facts_superseded += len(plan.superseded)
    report.facts_dropped += plan.dropped


def _cursor_op(author_id: str, through: str) -> Put:
    """The author's cursor moves forward only: a chunk committed twice fails."""
    return Put(
        Table.JOB_LEASES,
        {"pk": _CURSOR_PK, "sk": author_id, "through": through},
        condition=Or([NotExists(), Lt("through", through)]),
    )


def chunks(messages: Sequence[LoggedMessage]) -> Iterator[list[LoggedMessage]]:
    """Consecutive runs of at most :data:`MAX_CHUNK_MESSAGES` messages and
    :data:`MAX_CHUNK_CHARS` characters (a long message counts as cut)."""
    chunk: list[LoggedMessage] = []
    size = 0
    for message in messages:
        length = min(len(message.content), MAX_MESSAGE_CHARS) + 1
        if chunk and (len(chunk) >= MAX_CHUNK_MESSAGES or size + length > MAX_CHUNK_CHARS):
            yield chunk
            chunk, size = [], 0
        chunk.append(message)
        size += length
    if chunk:
        yield chunk


def source_ids(fact: str, messages: Sequence[LoggedMessage]) -> list[str]:
    """The messages a fact most likely came from: those sharing the most words
    with it (the last message when none does), oldest first."""
    words = {w.casefold() for w in _WORD.findall(fact)}
    scored = [
        (len(words & {w.casefold() for w in _WORD.findall(m.content)}), i)
        for i, m in enumerate(messages)
    ]
    best = sorted((s for s in scored if s[0] > 0), reverse=True)[:MAX_SOURCES_PER_FACT]
    chosen = sorted(i for _, i in best) or [len(messages) - 1]
    return [messages[i].message_id for i in chosen]


def _minable(message: LoggedMessage) -> bool:
    """May the message hold facts (not the bot's, not empty)?"""
    return not message.from_bot and bool(message.content.strip())


def _author_name(messages: Sequence[LoggedMessage]) -> str:
    names = [m.author_name for m in messages if m.author_name]
    return names[-1] if names else messages[-1].author_id


def _recent_texts(known: Sequence[Known]) -> list[str]:
    recent = sorted(known, key=lambda k: k.fact.last_mentioned, reverse=True)
    return [k.fact.fact for k in recent]


async def consolidate(
    persona: Persona,
    store: ItemStore,
    extractor: FactExtractor,
    *,
    cutoff: float | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    clock: Callable[[], float] = time.time,
) -> ConsolidationReport:
    """One consolidation run (see the module docstring)."""
    consolidator = Consolidator(persona, store, extractor, concurrency=concurrency, clock=clock)
    return await consolidator.run(cutoff=cutoff)
