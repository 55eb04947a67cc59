"""The REST side: streaming chat, status, conversations, admin, health, OpenAPI."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from trollama.testkit.ports import free_port
from trollama.testkit.script import Reply


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def chat_lines(url: str, token: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    headers = bearer(token)
    async with (
        httpx.AsyncClient(timeout=20) as client,
        client.stream("POST", f"{url}/api/chat", json=body, headers=headers) as r,
    ):
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) async for line in r.aiter_lines() if line.strip()]


async def test_http_chat_streams_ndjson(brain: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="Streaming over HTTP works."), model="gpt-oss:20b")
    lines = await chat_lines(
        brain.url, brain.token("alice"), {"content": "hi", "model_override": "gpt-oss:20b"}
    )
    assert lines[0]["type"] == "accepted"
    assert lines[-1]["type"] == "done"
    assert lines[-1]["text"] == "Streaming over HTTP works."
    assert "".join(line["text"] for line in lines if line["type"] == "delta") == lines[-1]["text"]


async def test_request_status_and_owner_isolation(brain: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="done"), model="gpt-oss:20b")
    body = {"content": "hi", "request_id": "r-42", "model_override": "gpt-oss:20b"}
    await chat_lines(brain.url, brain.token("alice"), body)
    async with httpx.AsyncClient(base_url=brain.url) as client:
        mine = await client.get("/api/requests/r-42", headers=bearer(brain.token("alice")))
        theirs = await client.get("/api/requests/r-42", headers=bearer(brain.token("mallory")))
        missing = await client.get("/api/requests/none", headers=bearer(brain.token("alice")))
    assert mine.status_code == 200
    assert mine.json()["state"] == "done" and mine.json()["result"]["text"] == "done"
    assert theirs.status_code == 404 and missing.status_code == 404


async def test_auth_failures_are_401(brain: Any) -> None:
    async with httpx.AsyncClient(base_url=brain.url) as client:
        none = await client.post("/api/chat", json={"content": "hi"})
        bad = await client.post("/api/chat", json={"content": "hi"}, headers=bearer("x.y.z"))
        expired = await client.post(
            "/api/chat", json={"content": "hi"}, headers=bearer(brain.token("a", ttl=-5))
        )
    assert [r.status_code for r in (none, bad, expired)] == [401, 401, 401]
    assert "expired" in expired.json()["detail"]


async def test_maintenance_modes_switch_at_run_time(brain: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="ok"), model="gpt-oss:20b")
    admin = bearer(brain.token("root", admin=True))
    body = {"content": "hi", "model_override": "gpt-oss:20b"}
    async with httpx.AsyncClient(base_url=brain.url, timeout=20) as client:
        refused = await client.put(
            "/api/admin/maintenance", json={"mode": "hard"}, headers=bearer(brain.token("u"))
        )
        assert refused.status_code == 403
        assert (
            await client.put("/api/admin/maintenance", json={"mode": "hard"}, headers=admin)
        ).status_code == 200
        hard = await client.post("/api/chat", json=body, headers=bearer(brain.token("u")))
        assert hard.status_code == 503 and "emergency maintenance" in hard.json()["message"]
        await client.put("/api/admin/maintenance", json={"mode": "soft"}, headers=admin)
    lines = await chat_lines(brain.url, brain.token("u"), body)
    assert "maintenance" in lines[0]["notice"] and lines[-1]["text"] == "ok"


async def test_queue_full_is_a_clear_refusal(brain_factory: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="slow " * 50, tokens_per_second=10), model="gpt-oss:20b")
    async with brain_factory(max_queue_size=2, worker_concurrency=1) as brain:
        token = brain.token("burst")
        async with httpx.AsyncClient(base_url=brain.url, timeout=20) as client:
            codes = []
            for i in range(5):
                body = {
                    "content": f"q{i}",
                    "conversation_id": f"c{i}",
                    "model_override": "gpt-oss:20b",
                }
                async with client.stream(
                    "POST", "/api/chat", json=body, headers=bearer(token)
                ) as r:
                    codes.append(r.status_code)
                    if r.status_code != 200:
                        payload = json.loads(await r.aread())
            assert codes.count(503) >= 1
            assert payload["code"] == "queue_full" and "queue is full" in payload["message"].lower()
            health = await client.get("/health")
            assert health.status_code == 200


async def test_conversation_operations_and_unknown_ids(brain: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="remembered"), model="gpt-oss:20b")
    await chat_lines(
        brain.url,
        brain.token("a"),
        {"content": "remember this", "conversation_id": "conv-9", "model_override": "gpt-oss:20b"},
    )
    relay = bearer(brain.relay_secret)
    async with httpx.AsyncClient(base_url=brain.url) as client:
        unknown = await client.post("/api/conversations/never-seen/reset", headers=relay)
        forbidden = await client.post(
            "/api/conversations/conv-9/reset", headers=bearer(brain.token("a"))
        )
        reset = await client.post("/api/conversations/conv-9/reset", headers=relay)
        bogus = await client.post("/api/conversations/conv-9/explode", headers=relay)
    assert unknown.status_code == 404 and forbidden.status_code == 403
    assert reset.status_code == 200
    assert await brain.services.conversations.messages("conv-9", 10) == []
    assert bogus.status_code == 422


async def test_health_reports_components(brain: Any) -> None:
    async with httpx.AsyncClient(base_url=brain.url) as client:
        report = (await client.get("/health")).json()
    assert report["status"] == "healthy"
    assert set(report["components"]) == {"store", "model_server", "queue"}
    assert report["info"]["simulated_model_server"] is False


async def test_model_server_down_gives_clear_error_and_degraded_health(brain_factory: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with brain_factory(ollama_host=dead, max_retries=1) as brain:
        async with httpx.AsyncClient(base_url=brain.url) as client:
            report = (await client.get("/health")).json()
        lines = await chat_lines(
            brain.url, brain.token("a"), {"content": "hi", "model_override": "gpt-oss:20b"}
        )
    assert report["status"] == "degraded"
    assert report["components"]["model_server"]["status"] == "unhealthy"
    assert lines[-1]["type"] == "error"
    assert "not reachable" in lines[-1]["message"] and dead in lines[-1]["message"]


async def test_fallback_model_answers_when_routed_model_fails(
    brain_factory: Any, fake_ollama: Any
) -> None:
    fake_ollama.script.add(Reply.failing(500, "model crashed"), model="rnj-1:8b")
    fake_ollama.script.add(Reply(text="fallback answer"), model="gpt-oss:20b")
    async with brain_factory(fallback_model="gpt-oss:20b", max_retries=1) as brain:
        lines = await chat_lines(
            brain.url, brain.token("a"), {"content": "2+2", "model_override": "rnj-1:8b"}
        )
    assert lines[-1]["type"] == "done" and lines[-1]["text"] == "fallback answer"
    assert lines[-1]["model"] == "gpt-oss:20b"


async def test_every_rest_endpoint_documents_a_response_model(brain: Any) -> None:
    async with httpx.AsyncClient(base_url=brain.url) as client:
        spec = (await client.get("/openapi.json")).json()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            if "204" in responses:
                continue  # no content: nothing to describe
            ok = responses.get("200") or responses.get("201") or {}
            schemas = [c.get("schema") for c in ok.get("content", {}).values()]
            assert any(schemas), f"{method.upper()} {path} has no success response schema"


async def test_queue_stats_need_admin(brain: Any) -> None:
    async with httpx.AsyncClient(base_url=brain.url) as client:
        user = await client.get("/api/admin/queue/stats", headers=bearer(brain.token("u")))
        admin = await client.get(
            "/api/admin/queue/stats", headers=bearer(brain.token("r", admin=True))
        )
    assert user.status_code == 403
    assert admin.status_code == 200 and admin.json()["max_size"] == brain.settings.max_queue_size


@pytest.mark.parametrize("count", [3])
async def test_concurrent_http_clients_all_complete(
    brain: Any, fake_ollama: Any, count: int
) -> None:
    fake_ollama.script.add(Reply(text="same answer", tokens_per_second=100), model="gpt-oss:20b")
    results = await asyncio.gather(
        *(
            chat_lines(
                brain.url,
                brain.token(f"user{i}"),
                {"content": "go", "model_override": "gpt-oss:20b"},
            )
            for i in range(count)
        )
    )
    assert all(lines[-1]["text"] == "same answer" for lines in results)


async def test_per_user_model_preference_applies_to_later_requests(
    brain: Any, fake_ollama: Any
) -> None:
    fake_ollama.script.add(Reply(text="from rnj"), model="rnj-1:8b")
    alice = bearer(brain.token("alice"))
    async with httpx.AsyncClient(base_url=brain.url) as client:
        bad = await client.put("/api/users/alice/model", json={"model": "gpt-9"}, headers=alice)
        other = await client.put("/api/users/bob/model", json={"model": "rnj-1:8b"}, headers=alice)
        ok = await client.put("/api/users/alice/model", json={"model": "rnj-1:8b"}, headers=alice)
        shown = await client.get("/api/users/alice/model", headers=alice)
    assert bad.status_code == 422 and "rnj-1:8b" in bad.json()["detail"]
    assert other.status_code == 403
    assert ok.status_code == 200 and shown.json() == {"model": "rnj-1:8b"}
    lines = await chat_lines(brain.url, brain.token("alice"), {"content": "what is 2+2"})
    assert lines[-1]["model"] == "rnj-1:8b" and lines[-1]["text"] == "from rnj"
    assert not any(
        "Answer with exactly one route name" in str(r.body) for r in fake_ollama.requests
    ), "a chosen model skips the classifier"
    async with httpx.AsyncClient(base_url=brain.url) as client:
        await client.put("/api/users/alice/model", json={"model": None}, headers=alice)
        assert (await client.get("/api/users/alice/model", headers=alice)).json() == {"model": None}


async def test_health_shows_log_lines_spooled_while_the_log_service_is_away(
    brain: Any, tmp_path: Any
) -> None:
    import logging
    import socket

    from trollama.common.log_shipping import ShippingHandler

    with socket.socket() as sock:  # a port where no log service listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = ShippingHandler("brain", host="127.0.0.1", port=port, spool_dir=tmp_path)
    brain.services.log_shipping = handler
    logger = logging.getLogger("trollama.test.shipping")
    logger.addHandler(handler)
    try:
        logger.warning("a line for the absent log service")
        for _ in range(100):
            if handler.stats().spooled:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=brain.url) as client:
            info = (await client.get("/health")).json()["info"]
    finally:
        logger.removeHandler(handler)
        await asyncio.to_thread(handler.close)
    assert info["log_shipping"]["spooled"] >= 1
    assert info["log_shipping"]["connected"] is False
    assert info["log_shipping"]["dropped"] == 0
