"""./start.sh and ./stop.sh, run as an operator would, on free ports and temporary paths.

Every run points the scripts at a temporary settings file, pid and log directory
and database (TROLLAMA_ENV_FILE, TROLLAMA_RUN_DIR, TROLLAMA_LOG_DIR,
SQLITE_PATH), so the repository's own .env, run/ and logs/ stay untouched.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from trollama.testkit.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START = REPO_ROOT / "start.sh"
STOP = REPO_ROOT / "stop.sh"

#: Seconds one script run may take (nothing to install here; the brain boots in seconds).
SCRIPT_TIMEOUT_SECONDS = 100
#: Seconds one HTTP request to a started service may take.
HTTP_TIMEOUT_SECONDS = 5.0
#: Settings the calling environment might hold that would steer the run elsewhere.
INHERITED_SETTINGS = (
    "LOG_SHIPPING",
    "LOGSINK_HEALTH_PORT",
    "LOG_SERVICE_PORT",
    "LOG_DIR",
    "LOG_SPOOL_DIR",
    "MONITOR_PORT",
    "MONITOR_TARGETS",
    "BRAIN_HOST",
    "BRAIN_PORT",
    "OLLAMA_HOST",
    "MODEL_SERVER_SIMULATED",
    "STORE_BACKEND",
    "SQLITE_PATH",
    "DEV_MODE",
    "RELAY_SHARED_SECRET",
    "JWT_SECRET_KEY",
    "DISCORD_TOKEN",
    "DISCORD_API_BASE",
    "DISCORD_GATEWAY_URL",
    "FASTAPI_WS_URL",
    "RELAY_HEALTH_PORT",
)


@dataclass
class Sandbox:
    """Where one test's services live, and the environment that says so."""

    env: dict[str, str]
    env_file: Path
    run_dir: Path
    brain_port: int

    def run(self, script: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args],
            env=self.env,
            cwd=self.env_file.parent,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_SECONDS,
            check=False,
        )

    def pids(self) -> dict[str, int]:
        return {
            path.stem: int(path.read_text(encoding="utf-8").split()[0])
            for path in self.run_dir.glob("*.pid")
        }


def port_is_free(port: int) -> bool:
    """Nothing listens, and a new server could bind (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def process_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie awaiting its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in INHERITED_SETTINGS}
    box = Sandbox(env, tmp_path / "conf" / ".env", tmp_path / "run", free_port())
    box.env_file.parent.mkdir()
    env.update(
        CI="true",
        TROLLAMA_ENV_FILE=str(box.env_file),
        TROLLAMA_RUN_DIR=str(box.run_dir),
        TROLLAMA_LOG_DIR=str(tmp_path / "logs"),
        TROLLAMA_DEMO_MODEL_PORT=str(free_port()),
        TROLLAMA_STOP_GRACE="5",
        BRAIN_HOST="127.0.0.1",
        BRAIN_PORT=str(box.brain_port),
        STORE_BACKEND="sqlite",
        SQLITE_PATH=str(tmp_path / "data" / "trollama.db"),
        DEV_MODE="false",
        LOGSINK_HEALTH_PORT=str(free_port()),
        LOG_SERVICE_PORT=str(free_port()),
        LOG_DIR=str(tmp_path / "logs"),
        LOG_SPOOL_DIR=str(tmp_path / "logs" / "spool"),
        MONITOR_PORT=str(free_port()),
    )
    yield box
    box.run(STOP)  # whatever the test did, leave nothing running


def health(port: int) -> dict[str, object]:
    response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=HTTP_TIMEOUT_SECONDS)
    body = response.json()
    assert isinstance(body, dict)
    return body


def simulated_flag(body: dict[str, object]) -> object:
    """The demo flag, at the top level or in the report's ``info`` block."""
    info = body.get("info")
    if "simulated_model_server" not in body and isinstance(info, dict):
        return info.get("simulated_model_server")
    return body.get("simulated_model_server")


def test_demo_run_keeps_env_file_refuses_double_start_and_stops(sandbox: Sandbox) -> None:
    # One full start (the brain takes seconds to boot), checked from every side.
    port = free_port()
    original = (
        "# the operator's own settings: start.sh must not touch this file\n"
        f"RELAY_SHARED_SECRET={'r' * 40}\n"
        f"JWT_SECRET_KEY={'j' * 40}\n"
        f"BRAIN_PORT={port}\n"
    )
    sandbox.env_file.write_text(original, encoding="utf-8")
    del sandbox.env["BRAIN_PORT"]  # the port must come from the file

    started = sandbox.run(START, "--detach", "--demo")
    assert started.returncode == 0, output(started)
    assert "SIMULATED" in started.stdout + started.stderr
    assert "relay: skipped (set DISCORD_TOKEN" in started.stdout + started.stderr
    assert sandbox.env_file.read_text(encoding="utf-8") == original

    body = health(port)
    assert simulated_flag(body) is True
    assert body["status"] in ("healthy", "degraded")

    pids = sandbox.pids()
    assert {"logging", "brain", "model-server", "monitor"} <= set(pids)
    monitor = health(int(sandbox.env["MONITOR_PORT"]))
    assert monitor["status"] in ("healthy", "degraded")
    again = sandbox.run(START, "--detach", "--demo")
    assert again.returncode != 0, output(again)
    assert "already running" in again.stderr
    assert sandbox.pids() == pids

    stopped = sandbox.run(STOP)
    assert stopped.returncode == 0, output(stopped)
    assert "stopped brain" in stopped.stdout
    assert not [name for name, pid in pids.items() if process_alive(pid)]
    assert port_is_free(port)
    assert not list(sandbox.run_dir.glob("*.pid"))

    idle = sandbox.run(STOP)
    assert idle.returncode == 0, output(idle)
    assert "Nothing to stop" in idle.stdout


def test_created_env_file_is_private_with_fresh_secrets(sandbox: Sandbox) -> None:
    # --docker creates .env first, then fails clearly when Docker is absent.
    if Path("/usr/bin/docker").exists():
        pytest.skip("Docker is installed in /usr/bin; this test needs a machine without it")
    sandbox.env["PATH"] = "/usr/bin:/bin"
    result = sandbox.run(START, "--docker")
    assert result.returncode == 1, output(result)
    assert "--docker needs Docker" in result.stderr

    assert stat.S_IMODE(sandbox.env_file.stat().st_mode) == 0o600
    values = dict(
        line.split("=", 1)
        for line in sandbox.env_file.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    secrets = [values["RELAY_SHARED_SECRET"], values["JWT_SECRET_KEY"]]
    assert all(len(secret) >= 32 for secret in secrets)
    assert secrets[0] != secrets[1]
    assert not any(secret in result.stdout + result.stderr for secret in secrets)


def test_help_and_unknown_option() -> None:
    shown = subprocess.run(
        [str(START), "--help"], capture_output=True, text=True, check=False, timeout=30
    )
    assert shown.returncode == 0
    assert "--demo" in shown.stdout
    assert "SIMULATED" in shown.stdout
    bad = subprocess.run(
        [str(START), "--no-such-flag"], capture_output=True, text=True, check=False, timeout=30
    )
    assert bad.returncode != 0
    assert "unknown option" in bad.stderr


def test_stop_without_anything_started(sandbox: Sandbox) -> None:
    result = sandbox.run(STOP)
    assert result.returncode == 0, output(result)
    assert "Nothing to stop" in result.stdout


def test_stop_leaves_a_reused_pid_alone(sandbox: Sandbox) -> None:
    """A pid file whose number now belongs to another program must not kill it."""
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        sandbox.run_dir.mkdir()
        # Right pid, wrong start time: the recorded service is gone, the pid reused.
        (sandbox.run_dir / "brain.pid").write_text(f"{bystander.pid} 1\n", encoding="utf-8")
        result = sandbox.run(STOP)
        assert result.returncode == 0, output(result)
        assert "brain was not running" in result.stdout
        assert bystander.poll() is None
        assert not (sandbox.run_dir / "brain.pid").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_relay_runs_under_start_sh_when_a_token_is_set(sandbox: Sandbox, fake_discord: Any) -> None:
    relay_port = free_port()
    sandbox.env.update(
        DISCORD_TOKEN=fake_discord.token,
        DISCORD_API_BASE=fake_discord.api_base,
        DISCORD_GATEWAY_URL=fake_discord.gateway_url,
        RELAY_HEALTH_PORT=str(relay_port),
        FASTAPI_WS_URL=f"ws://127.0.0.1:{sandbox.brain_port}/ws/discord",
    )
    started = sandbox.run(START, "--detach", "--demo")
    assert started.returncode == 0, output(started)
    assert "relay" in sandbox.pids()
    deadline = time.monotonic() + 30
    body = health(relay_port)
    while not body["info"]["websocket_connected"] and time.monotonic() < deadline:  # type: ignore[index]
        time.sleep(0.2)
        body = health(relay_port)
    assert body["status"] == "healthy", body
    assert fake_discord.token not in started.stdout + started.stderr
    stopped = sandbox.run(STOP)
    assert "stopped relay" in stopped.stdout, output(stopped)
    assert port_is_free(relay_port)
