"""Open the item store the settings ask for."""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import SecretStr

from trollama.common.settings import StoreSettings
from trollama.common.store.base import ItemStore, Table
from trollama.common.store.sqlite import SqliteStore


def open_store(settings: StoreSettings, *, clock: Callable[[], float] = time.time) -> ItemStore:
    """The configured backend, not yet connected (the first call connects).

    ``clock`` (epoch seconds) decides which items have expired; tests inject one.
    """
    if settings.store_backend == "sqlite":
        return SqliteStore(
            settings.sqlite_path, table_prefix=settings.store_table_prefix, clock=clock
        )
    from trollama.common.store.dynamodb import DynamoStore  # boto3 loads only when used

    return DynamoStore(
        endpoint_url=settings.dynamodb_endpoint or None,
        region=settings.dynamodb_region,
        access_key=_reveal(settings.dynamodb_access_key),
        secret_key=_reveal(settings.dynamodb_secret_key),
        table_prefix=settings.store_table_prefix,
        clock=clock,
    )


async def existing_tables(store: ItemStore) -> set[Table]:
    """The logical tables the backend already holds (for ``init_storage``)."""
    from trollama.common.store.dynamodb import DynamoStore

    if isinstance(store, SqliteStore | DynamoStore):
        return await store.existing_tables()
    raise TypeError(f"{type(store).__name__} cannot list its tables")


def describe(settings: StoreSettings) -> str:
    """Where the store lives, safe to print (never includes credentials)."""
    if settings.store_backend == "sqlite":
        return f"sqlite at {settings.sqlite_path} (prefix {settings.store_table_prefix!r})"
    where = settings.dynamodb_endpoint or f"AWS region {settings.dynamodb_region}"
    return f"dynamodb at {where} (prefix {settings.store_table_prefix!r})"


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() or None if secret is not None else None
