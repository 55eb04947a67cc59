"""The item-store contract: every backend must pass every test here.

Runs through the ``store`` fixture against SQLite, a moto server and
Amazon's DynamoDB Local, each a real process speaking its real protocol.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from trollama.common.store.base import (
    MAX_ITEM_BYTES,
    Check,
    ConditionFailed,
    Delete,
    ItemStore,
    ItemTooLarge,
    Put,
    StoreUnavailable,
    Table,
    Update,
)
from trollama.common.store.conditions import Eq, Exists, Gt, NotExists
from trollama.common.store.dynamodb import DynamoStore
from trollama.testkit.ports import free_port
from trollama.testkit.store_fixtures import StoreFactory

T = Table.CONVERSATIONS
ODD_STRINGS = [
    "emoji 🦙🔥",
    "quote ' double \" backslash \\",
    '"; DROP TABLE x; --',
    "#name :val",
    "new\nline\ttab",
    "ünïcødé 中文 العربية",
]


class FakeClock:
    """A clock the test moves by hand (epoch seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def item(pk: str, sk: str, **attrs: object) -> dict[str, object]:
    return {"pk": pk, "sk": sk, **attrs}


# ---------------------------------------------------------------- get / put


async def test_get_missing_item_returns_none(store: ItemStore) -> None:
    assert await store.get(T, "nobody", "nothing") is None


async def test_put_replaces_the_whole_item(store: ItemStore) -> None:
    await store.put(T, item("p", "s", a=1, b="two"))
    await store.put(T, item("p", "s", c=3))

    assert await store.get(T, "p", "s") == item("p", "s", c=3)


async def test_tables_are_separate(store: ItemStore) -> None:
    await store.put(Table.USERS, item("p", "s", where="users"))

    assert await store.get(Table.PERSONA, "p", "s") is None


async def test_put_not_exists_is_idempotent(store: ItemStore) -> None:
    await store.put(T, item("p", "msg-1", text="first"), condition=NotExists())

    with pytest.raises(ConditionFailed):
        await store.put(T, item("p", "msg-1", text="second"), condition=NotExists())
    assert await store.get(T, "p", "msg-1") == item("p", "msg-1", text="first")


async def test_put_with_version_condition(store: ItemStore) -> None:
    await store.put(T, item("p", "s", version=1))
    await store.put(T, item("p", "s", version=2), condition=Eq("version", 1))

    with pytest.raises(ConditionFailed):
        await store.put(T, item("p", "s", version=3), condition=Eq("version", 1))
    assert await store.get(T, "p", "s") == item("p", "s", version=2)


@pytest.mark.parametrize(("pk", "sk"), [("", "s"), ("p", ""), ("p" * 2049, "s"), ("p", "s" * 1025)])
async def test_invalid_keys_are_refused(store: ItemStore, pk: str, sk: str) -> None:
    with pytest.raises(ValueError, match=r"pk|sk"):
        await store.put(T, item(pk, sk))


# ---------------------------------------------------------------- update


async def test_update_sets_adds_and_removes(store: ItemStore) -> None:
    await store.put(T, item("p", "s", name="old", count=2, gone="x", kept=True))

    after = await store.update(
        T, "p", "s", set={"name": "new", "tags": ["a"]}, add={"count": 3}, remove=["gone"]
    )

    expected = item("p", "s", name="new", count=5, kept=True, tags=["a"])
    assert after == expected
    assert await store.get(T, "p", "s") == expected


async def test_update_upserts_a_missing_item(store: ItemStore) -> None:
    after = await store.update(T, "p", "new", set={"a": "b"}, add={"hits": 1, "score": 0.5})

    assert after == item("p", "new", a="b", hits=1, score=0.5)
    assert await store.get(T, "p", "new") == after


async def test_update_without_changes_creates_a_bare_item(store: ItemStore) -> None:
    assert await store.update(T, "p", "bare") == item("p", "bare")
    assert await store.get(T, "p", "bare") == item("p", "bare")


async def test_update_with_failing_condition_changes_nothing(store: ItemStore) -> None:
    await store.put(T, item("p", "s", state="leased", n=1))

    with pytest.raises(ConditionFailed):
        await store.update(
            T, "p", "s", set={"state": "done"}, add={"n": 1}, condition=Eq("state", "queued")
        )
    assert await store.get(T, "p", "s") == item("p", "s", state="leased", n=1)


async def test_conditional_update_of_missing_item_creates_nothing(store: ItemStore) -> None:
    with pytest.raises(ConditionFailed):
        await store.update(T, "p", "missing", set={"a": 1}, condition=Exists())
    assert await store.get(T, "p", "missing") is None


async def test_update_refuses_key_attributes_and_overlaps(store: ItemStore) -> None:
    with pytest.raises(ValueError, match="pk or sk"):
        await store.update(T, "p", "s", set={"sk": "other"})
    with pytest.raises(ValueError, match="more than once"):
        await store.update(T, "p", "s", set={"a": 1}, remove=["a"])


async def test_update_cannot_add_to_a_string(store: ItemStore) -> None:
    await store.put(T, item("p", "s", name="text"))

    with pytest.raises(ValueError, match=r"(?i)type|number"):
        await store.update(T, "p", "s", add={"name": 1})
    assert await store.get(T, "p", "s") == item("p", "s", name="text")


# ---------------------------------------------------------------- delete


async def test_delete_reports_whether_an_item_was_there(store: ItemStore) -> None:
    await store.put(T, item("p", "s"))

    assert await store.delete(T, "p", "s") is True
    assert await store.delete(T, "p", "s") is False
    assert await store.get(T, "p", "s") is None


async def test_conditional_delete(store: ItemStore) -> None:
    await store.put(T, item("p", "s", owner="alice"))

    with pytest.raises(ConditionFailed):
        await store.delete(T, "p", "s", condition=Eq("owner", "bob"))
    assert await store.get(T, "p", "s") is not None
    assert await store.delete(T, "p", "s", condition=Eq("owner", "alice")) is True
    assert await store.get(T, "p", "s") is None


# ---------------------------------------------------------------- query / count


async def _fill(store: ItemStore, pk: str, sks: list[str], **attrs: object) -> None:
    await store.batch_put(T, [item(pk, sk, **attrs) for sk in sks])


async def test_query_by_prefix_in_order(store: ItemStore) -> None:
    await _fill(store, "chan", ["msg#003", "msg#001", "msg#002", "meta", "msh", "msg"])
    await _fill(store, "other", ["msg#000"])

    page = await store.query(T, "chan", sk_prefix="msg#")

    assert [i["sk"] for i in page.items] == ["msg#001", "msg#002", "msg#003"]
    assert page.last_sk is None


async def test_query_descending(store: ItemStore) -> None:
    await _fill(store, "chan", ["a1", "a2", "a3", "b1"])

    page = await store.query(T, "chan", sk_prefix="a", descending=True)

    assert [i["sk"] for i in page.items] == ["a3", "a2", "a1"]


@pytest.mark.parametrize("descending", [False, True])
async def test_query_pages_with_start_after(store: ItemStore, descending: bool) -> None:
    sks = [f"m{i:03d}" for i in range(23)]
    await _fill(store, "chan", [*sks, "n000", "l999"])

    seen, start = [], None
    for _ in range(10):
        page = await store.query(
            T, "chan", sk_prefix="m", start_after=start, limit=5, descending=descending
        )
        seen += [i["sk"] for i in page.items]
        if page.last_sk is None:
            break
        start = page.last_sk

    assert seen == sorted(sks, reverse=descending)


async def test_query_start_after_a_deleted_item(store: ItemStore) -> None:
    await _fill(store, "chan", ["a", "b", "c", "d"])
    await store.delete(T, "chan", "b")

    page = await store.query(T, "chan", start_after="b")

    assert [i["sk"] for i in page.items] == ["c", "d"]


async def test_query_start_after_outside_the_prefix(store: ItemStore) -> None:
    await _fill(store, "chan", ["a1", "b1", "b2", "c1"])

    before = await store.query(T, "chan", sk_prefix="b", start_after="a9")
    after = await store.query(T, "chan", sk_prefix="b", start_after="b9")
    down = await store.query(T, "chan", sk_prefix="b", start_after="z", descending=True)

    assert [i["sk"] for i in before.items] == ["b1", "b2"]
    assert after.items == []
    assert [i["sk"] for i in down.items] == ["b2", "b1"]


async def test_query_filter_applies_before_limit(store: ItemStore) -> None:
    await _fill(store, "q", [f"a{i:04d}" for i in range(230)], state="done")
    await _fill(store, "q", [f"b{i:04d}" for i in range(8)], state="queued")

    page = await store.query(T, "q", filter=Eq("state", "queued"), limit=5)

    assert [i["sk"] for i in page.items] == [f"b{i:04d}" for i in range(5)]
    assert page.last_sk == "b0004"
    rest = await store.query(T, "q", filter=Eq("state", "queued"), start_after="b0004", limit=5)
    assert [i["sk"] for i in rest.items] == ["b0005", "b0006", "b0007"]
    assert rest.last_sk is None


async def test_query_limit_without_filter(store: ItemStore) -> None:
    await _fill(store, "q", ["a", "b", "c"])

    page = await store.query(T, "q", limit=2)

    assert [i["sk"] for i in page.items] == ["a", "b"]
    assert page.last_sk == "b"


async def test_count(store: ItemStore) -> None:
    await _fill(store, "q", [f"a{i}" for i in range(7)], size=1)
    await _fill(store, "q", [f"b{i}" for i in range(4)], size=10)

    assert await store.count(T, "q") == 11
    assert await store.count(T, "q", sk_prefix="b") == 4
    assert await store.count(T, "q", filter=Gt("size", 5)) == 4
    assert await store.count(T, "q", sk_prefix="a", filter=Gt("size", 5)) == 0
    assert await store.count(T, "empty") == 0


# ---------------------------------------------------------------- batches


async def test_batch_get_keeps_key_order_and_skips_missing(store: ItemStore) -> None:
    await _fill(store, "p", ["a", "b", "c"])

    got = await store.batch_get(T, [("p", "c"), ("p", "missing"), ("p", "a"), ("p", "c")])

    assert [i["sk"] for i in got] == ["c", "a", "c"]


async def test_batch_get_more_keys_than_one_request(store: ItemStore) -> None:
    sks = [f"k{i:03d}" for i in range(130)]
    await _fill(store, "p", sks)

    got = await store.batch_get(T, [("p", sk) for sk in reversed(sks)])

    assert [i["sk"] for i in got] == list(reversed(sks))


async def test_batch_put_more_items_than_one_request(store: ItemStore) -> None:
    items = [item("p", f"k{i:03d}", n=i) for i in range(60)]

    await store.batch_put(T, items)

    assert (await store.query(T, "p")).items == items


async def test_batch_put_refuses_a_large_item_before_writing(store: ItemStore) -> None:
    items = [item("p", "small"), item("p", "big", blob="x" * (MAX_ITEM_BYTES + 1))]

    with pytest.raises(ItemTooLarge):
        await store.batch_put(T, items)
    assert await store.get(T, "p", "small") is None


# ---------------------------------------------------------------- transactions


async def test_transaction_applies_every_operation(store: ItemStore) -> None:
    await store.put(T, item("p", "counter", n=1))
    await store.put(T, item("p", "old"))

    await store.transact(
        [
            Put(T, item("p", "new", v=1), condition=NotExists()),
            Update(T, "p", "counter", add={"n": 1}, condition=Exists()),
            Delete(T, "p", "old"),
            Check(Table.USERS, "u", "1", condition=NotExists()),
        ]
    )

    assert await store.get(T, "p", "new") == item("p", "new", v=1)
    assert await store.get(T, "p", "counter") == item("p", "counter", n=2)
    assert await store.get(T, "p", "old") is None


async def test_transaction_is_all_or_nothing(store: ItemStore) -> None:
    await store.put(T, item("p", "counter", n=1))
    await store.put(T, item("p", "old"))
    await store.put(Table.USERS, item("u", "1", banned=True))

    with pytest.raises(ConditionFailed) as failed:
        await store.transact(
            [
                Put(T, item("p", "new"), condition=NotExists()),
                Update(T, "p", "counter", add={"n": 1}),
                Delete(T, "p", "old"),
                Check(Table.USERS, "u", "1", condition=Eq("banned", False)),
            ]
        )

    assert failed.value.index == 3
    assert await store.get(T, "p", "new") is None
    assert await store.get(T, "p", "counter") == item("p", "counter", n=1)
    assert await store.get(T, "p", "old") == item("p", "old")


async def test_transaction_reports_the_first_failing_operation(store: ItemStore) -> None:
    await store.put(T, item("p", "taken"))
    await store.put(T, item("p", "also-taken"))

    with pytest.raises(ConditionFailed) as failed:
        await store.transact(
            [
                Put(T, item("p", "free"), condition=NotExists()),
                Put(T, item("p", "taken"), condition=NotExists()),
                Put(T, item("p", "also-taken"), condition=NotExists()),
            ]
        )

    assert failed.value.index == 1
    assert await store.get(T, "p", "free") is None


async def test_transaction_refuses_a_large_item_before_writing(store: ItemStore) -> None:
    big = "x" * MAX_ITEM_BYTES

    with pytest.raises(ItemTooLarge):
        await store.transact([Put(T, item("p", "small")), Update(T, "p", "big", set={"b": big})])
    assert await store.get(T, "p", "small") is None


async def test_transaction_refuses_the_same_item_twice(store: ItemStore) -> None:
    with pytest.raises(ValueError, match="same item"):
        await store.transact([Put(T, item("p", "s")), Delete(T, "p", "s")])


# ---------------------------------------------------------------- TTL


async def test_expired_items_are_invisible(store: ItemStore) -> None:
    past = time.time() - 60
    await store.put(T, item("p", "gone", expires_at=past))
    await store.put(T, item("p", "live", expires_at=time.time() + 3600))
    await store.put(T, item("p", "forever"))

    assert await store.get(T, "p", "gone") is None
    assert [i["sk"] for i in (await store.query(T, "p")).items] == ["forever", "live"]
    assert await store.count(T, "p") == 2
    got = await store.batch_get(T, [("p", "gone"), ("p", "live")])
    assert [i["sk"] for i in got] == ["live"]


async def test_items_expire_when_the_clock_passes(
    store: ItemStore, store_factory: StoreFactory
) -> None:
    clock = FakeClock(1_000_000.0)
    timed = store_factory.open(clock=clock)
    await timed.put(T, item("p", "s", expires_at=1_000_100))

    assert await timed.get(T, "p", "s") is not None
    clock.now = 1_000_101.0
    assert await timed.get(T, "p", "s") is None
    assert await timed.count(T, "p") == 0


async def test_expired_items_count_as_absent_in_conditions(store: ItemStore) -> None:
    await store.put(T, item("p", "lease", owner="a", expires_at=time.time() - 1))

    with pytest.raises(ConditionFailed):
        await store.put(T, item("p", "lease", owner="b"), condition=Exists())
    with pytest.raises(ConditionFailed):
        await store.delete(T, "p", "lease", condition=Eq("owner", "a"))
    await store.put(T, item("p", "lease", owner="b"), condition=NotExists())
    assert await store.get(T, "p", "lease") == item("p", "lease", owner="b")


async def test_update_of_an_expired_item_starts_fresh(store: ItemStore) -> None:
    await store.put(T, item("p", "s", old="x", n=5, expires_at=time.time() - 1))

    after = await store.update(T, "p", "s", add={"n": 1}, condition=NotExists())

    assert after == item("p", "s", n=1)
    with pytest.raises(ConditionFailed):
        await store.update(T, "p", "s", add={"n": 1}, condition=NotExists())


async def test_transaction_update_of_an_expired_item_starts_fresh(store: ItemStore) -> None:
    await store.put(T, item("p", "s", old="x", n=5, expires_at=time.time() - 1))

    await store.transact([Update(T, "p", "s", add={"n": 1}), Put(T, item("p", "t"))])

    assert await store.get(T, "p", "s") == item("p", "s", n=1)


async def test_delete_of_an_expired_item_reports_it_was_there(store: ItemStore) -> None:
    await store.put(T, item("p", "s", expires_at=time.time() - 1))

    assert await store.delete(T, "p", "s") is True


# ---------------------------------------------------------------- limits and values


async def test_item_too_large(store: ItemStore) -> None:
    with pytest.raises(ItemTooLarge):
        await store.put(T, item("p", "big", blob="x" * MAX_ITEM_BYTES))
    with pytest.raises(ItemTooLarge):
        await store.update(T, "p", "big", set={"blob": "y" * MAX_ITEM_BYTES})
    assert await store.get(T, "p", "big") is None


async def test_large_item_below_the_limit_is_stored(store: ItemStore) -> None:
    blob = "z" * (MAX_ITEM_BYTES - 20_000)

    await store.put(T, item("p", "large", blob=blob))

    assert (await store.get(T, "p", "large")) == item("p", "large", blob=blob)


@pytest.mark.parametrize("text", ODD_STRINGS)
async def test_odd_characters_in_keys_and_values(store: ItemStore, text: str) -> None:
    odd = item(text, text, value=text, nested={text: [text]})
    odd[text] = text

    await store.put(T, odd, condition=NotExists())
    await store.update(T, text, text, set={"extra": text}, condition=Eq(text, text))

    assert await store.get(T, text, text) == {**odd, "extra": text}
    assert [i["sk"] for i in (await store.query(T, text, sk_prefix=text)).items] == [text]


async def test_values_round_trip_exactly(store: ItemStore) -> None:
    values = {
        "ints": [0, 1, -1, 2**53, -(2**31)],
        "floats": [0.1, -2.5, 1e-7, 123456.789, 3.14159265358979],
        "bools": [True, False],
        "none": None,
        "empty": {"s": "", "l": [], "d": {}},
        "nested": {"a": [{"b": [1, 2.5, "c", None, True]}]},
        "big": 10**20,
    }

    await store.put(T, item("p", "v", **values))
    got = await store.get(T, "p", "v")

    assert got == item("p", "v", **values)
    assert got is not None
    assert [type(v) for v in got["ints"]] == [int] * 5
    assert [type(v) for v in got["floats"]] == [float] * 5
    assert [type(v) for v in got["bools"]] == [bool, bool]
    assert type(got["nested"]["a"][0]["b"][1]) is float


# ---------------------------------------------------------------- concurrency


async def test_concurrent_not_exists_puts_have_one_winner(store: ItemStore) -> None:
    async def claim(worker: int) -> bool:
        try:
            await store.put(T, item("race", "key", worker=worker), condition=NotExists())
        except ConditionFailed:
            return False
        return True

    results = await asyncio.gather(*(claim(w) for w in range(20)))

    assert results.count(True) == 1
    stored = await store.get(T, "race", "key")
    assert stored is not None
    assert results[stored["worker"]] is True


async def test_concurrent_adds_are_atomic(store: ItemStore) -> None:
    await asyncio.gather(*(store.update(T, "c", "n", add={"hits": 1}) for _ in range(20)))

    assert await store.get(T, "c", "n") == item("c", "n", hits=20)


async def test_two_instances_share_the_data(store: ItemStore, store_factory: StoreFactory) -> None:
    other = store_factory.open()

    await store.put(T, item("p", "s", by="first"))

    assert await other.get(T, "p", "s") == item("p", "s", by="first")
    with pytest.raises(ConditionFailed):
        await other.put(T, item("p", "s", by="second"), condition=NotExists())


async def test_ping(store: ItemStore) -> None:
    assert await store.ping() is True


# ---------------------------------------------------------------- unreachable


@pytest.mark.timeout(30)
async def test_dead_endpoint_raises_store_unavailable() -> None:
    port = free_port()  # nothing listens there
    dead = DynamoStore(
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        access_key="AKIDEADBEEF",
        secret_key="never-printed-secret",
        table_prefix="dead_",
    )

    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}") as failed:
        await dead.get(T, "p", "s")
    assert "never-printed-secret" not in str(failed.value)
    assert await dead.ping() is False
    await dead.close()
