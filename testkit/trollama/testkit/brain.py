"""Run a real brain for tests and benchmarks: in process or as a subprocess.

``serve_brain`` runs the FastAPI app under uvicorn on a free loopback port in
the current event loop; ``BrainProcess`` runs ``python -m trollama.brain`` as a
child process (for kill -9 and failover tests); ``BrainClient`` is a WebSocket
client speaking the protocol.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from trollama.brain.app import create_app
from trollama.brain.services import Services
from trollama.brain.settings import BrainSettings
from trollama.common.protocol import (
    MAX_FRAME_BYTES,
    DoneFrame,
    ErrorFrame,
    ServerFrame,
    server_frame_adapter,
)
from trollama.testkit.ports import free_port

#: Seconds a brain may take to answer its health check after starting.
START_TIMEOUT_SECONDS = 30.0
#: Seconds a test waits for one frame before failing.
FRAME_TIMEOUT_SECONDS = 15.0


def fresh_secrets() -> dict[str, str]:
    """Fresh random secrets, as start.sh generates them."""
    return {
        "relay_shared_secret": secrets.token_urlsafe(32),
        "jwt_secret_key": secrets.token_urlsafe(32),
    }


def brain_settings(**overrides: Any) -> BrainSettings:
    """Settings for a test brain: random secrets, fast polling, no .env file, no
    background jobs."""
    values: dict[str, Any] = {
        **fresh_secrets(),
        "brain_port": free_port(),
        "queue_poll_seconds": 0.1,
        "node_heartbeat_seconds": 1.0,
        "retry_backoff_seconds": 0.1,
        "log_json": True,
        # jobs run only when a test asks (PersonaJobs.run_*), never on their own
        "background_jobs_enabled": False,
        **overrides,
    }
    return BrainSettings(_env_file=None, **values)


@asynccontextmanager
async def serve_brain(services: Services) -> AsyncIterator[str]:
    """Serve the app on a free port; yields its base URL."""
    config = uvicorn.Config(
        create_app(services),
        host="127.0.0.1",
        port=0,
        log_config=None,
        ws_max_size=MAX_FRAME_BYTES,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the brain stopped while starting")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class BrainProcess:
    """``python -m trollama.brain`` as a child process with its own environment."""

    def __init__(self, env: Mapping[str, str], *, log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.port = int(env["BRAIN_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BrainProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trollama.brain"], env=self.env, stdout=log, stderr=log
            )
        return self

    async def wait_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"brain exited: {self.log_tail()}")
                try:
                    if (await client.get(f"{self.url}/health", timeout=1)).status_code < 500:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"brain not healthy in {timeout}s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class BrainClient:
    """A protocol client over one WebSocket connection."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        #: Frames received for other requests while waiting for one.
        self._held: dict[str, list[ServerFrame]] = {}

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, base_url: str, credential: str, path: str = "/ws/discord"
    ) -> AsyncIterator[BrainClient]:
        url = base_url.replace("http://", "ws://") + path
        headers = {"Authorization": f"Bearer {credential}"}
        async with connect(url, additional_headers=headers, max_size=MAX_FRAME_BYTES) as conn:
            yield cls(conn)

    async def send(self, frame: Mapping[str, Any] | str | bytes) -> None:
        if isinstance(frame, Mapping):
            await self.conn.send(json.dumps(frame))
        else:
            await self.conn.send(frame)

    async def recv(self, timeout: float = FRAME_TIMEOUT_SECONDS) -> ServerFrame:
        raw = await asyncio.wait_for(self.conn.recv(), timeout)
        return server_frame_adapter.validate_json(raw)

    async def until_terminal(
        self, request_id: str, timeout: float = FRAME_TIMEOUT_SECONDS
    ) -> list[ServerFrame]:
        """Frames of ``request_id`` up to its done/error; other requests' frames
        are kept for their own ``until_terminal`` call."""
        frames = self._held.pop(request_id, [])
        while not frames or not isinstance(frames[-1], DoneFrame | ErrorFrame):
            frame = await self.recv(timeout)
            owner = getattr(frame, "request_id", None)
            if owner == request_id:
                frames.append(frame)
            elif owner is not None:
                self._held.setdefault(owner, []).append(frame)
        return frames


def final_text(frames: list[ServerFrame]) -> str:
    """The answer text a client would show: deltas since the last retry."""
    text = ""
    for frame in frames:
        if getattr(frame, "status", None) == "retrying":
            text = ""
        if frame.type == "delta":
            text += frame.text
    return text
