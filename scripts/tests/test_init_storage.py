"""scripts/init_storage.py creates every table once and reports what it found."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trollama.common.settings import REPO_ROOT
from trollama.common.store.base import Table
from trollama.testkit.ports import free_port
from trollama.testkit.store_fixtures import (
    EMULATOR_ACCESS_KEY,
    EMULATOR_REGION,
    EMULATOR_SECRET_KEY,
    unique_prefix,
)

SCRIPT = REPO_ROOT / "scripts" / "init_storage.py"
#: Longest a run may take before the test gives up, in seconds.
RUN_TIMEOUT_SECONDS = 60
SECRET = "init-storage-secret-never-printed"


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
        cwd=REPO_ROOT,
    )


def table_lines(output: str) -> dict[str, str]:
    """Physical table name → 'created' / 'found'."""
    rows = [line.split() for line in output.splitlines() if line.startswith("  ")]
    return {name: state for state, name in rows}


def dynamo_env(endpoint: str, prefix: str) -> dict[str, str]:
    return {
        "STORE_BACKEND": "dynamodb",
        "DYNAMODB_ENDPOINT": endpoint,
        "DYNAMODB_REGION": EMULATOR_REGION,
        "DYNAMODB_ACCESS_KEY": EMULATOR_ACCESS_KEY,
        "DYNAMODB_SECRET_KEY": EMULATOR_SECRET_KEY,
        "STORE_TABLE_PREFIX": prefix,
    }


def assert_created_then_found(env: dict[str, str], prefix: str, *args: str) -> None:
    expected = {f"{prefix}{t.value}" for t in Table}

    first = run_script(env, *args)
    second = run_script(env, *args)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert table_lines(first.stdout) == dict.fromkeys(expected, "created")
    assert table_lines(second.stdout) == dict.fromkeys(expected, "found")
    assert f"0 created, {len(expected)} already present" in second.stdout


def test_sqlite_tables_are_created_once(tmp_path: Path) -> None:
    prefix = unique_prefix()
    env = {
        "STORE_BACKEND": "dynamodb",  # --backend wins over the environment
        "SQLITE_PATH": str(tmp_path / "data" / "store.db"),
        "STORE_TABLE_PREFIX": prefix,
    }

    assert_created_then_found(env, prefix, "--backend", "sqlite")
    assert (tmp_path / "data" / "store.db").is_file()


def test_dynamodb_tables_are_created_once(moto_endpoint: str) -> None:
    prefix = unique_prefix()

    assert_created_then_found(dynamo_env(moto_endpoint, prefix), prefix)


@pytest.mark.timeout(90)
def test_unreachable_store_exits_with_one_line() -> None:
    env = dynamo_env(f"http://127.0.0.1:{free_port()}", "x_")
    env["DYNAMODB_SECRET_KEY"] = SECRET

    result = run_script(env)

    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unreachable" in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_invalid_settings_exit_with_the_setting_name() -> None:
    result = run_script({"STORE_BACKEND": "mysql"})

    assert result.returncode == 2
    assert "STORE_BACKEND" in result.stderr
