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
