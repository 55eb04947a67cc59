"""Samples and alerts on every store backend: layout, 24-hour reads, restart survival."""

from __future__ import annotations

import time

import httpx

from trollama.common.store.base import ItemStore
from trollama.monitor.alerts import AlertEngine, AlertRepository
from trollama.monitor.notifier import WebhookNotifier
from trollama.monitor.samples import Sample, SampleRepository, State
from trollama.monitor.uptime import hourly_buckets, uptime_share
from trollama.testkit.store_fixtures import StoreFactory

HOUR = 3600.0


def _sample(at: float, state: State = State.UP, target: str = "brain") -> Sample:
    return Sample(target, at, state, 12.5, f"reports {state.value}")


async def test_samples_since_spans_two_days_and_skips_older(store_factory: StoreFactory) -> None:
    now = 1_699_920_000.0 + 3 * HOUR  # 03:00 UTC, so 24 hours span two day partitions
    repo = SampleRepository(store_factory.open(clock=lambda: now), clock=lambda: now)
    times = [now - 30 * HOUR, now - 20 * HOUR, now - 5 * HOUR, now - 60]
    for at in times:
        await repo.add(_sample(at))
    await repo.add(_sample(now - 60, target="relay"))

    found = await repo.since("brain", now - 24 * HOUR)

    assert [s.at for s in found] == times[1:]
    assert found[-1].latency_ms == 12.5 and found[-1].state is State.UP
    latest = await repo.latest("brain")
    assert latest is not None and latest.at == now - 60


async def test_uptime_counts_degraded_as_up_and_fills_hour_buckets(store: ItemStore) -> None:
    now = time.time()
    repo = SampleRepository(store)
    for offset, state in ((3 * HOUR, State.DOWN), (2 * HOUR, State.DEGRADED), (60, State.UP)):
        await repo.add(_sample(now - offset, state))
    samples = await repo.since("brain", now - 24 * HOUR)

    assert uptime_share(samples) == 2 / 3
    buckets = hourly_buckets(samples, now)
    assert len(buckets) == 24
    assert [b.worst for b in buckets if b.worst != "none"] == ["down", "degraded", "up"]
    assert buckets[-1].uptime == 1.0


async def test_one_open_alert_per_target_survives_restart(store_factory: StoreFactory) -> None:
    async with httpx.AsyncClient() as client:
        notifier = WebhookNotifier(client, "")
        first = AlertEngine(AlertRepository(store_factory.open()), notifier)
        await first.observe(_sample(time.time(), State.DOWN))
        await first.observe(_sample(time.time(), State.DOWN))

        restarted = AlertEngine(AlertRepository(store_factory.open()), notifier)
        await restarted.load()
        await restarted.observe(_sample(time.time(), State.DOWN))
        assert restarted.open_for("brain") is not None
        await restarted.observe(_sample(time.time(), State.UP))

    listing = await AlertRepository(store_factory.open()).listing(10)
    assert len(listing) == 1
    assert listing[0].kind == "down" and listing[0].resolved_at is not None


async def test_listing_puts_open_alerts_before_history(store: ItemStore) -> None:
    async with httpx.AsyncClient() as client:
        engine = AlertEngine(AlertRepository(store), WebhookNotifier(client, ""))
        now = time.time()
        await engine.observe(_sample(now - 10, State.DEGRADED, "relay"))
        await engine.observe(_sample(now - 5, State.UP, "relay"))
        await engine.observe(_sample(now, State.DOWN, "brain"))

    listing = await AlertRepository(store).listing(10)

    assert [(a.target, a.kind, a.resolved_at is None) for a in listing] == [
        ("brain", "down", True),
        ("relay", "degraded", False),
    ]
