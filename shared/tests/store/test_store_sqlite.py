"""SQLite-only behaviour: the file, locking across connections and processes, upkeep."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from trollama.common.store import sqlite as sqlite_module
from trollama.common.store.base import ConditionFailed, StoreUnavailable, Table
from trollama.common.store.conditions import Eq, NotExists
from trollama.common.store.sqlite import SqliteStore

T = Table.QUEUE
PREFIX = "trollama_"


async def test_file_is_in_wal_mode(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "deep" / "dir" / "store.db")
    await store.ensure_tables()
    await store.close()

    with sqlite3.connect(tmp_path / "deep" / "dir" / "store.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names == {f"{PREFIX}{t.value}" for t in Table}


async def test_ensure_tables_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.ensure_tables()
    await store.put(T, {"pk": "p", "sk": "s"})
    await store.ensure_tables()

    assert await store.get(T, "p", "s") == {"pk": "p", "sk": "s"}
    assert await store.existing_tables() == set(Table)
    await store.close()


async def test_two_instances_race_conditional_updates(tmp_path: Path) -> None:
    first, second = SqliteStore(tmp_path / "s.db"), SqliteStore(tmp_path / "s.db")
    await first.ensure_tables()
    await first.put(T, {"pk": "q", "sk": "job", "state": "queued"})

    async def lease(store: SqliteStore, worker: int) -> bool:
        try:
            await store.update(
                T,
                "q",
                "job",
                set={"state": "leased", "owner": worker},
                condition=Eq("state", "queued"),
            )
        except ConditionFailed:
            return False
        return True

    stores = [first, second] * 10
    results = await asyncio.gather(*(lease(s, w) for w, s in enumerate(stores)))

    assert results.count(True) == 1
    job = await second.get(T, "q", "job")
    assert job is not None
    assert results[job["owner"]] is True
    await first.close()
    await second.close()


CLAIMER = """
import asyncio, sys
from pathlib import Path
from trollama.common.store.base import ConditionFailed, Table
from trollama.common.store.conditions import NotExists
from trollama.common.store.sqlite import SqliteStore

async def main():
    store = SqliteStore(Path(sys.argv[1]))
    won = 0
    for i in range(40):
        try:
            await store.put(Table.QUEUE, {"pk": "k", "sk": str(i), "by": sys.argv[2]},
                            condition=NotExists())
            won += 1
        except ConditionFailed:
            pass
    await store.close()
    print(won)

asyncio.run(main())
"""


async def test_processes_sharing_the_file_never_both_win(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    await store.ensure_tables()

    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLAIMER, str(path), name, stdout=asyncio.subprocess.PIPE
        )
        for name in ("a", "b", "c")
    ]
    outputs = await asyncio.gather(*(p.communicate() for p in procs))
    wins = [int(out) for out, _ in outputs]

    assert sum(wins) == 40
    assert await store.count(T, "k") == 40
    await store.close()


async def test_purge_expired_deletes_only_expired_rows(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.ensure_tables()
    now = time.time()
    await store.batch_put(
        T,
        [
            {"pk": "p", "sk": "old", "expires_at": now - 10},
            {"pk": "p", "sk": "new", "expires_at": now + 3600},
            {"pk": "p", "sk": "forever"},
            {"pk": "p", "sk": "odd", "expires_at": "not a number"},
        ],
    )

    assert await store.purge_expired() == 1
    assert await store.purge_expired() == 0
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as raw:
        rows = raw.execute("SELECT sk FROM trollama_queue ORDER BY sk").fetchall()
    assert [r[0] for r in rows] == ["forever", "new", "odd"]


async def test_missing_tables_are_a_clear_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")

    with pytest.raises(StoreUnavailable, match="init_storage"):
        await store.get(T, "p", "s")
    await store.close()


async def test_a_locked_database_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "BUSY_TIMEOUT_MS", 50)
    store = SqliteStore(tmp_path / "s.db")
    await store.ensure_tables()
    blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.put(T, {"pk": "p", "sk": "s"}, condition=NotExists())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await store.put(T, {"pk": "p", "sk": "s"}, condition=NotExists())
    await store.close()


async def test_a_corrupt_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 100)
    store = SqliteStore(path)

    with pytest.raises(StoreUnavailable):
        await store.ensure_tables()
    assert await store.ping() is False
    await store.close()


async def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.ensure_tables()
    await store.close()

    with pytest.raises(StoreUnavailable, match="closed"):
        await store.get(T, "p", "s")


def test_table_prefix_must_be_safe(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="table_prefix"):
        SqliteStore(tmp_path / "s.db", table_prefix='x"; DROP TABLE y; --')
