"""Pytest fixtures for the item store (registered as a plugin by the root conftest).

* ``sqlite_store`` — a fresh :class:`SqliteStore` in ``tmp_path``, tables created.
* ``store`` — a fresh, empty :class:`ItemStore` per test, parametrized over
  ``sqlite``, ``moto`` and ``dynamodb-local``, tables created.
* ``store_factory`` — the :class:`StoreFactory` behind ``store`` (same backend,
  same tables): ``open()`` a second instance, as a second brain process would
  (optionally with its own clock), or ``env()`` for a subprocess.
* ``moto_endpoint`` / ``dynamodb_local_endpoint`` — session-wide endpoints.

Isolation: every test has a table prefix (``t<hex>_``) that no other test uses
at the same time, so tests never see each other's data and need no partition
namespace. Creating the 17 tables plus TTL costs 0.5-1 s per test on the
emulators (and dropping them as much again), so on DynamoDB endpoints a
finished test's tables are emptied (a scan per table, ~20 ms in all when
small) and the prefix is handed to the next test. A set whose wipe fails is
abandoned, never reused.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr

from trollama.common.settings import StoreBackend, StoreSettings
from trollama.common.store.base import ItemStore, Table
from trollama.common.store.dynamodb import MAX_BATCH_WRITE_ITEMS
from trollama.common.store.factory import open_store
from trollama.common.store.sqlite import SqliteStore
from trollama.testkit import dynamo

#: The backends the ``store`` fixture runs every test against.
STORE_BACKENDS = ("sqlite", "moto", "dynamodb-local")
#: Credentials the emulators accept (they check nothing).
EMULATOR_ACCESS_KEY = "testing"
EMULATOR_SECRET_KEY = "testing-secret"  # noqa: S105 - emulator only
EMULATOR_REGION = "us-east-1"
ENDPOINT_FIXTURES = {"moto": "moto_endpoint", "dynamodb-local": "dynamodb_local_endpoint"}
#: Tables emptied at once after a test.
WIPE_THREADS = 8


class PrefixPool:
    """Free table prefixes per endpoint URL: their tables exist and are empty."""

    def __init__(self) -> None:
        self._free: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def take(self, endpoint: str) -> str | None:
        with self._lock:
            free = self._free.get(endpoint, [])
            return free.pop() if free else None

    def give_back(self, endpoint: str, prefix: str) -> None:
        with self._lock:
            self._free.setdefault(endpoint, []).append(prefix)


@dataclass
class StoreFactory:
    """Opens store instances on one backend and one table prefix.

    Every instance opened here is closed when the test ends.
    """

    backend: str
    settings: StoreSettings
    _opened: list[ItemStore] = field(default_factory=list)

    def open(self, *, clock: Callable[[], float] = time.time) -> ItemStore:
        """Another store instance over the same data (tables already exist)."""
        store = open_store(self.settings, clock=clock)
        self._opened.append(store)
        return store

    def env(self) -> dict[str, str]:
        """Environment variables that point a subprocess at the same store."""
        s = self.settings
        values = {
            "STORE_BACKEND": s.store_backend,
            "SQLITE_PATH": str(s.sqlite_path),
            "STORE_TABLE_PREFIX": s.store_table_prefix,
            "DYNAMODB_REGION": s.dynamodb_region,
        }
        if s.dynamodb_endpoint:
            values["DYNAMODB_ENDPOINT"] = s.dynamodb_endpoint
        if s.dynamodb_access_key and s.dynamodb_secret_key:
            values["DYNAMODB_ACCESS_KEY"] = s.dynamodb_access_key.get_secret_value()
            values["DYNAMODB_SECRET_KEY"] = s.dynamodb_secret_key.get_secret_value()
        return values

    async def aclose(self) -> None:
        """Close every store opened here."""
        while self._opened:
            await self._opened.pop().close()


def unique_prefix() -> str:
    """A table prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}_"


def store_settings(backend: str, *, tmp_path: Path, endpoint: str | None) -> StoreSettings:
    """StoreSettings for one backend with a fresh table prefix."""
    kind: StoreBackend = "sqlite" if backend == "sqlite" else "dynamodb"
    return StoreSettings(
        store_backend=kind,
        sqlite_path=tmp_path / "store.db",
        dynamodb_endpoint=endpoint,
        dynamodb_region=EMULATOR_REGION,
        dynamodb_access_key=SecretStr(EMULATOR_ACCESS_KEY),
        dynamodb_secret_key=SecretStr(EMULATOR_SECRET_KEY),
        store_table_prefix=unique_prefix(),
    )


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto server (DynamoDB API) shared by the whole session."""
    endpoint = dynamo.start_moto()
    yield endpoint.url
    endpoint.stop()


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    """URL of Amazon's DynamoDB Local (in memory) shared by the whole session.

    Skipped only when ``java`` is missing; a missing jar is installed with
    ``scripts/install_dynamodb_local.sh``, and a failed install fails the tests.
    """
    if shutil.which("java") is None:
        pytest.skip("java is not on PATH, so DynamoDB Local cannot run (install Java 17+)")
    try:
        jar = dynamo.find_dynamodb_local() or dynamo.install_dynamodb_local()
        endpoint = dynamo.start_dynamodb_local(jar=jar)
    except dynamo.EndpointError as exc:
        pytest.fail(f"DynamoDB Local could not start: {exc}")
    yield endpoint.url
    endpoint.stop()


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> str:
    """The backend name of this parametrization of ``store``."""
    backend: str = request.param
    return backend


@pytest.fixture(scope="session")
def _store_prefix_pool() -> PrefixPool:
    """Table sets already created on the session's endpoints, empty and free."""
    return PrefixPool()


@pytest.fixture
async def store_factory(
    store_backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _store_prefix_pool: PrefixPool,
) -> AsyncIterator[StoreFactory]:
    """Opens instances on the same backend and prefix as ``store``; tables exist."""
    endpoint: str | None = None
    if store_backend != "sqlite":
        endpoint = request.getfixturevalue(ENDPOINT_FIXTURES[store_backend])
    settings = store_settings(store_backend, tmp_path=tmp_path, endpoint=endpoint)
    pooled = _store_prefix_pool.take(endpoint) if endpoint else None
    if pooled is not None:
        settings = settings.model_copy(update={"store_table_prefix": pooled})
    factory = StoreFactory(store_backend, settings)
    if pooled is None:
        await factory.open().ensure_tables()
        await factory.aclose()
    yield factory
    await factory.aclose()
    if endpoint is not None:
        await asyncio.to_thread(_recycle, _store_prefix_pool, settings)


@pytest.fixture
async def store(store_factory: StoreFactory) -> ItemStore:
    """A fresh, empty item store with its tables created (one per backend)."""
    return store_factory.open()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A fresh SQLite store in the test's temporary directory, tables created."""
    store = SqliteStore(tmp_path / "store.db", table_prefix=unique_prefix())
    await store.ensure_tables()
    yield store
    await store.close()


def _recycle(pool: PrefixPool, settings: StoreSettings) -> None:
    """Empty the test's tables and offer them to the next test."""
    assert settings.dynamodb_endpoint is not None
    client = _client(settings.dynamodb_endpoint)
    try:
        names = [f"{settings.store_table_prefix}{t.value}" for t in Table]
        with ThreadPoolExecutor(WIPE_THREADS) as pool_threads:
            list(pool_threads.map(lambda name: _wipe(client, name), names))
    except ClientError:
        return  # a test dropped or broke a table: leave this set alone
    pool.give_back(settings.dynamodb_endpoint, settings.store_table_prefix)


def _wipe(client: Any, table: str) -> None:
    """Delete every item of one table, page by page, until a scan finds none."""
    while True:
        found = client.scan(TableName=table, ProjectionExpression="pk, sk", ConsistentRead=True)
        keys = found.get("Items", [])
        if not keys:
            return
        for start in range(0, len(keys), MAX_BATCH_WRITE_ITEMS):
            chunk = [
                {"DeleteRequest": {"Key": k}} for k in keys[start : start + MAX_BATCH_WRITE_ITEMS]
            ]
            request: dict[str, Any] = {table: chunk}
            while request:
                request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")


@functools.cache
def _client(endpoint: str) -> Any:
    """One wiping client per endpoint for the whole session (clients are thread-safe)."""
    return boto3.session.Session().client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=EMULATOR_REGION,
        aws_access_key_id=EMULATOR_ACCESS_KEY,
        aws_secret_access_key=EMULATOR_SECRET_KEY,
    )
