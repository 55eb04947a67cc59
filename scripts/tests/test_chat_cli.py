"""scripts/chat.py against a real brain: streams the answer, fails with one line."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from trollama.brain.services import build_services
from trollama.common.store.sqlite import SqliteStore
from trollama.testkit.brain import brain_settings, serve_brain
from trollama.testkit.ports import free_port
from trollama.testkit.script import Reply

CHAT = Path(__file__).resolve().parents[1] / "chat.py"


async def run_chat(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHAT),
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_chat_prints_the_streamed_answer(fake_ollama: Any, tmp_path: Path) -> None:
    fake_ollama.script.add(Reply(text="Llamas hum when they are curious."), model="gpt-oss:20b")
    settings = brain_settings(ollama_host=fake_ollama.url)
    services = build_services(settings, store=SqliteStore(tmp_path / "chat.db"))
    async with serve_brain(services) as url:
        code, out, err = await run_chat(
            "--user", "alice", "--model", "gpt-oss:20b", "--url", url, "Tell me about llamas",
            env={"JWT_SECRET_KEY": settings.jwt_secret_key.get_secret_value(),
                 "RELAY_SHARED_SECRET": settings.relay_shared_secret.get_secret_value()},
        )  # fmt: skip
    assert code == 0, err
    assert out.strip() == "Llamas hum when they are curious."


async def test_chat_exits_1_with_one_line_when_the_brain_is_down() -> None:
    code, _, err = await run_chat(
        "--user", "bob", "--url", f"http://127.0.0.1:{free_port()}", "--token", "x.y.z", "hi",
        env={},
    )  # fmt: skip
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "not reachable" in lines[0]


async def test_chat_reports_a_refused_token(fake_ollama: Any, tmp_path: Path) -> None:
    settings = brain_settings(ollama_host=fake_ollama.url)
    services = build_services(settings, store=SqliteStore(tmp_path / "chat.db"))
    async with serve_brain(services) as url:
        code, _, err = await run_chat(
            "--user", "eve", "--url", url, "--token", "forged.token.value", "hi", env={}
        )  # fmt: skip
    assert code == 1 and "401" in err and "invalid token" in err
