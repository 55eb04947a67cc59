"""The test kit's DynamoDB endpoints start, answer, keep data when asked, and stop."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trollama.common.settings import StoreSettings
from trollama.common.store.base import Table
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

    endpoint.stop()

    assert endpoint.process.poll() is not None
    assert not endpoint.workdir.exists()
    assert await store.ping() is False
    await store.close()


@pytest.mark.timeout(180)
async def test_dynamodb_local_keeps_data_in_its_db_dir(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        pytest.skip("java is not on PATH, so DynamoDB Local cannot run")
    jar = dynamo.find_dynamodb_local() or dynamo.install_dynamodb_local()

    with dynamo.start_dynamodb_local(tmp_path / "db", jar=jar) as first:
        store = open_dynamo(first.url)
        await store.ensure_tables()
        await store.put(Table.USERS, {"pk": "u", "sk": "1", "name": "kept"})
        await store.close()
    with dynamo.start_dynamodb_local(tmp_path / "db", jar=jar) as second:
        store = open_dynamo(second.url)
        assert await store.get(Table.USERS, "u", "1") == {"pk": "u", "sk": "1", "name": "kept"}
        await store.close()


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
