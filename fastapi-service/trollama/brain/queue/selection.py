"""Which item a node may lease next: pure rules over index entries.

A node may lease

* a waiting item whose backoff has passed and that it owns, or whose owner is
  dead (no heartbeat for three beats);
* a leased item whose lease expired or whose leaseholder is dead (redelivery);

never an item of a conversation that already has a live lease, and never an
item that would overtake an earlier item of its conversation (threads are
answered in order). Among what is left, the smallest order key (fair start tag,
then arrival) wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trollama.brain.queue.keys import Entry


@dataclass(frozen=True)
class View:
    """What a node knows while picking: who it is, the time, who is alive."""

    node_id: str
    now: float
    alive: frozenset[str]

    def may_take_from(self, owner: str) -> bool:
        """True for this node's own items and those of dead nodes."""
        return owner == self.node_id or owner not in self.alive


def lease_is_live(entry: Entry, view: View) -> bool:
    """The leased item is being worked on by a live node."""
    holder_alive = entry.owner_node == view.node_id or entry.owner_node in view.alive
    return entry.lease_until > view.now and holder_alive


@dataclass
class Picker:
    """Walks index entries in order and remembers which threads are blocked."""

    view: View
    skip: frozenset[str]
    blocked: set[str] = field(default_factory=set)
    redeliver: list[Entry] = field(default_factory=list)

    def take_leased(self, leased: list[Entry]) -> None:
        """Block the threads of every leased item; keep the ones to redeliver."""
        live = {e.conversation_id for e in leased if lease_is_live(e, self.view)}
        for entry in leased:
            if lease_is_live(entry, self.view):
                continue
            if entry.request_id not in self.skip and entry.conversation_id not in live:
                self.redeliver.append(entry)
        self.blocked = {e.conversation_id for e in leased}

    def offer(self, entry: Entry) -> bool:
        """True when the waiting ``entry`` may be leased now (entries come in order)."""
        leasable = (
            entry.conversation_id not in self.blocked
            and entry.request_id not in self.skip
            and entry.not_before <= self.view.now
            and self.view.may_take_from(entry.owner_node)
        )
        if not leasable:
            self.blocked.add(entry.conversation_id)
        return leasable

    def first_redelivery(self) -> Entry | None:
        return min(self.redeliver, key=lambda e: e.order, default=None)

    def done_before(self, entry: Entry) -> bool:
        """True when a redelivery already beats ``entry`` and every later one."""
        first = self.first_redelivery()
        return first is not None and first.order < entry.order

    def best(self, waiting: Entry | None) -> Entry | None:
        """The winner between the first leasable waiting entry and redeliveries."""
        choices = [e for e in (waiting, self.first_redelivery()) if e is not None]
        return min(choices, key=lambda e: e.order, default=None)
