"""The moderation audit log and polls: on every store backend, and over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from trollama.brain.auth import mint_token
from trollama.brain.community.audit import (
    AUDIT_RETENTION_DAYS,
    MAX_AUDIT_PAGE,
    AuditEntryIn,
    AuditLog,
)
from trollama.brain.community.polls import (
    MAX_OPEN_POLLS_PER_GUILD,
    InvalidVote,
    PollClosed,
    PollCreate,
    PollNotFound,
    PollStore,
    TooManyOpenPolls,
)
from trollama.brain.services import build_services
from trollama.common.store.base import ItemStore, Table
from trollama.common.store.sqlite import SqliteStore
from trollama.testkit.brain import brain_settings, serve_brain

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def entry(n: int, *, guild: str = "g1", **extra: Any) -> AuditEntryIn:
    """Entry ``n`` of guild ``g1`` at T0 + n seconds (``at=None``: the store's clock)."""
    values: dict[str, Any] = {
        "entry_id": f"e{n}",
        "guild_id": guild,
        "action": "kick",
        "outcome": "done",
        "moderator_id": "100",
        "moderator_name": "carol",
        "target_id": "200",
        "target_name": "bob",
        "reason": f"reason {n}",
        "at": T0 + timedelta(seconds=n),
        **extra,
    }
    return AuditEntryIn.model_validate(values)


def new_poll(*, guild: str = "g1", seconds: float = 60.0, options: int = 3) -> PollCreate:
    return PollCreate(
        guild_id=guild,
        channel_id="c1",
        message_id="m1",
        author_id="100",
        question="Pizza or pasta?",
        options=[f"option {i}" for i in range(options)],
        duration_seconds=seconds,
    )


# ------------------------------------------------------------------ audit log, every backend
async def test_audit_entries_come_back_newest_first_per_guild(store: ItemStore) -> None:
    audit = AuditLog(store)
    for n in (2, 0, 3, 1):
        await audit.record(entry(n))
    await audit.record(entry(9, guild="g2"))
    newest = await audit.recent("g1", 3)
    assert [e.entry_id for e in newest] == ["e3", "e2", "e1"]
    assert newest[0].reason == "reason 3" and newest[0].at == T0 + timedelta(seconds=3)
    assert [e.entry_id for e in await audit.recent("g2")] == ["e9"]
    assert await audit.recent("g3") == []


async def test_a_retried_audit_entry_is_stored_once(store: ItemStore) -> None:
    audit = AuditLog(store)
    first = await audit.record(entry(1))
    again = await audit.record(entry(1))
    assert again == first
    assert len(await audit.recent("g1")) == 1
    item = (await store.query(Table.AUDIT_LOG, "guild#g1")).items[0]
    assert item["sk"].endswith("#e1") and item["sk"][:15].isdigit()
    retention = AUDIT_RETENTION_DAYS * 86_400
    assert item["expires_at"] == int(first.at.timestamp()) + retention


async def test_same_time_entries_are_all_kept_and_unstamped_ones_get_the_clock(
    store: ItemStore,
) -> None:
    clock = Clock()
    audit = AuditLog(store, clock=clock)
    await audit.record(entry(1, at=T0))
    await audit.record(entry(2, at=T0))
    clock.advance(5)
    stamped = await audit.record(entry(3, at=None, outcome="refused", detail="no permission"))
    assert stamped.at == T0 + timedelta(seconds=5)
    got = await audit.recent("g1")
    assert got[0].entry_id == "e3"
    assert {e.entry_id for e in got} == {"e1", "e2", "e3"}
    assert got[0].outcome == "refused" and got[0].detail == "no permission"


# ------------------------------------------------------------------ polls, every backend
async def test_votes_count_once_per_user_and_can_change(store: ItemStore) -> None:
    polls = PollStore(store)
    poll = await polls.create(new_poll())
    assert poll.counts == [0, 0, 0] and not poll.closed
    first = await polls.vote(poll.poll_id, "alice", 0)
    assert first.previous is None and not first.changed
    await polls.vote(poll.poll_id, "bob", 0)
    changed = await polls.vote(poll.poll_id, "bob", 2)
    assert changed.previous == 0 and changed.changed
    same = await polls.vote(poll.poll_id, "bob", 2)
    assert same.previous == 2 and not same.changed
    assert (await polls.get(poll.poll_id)).counts == [1, 0, 1]
    with pytest.raises(InvalidVote):
        await polls.vote(poll.poll_id, "carol", 3)
    with pytest.raises(PollNotFound):
        await polls.vote("nope", "carol", 0)


async def test_the_deadline_stops_votes_and_close_is_idempotent(store: ItemStore) -> None:
    clock = Clock()
    polls = PollStore(store, clock=clock)
    poll = await polls.create(new_poll(seconds=60))
    await polls.vote(poll.poll_id, "alice", 1)
    await polls.vote(poll.poll_id, "bob", 1)
    await polls.vote(poll.poll_id, "carol", 0)
    clock.advance(61)
    with pytest.raises(PollClosed):
        await polls.vote(poll.poll_id, "dave", 0)
    assert [p.poll_id for p in await polls.open_polls()] == [poll.poll_id]
    result = await polls.close(poll.poll_id)
    assert (result.counts, result.total, result.winners) == ([1, 2, 0], 3, [1])
    clock.advance(30)
    assert await polls.close(poll.poll_id) == result
    assert await polls.open_polls() == []
    assert (await polls.get(poll.poll_id)).closed


async def test_closing_early_freezes_the_counts(store: ItemStore) -> None:
    polls = PollStore(store)
    poll = await polls.create(new_poll(options=2))
    await polls.vote(poll.poll_id, "alice", 0)
    await polls.vote(poll.poll_id, "bob", 1)
    tie = await polls.close(poll.poll_id)
    assert tie.winners == [0, 1]
    with pytest.raises(PollClosed):
        await polls.vote(poll.poll_id, "carol", 0)
    assert (await polls.get(poll.poll_id)).counts == [1, 1]
    empty = await polls.close((await polls.create(new_poll())).poll_id)
    assert empty.total == 0 and empty.winners == []


async def test_open_polls_by_deadline_and_per_guild_limit(store: ItemStore) -> None:
    polls = PollStore(store)
    later = await polls.create(new_poll(seconds=600))
    sooner = await polls.create(new_poll(seconds=60))
    other = await polls.create(new_poll(guild="g2", seconds=30))
    assert [p.poll_id for p in await polls.open_polls()] == [
        other.poll_id,
        sooner.poll_id,
        later.poll_id,
    ]
    assert [p.poll_id for p in await polls.open_polls(guild_id="g1")] == [
        sooner.poll_id,
        later.poll_id,
    ]
    for _ in range(MAX_OPEN_POLLS_PER_GUILD - 1):
        await polls.create(new_poll(guild="g2"))
    with pytest.raises(TooManyOpenPolls):
        await polls.create(new_poll(guild="g2"))
    await polls.close(other.poll_id)
    await polls.create(new_poll(guild="g2"))


def test_poll_bodies_are_validated() -> None:
    with pytest.raises(ValueError, match="differ"):
        PollCreate.model_validate({**new_poll().model_dump(), "options": ["Yes", " yes "]})
    with pytest.raises(ValueError, match="at least 2 items"):
        PollCreate.model_validate({**new_poll().model_dump(), "options": ["only one"]})
    with pytest.raises(ValueError, match="at most 80 characters"):
        PollCreate.model_validate({**new_poll().model_dump(), "options": ["x" * 81, "y"]})
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        PollCreate.model_validate({**new_poll().model_dump(), "duration_seconds": 0.5})
    with pytest.raises(ValueError, match="at most 512 characters"):
        entry(1, reason="r" * 513)


# ------------------------------------------------------------------ over HTTP
class Brain:
    def __init__(self, url: str, relay_secret: str, jwt_secret: str) -> None:
        self.url = url
        self.relay = {"Authorization": f"Bearer {relay_secret}"}
        self._jwt_secret = jwt_secret

    def user(self, name: str, *, admin: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(name, self._jwt_secret, admin=admin)}"}


@pytest.fixture
async def brain(fake_ollama: Any, tmp_path: Path) -> AsyncIterator[Brain]:
    settings = brain_settings(ollama_host=fake_ollama.url)
    services = build_services(settings, store=SqliteStore(tmp_path / "brain.db"))
    async with serve_brain(services) as url:
        yield Brain(
            url,
            settings.relay_shared_secret.get_secret_value(),
            settings.jwt_secret_key.get_secret_value(),
        )


async def test_audit_endpoints_need_the_relay_or_an_admin(brain: Brain) -> None:
    body = entry(1).model_dump(mode="json")
    async with httpx.AsyncClient(base_url=brain.url) as client:
        anonymous = await client.post("/api/moderation/audit", json=body)
        member = await client.post("/api/moderation/audit", json=body, headers=brain.user("u"))
        relay = await client.post("/api/moderation/audit", json=body, headers=brain.relay)
        admin = await client.post(
            "/api/moderation/audit",
            json=entry(2).model_dump(mode="json"),
            headers=brain.user("root", admin=True),
        )
        listed = await client.get(
            "/api/moderation/audit", params={"guild_id": "g1"}, headers=brain.relay
        )
        too_many = await client.get(
            "/api/moderation/audit",
            params={"guild_id": "g1", "limit": MAX_AUDIT_PAGE + 1},
            headers=brain.relay,
        )
        long_reason = await client.post(
            "/api/moderation/audit", json={**body, "reason": "r" * 513}, headers=brain.relay
        )
    assert (anonymous.status_code, member.status_code) == (401, 403)
    assert (relay.status_code, admin.status_code) == (200, 200)
    assert [e["entry_id"] for e in listed.json()["entries"]] == ["e2", "e1"]
    assert too_many.status_code == 422 and long_reason.status_code == 422


async def test_poll_endpoints(brain: Brain) -> None:
    body = new_poll().model_dump(mode="json")
    async with httpx.AsyncClient(base_url=brain.url, headers=brain.relay) as client:
        created = (await client.post("/api/polls", json=body)).json()
        poll_url = f"/api/polls/{created['poll_id']}"
        first = await client.post(f"{poll_url}/votes", json={"user_id": "a", "option": 1})
        change = await client.post(f"{poll_url}/votes", json={"user_id": "a", "option": 2})
        bad = await client.post(f"{poll_url}/votes", json={"user_id": "a", "option": 7})
        listed = (await client.get("/api/polls", params={"open": "true"})).json()
        closed_listing = await client.get("/api/polls", params={"open": "false"})
        result = (await client.post(f"{poll_url}/close")).json()
        again = (await client.post(f"{poll_url}/close")).json()
        late = await client.post(f"{poll_url}/votes", json={"user_id": "b", "option": 0})
        missing = await client.get("/api/polls/unknown")
        shown = (await client.get(poll_url)).json()
    assert first.json()["previous"] is None and change.json()["previous"] == 1
    assert bad.status_code == 422
    assert [p["poll_id"] for p in listed["polls"]] == [created["poll_id"]]
    assert closed_listing.status_code == 400
    assert result == again and result["counts"] == [0, 0, 1] and result["winners"] == [2]
    assert late.status_code == 409 and missing.status_code == 404
    assert shown["closed"] is True and shown["counts"] == [0, 0, 1]
