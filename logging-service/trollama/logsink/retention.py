"""Deleting day directories older than the retention period.

Only direct children of the log directory named ``YYYY-MM-DD`` (a real date,
a real directory, not a symlink) are ever considered; everything else in the
log directory (service output, the shippers' spool) is left alone.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

_DAY_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class CleanupResult:
    """What one cleanup run deleted."""

    dirs_deleted: int = 0
    files_deleted: int = 0


def cutoff_day(today: date, retention_days: int) -> date:
    """The oldest day kept: today and the ``retention_days`` days before it."""
    return today - timedelta(days=retention_days)


def day_of(path: Path) -> date | None:
    """The date a day directory stands for, or None for anything else."""
    if not _DAY_NAME.fullmatch(path.name) or path.is_symlink() or not path.is_dir():
        return None
    try:
        return date.fromisoformat(path.name)
    except ValueError:
        return None


def delete_old_days(log_dir: Path, today: date, retention_days: int) -> CleanupResult:
    """Delete the day directories of ``log_dir`` older than the retention period."""
    if not log_dir.is_dir():
        return CleanupResult()
    oldest = cutoff_day(today, retention_days)
    dirs = files = 0
    for child in sorted(log_dir.iterdir()):
        day = day_of(child)
        if day is not None and day < oldest:
            files += _remove_tree(child)
            dirs += 1
    return CleanupResult(dirs_deleted=dirs, files_deleted=files)


def _remove_tree(root: Path) -> int:
    """Remove ``root`` without following symlinks; the number of files removed."""
    removed = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
            removed += 1
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                os.unlink(path)
                removed += 1
            else:
                os.rmdir(path)
    os.rmdir(root)
    return removed
