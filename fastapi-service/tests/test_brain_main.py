"""``python -m trollama.brain`` refuses default secrets with a clear line."""

from __future__ import annotations

import os
import subprocess
import sys


def test_refuses_placeholder_secret_naming_it_without_echoing() -> None:
    env = {
        **os.environ,
        "RELAY_SHARED_SECRET": "changeme",
        "JWT_SECRET_KEY": "a-perfectly-fine-secret-value-123",
        "DEV_MODE": "false",
    }
    result = subprocess.run(
        [sys.executable, "-m", "trollama.brain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "RELAY_SHARED_SECRET" in result.stderr
    assert "a-perfectly-fine-secret-value-123" not in result.stderr
    assert "Traceback" not in result.stderr


def test_start_up_does_not_load_the_tool_path_or_the_openai_sdk() -> None:
    """strands (tool requests) and openai (SGLang/vLLM) load on first use only:
    together they cost seconds of start-up that most deployments never need."""
    probe = (
        "import sys, trollama.brain.services, trollama.brain.app;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'strands', 'openai'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
