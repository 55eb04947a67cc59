"""Per-channel settings and the proactive listing, on every store backend."""

from __future__ import annotations

import asyncio
from typing import cast

from trollama.brain.persona.channels import ChannelSettings, ChannelSettingsStore
from trollama.common.store.base import ItemStore
from trollama.testkit.racing import RacingStore
from trollama.testkit.store_fixtures import StoreFactory

T0 = 1_700_000_000.0


class FakeClock:
    """A clock the test moves by hand (epoch seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_unknown_channel_has_the_defaults(store: ItemStore) -> None:
    channels = ChannelSettingsStore(store)

    assert await channels.get("c1") == ChannelSettings(channel_id="c1")
    assert await channels.proactive_channels() == []


async def test_opt_out_of_the_log(store: ItemStore) -> None:
    channels = ChannelSettingsStore(store, clock=FakeClock(T0))

    updated = await channels.update("c1", log_opt_out=True, guild_id="g1")

    assert updated == ChannelSettings(
        channel_id="c1", guild_id="g1", log_opt_out=True, proactive=False, updated_at=T0
    )
    assert await channels.get("c1") == updated
    assert (await channels.get("c2")).log_opt_out is False
    assert await channels.proactive_channels() == []


async def test_opting_back_in(store: ItemStore) -> None:
    channels = ChannelSettingsStore(store)
    await channels.update("c1", log_opt_out=True)

    await channels.update("c1", log_opt_out=False)

    assert (await channels.get("c1")).log_opt_out is False


async def test_proactive_channels_are_listed_until_switched_off(store: ItemStore) -> None:
    channels = ChannelSettingsStore(store)
    await channels.update("c1", proactive=True, guild_id="g1")
    await channels.update("c2", proactive=True)
    await channels.update("c3", log_opt_out=True)

    assert sorted(await channels.proactive_channels()) == ["c1", "c2"]
    await channels.update("c1", proactive=False)
    assert await channels.proactive_channels() == ["c2"]
    assert (await channels.get("c1")).guild_id == "g1"


async def test_unset_fields_keep_their_values(store: ItemStore) -> None:
    clock = FakeClock(T0)
    channels = ChannelSettingsStore(store, clock=clock)
    await channels.update("c1", proactive=True, log_opt_out=True, guild_id="g1")
    clock.now += 10

    updated = await channels.update("c1", log_opt_out=False)

    assert updated == ChannelSettings(
        channel_id="c1", guild_id="g1", log_opt_out=False, proactive=True, updated_at=T0 + 10
    )
    assert await channels.proactive_channels() == ["c1"]  # still listed


async def test_switching_proactive_off_twice_is_harmless(store: ItemStore) -> None:
    channels = ChannelSettingsStore(store)

    await channels.update("c1", proactive=False)
    await channels.update("c1", proactive=False)

    assert (await channels.get("c1")).proactive is False
    assert await channels.proactive_channels() == []


async def test_another_replica_sees_the_settings(store_factory: StoreFactory) -> None:
    await ChannelSettingsStore(store_factory.open()).update("c1", proactive=True)

    other = ChannelSettingsStore(store_factory.open())

    assert (await other.get("c1")).proactive is True
    assert await other.proactive_channels() == ["c1"]


async def test_two_admins_changing_one_channel_at_once_both_land(
    store_factory: StoreFactory,
) -> None:
    racers = [RacingStore(store_factory.open()) for _ in range(2)]
    first, second = (ChannelSettingsStore(cast(ItemStore, r)) for r in racers)
    await first.update("c1", guild_id="g1")

    await asyncio.gather(first.update("c1", log_opt_out=True), second.update("c1", proactive=True))

    assert sum(r.refused for r in racers) > 0  # the admins did race
    settings = await first.get("c1")
    assert (settings.log_opt_out, settings.proactive, settings.guild_id) == (True, True, "g1")
    assert await second.proactive_channels() == ["c1"]
