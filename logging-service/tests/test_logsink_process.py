"""``python -m trollama.logsink`` starts, answers /health, takes a line and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trollama.testkit.ports import free_port

#: Longest the process may take to start or stop, in seconds (a bound, not a speed check).
PROCESS_WAIT_SECONDS = 20.0


def wait_for_health(
    port: int, process: subprocess.Popen[bytes], received: int = 0
) -> dict[str, Any]:
    deadline = time.monotonic() + PROCESS_WAIT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                body: dict[str, Any] = json.loads(answer.read())
        except OSError:
            body = {}
        if body.get("info", {}).get("received", -1) >= received:
            return body
        time.sleep(0.05)
    raise AssertionError("no /health answer")


def test_runs_answers_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    tcp_port, health_port = free_port(), free_port()
    env = {
        **os.environ,
        "LOG_DIR": str(tmp_path / "logs"),
        "LOG_SERVICE_PORT": str(tcp_port),
        "LOGSINK_HEALTH_PORT": str(health_port),
        "LOG_SHIPPING": "false",
        "DEV_MODE": "true",
    }
    stamp = datetime.now(UTC).isoformat()
    process = subprocess.Popen(
        [sys.executable, "-m", "trollama.logsink"], env=env, stderr=subprocess.PIPE
    )
    try:
        report = wait_for_health(health_port, process)
        assert report["status"] == "healthy"
        with socket.create_connection(("127.0.0.1", tcp_port)) as conn:
            conn.sendall(json.dumps({"ts": stamp, "level": "INFO", "msg": "hi"}).encode() + b"\n")
        wait_for_health(health_port, process, received=1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=PROCESS_WAIT_SECONDS) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()
    written = (tmp_path / "logs" / stamp[:10] / "app.log").read_text()
    assert json.loads(written)["msg"] == "hi"
