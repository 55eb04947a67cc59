"""The channel pacer: spacing per channel, first come first served, bounded memory."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from trollama.relay.pacing import ChannelPacer

INTERVAL = 1.1


class FakeTime:
    """A clock that only moves when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def fake_pacer(fake: FakeTime, **kwargs: int) -> ChannelPacer:
    return ChannelPacer(INTERVAL, clock=fake.clock, sleep=fake.sleep, **kwargs)


async def take_turns(
    pacer: ChannelPacer, channel: str, starts: list[float], clock: FakeTime
) -> None:
    async with pacer.turn(channel):
        starts.append(clock.now)


async def test_turns_in_one_channel_start_an_interval_apart() -> None:
    fake = FakeTime()
    pacer = fake_pacer(fake)
    starts: list[float] = []
    for _ in range(6):
        await take_turns(pacer, "thread", starts, fake)
    assert starts[0] == 1000.0  # the first operation does not wait
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= INTERVAL for gap in gaps)
    in_five_seconds = [s for s in starts if s < starts[0] + 5.0]
    assert len(in_five_seconds) <= 5


async def test_channels_do_not_wait_for_each_other() -> None:
    fake = FakeTime()
    pacer = fake_pacer(fake)
    starts: list[float] = []
    await take_turns(pacer, "a", starts, fake)
    await take_turns(pacer, "b", starts, fake)
    await take_turns(pacer, "c", starts, fake)
    assert fake.sleeps == []
    await take_turns(pacer, "a", starts, fake)
    assert fake.sleeps == [pytest.approx(INTERVAL)]


async def test_waiters_are_served_in_arrival_order() -> None:
    fake = FakeTime()
    pacer = fake_pacer(fake)
    order: list[int] = []

    async def worker(number: int) -> None:
        async with pacer.turn("thread"):
            order.append(number)

    tasks = []
    for number in range(8):
        tasks.append(asyncio.create_task(worker(number)))
        await asyncio.sleep(0)  # arrive one after the other
    await asyncio.gather(*tasks)
    assert order == list(range(8))


async def test_a_cancelled_waiter_does_not_break_the_queue() -> None:
    fake = FakeTime()
    never = asyncio.Event()

    async def stuck_sleep(seconds: float) -> None:
        await never.wait()

    pacer = ChannelPacer(INTERVAL, clock=fake.clock, sleep=stuck_sleep)
    async with pacer.turn("thread"):
        pass
    waiter = asyncio.create_task(enter(pacer, "thread"))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    fake.now += INTERVAL
    await asyncio.wait_for(enter(pacer, "thread"), timeout=5)


async def enter(pacer: ChannelPacer, channel: str) -> None:
    async with pacer.turn(channel):
        pass


async def test_an_error_in_the_operation_passes_through_and_the_pacer_goes_on() -> None:
    fake = FakeTime()
    pacer = fake_pacer(fake)
    with pytest.raises(ConnectionError):
        async with pacer.turn("thread"):
            raise ConnectionError("boom")
    await enter(pacer, "thread")
    assert fake.sleeps == [pytest.approx(INTERVAL)]  # the failed attempt used its slot


async def test_real_clock_concurrent_turns_are_spaced() -> None:
    interval = 0.02
    pacer = ChannelPacer(interval)
    starts: dict[str, list[float]] = {"a": [], "b": []}

    async def worker(channel: str) -> None:
        async with pacer.turn(channel) as started:
            assert time.monotonic() >= started
            starts[channel].append(started)

    await asyncio.gather(*(worker(channel) for channel in ["a", "b"] * 5))
    for times in starts.values():
        assert len(times) == 5
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= interval


async def test_idle_channels_are_forgotten() -> None:
    fake = FakeTime()
    pacer = fake_pacer(fake)
    for channel in range(50):
        await enter(pacer, str(channel))
        fake.now += INTERVAL  # each channel is idle before the next one comes
    assert pacer.tracked <= 2


async def test_the_number_of_channels_is_capped() -> None:
    fake = FakeTime()
    pacer = fake_pacer(fake, max_channels=5)
    for channel in range(40):
        await enter(pacer, str(channel))  # all still inside their interval
        assert pacer.tracked <= 5


async def test_a_channel_with_waiters_is_never_forgotten() -> None:
    fake = FakeTime()
    release = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        await release.wait()
        fake.now += seconds

    pacer = ChannelPacer(INTERVAL, clock=fake.clock, sleep=held_sleep, max_channels=2)
    await enter(pacer, "busy")
    waiter = asyncio.create_task(enter(pacer, "busy"))
    await asyncio.sleep(0.01)
    for channel in range(10):
        await enter(pacer, f"other-{channel}")
    release.set()
    await asyncio.wait_for(waiter, timeout=5)
    before = fake.now
    async with pacer.turn("busy"):
        assert fake.now >= before + INTERVAL - 1e-9  # "busy" still remembered its last start


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        ChannelPacer(-1.0)
    with pytest.raises(ValueError, match="max_channels"):
        ChannelPacer(1.0, max_channels=0)


async def test_urgent_turns_skip_the_spacing_but_never_the_window() -> None:
    from trollama.relay.pacing import WINDOW_OPS, WINDOW_SECONDS

    now = [100.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    pacer = ChannelPacer(1.1, clock=lambda: now[0], sleep=fake_sleep)
    starts = []
    async with pacer.turn("c") as started:  # a status line
        starts.append(started)
    async with pacer.turn("c", urgent=True) as started:  # the first text: no 1.1 s wait
        starts.append(started)
    assert starts[1] - starts[0] < 1.1
    for _ in range(WINDOW_OPS * 2):
        async with pacer.turn("c", urgent=True) as started:
            starts.append(started)
    for i in range(len(starts) - WINDOW_OPS):
        assert starts[i + WINDOW_OPS] - starts[i] >= WINDOW_SECONDS
