"""Create the item store's tables (idempotent) and say what was there.

Usage: ``python scripts/init_storage.py [--backend sqlite|dynamodb]``

Reads STORE_BACKEND, SQLITE_PATH, DYNAMODB_* and STORE_TABLE_PREFIX from the
environment or the repository's ``.env``; ``--backend`` overrides
STORE_BACKEND. Prints one line per table (``created`` or ``found``). Exit
status: 0 done, 1 store unreachable, 2 invalid settings.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import get_args

from pydantic import ValidationError

from trollama.common.settings import StoreBackend, StoreSettings
from trollama.common.store.base import ItemStore, StoreError, Table
from trollama.common.store.factory import describe, existing_tables, open_store

EXIT_UNREACHABLE = 1
EXIT_BAD_SETTINGS = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--backend",
        choices=get_args(StoreBackend),
        help="store backend to initialise (default: STORE_BACKEND)",
    )
    return parser.parse_args(argv)


def load_settings(backend: str | None) -> StoreSettings:
    settings = StoreSettings()
    if backend is not None:
        settings = settings.model_copy(update={"store_backend": backend})
    return settings


async def initialise(store: ItemStore, prefix: str) -> list[str]:
    """Create missing tables; one report line per table."""
    before = await existing_tables(store)
    await store.ensure_tables()
    after = await existing_tables(store)
    missing = set(Table) - after
    if missing:
        names = ", ".join(sorted(t.value for t in missing))
        raise StoreError(f"tables still missing after creation: {names}")
    return [
        f"  {'found  ' if table in before else 'created'}  {prefix}{table.value}" for table in Table
    ]


async def run(settings: StoreSettings) -> list[str]:
    store = open_store(settings)
    try:
        return await initialise(store, settings.store_table_prefix)
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(args.backend)
    except ValidationError as exc:
        fields = ", ".join(str(e["loc"][0]).upper() for e in exc.errors() if e["loc"])
        print(f"init_storage: invalid settings: {fields or 'see .env'}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    print(f"Store: {describe(settings)}")
    try:
        lines = asyncio.run(run(settings))
    except (StoreError, ValueError) as exc:
        print(f"init_storage: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print("\n".join(lines))
    created = sum(" created " in line for line in lines)
    print(f"{created} created, {len(lines) - created} already present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
