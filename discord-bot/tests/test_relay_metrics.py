"""The relay's ``/metrics`` on its health port, after a real message went through."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from trollama.testkit.script import Reply

ROUTER_PHRASE = "Answer with exactly one route name"


async def scrape(health_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient() as client:
        response = await client.get(health_url.removesuffix("/health") + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset({"service": "relay", **labels}.items())), 0.0)


async def test_handled_message_shows_in_metrics(stack: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="SELF_HANDLE"), system_contains=ROUTER_PHRASE)
    fake_ollama.script.add(Reply(text="Counted and answered."), model="gpt-oss:20b")
    fake = stack.discord
    await fake.user_message(fake.general.id, fake.bob, "just chatting")
    message = await fake.user_message(fake.general.id, fake.alice, "hello", mentions_bot=True)
    await fake.wait_for(lambda: "✅" in fake.current_reactions(message.id), timeout=20)
    samples = await scrape(stack.health_url)
    assert value(samples, "trollama_relay_messages_total", addressed="yes") == 1
    assert value(samples, "trollama_relay_messages_total", addressed="no") == 1
    assert value(samples, "trollama_relay_requests_submitted_total") == 1
    assert value(samples, "trollama_requests_total", outcome="done") == 1
    assert value(samples, "trollama_websocket_connections") == 1
    assert value(samples, "trollama_relay_brain_link_state", state="connected") == 1
    assert value(samples, "trollama_relay_brain_link_state", state="disconnected") == 0
    assert value(samples, "trollama_relay_pending_requests") == 0
    assert value(samples, "trollama_relay_discord_connected") == 1
