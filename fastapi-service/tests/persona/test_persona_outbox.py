"""The relay outbox (on every store backend and over REST) and the admin job trigger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from trollama.brain.auth import mint_token
from trollama.brain.persona import outbox as outbox_module
from trollama.brain.persona.leases import JobLeases
from trollama.brain.persona.outbox import (
    MAX_PRESENCE_CHARS,
    MAX_SAY_CHARS,
    OUTBOX_TTL_SECONDS,
    Outbox,
    OutboxFull,
)
from trollama.brain.services import Services, build_services
from trollama.common.store.base import ItemStore
from trollama.common.store.sqlite import SqliteStore
from trollama.testkit.brain import brain_settings, serve_brain
from trollama.testkit.script import Reply

# ----------------------------------------------------------------------- Outbox


async def test_items_come_oldest_first_and_ack_is_idempotent(store: ItemStore) -> None:
    outbox = Outbox(store)
    first = await outbox.post("presence", "Counting clouds.")
    second = await outbox.post("say", "Hello, channel!", channel_id="c1")

    assert [i.id for i in await outbox.pending()] == [first.id, second.id]
    assert (second.kind, second.channel_id) == ("say", "c1")
    await outbox.ack(first.id)
    await outbox.ack(first.id)
    await outbox.ack("never-existed")
    assert [i.id for i in await outbox.pending()] == [second.id]
    assert len(await outbox.pending(limit=1)) == 1


async def test_texts_are_cut_to_discords_limits_and_say_needs_a_channel(
    store: ItemStore,
) -> None:
    outbox = Outbox(store)
    say = await outbox.post("say", "x" * (MAX_SAY_CHARS + 50), channel_id="c1")
    presence = await outbox.post("presence", "y" * 500)
    assert (len(say.text), len(presence.text)) == (MAX_SAY_CHARS, MAX_PRESENCE_CHARS)
    with pytest.raises(ValueError, match="channel_id"):
        await outbox.post("say", "to nowhere")


async def test_old_items_expire_and_a_full_outbox_refuses(
    sqlite_store: ItemStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = Outbox(sqlite_store, clock=lambda: 1_000_000.0)
    await stale.post("presence", "Long ago.")
    outbox = Outbox(sqlite_store)
    assert await outbox.pending() == []
    assert OUTBOX_TTL_SECONDS >= 3600

    monkeypatch.setattr(outbox_module, "MAX_OUTBOX_ITEMS", 2)
    await outbox.post("presence", "one")
    await outbox.post("presence", "two")
    with pytest.raises(OutboxFull):
        await outbox.post("presence", "three")


# ----------------------------------------------------------------------- REST


@dataclass
class Brain:
    url: str
    services: Services

    @property
    def relay(self) -> dict[str, str]:
        secret = self.services.settings.relay_shared_secret.get_secret_value()
        return {"Authorization": f"Bearer {secret}"}

    def user(self, user_id: str, *, admin: bool = False) -> dict[str, str]:
        secret = self.services.settings.jwt_secret_key.get_secret_value()
        return {"Authorization": f"Bearer {mint_token(user_id, secret, admin=admin)}"}


@pytest.fixture
async def brain(fake_ollama: Any, tmp_path: Path) -> AsyncIterator[Brain]:
    settings = brain_settings(ollama_host=fake_ollama.url, background_jobs_enabled=False)
    services = build_services(settings, store=SqliteStore(tmp_path / "brain.db"))
    async with serve_brain(services) as url:
        yield Brain(url, services)


async def test_the_relay_collects_and_acknowledges_items(brain: Brain) -> None:
    outbox = Outbox(brain.services.store)
    said = await outbox.post("say", "Anyone up for chess?", channel_id="c9")
    async with httpx.AsyncClient(base_url=brain.url) as http:
        listed = await http.get("/api/relay/outbox", params={"limit": 5}, headers=brain.relay)
        assert listed.status_code == 200
        [item] = listed.json()["items"]
        assert item == {
            "id": said.id,
            "kind": "say",
            "channel_id": "c9",
            "text": "Anyone up for chess?",
            "created_at": said.created_at,
        }
        for _ in range(2):
            acked = await http.delete(f"/api/relay/outbox/{said.id}", headers=brain.relay)
            assert acked.status_code == 204
        unknown = await http.delete("/api/relay/outbox/nope", headers=brain.relay)
        assert unknown.status_code == 204
        after = await http.get("/api/relay/outbox", headers=brain.relay)
        assert after.json() == {"items": []}


async def test_only_the_relay_reads_the_outbox(brain: Brain) -> None:
    async with httpx.AsyncClient(base_url=brain.url) as http:
        assert (await http.get("/api/relay/outbox")).status_code == 401
        admin = brain.user("42", admin=True)
        assert (await http.get("/api/relay/outbox", headers=admin)).status_code == 403
        assert (await http.delete("/api/relay/outbox/x", headers=admin)).status_code == 403
        too_many = await http.get("/api/relay/outbox?limit=500", headers=brain.relay)
        assert too_many.status_code == 422


async def test_an_admin_runs_a_job_by_hand(brain: Brain, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="Sharpening puns."), system_contains="status line")
    async with httpx.AsyncClient(base_url=brain.url, timeout=30) as http:
        ran = await http.post("/api/admin/jobs/status/run", headers=brain.user("1", admin=True))
        assert ran.status_code == 200
        assert ran.json()["job"] == "status"
        assert ran.json()["result"]["status"] == "Sharpening puns."
        collected = await http.get("/api/relay/outbox", headers=brain.relay)
        assert [(i["kind"], i["text"]) for i in collected.json()["items"]] == [
            ("presence", "Sharpening puns.")
        ]

        mood = await http.post(
            "/api/admin/jobs/mood/run", headers={**brain.relay, "X-Acting-User": "7"}
        )
        assert mood.status_code == 200 and "described" in mood.json()["result"]
        listed = await http.get("/api/admin/jobs", headers=brain.user("1", admin=True))
        states = {j["job"]: j for j in listed.json()["jobs"]}
        assert states["status"]["last_run_at"] is not None
        assert states["consolidation"]["last_run_at"] is None


async def test_job_trigger_refusals(brain: Brain) -> None:
    admin = brain.user("1", admin=True)
    async with httpx.AsyncClient(base_url=brain.url) as http:
        user = await http.post("/api/admin/jobs/status/run", headers=brain.user("2"))
        assert user.status_code == 403
        unknown = await http.post("/api/admin/jobs/reboot/run", headers=admin)
        assert unknown.status_code == 404 and "consolidation" in unknown.json()["detail"]
        await JobLeases(brain.services.store, holder="another-brain").acquire("consolidation")
        busy = await http.post("/api/admin/jobs/consolidation/run", headers=admin)
        assert busy.status_code == 409
