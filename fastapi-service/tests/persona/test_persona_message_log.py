"""The short-term message log and the archive, on every store backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from trollama.brain.persona.message_log import (
    MAX_LOGGED_CHARS,
    SHORT_TERM_SECONDS,
    LoggedMessage,
    MessageLog,
    archive_key,
)
from trollama.testkit.store_fixtures import StoreFactory

#: Today at 22:13:20 UTC. Expiry times must lie in the real future: DynamoDB
#: Local does delete items whose TTL passed, whatever the store's clock says.
_START = datetime.now(UTC).replace(hour=22, minute=13, second=20, microsecond=0)
T0 = _START.timestamp()
DAY_ONE = _START.date().isoformat()
DAY_TWO = (_START + timedelta(days=1)).date().isoformat()
#: Messages in the largest batch the relay sends.
FULL_BATCH = 100


class FakeClock:
    """A clock the test moves by hand (epoch seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def message(
    n: int,
    *,
    at: float | None = None,
    author: str = "alice",
    channel: str = "c1",
    from_bot: bool = False,
) -> LoggedMessage:
    return LoggedMessage(
        message_id=f"m{n}",
        channel_id=channel,
        guild_id="g1",
        author_id=author,
        author_name=author.title(),
        content=f"message {n}",
        created_at=T0 + n if at is None else at,
        from_bot=from_bot,
    )


def ids(messages: list[LoggedMessage]) -> list[str]:
    return [m.message_id for m in messages]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + 60)


@pytest.fixture
def log(store_factory: StoreFactory, clock: FakeClock) -> MessageLog:
    """A log whose store expires items by the test's clock."""
    return MessageLog(store_factory.open(clock=clock), clock=clock)


async def test_window_is_oldest_first_and_holds_the_bots_own_messages(log: MessageLog) -> None:
    await log.append([message(3), message(1), message(2, author="bot", from_bot=True)])
    await log.append([message(4, channel="c2")])

    window = await log.channel_window("c1")

    assert ids(window) == ["m1", "m2", "m3"]
    assert window[1].from_bot is True
    assert window[0] == message(1)
    assert ids(await log.channel_window("c2")) == ["m4"]
    assert await log.channel_window("c3") == []


async def test_appending_the_same_batch_twice_logs_each_message_once(log: MessageLog) -> None:
    batch = [message(1), message(2, author="bob"), message(3)]

    await log.append(batch)
    await log.append(batch)

    assert ids(await log.channel_window("c1")) == ["m1", "m2", "m3"]
    assert ids(await log.pending("alice", before=T0 + 100)) == ["m1", "m3"]
    assert ids(await log.pending("bob", before=T0 + 100)) == ["m2"]
    authors = await log.pending_authors(limit=10)
    assert sorted(str(item["sk"]) for item in authors.items) == ["alice", "bob"]


async def test_a_message_twice_in_one_batch_is_logged_once(log: MessageLog) -> None:
    await log.append([message(1), message(1)])

    assert ids(await log.channel_window("c1")) == ["m1"]
    assert ids(await log.pending("alice", before=T0 + 100)) == ["m1"]


async def test_a_full_batch_keeps_its_order(log: MessageLog) -> None:
    await log.append([message(n) for n in range(FULL_BATCH)])

    assert ids(await log.channel_window("c1")) == [f"m{n}" for n in range(FULL_BATCH)]


async def test_window_holds_only_the_last_24_hours(log: MessageLog, clock: FakeClock) -> None:
    old = message(0, at=T0 - SHORT_TERM_SECONDS - 5)
    recent = message(1, at=T0)
    await log.append([old, recent])

    assert ids(await log.channel_window("c1")) == ["m1"]
    clock.now = T0 + SHORT_TERM_SECONDS - 1
    assert ids(await log.channel_window("c1")) == ["m1"]
    clock.now = T0 + SHORT_TERM_SECONDS + 5
    assert await log.channel_window("c1") == []
    assert await log.last_in_channel("c1") is None
    # leaving the window loses nothing: consolidation still finds both
    assert ids(await log.pending("alice", before=clock.now)) == ["m0", "m1"]


async def test_window_limit_keeps_the_newest(log: MessageLog) -> None:
    await log.append([message(n) for n in range(5)])

    assert ids(await log.channel_window("c1", limit=2)) == ["m3", "m4"]
    last = await log.last_in_channel("c1")
    assert last is not None
    assert last.message_id == "m4"


async def test_pending_per_author_with_the_cutoff(log: MessageLog) -> None:
    await log.append(
        [message(1), message(2, author="bob"), message(3, channel="c2"), message(4), message(5)]
    )

    assert ids(await log.pending("alice", before=T0 + 4)) == ["m1", "m3", "m4"]
    assert ids(await log.pending("alice", before=T0 + 3.5)) == ["m1", "m3"]
    assert await log.pending("alice", before=T0) == []
    assert ids(await log.pending("bob", before=T0 + 100)) == ["m2"]
    assert await log.pending("carol", before=T0 + 100) == []


async def test_pending_pages_hold_only_messages_before_the_cutoff(log: MessageLog) -> None:
    # the cutoff filters before the limit: each page is full until the cutoff
    await log.append([message(n) for n in range(7)])

    first = await log.pending("alice", before=T0 + 4, limit=2)
    second = await log.pending("alice", before=T0 + 4, start_after=first[-1].sort_key, limit=2)
    third = await log.pending("alice", before=T0 + 4, start_after=second[-1].sort_key, limit=2)

    assert (ids(first), ids(second), ids(third)) == (["m0", "m1"], ["m2", "m3"], ["m4"])


async def test_pending_authors_pages(log: MessageLog, clock: FakeClock) -> None:
    await log.append([message(1, author=a) for a in ["a1", "a2", "a3"]])

    first = await log.pending_authors(limit=2)
    assert first.last_sk is not None
    rest = await log.pending_authors(start_after=first.last_sk, limit=2)

    listed = [*first.items, *rest.items]
    assert [item["sk"] for item in listed] == ["a1", "a2", "a3"]
    assert {item["listed_at"] for item in listed} == {clock.now}
    assert {item["last_at"] for item in listed} == {T0 + 1}


async def test_archive_moves_pending_messages_by_day(log: MessageLog) -> None:
    late = message(1, at=T0 + 3600)  # 23:13 on day one
    early = message(2, at=T0 + 7200)  # 00:13 on day two
    other = message(3, at=T0 + 7300, channel="c2")
    await log.append([late, early, other, message(4, author="bob")])

    await log.archive([late, early, other])

    assert await log.archived("c1", DAY_ONE) == [late]
    assert await log.archived("c1", DAY_TWO) == [early]
    assert await log.archived("c2", DAY_TWO) == [other]
    assert await log.pending("alice", before=T0 + 10_000) == []
    assert ids(await log.pending("bob", before=T0 + 10_000)) == ["m4"]
    assert ids(await log.channel_window("c1")) == ["m4", "m1", "m2"]  # the window stays


async def test_archive_is_idempotent(log: MessageLog) -> None:
    batch = [message(n) for n in range(3)]
    await log.append(batch)

    await log.archive(batch)
    await log.archive(batch)
    await log.archive([])

    assert await log.archived("c1", DAY_ONE) == batch
    assert await log.pending("alice", before=T0 + 100) == []


def test_archive_partition_is_the_channel_and_utc_day() -> None:
    assert archive_key(message(1, at=T0 + 3600)) == f"channel#c1#{DAY_ONE}"
    assert archive_key(message(2, at=T0 + 7200)) == f"channel#c1#{DAY_TWO}"


async def test_archive_holds_more_than_one_transaction(log: MessageLog) -> None:
    batch = [message(n) for n in range(FULL_BATCH + 5)]
    await log.append(batch[:FULL_BATCH])
    await log.append(batch[FULL_BATCH:])

    await log.archive(await log.pending("alice", before=T0 + 1000, limit=len(batch)))

    assert ids(await log.archived("c1", DAY_ONE)) == ids(batch)
    assert await log.pending("alice", before=T0 + 1000) == []


async def test_unlist_when_done(log: MessageLog) -> None:
    await log.append([message(1), message(2, author="bob")])
    listing = await log.pending_authors(limit=10)
    listed_at = {str(item["sk"]): float(item["listed_at"]) for item in listing.items}
    await log.archive(await log.pending("alice", before=T0 + 100))

    assert await log.unlist_if_done("alice", listed_at["alice"]) is True
    assert await log.unlist_if_done("bob", listed_at["bob"]) is False  # still pending
    listing = await log.pending_authors(limit=10)
    assert [item["sk"] for item in listing.items] == ["bob"]


async def test_unlist_refuses_when_the_author_wrote_after_the_listing(
    log: MessageLog, clock: FakeClock
) -> None:
    await log.append([message(1)])
    listed_at = float((await log.pending_authors(limit=1)).items[0]["listed_at"])
    await log.archive(await log.pending("alice", before=T0 + 100))
    clock.now += 30
    await log.append([message(90)])  # while consolidation was busy

    assert await log.unlist_if_done("alice", listed_at) is False  # pending again
    await log.archive(await log.pending("alice", before=T0 + 100))
    assert await log.unlist_if_done("alice", listed_at) is False  # listed again, later

    latest = float((await log.pending_authors(limit=1)).items[0]["listed_at"])
    assert latest == clock.now
    assert await log.unlist_if_done("alice", latest) is True
    assert (await log.pending_authors(limit=1)).items == []


async def test_unlist_of_an_author_never_listed(log: MessageLog) -> None:
    assert await log.unlist_if_done("nobody", T0) is False


def test_oversize_message_is_refused() -> None:
    with pytest.raises(ValidationError):
        LoggedMessage(
            message_id="m1",
            channel_id="c1",
            author_id="a",
            content="x" * (MAX_LOGGED_CHARS + 1),
            created_at=T0,
        )


def test_sort_keys_order_by_time_then_id() -> None:
    keys = [message(n).sort_key for n in (10, 2, 1)]

    assert sorted(keys) == [message(n).sort_key for n in (1, 2, 10)]
