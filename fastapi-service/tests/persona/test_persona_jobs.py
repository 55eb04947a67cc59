"""Job leases and the schedule: one brain runs each job, once per day."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from trollama.brain.admission import Admission, MaintenanceState, RateLimiter
from trollama.brain.backends.ollama import OllamaBackend
from trollama.brain.persona.bundle import Persona, build_persona
from trollama.brain.persona.jobs import (
    STARTUP_DELAY_SECONDS,
    TICK_SECONDS,
    JobSchedule,
    PersonaJobs,
)
from trollama.brain.persona.leases import JobLeases, LeaseBusy, LeaseLost
from trollama.brain.persona.message_log import LoggedMessage
from trollama.brain.persona.mood import DATE_KEY
from trollama.brain.persona.outbox import Outbox
from trollama.brain.persona.status import STATUS_KEY
from trollama.common.store.base import ItemStore, Table
from trollama.testkit.script import Reply
from trollama.testkit.store_fixtures import StoreFactory

#: An hour before consolidation, in the future: items with a TTL stay visible to the store.
T0 = datetime(2030, 6, 1, 3, 0, tzinfo=UTC).timestamp()
HOUR = 3600.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_jobs(
    store: ItemStore, backend: OllamaBackend, clock: Clock, *, node: str = "brain-a", **extra: Any
) -> PersonaJobs:
    persona = build_persona(
        store,
        backend_for=lambda m: backend,
        embedding_model="qwen3-embedding:4b",
        embedding_timeout_seconds=5.0,
        clock=clock,
    )
    admission = Admission(store, initial=MaintenanceState(), rate_limiter=RateLimiter(0))
    return PersonaJobs(
        persona,
        store,
        backend_for=lambda m: backend,
        summarization_model="gpt-oss:20b",
        admission=admission,
        outbox=Outbox(store, clock=clock),
        schedule=JobSchedule(consolidation_hour_utc=4, proactive_interval_seconds=1800),
        node_id=node,
        clock=clock,
        rng=random.Random(1),
        **extra,
    )


async def log_one(persona: Persona, at: float) -> None:
    await persona.log.append(
        [
            LoggedMessage(
                message_id="m1",
                channel_id="c1",
                author_id="alice",
                author_name="Alice",
                content="I bake bread on Saturdays",
                created_at=at,
            )
        ]
    )


# ----------------------------------------------------------------------- leases


async def test_a_lease_is_exclusive_until_released_or_expired(store: ItemStore) -> None:
    clock = Clock()
    a = JobLeases(store, holder="a", clock=clock)
    b = JobLeases(store, holder="b", clock=clock)

    assert await a.acquire("daily", 60)
    assert not await b.acquire("daily", 60)
    assert await a.acquire("daily", 60)  # already mine: extended
    assert await b.holder_of("daily") == "a"
    await b.release("daily")  # not b's: nothing happens
    assert not await b.acquire("daily", 60)
    await a.release("daily")
    assert await b.acquire("daily", 60)
    clock.now += 61
    assert not await b.renew("missing", 60)
    assert await b.holder_of("daily") is None
    assert await a.acquire("daily", 60)  # b's lease expired
    assert not await b.renew("daily", 60)


async def test_run_records_survive_and_name_the_day(store: ItemStore) -> None:
    leases = JobLeases(store, holder="a", clock=Clock())
    assert await leases.last_run("daily") is None
    await leases.record_run("daily", day="2030-06-01")
    record = await leases.last_run("daily")
    assert record is not None
    assert (record.last_run_day, record.last_run_at) == ("2030-06-01", T0)


async def test_a_busy_lease_refuses_and_a_lost_one_stops_the_work(
    sqlite_store: ItemStore,
) -> None:
    a = JobLeases(sqlite_store, holder="a")
    b = JobLeases(sqlite_store, holder="b")
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.sleep(30)

    running = asyncio.create_task(a.run_exclusive("job", work, seconds=0.3))
    await started.wait()
    with pytest.raises(LeaseBusy):
        await b.run_exclusive("job", work)
    await sqlite_store.put(  # another brain takes the lease over
        Table.JOB_LEASES, {"pk": "lease", "sk": "job", "holder": "b", "lease_until": 1e12}
    )
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(running, 5)
    assert await b.holder_of("job") == "b"  # a did not release b's lease


# ----------------------------------------------------------------------- schedule


async def test_two_brains_run_the_daily_job_once(
    store_factory: StoreFactory, backend: OllamaBackend, fake_ollama: Any
) -> None:
    clock = Clock()
    first = make_jobs(store_factory.open(), backend, clock, node="brain-a")
    second = make_jobs(store_factory.open(), backend, clock, node="brain-b")
    fake_ollama.script.add(Reply(text="Kneading thoughts like dough."), system_contains="status")
    fake_ollama.script.add(Reply(text='{"facts": []}'), user_contains="bread")
    await log_one(first.persona, T0 - HOUR)

    assert "daily" not in await first.tick()  # before the consolidation hour
    clock.now = T0 + HOUR + 60
    ran = await asyncio.gather(first.tick(), second.tick())

    assert sum("daily" in r for r in ran) == 1
    presence = [i for i in await first.outbox.pending(100) if i.kind == "presence"]
    assert [i.text for i in presence] == ["Kneading thoughts like dough."]
    assert await second.persona.state.get(STATUS_KEY) == "Kneading thoughts like dough."
    assert await second.persona.state.get(DATE_KEY) == "2030-06-01"
    assert await first.persona.log.pending("alice", before=clock.now) == []
    record = await second.leases.last_run("daily")
    assert record is not None and record.last_run_day == "2030-06-01"

    restarted = make_jobs(store_factory.open(), backend, clock, node="brain-a")
    clock.now += HOUR
    assert "daily" not in await restarted.tick()
    clock.now += 24 * HOUR
    assert "daily" in await restarted.tick()  # the next day


async def test_proactive_rounds_follow_the_interval(
    sqlite_store: ItemStore, backend: OllamaBackend
) -> None:
    clock = Clock()
    jobs = make_jobs(sqlite_store, backend, clock)
    assert await jobs.tick() == ["proactive"]
    clock.now += 1000
    assert await jobs.tick() == []
    clock.now += 800
    assert await jobs.tick() == ["proactive"]


async def test_the_loop_waits_then_ticks_and_stops(
    sqlite_store: ItemStore, backend: OllamaBackend
) -> None:
    sleeps: list[float] = []
    ticked = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > 1:
            ticked.set()
            await asyncio.Event().wait()  # park until cancelled

    jobs = make_jobs(sqlite_store, backend, Clock(), sleep=fake_sleep)
    jobs.start()
    await asyncio.wait_for(ticked.wait(), 5)
    await jobs.stop()
    assert sleeps == [STARTUP_DELAY_SECONDS, TICK_SECONDS]
    assert await jobs.leases.last_run("proactive") is not None


async def test_a_job_run_by_hand_reports_and_refuses_when_busy(
    sqlite_store: ItemStore, backend: OllamaBackend, fake_ollama: Any
) -> None:
    clock = Clock()
    jobs = make_jobs(sqlite_store, backend, clock)
    fake_ollama.script.add(Reply(text='{"facts": []}'), user_contains="bread")
    await log_one(jobs.persona, T0 - 60)

    result = await jobs.run("consolidation")
    assert (result["authors"], result["messages_archived"]) == (1, 1)
    mood = await jobs.run("mood")
    assert mood["date"] == "2030-06-01"

    other = JobLeases(sqlite_store, holder="elsewhere", clock=clock)
    assert await other.acquire("status")
    with pytest.raises(LeaseBusy):
        await jobs.run("status")
