"""Real processes: the relay through its entry point, and a brain killed mid-answer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from trollama.brain.context.history import ConversationStore
from trollama.brain.services import build_services
from trollama.common.store.sqlite import SqliteStore
from trollama.relay.bot import RelayBot
from trollama.relay.settings import RelaySettings
from trollama.testkit.brain import (
    BrainProcess,
    brain_settings,
    free_port,
    fresh_secrets,
    serve_brain,
)
from trollama.testkit.discord_fixtures import running_client
from trollama.testkit.fake_discord import FakeDiscord
from trollama.testkit.script import Reply


def relay_settings_for(fake: FakeDiscord, secret: str, brain_port: int) -> RelaySettings:
    """An in-process relay's settings: the fake Discord, the brain on ``brain_port``."""
    return RelaySettings(
        _env_file=None,
        dev_mode=True,
        discord_token=fake.token,
        relay_shared_secret=secret,
        fastapi_ws_url=f"ws://127.0.0.1:{brain_port}/ws/discord",
        relay_health_port=free_port(),
        stream_chunk_interval=0.3,
        merge_window_seconds=0.2,
    )


async def wait_healthy_relay(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                report = (await client.get(url, timeout=1)).json()
                if report["info"]["websocket_connected"] and report["status"] == "healthy":
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(log.read_text(errors="replace")[-3000:])


async def test_relay_entry_point_answers_and_never_logs_the_token(
    fake_discord: FakeDiscord, fake_ollama: Any, tmp_path: Path
) -> None:
    fake_ollama.script.add(Reply(text="hello from a real process"), user_contains="process")
    settings = brain_settings(ollama_host=fake_ollama.url)
    services = build_services(settings, store=SqliteStore(tmp_path / "brain.db"))
    health_port = free_port()
    log = tmp_path / "relay.log"
    async with serve_brain(services) as url:
        env = {
            **os.environ,
            "DISCORD_TOKEN": fake_discord.token,
            "DISCORD_API_BASE": fake_discord.api_base,
            "DISCORD_GATEWAY_URL": fake_discord.gateway_url,
            "FASTAPI_WS_URL": url.replace("http://", "ws://") + "/ws/discord",
            "RELAY_SHARED_SECRET": settings.relay_shared_secret.get_secret_value(),
            "RELAY_HEALTH_PORT": str(health_port),
            "STREAM_CHUNK_INTERVAL": "0.3",
            "MERGE_WINDOW_SECONDS": "0.2",
            "LOG_LEVEL": "DEBUG",
            "DEV_MODE": "false",
        }
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "trollama.relay"], env=env, stdout=out, stderr=out
            )
        try:
            await wait_healthy_relay(f"http://127.0.0.1:{health_port}/health", proc, log)
            message = await fake_discord.user_message(
                fake_discord.general.id, fake_discord.alice, "a real process?", mentions_bot=True
            )
            await fake_discord.wait_for(
                lambda: "✅" in fake_discord.current_reactions(message.id), timeout=20
            )
            thread = fake_discord.threads()[0]
            texts = [m.content for m in fake_discord.messages(thread.id)]
        finally:
            proc.terminate()
            proc.wait(20)
    assert "hello from a real process" in texts
    output = log.read_text(errors="replace")
    assert fake_discord.token not in output
    assert settings.relay_shared_secret.get_secret_value() not in output


async def test_brain_killed_mid_answer_gives_exactly_one_complete_answer(
    fake_discord: FakeDiscord, fake_ollama: Any, tmp_path: Path
) -> None:
    answer = " ".join(f"piece{i}" for i in range(60))
    fake_ollama.script.add(Reply(text=answer, tokens_per_second=15), user_contains="restart")
    secrets = fresh_secrets()
    port = free_port()
    env = {
        "BRAIN_PORT": str(port),
        "NODE_ID": "brain-1",
        "OLLAMA_HOST": fake_ollama.url,
        "SQLITE_PATH": str(tmp_path / "brain.db"),
        "RELAY_SHARED_SECRET": secrets["relay_shared_secret"],
        "JWT_SECRET_KEY": secrets["jwt_secret_key"],
        "QUEUE_POLL_SECONDS": "0.1",
    }
    brain = BrainProcess(env, log_path=tmp_path / "brain.log").start()
    await brain.wait_healthy()
    relay_settings = relay_settings_for(fake_discord, secrets["relay_shared_secret"], port)
    bot = RelayBot(relay_settings)
    try:
        async with running_client(fake_discord, bot):
            await fake_discord.wait_for(lambda: str(bot.link.state) == "connected")
            message = await fake_discord.user_message(
                fake_discord.general.id, fake_discord.alice, "restart test", mentions_bot=True
            )
            thread = (await fake_discord.wait_for(lambda: fake_discord.threads()))[0]
            await fake_discord.wait_for(
                lambda: any("piece" in m.content for m in fake_discord.messages(thread.id)),
                timeout=15,
            )
            brain.kill()
            brain = BrainProcess(env, log_path=tmp_path / "brain2.log").start()
            await brain.wait_healthy()
            await fake_discord.wait_for(
                lambda: "✅" in fake_discord.current_reactions(message.id), timeout=30
            )
            texts = [
                m.content
                for m in fake_discord.messages(thread.id)
                if m.author_id == fake_discord.bot_user.id
            ]
    finally:
        brain.stop()
    assert texts[0] == answer
    assert sum(t.count("piece59") for t in texts) == 1, texts
    history = await ConversationStore(SqliteStore(tmp_path / "brain.db")).messages(
        str(thread.id), 10
    )
    assert [m.role for m in history] == ["user", "assistant"]


async def test_brain_away_users_see_restarting_then_get_their_answer(
    fake_discord: FakeDiscord, fake_ollama: Any, tmp_path: Path
) -> None:
    fake_ollama.script.add(Reply(text="worth the wait"), user_contains="patience")
    secrets = fresh_secrets()
    port = free_port()
    env = {
        "BRAIN_PORT": str(port),
        "OLLAMA_HOST": fake_ollama.url,
        "SQLITE_PATH": str(tmp_path / "brain.db"),
        "RELAY_SHARED_SECRET": secrets["relay_shared_secret"],
        "JWT_SECRET_KEY": secrets["jwt_secret_key"],
    }
    relay_settings = relay_settings_for(fake_discord, secrets["relay_shared_secret"], port)
    bot = RelayBot(relay_settings)
    brain: BrainProcess | None = None
    try:
        async with running_client(fake_discord, bot):
            message = await fake_discord.user_message(
                fake_discord.general.id, fake_discord.bob, "patience please", mentions_bot=True
            )
            thread = (await fake_discord.wait_for(lambda: fake_discord.threads()))[0]
            await fake_discord.wait_for(
                lambda: any("restarting" in m.content for m in fake_discord.messages(thread.id)),
                timeout=10,
            )
            brain = BrainProcess(env, log_path=tmp_path / "brain.log").start()
            await brain.wait_healthy()
            await fake_discord.wait_for(
                lambda: "✅" in fake_discord.current_reactions(message.id), timeout=40
            )
            texts = [
                m.content
                for m in fake_discord.messages(thread.id)
                if m.author_id == fake_discord.bot_user.id
            ]
    finally:
        if brain is not None:
            brain.stop()
    assert texts == ["worth the wait"]
