"""Proactive engagement: chance, skips, quiet hours and maintenance, and what is said."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from trollama.brain.admission import Admission, MaintenanceMode, MaintenanceState, RateLimiter
from trollama.brain.backends.ollama import OllamaBackend
from trollama.brain.persona.bundle import Persona, build_persona
from trollama.brain.persona.extraction import JobModel
from trollama.brain.persona.identity import IdentityKind
from trollama.brain.persona.message_log import LoggedMessage
from trollama.brain.persona.outbox import Outbox
from trollama.brain.persona.proactive import ProactiveEngagement
from trollama.brain.persona.quiet_hours import (
    InvalidQuietHours,
    QuietHours,
    parse_quiet_hours,
    quiet_hours_or_none,
)
from trollama.brain.persona.status import STATUS_KEY
from trollama.common.store.base import ItemStore
from trollama.testkit.script import Reply

#: Noon, in the future: the channel window's 24-hour TTL keeps the messages visible.
NOON = datetime(2030, 6, 1, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScriptedRng(random.Random):
    """Returns the given numbers from ``random()``, in order; more is a test error."""

    def __init__(self, values: Sequence[float]) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        if not self.values:
            raise AssertionError("the round drew more random numbers than scripted")
        return self.values.pop(0)


@pytest.fixture
def persona(sqlite_store: ItemStore, backend: OllamaBackend) -> Persona:
    return build_persona(
        sqlite_store,
        backend_for=lambda m: backend,
        embedding_model="qwen3-embedding:4b",
        embedding_timeout_seconds=5.0,
    )


@pytest.fixture
def admission(sqlite_store: ItemStore) -> Admission:
    return Admission(sqlite_store, initial=MaintenanceState(), rate_limiter=RateLimiter(0))


@pytest.fixture
def outbox(sqlite_store: ItemStore) -> Outbox:
    return Outbox(sqlite_store)


def engagement(
    persona: Persona,
    backend: OllamaBackend,
    outbox: Outbox,
    admission: Admission,
    rng: random.Random,
    *,
    clock: Clock | None = None,
    quiet: QuietHours | None = None,
    chance: float = 0.1,
) -> ProactiveEngagement:
    return ProactiveEngagement(
        persona,
        JobModel(lambda m: backend, "gpt-oss:20b"),
        outbox,
        admission,
        chance=chance,
        quiet_hours=quiet,
        rng=rng,
        clock=clock or Clock(),
    )


async def chat_in(persona: Persona, channel: str, *lines: str) -> None:
    await persona.channels.update(channel, proactive=True)
    await persona.log.append(
        [
            LoggedMessage(
                message_id=f"{channel}-{n}",
                channel_id=channel,
                guild_id="g1",
                author_id=f"u{n}",
                author_name=f"user{n}",
                content=line,
                created_at=NOON - 600 + n,
            )
            for n, line in enumerate(lines)
        ]
    )


def prompts(fake_ollama: Any) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in fake_ollama.requests_to("/api/chat")]


async def test_a_comment_is_posted_and_logged_so_the_next_round_skips(
    persona: Persona,
    backend: OllamaBackend,
    outbox: Outbox,
    admission: Admission,
    fake_ollama: Any,
) -> None:
    await persona.identity.add(IdentityKind.TRAIT, "Loves terrible puns")
    await chat_in(persona, "c1", "who wants pizza tonight?", "pineapple on it, obviously")
    fake_ollama.script.add(Reply(text="Pineapple? That's a pizza-ble crime."))
    rng = ScriptedRng([0.05, 0.2])  # chance hit, then "comment"

    report = await engagement(persona, backend, outbox, admission, rng).run_round()

    assert report.spoke == ["c1"]
    [item] = await outbox.pending()
    assert (item.kind, item.channel_id, item.text) == (
        "say",
        "c1",
        "Pineapple? That's a pizza-ble crime.",
    )
    [prompt] = prompts(fake_ollama)
    assert "pineapple on it, obviously" in prompt and "Loves terrible puns" in prompt
    last = await persona.log.last_in_channel("c1")
    assert last is not None and not last.from_bot  # the relay logs it once posted

    rng.values = [0.05]
    again = await engagement(persona, backend, outbox, admission, rng).run_round()
    assert again.skipped == {"bot spoke last": 1}  # still waiting in the outbox
    assert len(await outbox.pending()) == 1


async def test_a_thought_starts_from_the_status(
    persona: Persona,
    backend: OllamaBackend,
    outbox: Outbox,
    admission: Admission,
    fake_ollama: Any,
) -> None:
    await persona.state.set(STATUS_KEY, "Pondering the existence of sharks.")
    await chat_in(persona, "c1", "quiet day")
    fake_ollama.script.add(Reply(text="Do sharks ever get bored?"))

    rng = ScriptedRng([0.05, 0.9])  # chance hit, then "thought"
    report = await engagement(persona, backend, outbox, admission, rng).run_round()

    assert report.spoke == ["c1"]
    [prompt] = prompts(fake_ollama)
    assert "Pondering the existence of sharks." in prompt
    assert "quiet day" not in prompt


async def test_no_luck_or_no_messages_means_no_message(
    persona: Persona,
    backend: OllamaBackend,
    outbox: Outbox,
    admission: Admission,
    fake_ollama: Any,
) -> None:
    await chat_in(persona, "c1", "hello")
    await persona.channels.update("c2", proactive=True)  # nothing said there
    rng = ScriptedRng([0.1, 0.0])  # c1 just misses the 10 % chance; c2 hits

    report = await engagement(persona, backend, outbox, admission, rng).run_round()

    assert report.skipped == {"chance": 1, "no recent messages": 1}
    assert await outbox.pending() == []
    assert prompts(fake_ollama) == []


@pytest.mark.parametrize("mode", [MaintenanceMode.SOFT, MaintenanceMode.HARD])
async def test_maintenance_skips_the_round(
    persona: Persona,
    backend: OllamaBackend,
    outbox: Outbox,
    admission: Admission,
    mode: MaintenanceMode,
) -> None:
    await chat_in(persona, "c1", "hello")
    await admission.set_maintenance(MaintenanceState(mode=mode))
    report = await engagement(persona, backend, outbox, admission, ScriptedRng([])).run_round()
    assert report.round_skipped == "maintenance"
    assert await outbox.pending() == []


async def test_quiet_hours_skip_the_round(
    persona: Persona, backend: OllamaBackend, outbox: Outbox, admission: Admission
) -> None:
    await chat_in(persona, "c1", "hello")
    quiet = QuietHours(23, 7)
    at_two = Clock(NOON - 10 * 3600)
    proactive = engagement(
        persona, backend, outbox, admission, ScriptedRng([]), clock=at_two, quiet=quiet
    )
    assert (await proactive.run_round()).round_skipped == "quiet hours"
    assert await outbox.pending() == []


async def test_a_seeded_rng_speaks_where_its_draws_fall_under_the_chance(
    persona: Persona,
    backend: OllamaBackend,
    outbox: Outbox,
    admission: Admission,
    fake_ollama: Any,
) -> None:
    channels = [f"c{n:02d}" for n in range(30)]
    for channel in channels:
        await chat_in(persona, channel, "anyone around?")
    fake_ollama.script.add(Reply(text="I am."))
    replay = random.Random(7)
    expected = []
    for channel in sorted(channels):
        if replay.random() < 0.1:
            expected.append(channel)
            replay.random()  # comment or thought

    report = await engagement(persona, backend, outbox, admission, random.Random(7)).run_round()

    assert 0 < len(expected) < len(channels)
    assert report.spoke == expected
    assert report.skipped == {"chance": len(channels) - len(expected)}
    assert sorted(i.channel_id or "" for i in await outbox.pending(100)) == expected


@pytest.mark.parametrize(
    ("text", "quiet_at", "loud_at"),
    [("23-7", [23, 0, 6], [7, 12, 22]), ("1-5", [1, 4], [0, 5, 23]), ("22-24", [22, 23], [0])],
)
def test_quiet_hours_parse_and_wrap_midnight(
    text: str, quiet_at: list[int], loud_at: list[int]
) -> None:
    hours = parse_quiet_hours(text)
    assert hours is not None
    assert all(hours.contains_hour(h) for h in quiet_at)
    assert not any(hours.contains_hour(h) for h in loud_at)


@pytest.mark.parametrize("text", ["23", "7-7", "25-3", "a-b", "1-2-3"])
def test_invalid_quiet_hours_are_refused_or_mean_none(text: str) -> None:
    with pytest.raises(InvalidQuietHours):
        parse_quiet_hours(text)
    assert quiet_hours_or_none(text) is None
    assert parse_quiet_hours("  ") is None
