"""Retention deletes only day directories past the period, nothing else."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from trollama.logsink.lines import LineSplitter
from trollama.logsink.retention import delete_old_days
from trollama.logsink.service import LogSink
from trollama.logsink.settings import LogSinkSettings

TODAY = date(2024, 5, 17)


def day_dir(root: Path, name: str, files: int = 3) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    for index in range(files):
        (directory / f"f{index}.log").write_text("x\n")
    return directory


def test_deletes_only_day_directories_older_than_retention(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    old = day_dir(logs, "2024-04-16")  # 31 days before TODAY
    (old / "nested").mkdir()
    (old / "nested" / "deep.log").write_text("x\n")
    kept_edge = day_dir(logs, "2024-04-17")  # exactly 30 days: kept
    recent = day_dir(logs, "2024-05-17")
    not_a_date = day_dir(logs, "2024-13-45")
    other = day_dir(logs, "spool")
    outside = day_dir(tmp_path, "2020-01-01")
    (logs / "2020-01-02").write_text("a file named like a day")
    (logs / "2020-01-03").symlink_to(outside, target_is_directory=True)
    (logs / "relay.out").write_text("service output")

    result = delete_old_days(logs, TODAY, retention_days=30)

    assert (result.dirs_deleted, result.files_deleted) == (1, 4)
    assert not old.exists()
    for survivor in (kept_edge, recent, not_a_date, other, outside):
        assert len(list(survivor.iterdir())) == 3
    assert (logs / "2020-01-02").is_file()
    assert (logs / "2020-01-03").is_symlink()
    assert (logs / "relay.out").exists()


def test_symlinks_inside_an_old_day_are_unlinked_not_followed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    old = day_dir(logs, "2023-01-01", files=1)
    target = day_dir(tmp_path, "precious", files=2)
    (old / "link").symlink_to(target, target_is_directory=True)
    result = delete_old_days(logs, TODAY, retention_days=30)
    assert result.files_deleted == 2
    assert len(list(target.iterdir())) == 2


def test_missing_log_dir_is_no_error(tmp_path: Path) -> None:
    assert delete_old_days(tmp_path / "absent", TODAY, retention_days=1).dirs_deleted == 0


async def test_the_sink_cleans_at_start_and_reports_it(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    day_dir(logs, "2024-01-01", files=2)
    day_dir(tmp_path / "fallback", "2024-01-02", files=1)
    keep = day_dir(logs, "2024-05-10")
    settings = LogSinkSettings(
        log_dir=logs,
        log_service_port=0,
        logsink_health_port=0,
        log_retention_days=7,
        dev_mode=True,
    )
    now = datetime(2024, 5, 17, 8, 30, tzinfo=UTC)
    sink = LogSink(settings, now=lambda: now, fallback_dir=tmp_path / "fallback")
    await sink.start()
    await sink.stop()
    counters = sink.counters()
    assert (counters["dirs_deleted"], counters["files_deleted"]) == (2, 3)
    assert counters["last_cleanup_at"] == now.isoformat()
    assert sorted(p.name for p in logs.iterdir()) == ["2024-05-10"]
    assert keep.exists()


def test_splitter_skips_an_oversized_line_across_chunks() -> None:
    splitter = LineSplitter(max_bytes=8)
    assert splitter.feed(b"abc\n0123") == ([b"abc"], 0)
    assert splitter.feed(b"45678") == ([], 1)  # 9 bytes: dropped, not buffered
    assert splitter.feed(b"9999999999") == ([], 0)
    assert splitter.feed(b"99\nok\n12345678\n123456789\ntail") == ([b"ok", b"12345678"], 1)
    assert splitter.finish() == b"tail"
