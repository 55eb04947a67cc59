"""DynamoDB-only behaviour: wire values, expressions, tables, failing endpoints."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from trollama.common.store.base import StoreUnavailable, Table
from trollama.common.store.conditions import And, Eq, Gt, Not
from trollama.common.store.dynamodb import DynamoStore
from trollama.common.store.dynamodb_expressions import Expression, from_wire, to_wire
from trollama.testkit.store_fixtures import (
    EMULATOR_ACCESS_KEY,
    EMULATOR_REGION,
    EMULATOR_SECRET_KEY,
    unique_prefix,
)

SECRET = "super-secret-value-never-logged"


def open_dynamo(endpoint: str, prefix: str) -> DynamoStore:
    return DynamoStore(
        endpoint_url=endpoint,
        region=EMULATOR_REGION,
        access_key=EMULATOR_ACCESS_KEY,
        secret_key=EMULATOR_SECRET_KEY,
        table_prefix=prefix,
    )


def test_numbers_travel_as_decimals_and_come_back_typed() -> None:
    item = {"pk": "p", "sk": "s", "i": 3, "f": 0.1, "l": [1, 2.5, {"x": -7}], "b": True, "n": None}

    wire = to_wire(item)

    assert wire["i"] == {"N": "3"}
    assert wire["f"] == {"N": "0.1"}
    assert wire["b"] == {"BOOL": True}
    assert from_wire(wire) == item
    assert type(from_wire(wire)["l"][1]) is float


@pytest.mark.parametrize(
    ("text", "value"), [("3", 3), ("3.0", 3.0), ("1E+2", 100), ("-0.5", -0.5), ("2.50", 2.5)]
)
def test_wire_numbers_decode_by_their_digits(text: str, value: float) -> None:
    decoded = from_wire({"v": {"N": text}})["v"]

    assert decoded == value
    assert type(decoded) is type(value)
    assert Decimal(text) == Decimal(str(value))


def test_values_dynamodb_cannot_hold_are_refused() -> None:
    with pytest.raises(ValueError, match="JSON-compatible"):
        to_wire({"v": {1, 2}})
    with pytest.raises(ValueError, match="DynamoDB cannot store"):
        to_wire({"v": 10**40})


def test_expressions_never_inline_names_or_values() -> None:
    expr = Expression()
    hostile = '"; DROP TABLE x; -- #name :val'

    text = expr.compile(And([Eq(hostile, hostile), Not(Gt("n", 1))]))

    assert hostile not in text
    assert hostile in expr.names.values()
    assert {"S": hostile} in expr.values.values()


async def test_ensure_tables_creates_tables_with_ttl(moto_endpoint: str) -> None:
    prefix = unique_prefix()
    store = open_dynamo(moto_endpoint, prefix)

    assert await store.existing_tables() == set()
    await store.ensure_tables()
    await store.ensure_tables()
    assert await store.existing_tables() == set(Table)

    client = boto3.client(
        "dynamodb",
        endpoint_url=moto_endpoint,
        region_name=EMULATOR_REGION,
        aws_access_key_id=EMULATOR_ACCESS_KEY,
        aws_secret_access_key=EMULATOR_SECRET_KEY,
    )
    ttl = client.describe_time_to_live(TableName=f"{prefix}queue")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    await store.drop_tables()
    assert await store.existing_tables() == set()
    client.close()
    await store.close()


async def test_missing_tables_are_a_clear_error(moto_endpoint: str) -> None:
    store = open_dynamo(moto_endpoint, unique_prefix())

    with pytest.raises(StoreUnavailable, match="init_storage"):
        await store.get(Table.USERS, "p", "s")
    await store.close()


class _AlwaysFailing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def failing_endpoint() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers every request with 503."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysFailing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.timeout(60)
async def test_server_errors_are_unavailable_and_keep_secrets(failing_endpoint: str) -> None:
    store = DynamoStore(
        endpoint_url=failing_endpoint,
        region=EMULATOR_REGION,
        access_key="AKIAEXAMPLE",
        secret_key=SECRET,
        table_prefix="x_",
    )

    with pytest.raises(StoreUnavailable, match=failing_endpoint) as failed:
        await store.put(Table.USERS, {"pk": "p", "sk": "s"})
    assert SECRET not in str(failed.value)
    assert await store.ping() is False
    await store.close()


def test_table_prefix_must_make_valid_names() -> None:
    with pytest.raises(ValueError, match="table_prefix"):
        open_dynamo("http://127.0.0.1:1", "bad prefix!")


async def test_missing_credentials_are_named(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask the network
    store = DynamoStore(
        endpoint_url=moto_endpoint,
        region=EMULATOR_REGION,
        access_key=None,
        secret_key=None,
        table_prefix="x_",
    )

    with pytest.raises(StoreUnavailable, match="DYNAMODB_ACCESS_KEY"):
        await store.get(Table.USERS, "p", "s")
    await store.close()
