"""Persona memory at community scale, measured in one run on SQLite.

Two measurements, each with a baseline from the same run:

* **context building** — the persona layers of one request (identity, user
  profile, the most relevant memories by embedding similarity, relationship,
  mood, the channel's last 24 hours) for users holding ``--facts`` memory
  facts each, against users holding none. Includes the one ``/api/embed`` call
  per request to the simulated model server (loopback, no scripted latency).
  Decoded facts are reused while a user's facts are unchanged (the fact
  index); the first request after a change reads and decodes them again and
  is reported on its own line.
* **daily consolidation** — a short-term log of ``--messages`` messages from
  ``--users`` users is consolidated (fact extraction with a scripted model
  latency, embedding, dedupe, archive) while a sampler records the process's
  peak RSS. The baseline run holds a fifth of the messages: memory must not
  grow with the log (``rss ratio`` ≈ 1).

Last line: ``context_p95_ms=X consolidation_rss_mb=Y consolidation_s=Z``.
Targets: context building p95 ≤ 20 ms on SQLite; consolidation peak RSS
≤ 300 MB whatever the log size.

    uv run python bench/memory.py [--messages 50000] [--users 500] [--facts 1000]
        [--context-users 10] [--requests 200] [--model-latency-ms 20]
"""

from __future__ import annotations

import os
import sys

# bench/logging.py (the issue names it) would shadow the standard library's
# ``logging`` for scripts run from this folder: drop the folder from the path.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import asyncio
import gc
import json
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from trollama.brain.backends.ollama import OllamaBackend
from trollama.brain.persona.bundle import Persona, build_persona
from trollama.brain.persona.consolidation import ConsolidationReport, consolidate
from trollama.brain.persona.extraction import FactExtractor, JobModel
from trollama.brain.persona.facts import MemoryFact, new_fact
from trollama.brain.persona.identity import DEFAULT_IDENTITY_FILE
from trollama.brain.persona.message_log import LoggedMessage
from trollama.brain.persona.prompt import PersonaPrompt, PromptBudgets
from trollama.brain.persona.vectors import encode
from trollama.brain.routing.profiles import load_profile
from trollama.common.protocol import RequestFrame
from trollama.common.settings import StoreSettings
from trollama.common.store.base import ItemStore, Table
from trollama.common.store.factory import open_store
from trollama.testkit.fake_ollama import FakeOllama, embed_text
from trollama.testkit.script import ModelScript, Reply
from trollama.testkit.stats import percentile

#: Embedding length, as the brain asks of the model by default (EMBEDDING_DIMENSIONS).
EMBEDDING_DIMENSIONS = 256
#: What the stored vectors say made them (the embedder's label for the profile's model).
EMBEDDER_LABEL = f"{load_profile('conservative').embedding_model}@{EMBEDDING_DIMENSIONS}"
#: Seconds between two samples of the process's memory.
RSS_SAMPLE_SECONDS = 0.02
#: Messages written to the log per batch while seeding.
SEED_BATCH = 500
#: The day the benchmark's messages were written (epoch seconds, UTC noon).
DAY_START = 1_800_000_000.0
TOPICS = (
    "green tea",
    "rust compilers",
    "mountain biking",
    "sourdough baking",
    "jazz piano",
    "board games",
    "astronomy",
    "gardening",
    "chess openings",
    "retro consoles",
)
QUESTION = "Any tips for brewing green tea at home?"
EXTRACTION_ANSWER = json.dumps(
    {
        "facts": [
            {"fact": "Enjoys green tea in the morning", "category": "food", "contradicts": None},
            {"fact": "Rides a mountain bike on weekends", "category": "hobby", "contradicts": None},
            {"fact": "Is learning jazz piano", "category": "music", "contradicts": None},
        ]
    }
)


class PeakRss:
    """Samples this process's resident memory in a thread; ``peak_mb`` is the highest seen."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(RSS_SAMPLE_SECONDS)

    def __enter__(self) -> PeakRss:
        self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def open_sqlite(directory: Path, name: str) -> ItemStore:
    return open_store(StoreSettings(_env_file=None, sqlite_path=directory / f"{name}.db"))


def persona_for(store: ItemStore, url: str) -> tuple[Persona, OllamaBackend]:
    backend = OllamaBackend(url, keep_alive_seconds=300, connect_timeout=5, read_timeout=60)
    persona = build_persona(
        store,
        backend_for=lambda _model: backend,
        embedding_model=load_profile("conservative").embedding_model,
        embedding_timeout_seconds=10,
        embedding_dimensions=EMBEDDING_DIMENSIONS,
    )
    return persona, backend


# ------------------------------------------------------------------ context building


def user_facts(user_id: str, count: int) -> list[MemoryFact]:
    facts = []
    for index in range(count):
        topic = TOPICS[index % len(TOPICS)]
        text = f"Mentioned {topic} detail number {index} during a chat"
        facts.append(
            new_fact(
                user_id,
                text,
                at=DAY_START - index * 60,
                category=topic.split()[0],
                embedding=encode(embed_text(text, EMBEDDING_DIMENSIONS)),
                embedding_model=EMBEDDER_LABEL,
            )
        )
    return facts


async def seed_context(
    store: ItemStore, persona: Persona, users: Sequence[str], facts_per_user: int
) -> None:
    await persona.seed_identity(DEFAULT_IDENTITY_FILE)
    for user_id in users:
        await persona.profiles.seen(user_id, f"name-{user_id}")
        facts = user_facts(user_id, facts_per_user)
        for start in range(0, len(facts), SEED_BATCH):
            await store.batch_put(
                Table.MEMORY_FACTS, [fact_item(f) for f in facts[start : start + SEED_BATCH]]
            )
    await persona.log.append(
        [
            LoggedMessage(
                message_id=f"ctx-{i}",
                channel_id="general",
                author_id=users[i % len(users)],
                author_name=f"name-{users[i % len(users)]}",
                content=f"chatting about {TOPICS[i % len(TOPICS)]} again",
                created_at=time.time() - 3600 + i,
            )
            for i in range(100)
        ]
    )


def fact_item(fact: MemoryFact) -> dict[str, object]:
    return {
        "pk": f"user#{fact.user_id}",
        "sk": f"fact#{fact.fact_id}",
        **fact.model_dump(mode="json", exclude_none=True),
    }


async def time_context(
    prompt: PersonaPrompt, users: Sequence[str], requests: int
) -> tuple[list[float], int]:
    samples: list[float] = []
    chars = 0
    for index in range(requests):
        user_id = users[index % len(users)]
        request = RequestFrame(
            request_id=f"bench-{user_id}-{index}",
            user_id=user_id,
            user_name=f"name-{user_id}",
            conversation_id=f"thread-{index}",
            channel_id="general",
            content=QUESTION,
        )
        started = time.perf_counter()
        layers = await prompt.system_layers(request)
        channel = await prompt.channel_layer(request)
        samples.append((time.perf_counter() - started) * 1000)
        chars = max(chars, len(layers) + len(channel))
    return samples, chars


async def context_benchmark(
    directory: Path, url: str, facts: int, users: int, requests: int
) -> tuple[list[float], list[float], list[float], int]:
    store = open_sqlite(directory, "context")
    await store.ensure_tables()
    persona, backend = persona_for(store, url)
    try:
        full = [f"u{index}" for index in range(users)]
        empty = [f"e{index}" for index in range(users)]
        await seed_context(store, persona, full, facts)
        await seed_context(store, persona, empty, 0)
        prompt = PersonaPrompt(persona, PromptBudgets(memory_tokens=400, channel_tokens=1500))
        await time_context(prompt, full, min(20, requests))  # warm caches and connections
        baseline, _ = await time_context(prompt, empty, requests)
        measured, chars = await time_context(prompt, full, requests)
        cold: list[float] = []
        for user_id in full:  # the first request after the user's facts changed
            await persona.facts.add(
                new_fact(user_id, "Just told us about a new hobby", at=time.time())
            )
            samples, _ = await time_context(prompt, [user_id], 1)
            cold += samples
        return baseline, measured, cold, chars
    finally:
        await backend.close()
        await store.close()


# ------------------------------------------------------------------ consolidation


async def seed_log(persona: Persona, messages: int, users: int) -> None:
    batch: list[LoggedMessage] = []
    for index in range(messages):
        author = f"a{index % users}"
        topic = TOPICS[(index // users) % len(TOPICS)]
        batch.append(
            LoggedMessage(
                message_id=f"m{index}",
                channel_id=f"c{index % 20}",
                guild_id="g1",
                author_id=author,
                author_name=f"name-{author}",
                content=f"I spent the evening on {topic}; message {index} of the day",
                created_at=DAY_START + index * (86_000 / messages),
            )
        )
        if len(batch) >= SEED_BATCH:
            await persona.log.append(batch)
            batch = []
    if batch:
        await persona.log.append(batch)


async def consolidation_benchmark(
    directory: Path, name: str, url: str, messages: int, users: int
) -> tuple[ConsolidationReport, float, float]:
    store = open_sqlite(directory, name)
    await store.ensure_tables()
    persona, backend = persona_for(store, url)
    try:
        await seed_log(persona, messages, users)
        gc.collect()
        extractor = FactExtractor(
            JobModel(
                lambda _model: backend,
                load_profile("conservative").summarization_model,
                timeout_seconds=60,
            )
        )
        with PeakRss() as rss:
            started = time.perf_counter()
            report = await consolidate(persona, store, extractor, cutoff=DAY_START + 86_400)
            seconds = time.perf_counter() - started
        return report, seconds, rss.peak_mb
    finally:
        await backend.close()
        await store.close()


# ------------------------------------------------------------------ main


async def main(args: argparse.Namespace) -> None:
    script = ModelScript(
        default=Reply(text=EXTRACTION_ANSWER, ttft_seconds=args.model_latency_ms / 1000)
    )
    with (
        FakeOllama(script).start_in_thread() as fake,
        tempfile.TemporaryDirectory(prefix="trollama-bench-memory-") as tmp,
    ):
        directory = Path(tmp)
        print(
            f"SIMULATED model server at {fake.url} (extraction latency {args.model_latency_ms} ms)"
        )

        baseline, measured, cold, chars = await context_benchmark(
            directory, fake.url, args.facts, args.context_users, args.requests
        )
        p50, p95 = percentile(measured, 50), percentile(measured, 95)
        b50, b95 = percentile(baseline, 50), percentile(baseline, 95)
        print(f"\ncontext building, {args.requests} requests, SQLite, incl. one /api/embed call")
        print(f"  users with 0 facts:       p50 {b50:6.2f} ms   p95 {b95:6.2f} ms")
        print(f"  users with {args.facts} facts:  p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")
        print(
            f"  first request after a change to the user's facts ({len(cold)} users): "
            f"p50 {percentile(cold, 50):6.2f} ms   max {max(cold):6.2f} ms"
        )
        print(f"  ratio (p95, facts / none): {p95 / b95:.2f}   largest layers: {chars} chars")
        print(f"  target p95 <= 20 ms: {'met' if p95 <= 20 else 'not met'}")

        small_messages, small_users = args.messages // 5, max(1, args.users // 5)
        small, small_s, small_rss = await consolidation_benchmark(
            directory, "small", fake.url, small_messages, small_users
        )
        full, full_s, full_rss = await consolidation_benchmark(
            directory, "full", fake.url, args.messages, args.users
        )
        print("\ndaily consolidation, SQLite")
        for label, report, seconds, rss in (
            (f"{small_messages} msgs / {small_users} users", small, small_s, small_rss),
            (f"{args.messages} msgs / {args.users} users", full, full_s, full_rss),
        ):
            print(
                f"  {label:>26}: {seconds:6.1f} s  peak RSS {rss:6.1f} MB  "
                f"archived {report.messages_archived}  model calls {report.model_calls}  "
                f"facts +{report.facts_inserted} ~{report.facts_reinforced}  "
                f"failed {report.failed_count}"
            )
        print(f"  RSS ratio (full / fifth): {full_rss / small_rss:.2f}")
        print(f"  target peak RSS <= 300 MB: {'met' if full_rss <= 300 else 'not met'}")
        print(
            f"context_p95_ms={p95:.2f} consolidation_rss_mb={full_rss:.1f} "
            f"consolidation_s={full_s:.1f}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--facts", type=int, default=1000)
    parser.add_argument("--context-users", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--model-latency-ms", type=float, default=20.0)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
