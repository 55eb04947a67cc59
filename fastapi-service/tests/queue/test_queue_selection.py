"""The pure picking rules, without a store."""

from __future__ import annotations

from trollama.brain.queue.keys import Entry, order_key
from trollama.brain.queue.selection import Picker, View, lease_is_live

NOW = 1_000.0
VIEW = View(node_id="me", now=NOW, alive=frozenset({"me", "peer"}))


def entry(
    rid: str,
    *,
    tag: int = 0,
    conv: str | None = None,
    owner: str = "me",
    not_before: float = 0.0,
    lease_until: float = 0.0,
) -> Entry:
    return Entry(
        request_id=rid,
        user_id="u",
        conversation_id=conv or f"c-{rid}",
        owner_node=owner,
        order=order_key(tag, NOW - 100, rid),
        enqueued_at=NOW - 100,
        not_before=not_before,
        lease_until=lease_until,
    )


def pick(
    leased: list[Entry], waiting: list[Entry], skip: frozenset[str] = frozenset()
) -> str | None:
    picker = Picker(VIEW, skip)
    picker.take_leased(leased)
    first = None
    for candidate in waiting:
        if picker.done_before(candidate):
            break
        if picker.offer(candidate):
            first = candidate
            break
    best = picker.best(first)
    return None if best is None else best.request_id


def test_order_key_sorts_by_tag_then_arrival() -> None:
    assert order_key(2, 5.0, "a") < order_key(10, 1.0, "a")
    assert order_key(3, 1.0, "z") < order_key(3, 2.0, "a")
    assert order_key(-1, -5.0, "a") == order_key(0, 0.0, "a")  # absurd values clamp


def test_live_and_expired_leases() -> None:
    assert lease_is_live(entry("a", lease_until=NOW + 1), VIEW)
    assert not lease_is_live(entry("a", lease_until=NOW), VIEW)
    assert not lease_is_live(entry("a", owner="dead", lease_until=NOW + 1), VIEW)


def test_first_visible_waiting_item_wins() -> None:
    assert pick([], [entry("a", tag=0), entry("b", tag=1)]) == "a"
    assert pick([], [entry("a", not_before=NOW + 1), entry("b", tag=1)]) == "b"
    assert pick([], [entry("a", owner="peer"), entry("b", tag=1)]) == "b"
    assert pick([], [entry("a", owner="dead"), entry("b", tag=1)]) == "a"
    assert pick([], [entry("a"), entry("b", tag=1)], skip=frozenset({"a"})) == "b"
    assert pick([], []) is None


def test_a_thread_with_a_live_lease_or_an_earlier_waiting_item_is_blocked() -> None:
    running = entry("r", conv="t", lease_until=NOW + 5)
    assert pick([running], [entry("a", conv="t"), entry("b", tag=1)]) == "b"
    in_backoff = entry("a", conv="t", not_before=NOW + 5)
    assert pick([], [in_backoff, entry("b", conv="t", tag=1), entry("c", tag=2)]) == "c"


def test_expired_leases_are_redelivered_in_fair_order() -> None:
    expired = entry("x", tag=5, lease_until=NOW - 1)
    assert pick([expired], [entry("a", tag=1), entry("b", tag=9)]) == "a"
    assert pick([expired], [entry("b", tag=9)]) == "x"
    assert pick([expired], [entry("b", tag=9, conv="c-x")]) == "x"
    orphan = entry("o", tag=7, owner="dead", lease_until=NOW + 100)
    assert pick([orphan], []) == "o"
    assert pick([entry("p", owner="peer", lease_until=NOW + 100)], []) is None
