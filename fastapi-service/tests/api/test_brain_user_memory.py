"""A user's own memory: the export, forgetting one fact, forgetting everything."""

from __future__ import annotations

import time
from typing import Any

import httpx

from trollama.brain.persona.facts import new_fact
from trollama.brain.persona.relationships import RelationshipChange


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def remember(brain: Any, user_id: str, *texts: str) -> list[str]:
    persona = brain.services.persona
    ids = []
    for offset, text in enumerate(texts):
        fact = new_fact(user_id, text, at=time.time() + offset * 1e-3, embedding="AACAPw==")
        ids.append((await persona.facts.add(fact)).fact_id)
    return ids


async def test_a_user_exports_their_own_memory(brain: Any) -> None:
    persona = brain.services.persona
    await persona.profiles.seen("alice", "Alice")
    await persona.relationships.set("alice", RelationshipChange(rapport=8))
    await remember(brain, "alice", "Likes tea", "Has a cat")
    await remember(brain, "bob", "Likes coffee")
    async with httpx.AsyncClient(base_url=brain.url, timeout=20) as client:
        mine = await client.get("/api/users/alice/memories", headers=bearer(brain.token("alice")))
        theirs = await client.get("/api/users/bob/memories", headers=bearer(brain.token("alice")))
        relay = await client.get("/api/users/alice/memories", headers=bearer(brain.relay_secret))
        anonymous = await client.get("/api/users/alice/memories")
    export = mine.json()
    assert mine.status_code == 200
    assert [f["fact"] for f in export["facts"]] == ["Likes tea", "Has a cat"]
    assert all("embedding" not in f and "embedding_model" not in f for f in export["facts"])
    assert "AACAPw" not in mine.text
    assert export["profile"]["nicknames"][0]["name"] == "Alice"
    assert export["relationship"]["rapport"] == 8
    assert theirs.status_code == 403 and "your own" in theirs.json()["detail"]
    assert relay.json()["facts"] == export["facts"]
    assert anonymous.status_code == 401


async def test_a_stranger_gets_an_empty_export(brain: Any) -> None:
    async with httpx.AsyncClient(base_url=brain.url, timeout=20) as client:
        empty = await client.get("/api/users/nobody/memories", headers=bearer(brain.relay_secret))
    assert empty.status_code == 200
    assert empty.json()["facts"] == [] and empty.json()["profile"] is None
    assert empty.json()["relationship"]["trust"] == 5


async def test_a_user_deletes_only_their_own_memories(brain: Any) -> None:
    tea, cat = await remember(brain, "alice", "Likes tea", "Has a cat")
    [coffee] = await remember(brain, "bob", "Likes coffee")
    alice = bearer(brain.token("alice"))
    async with httpx.AsyncClient(base_url=brain.url, timeout=20) as client:
        one = await client.delete(f"/api/users/alice/memories/{tea}", headers=alice)
        again = await client.delete(f"/api/users/alice/memories/{tea}", headers=alice)
        other = await client.delete(f"/api/users/bob/memories/{coffee}", headers=alice)
        other_all = await client.delete("/api/users/bob/memories", headers=alice)
        left = await brain.services.persona.facts.facts("alice")
        everything = await client.delete("/api/users/alice/memories", headers=alice)
    facts = brain.services.persona.facts
    assert one.json() == {"deleted": 1}
    assert again.status_code == 404 and tea in again.json()["detail"]
    assert other.status_code == 403 and other_all.status_code == 403
    assert [f.fact_id for f in left] == [cat]
    assert everything.json() == {"deleted": 1}
    assert await facts.facts("alice", include_superseded=True) == []
    assert [f.fact for f in await facts.facts("bob")] == ["Likes coffee"]


async def test_the_relay_and_admins_act_for_any_user(brain: Any) -> None:
    await remember(brain, "alice", "Likes tea", "Has a cat")
    await remember(brain, "bob", "Likes coffee")
    async with httpx.AsyncClient(base_url=brain.url, timeout=20) as client:
        relay = await client.delete("/api/users/alice/memories", headers=bearer(brain.relay_secret))
        admin = await client.delete(
            "/api/users/bob/memories", headers=bearer(brain.token("root", admin=True))
        )
    assert relay.json() == {"deleted": 2} and admin.json() == {"deleted": 1}
