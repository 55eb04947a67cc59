"""Admin REST for identity, memories, relationships, profiles, state and channels."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from trollama.brain.persona.facts import MAX_FACT_CHARS, supersede_op
from trollama.testkit.ports import free_port


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_client(brain: Any) -> httpx.AsyncClient:
    headers = bearer(brain.token("root", admin=True))
    return httpx.AsyncClient(base_url=brain.url, headers=headers, timeout=20)


async def known_user(brain: Any, user_id: str = "u1", name: str = "Alice") -> str:
    await brain.services.persona.profiles.seen(user_id, name)
    return user_id


async def test_identity_crud_on_every_store(brain_factory: Any, store: Any) -> None:
    async with brain_factory(store=store) as brain, admin_client(brain) as client:
        seeded = (await client.get("/api/admin/identity")).json()["entries"]
        assert seeded, "the identity file seeds entries at start"
        added = await client.post(
            "/api/admin/identity", json={"kind": "trait", "text": "loves puns"}
        )
        assert added.status_code == 200, added.text
        entry_id = added.json()["entry_id"]
        edited = await client.patch(
            f"/api/admin/identity/{entry_id}", json={"text": "adores terrible puns"}
        )
        assert edited.json()["text"] == "adores terrible puns"
        assert edited.json()["kind"] == "trait"
        kind = await client.patch(f"/api/admin/identity/{entry_id}", json={"kind": "fact"})
        assert kind.json()["kind"] == "fact"
        fetched = (await client.get(f"/api/admin/identity/{entry_id}")).json()
        assert fetched["text"] == "adores terrible puns"
        assert (await client.delete(f"/api/admin/identity/{entry_id}")).json() == {"deleted": 1}
        gone = await client.get(f"/api/admin/identity/{entry_id}")
        listed = (await client.get("/api/admin/identity")).json()["entries"]
    assert gone.status_code == 404 and entry_id in gone.json()["detail"]
    assert [e["entry_id"] for e in listed] == [e["entry_id"] for e in seeded]


async def test_identity_refusals(brain: Any) -> None:
    async with admin_client(brain) as client:
        unknown = await client.patch("/api/admin/identity/nope", json={"text": "x"})
        removed = await client.delete("/api/admin/identity/nope")
        empty = await client.post("/api/admin/identity", json={"kind": "lore", "text": "  "})
        long = await client.post("/api/admin/identity", json={"kind": "lore", "text": "x" * 600})
        nothing = await client.patch("/api/admin/identity/nope", json={})
        bad_kind = await client.post("/api/admin/identity", json={"kind": "secret", "text": "x"})
    assert unknown.status_code == 404 and "no identity entry" in unknown.json()["detail"]
    assert removed.status_code == 404
    assert empty.status_code == 422 and "needs some text" in empty.json()["detail"]
    assert long.status_code == 422 and "at most 500" in long.json()["detail"]
    assert nothing.status_code == 422 and "nothing to change" in nothing.json()["detail"]
    assert bad_kind.status_code == 422


async def test_memory_crud_embeds_and_hides_embeddings(brain: Any, fake_ollama: Any) -> None:
    user = await known_user(brain)
    base = f"/api/admin/users/{user}/memories"
    async with admin_client(brain) as client:
        added = await client.post(base, json={"fact": "Has a cat named Miso", "category": "Pets"})
        assert added.status_code == 200, added.text
        fact = added.json()["fact"]
        assert added.json()["notice"] is None
        assert fact["embedded"] is True and fact["category"] == "pets"
        assert "embedding" not in fact and "embedding_model" not in fact
        fact_id = fact["fact_id"]
        await client.post(base, json={"fact": "Works as a nurse"})
        listed = (await client.get(base)).json()["facts"]
        assert [f["fact"] for f in listed] == ["Has a cat named Miso", "Works as a nurse"]
        edited = await client.patch(f"{base}/{fact_id}", json={"fact": "Has two cats"})
        assert edited.json()["fact"]["fact"] == "Has two cats"
        assert edited.json()["fact"]["embedded"] is True
        recategorised = await client.patch(f"{base}/{fact_id}", json={"category": "family"})
        assert recategorised.json()["fact"]["category"] == "family"
        one = (await client.get(f"{base}/{fact_id}")).json()
        assert one["fact"] == "Has two cats" and "embedding" not in one
        assert (await client.delete(f"{base}/{fact_id}")).json() == {"deleted": 1}
        again = await client.delete(f"{base}/{fact_id}")
        cleared = (await client.delete(base)).json()
        after = (await client.get(base)).json()["facts"]
    stored = await brain.services.persona.facts.facts(user)
    embeds = [r.body["input"] for r in fake_ollama.requests_to("/api/embed")]
    assert again.status_code == 404 and fact_id in again.json()["detail"]
    assert cleared == {"deleted": 1} and after == [] and stored == []
    assert ["Has a cat named Miso"] in embeds and ["Has two cats"] in embeds


async def test_superseded_facts_on_request(brain: Any) -> None:
    user = await known_user(brain)
    facts = brain.services.persona.facts
    base = f"/api/admin/users/{user}/memories"
    async with admin_client(brain) as client:
        old = (await client.post(base, json={"fact": "Lives in Oslo"})).json()["fact"]
        new = (await client.post(base, json={"fact": "Lives in Bergen"})).json()["fact"]
        await brain.services.store.transact(
            [supersede_op(await facts.get(user, old["fact_id"]), new["fact_id"])]
        )
        active = (await client.get(base)).json()["facts"]
        every = (await client.get(base, params={"include_superseded": "true"})).json()["facts"]
    assert [f["fact"] for f in active] == ["Lives in Bergen"]
    assert [f["superseded_by"] for f in every] == [new["fact_id"], None]


async def test_memory_refusals(brain: Any) -> None:
    user = await known_user(brain)
    base = f"/api/admin/users/{user}/memories"
    async with admin_client(brain) as client:
        unknown_user = await client.get("/api/admin/users/ghost/memories")
        add_unknown = await client.post("/api/admin/users/ghost/memories", json={"fact": "x"})
        oversize = await client.post(base, json={"fact": "y" * (MAX_FACT_CHARS + 1)})
        blank = await client.post(base, json={"fact": "   "})
        unknown_fact = await client.get(f"{base}/nope")
        edit_unknown = await client.patch(f"{base}/nope", json={"fact": "z"})
        edit_nothing = await client.patch(f"{base}/nope", json={})
    assert unknown_user.status_code == 404 and "no user 'ghost'" in unknown_user.json()["detail"]
    assert add_unknown.status_code == 404
    assert oversize.status_code == 422
    assert f"at most {MAX_FACT_CHARS} characters" in oversize.json()["detail"]
    assert blank.status_code == 422 and "needs some text" in blank.json()["detail"]
    assert unknown_fact.status_code == 404 and "no memory 'nope'" in unknown_fact.json()["detail"]
    assert edit_unknown.status_code == 404
    assert edit_nothing.status_code == 422
    assert await brain.services.persona.facts.facts(user) == []


async def test_a_failing_embedder_stores_the_fact_and_says_so(brain_factory: Any) -> None:
    async with brain_factory(ollama_host=f"http://127.0.0.1:{free_port()}") as brain:
        user = await known_user(brain)
        async with admin_client(brain) as client:
            added = await client.post(
                f"/api/admin/users/{user}/memories", json={"fact": "Plays the tuba"}
            )
        [stored] = await brain.services.persona.facts.facts(user)
    assert added.status_code == 200
    assert added.json()["fact"]["embedded"] is False
    assert "without an embedding" in added.json()["notice"]
    assert stored.fact == "Plays the tuba" and stored.embedding is None


async def test_relationship_show_set_reset(brain: Any) -> None:
    base = "/api/admin/users/u1/relationship"
    async with admin_client(brain) as client:
        unknown = await client.get(base)
        await known_user(brain)
        defaults = (await client.get(base)).json()
        changed = await client.patch(base, json={"anger": 7, "formality": -2.5})
        too_angry = await client.patch(base, json={"anger": 11})
        too_casual = await client.patch(base, json={"formality": -6})
        nothing = await client.patch(base, json={})
        stranger = await client.patch(base, json={"warmth": 3})
        kept = (await client.get(base)).json()
        reset = (await client.delete(base)).json()
    assert unknown.status_code == 404
    assert (defaults["anger"], defaults["rapport"], defaults["trust"]) == (0, 5, 5)
    assert changed.json()["anger"] == 7 and changed.json()["formality"] == -2.5
    assert too_angry.status_code == 422 and "between 0 and 10" in too_angry.json()["detail"]
    assert too_casual.status_code == 422 and "between -5 and 5" in too_casual.json()["detail"]
    assert nothing.status_code == 422 and "nothing to change" in nothing.json()["detail"]
    assert stranger.status_code == 422
    assert kept["anger"] == 7 and kept["trust"] == 5
    assert reset["anger"] == 0 and reset["formality"] == 0
    assert (await brain.services.persona.relationships.get("u1")).anger == 0


async def test_profile(brain: Any) -> None:
    await known_user(brain, "u1", "Alice")
    await brain.services.persona.profiles.seen("u1", "Ally", at=10**10)
    async with admin_client(brain) as client:
        profile = (await client.get("/api/admin/users/u1/profile")).json()
        unknown = await client.get("/api/admin/users/ghost/profile")
    assert [n["name"] for n in profile["nicknames"]] == ["Alice", "Ally"]
    assert unknown.status_code == 404 and "ghost" in unknown.json()["detail"]


async def test_global_state_crud(brain: Any) -> None:
    async with admin_client(brain) as client:
        put = await client.put("/api/admin/state/daily_mood_anger", json={"value": 8})
        await client.put("/api/admin/state/motto", json={"value": "bridges first"})
        one = (await client.get("/api/admin/state/daily_mood_anger")).json()
        every = (await client.get("/api/admin/state")).json()["values"]
        bad_key = await client.put("/api/admin/state/Bad Key!", json={"value": 1})
        long = await client.put("/api/admin/state/motto", json={"value": "m" * 501})
        removed = await client.delete("/api/admin/state/motto")
        gone = await client.get("/api/admin/state/motto")
        remove_again = await client.delete("/api/admin/state/motto")
    assert put.json() == {"key": "daily_mood_anger", "value": 8}
    assert one["value"] == 8
    assert every["motto"] == "bridges first" and every["daily_mood_anger"] == 8
    assert bad_key.status_code == 422 and "state key" in bad_key.json()["detail"]
    assert long.status_code == 422
    assert removed.json() == {"deleted": 1}
    assert gone.status_code == 404 and "no state key 'motto'" in gone.json()["detail"]
    assert remove_again.status_code == 404


async def test_channel_settings(brain: Any) -> None:
    async with admin_client(brain) as client:
        defaults = (await client.get("/api/admin/channels/42")).json()
        opted = await client.patch(
            "/api/admin/channels/42", json={"log_opt_out": True, "guild_id": "7"}
        )
        proactive = await client.patch("/api/admin/channels/42", json={"proactive": True})
        bad = await client.patch("/api/admin/channels/42", json={"logging": False})
    assert defaults["log_opt_out"] is False and defaults["proactive"] is False
    assert opted.json()["log_opt_out"] is True and opted.json()["guild_id"] == "7"
    assert proactive.json()["log_opt_out"] is True and proactive.json()["proactive"] is True
    assert bad.status_code == 422
    assert await brain.services.persona.channels.proactive_channels() == ["42"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/admin/identity", None),
        ("POST", "/api/admin/identity", {"kind": "trait", "text": "evil"}),
        ("GET", "/api/admin/users/u1/memories", None),
        ("DELETE", "/api/admin/users/u1/memories", None),
        ("PATCH", "/api/admin/users/u1/relationship", {"anger": 10}),
        ("GET", "/api/admin/users/u1/profile", None),
        ("PUT", "/api/admin/state/daily_mood_anger", {"value": 10}),
        ("PATCH", "/api/admin/channels/42", {"log_opt_out": True}),
    ],
)
async def test_non_admins_are_refused(
    brain: Any, method: str, path: str, body: dict[str, Any] | None
) -> None:
    await known_user(brain)
    async with httpx.AsyncClient(base_url=brain.url, timeout=20) as client:
        user = await client.request(method, path, json=body, headers=bearer(brain.token("u1")))
        anonymous = await client.request(method, path, json=body)
    assert user.status_code == 403 and "admin" in user.json()["detail"]
    assert anonymous.status_code == 401
    assert await brain.services.persona.channels.proactive_channels() == []
    assert (await brain.services.persona.relationships.get("u1")).anger == 0


async def test_the_relay_acts_for_a_named_discord_user(
    brain: Any, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {**bearer(brain.relay_secret), "X-Acting-User": "1234567890"}
    caplog.set_level(logging.INFO, logger="trollama.brain.api.admin_persona")
    async with httpx.AsyncClient(base_url=brain.url, headers=headers, timeout=20) as client:
        added = await client.post("/api/admin/identity", json={"kind": "lore", "text": "x"})
    assert added.status_code == 200
    [record] = [r for r in caplog.records if r.getMessage() == "admin change"]
    assert record.__dict__["by"] == "1234567890"
    assert record.__dict__["action"] == "identity.add"
