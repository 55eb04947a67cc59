"""The dynamic status: generated from identity and mood, stored, posted for the relay."""

from __future__ import annotations

from typing import Any

import pytest

from trollama.brain.backends.ollama import OllamaBackend
from trollama.brain.persona.bundle import Persona, build_persona
from trollama.brain.persona.extraction import JobModel
from trollama.brain.persona.identity import IdentityKind
from trollama.brain.persona.mood import mood_key, read_mood
from trollama.brain.persona.outbox import Outbox
from trollama.brain.persona.status import (
    MAX_STATUS_CHARS,
    STATUS_KEY,
    DynamicStatus,
    clean_status,
)
from trollama.common.store.base import ItemStore
from trollama.testkit.script import Reply


@pytest.fixture
def persona(sqlite_store: ItemStore, backend: OllamaBackend) -> Persona:
    return build_persona(
        sqlite_store,
        backend_for=lambda m: backend,
        embedding_model="qwen3-embedding:4b",
        embedding_timeout_seconds=5.0,
    )


@pytest.fixture
def outbox(sqlite_store: ItemStore) -> Outbox:
    return Outbox(sqlite_store)


@pytest.fixture
def status(persona: Persona, backend: OllamaBackend, outbox: Outbox) -> DynamicStatus:
    return DynamicStatus(persona, JobModel(lambda m: backend, "gpt-oss:20b"), outbox)


async def test_a_new_status_is_stored_and_posted_as_presence(
    persona: Persona, status: DynamicStatus, outbox: Outbox, fake_ollama: Any
) -> None:
    await persona.identity.add(IdentityKind.TRAIT, "Obsessed with sharks")
    await persona.state.set(mood_key("anger"), 9.5)
    fake_ollama.script.add(Reply(text='"Pondering the existence of sharks."\n\nMore text.'))

    report = await status.refresh()

    assert report.status == "Pondering the existence of sharks." and report.changed
    assert await persona.state.get(STATUS_KEY) == "Pondering the existence of sharks."
    [item] = await outbox.pending()
    assert (item.kind, item.text, item.channel_id) == (
        "presence",
        "Pondering the existence of sharks.",
        None,
    )
    prompt = fake_ollama.requests_to("/api/chat")[-1].body["messages"][-1]["content"]
    assert "Obsessed with sharks" in prompt
    assert (await read_mood(persona.state)).describe() in prompt


async def test_a_failing_model_keeps_the_old_status(
    persona: Persona, status: DynamicStatus, outbox: Outbox, fake_ollama: Any
) -> None:
    await persona.state.set(STATUS_KEY, "Counting clouds.")
    fake_ollama.script.add(Reply.failing(500, "model crashed"))

    report = await status.refresh()

    assert (report.status, report.changed) == ("Counting clouds.", False)
    assert report.error is not None
    assert await persona.state.get(STATUS_KEY) == "Counting clouds."
    assert await outbox.pending() == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Status: Counting clouds.", "Counting clouds."),
        ("  \n`Mildly annoyed at semicolons`", "Mildly annoyed at semicolons"),
        ("", None),
        ('""', None),
    ],
)
def test_answers_are_cleaned_to_one_line(answer: str, expected: str | None) -> None:
    assert clean_status(answer) == expected


def test_a_long_status_is_cut_at_a_word_within_discords_limit() -> None:
    status = clean_status("word " * 60)
    assert status is not None
    assert len(status) <= MAX_STATUS_CHARS
    assert status.endswith("word…")
