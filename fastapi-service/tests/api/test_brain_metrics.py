"""``GET /metrics`` of a real served brain, after real requests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from trollama.testkit.script import Reply

MODEL = "gpt-oss:20b"
#: Looks at /metrics while waiting for the server to notice a closed socket.
MAX_SCRAPES = 100


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, keyed by name and labels."""
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def chat(url: str, token: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with (
        httpx.AsyncClient(timeout=20) as client,
        client.stream("POST", f"{url}/api/chat", json=body, headers=bearer(token)) as r,
    ):
        assert r.status_code == 200
        return [json.loads(line) async for line in r.aiter_lines() if line.strip()]


async def test_streamed_request_is_counted(brain: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="counted", prompt_eval_count=37, eval_count=11), model=MODEL)
    token = brain.token("alice")
    lines = await chat(
        brain.url, token, {"content": "hi", "request_id": "m-1", "model_override": MODEL}
    )
    done = lines[-1]
    assert done["type"] == "done" and done["usage"] == {
        "prompt_tokens": 37,
        "completion_tokens": 11,
    }
    async with httpx.AsyncClient(base_url=brain.url) as client:
        assert (await client.get("/api/requests/m-1", headers=bearer(token))).status_code == 200
        assert (await client.get("/no/such/page")).status_code == 404
    samples = await scrape(brain.url)

    svc = {"service": "brain"}
    assert value(samples, "trollama_requests_total", **svc, outcome="done") == 1
    assert value(samples, "trollama_requests_total", **svc, outcome="failed") == 0
    route = {"route": done["route"], "model": MODEL}
    assert value(samples, "trollama_tokens_total", **svc, direction="in", **route) == 37
    assert value(samples, "trollama_tokens_total", **svc, direction="out", **route) == 11
    assert value(samples, "trollama_queue_wait_seconds_count", **svc) == 1
    assert value(samples, "trollama_queue_depth", **svc) == 0
    http = "trollama_http_requests_total"
    assert value(samples, http, **svc, method="POST", route="/api/chat", status="200") == 1
    requests_route = "/api/requests/{request_id}"
    assert value(samples, http, **svc, method="GET", route=requests_route, status="200") == 1
    assert value(samples, http, **svc, method="GET", route="unmatched", status="404") == 1
    seconds = "trollama_http_request_seconds_count"
    assert value(samples, seconds, **svc, method="POST", route="/api/chat") == 1
    routes = {dict(labels).get("route") for _, labels in samples}
    assert "/api/requests/m-1" not in routes and "/no/such/page" not in routes


async def test_model_failure_counts_an_error(brain_factory: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply.failing(400, "bad request"), model=MODEL)
    async with brain_factory() as brain:
        lines = await chat(
            brain.url, brain.token("bob"), {"content": "hi", "model_override": MODEL}
        )
        assert lines[-1]["type"] == "error"
        samples = await scrape(brain.url)
    svc = {"service": "brain"}
    errors = value(samples, "trollama_model_errors_total", **svc, model=MODEL, kind="BackendError")
    assert errors >= 1
    assert value(samples, "trollama_requests_total", **svc, outcome="failed") == 1
    assert value(samples, "trollama_requests_total", **svc, outcome="done") == 0


async def test_websocket_gauge_follows_connections(brain: Any) -> None:
    gauge = ("trollama_websocket_connections", frozenset({("service", "brain")}))
    async with brain.relay():
        assert (await scrape(brain.url))[gauge] == 1
    for _ in range(MAX_SCRAPES):
        if (await scrape(brain.url))[gauge] == 0:
            break
        await asyncio.sleep(0.02)
    assert (await scrape(brain.url))[gauge] == 0


async def test_health_lists_its_dependencies(brain: Any) -> None:
    async with httpx.AsyncClient(base_url=brain.url) as client:
        report = (await client.get("/health")).json()
    assert {"store", "model_server", "queue"} <= set(report["components"])
