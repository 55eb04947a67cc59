"""Log lines are JSON with the request id, and registered secrets are masked."""

from __future__ import annotations

import json
import logging

import pytest

from trollama.common.logging import (
    JsonFormatter,
    configure_logging,
    register_secret,
    request_id_var,
)


def record(message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("trollama.test", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_line_is_json_with_request_id_and_extras() -> None:
    token = request_id_var.set("req-7")
    try:
        line = JsonFormatter("brain").format(record("hello %s", count=3))
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["msg"] == "hello %s"
    assert (entry["service"], entry["request_id"], entry["count"]) == ("brain", "req-7", 3)


def test_registered_secret_is_masked_everywhere() -> None:
    register_secret("s3cr3t-token-value-xyz")
    line = JsonFormatter("relay").format(
        record("connecting with s3cr3t-token-value-xyz", header="Bot s3cr3t-token-value-xyz")
    )
    assert "s3cr3t-token-value-xyz" not in line
    assert json.loads(line)["msg"] == "connecting with ***"


def test_configure_logging_writes_json_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("brain", level="DEBUG")
    logging.getLogger("trollama.x").warning('unicode ✓ 🦙 "quoted"')
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["level"] == "WARNING" and entry["msg"] == 'unicode ✓ 🦙 "quoted"'
    logging.getLogger().handlers.clear()
