"""The test kit's DynamoDB endpoints start, answer, report crashes, and stop."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from trollama.common.settings import StoreSettings
from trollama.common.store.dynamodb import DynamoStore
from trollama.testkit import dynamo
from trollama.testkit.store_fixtures import (
    EMULATOR_ACCESS_KEY,
    EMULATOR_REGION,
    EMULATOR_SECRET_KEY,
    StoreFactory,
    store_settings,
)


def open_dynamo(url: str) -> DynamoStore:
    return DynamoStore(
        endpoint_url=url,
        region=EMULATOR_REGION,
        access_key=EMULATOR_ACCESS_KEY,
        secret_key=EMULATOR_SECRET_KEY,
        table_prefix="kit_",
    )


async def test_moto_stops_with_its_whole_process() -> None:
    endpoint = dynamo.start_moto()
    store = open_dynamo(endpoint.url)
    assert await store.ping() is True

    await store.close()
    endpoint.stop()

    assert endpoint.process.poll() is not None
    assert not endpoint.workdir.exists()
    port = int(endpoint.url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_crashing_endpoint_reports_its_log() -> None:
    port = dynamo.free_port()
    command = ["python3", "-c", "import sys; print('boom'); sys.exit(3)"]

    with pytest.raises(dynamo.EndpointError, match="boom"):
        dynamo._launch("broken", command, port, timeout=10)


@pytest.mark.parametrize("backend", ["sqlite", "moto"])
def test_factory_env_points_a_subprocess_at_the_same_store(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = None if backend == "sqlite" else "http://127.0.0.1:1"
    factory = StoreFactory(backend, store_settings(backend, tmp_path=tmp_path, endpoint=endpoint))

    for name, value in factory.env().items():
        monkeypatch.setenv(name, value)

    assert StoreSettings() == factory.settings
