"""Writing records into ``<dir>/YYYY-MM-DD/{app,error,debug}.log``, rotated by size.

Each batch is appended and flushed at once, so a received record is in the
operating system's hands before the next read. When the primary directory
cannot be written (permission denied, disk error) the writer switches to a
fallback directory and keeps writing; :meth:`LogWriter.check` probes the
primary and switches back once it is writable again.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import BinaryIO

from trollama.logsink.records import Record

#: Fallback directory used while the primary is unwritable (under the system temp dir).
FALLBACK_DIR_NAME = "trollama-logsink"
DEFAULT_FALLBACK_DIR = Path(tempfile.gettempdir()) / FALLBACK_DIR_NAME
#: Rotated copies kept per file (``app.log.1`` … ``app.log.5``); older ones are deleted.
MAX_ROTATED_FILES = 5
#: Files kept open at once (three per day, a few days); the least recent is closed.
MAX_OPEN_FILES = 12
#: File name and lowest level written to it.
LEVEL_FILES: tuple[tuple[str, int], ...] = (
    ("debug.log", logging.NOTSET),
    ("app.log", logging.INFO),
    ("error.log", logging.ERROR),
)
PROBE_FILE = ".logsink-write-probe"

_FileKey = tuple[date, str]


class LogWriter:
    """Appends records to day/level files in the primary (or fallback) directory."""

    def __init__(self, primary: Path, *, max_file_bytes: int, fallback: Path) -> None:
        self.primary = primary
        self.fallback = fallback
        self.max_file_bytes = max_file_bytes
        self.active = primary
        self.last_error = ""
        self.fallback_switches = 0
        self._files: dict[_FileKey, BinaryIO] = {}

    @property
    def fallback_active(self) -> bool:
        """True while records go to the fallback directory."""
        return self.active != self.primary

    def write(self, records: Sequence[Record]) -> None:
        """Append ``records`` to their files; raises OSError only when both dirs fail."""
        for key, data in _group(records).items():
            try:
                self._append(key, data)
            except OSError as exc:
                if self.fallback_active:
                    raise
                self._enter_fallback(exc)
                self._append(key, data)

    def check(self) -> None:
        """Probe the primary directory and switch to or from the fallback accordingly."""
        try:
            _probe(self.primary)
        except OSError as exc:
            if not self.fallback_active:
                self._enter_fallback(exc)
            return
        if self.fallback_active:
            self._switch(self.primary)
            self.last_error = ""

    def close_days_before(self, day: date) -> None:
        """Close the open files of days before ``day`` (about to be deleted)."""
        for key in [k for k in self._files if k[0] < day]:
            self._files.pop(key).close()

    def close(self) -> None:
        """Flush and close every open file."""
        for handle in self._files.values():
            try:
                handle.close()
            except OSError:
                continue
        self._files.clear()

    def _enter_fallback(self, exc: OSError) -> None:
        self.last_error = f"{type(exc).__name__}: {exc.strerror or 'write failed'}"
        self.fallback_switches += 1
        self._switch(self.fallback)

    def _switch(self, directory: Path) -> None:
        self.close()
        self.active = directory

    def _append(self, key: _FileKey, data: bytes) -> None:
        handle = self._open(key)
        if handle.tell() and handle.tell() + len(data) > self.max_file_bytes:
            self._files.pop(key).close()
            _rotate(self._path(key))
            handle = self._open(key)
        handle.write(data)
        handle.flush()

    def _open(self, key: _FileKey) -> BinaryIO:
        handle = self._files.pop(key, None)
        if handle is None:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("ab")
            if len(self._files) >= MAX_OPEN_FILES:
                self._files.pop(next(iter(self._files))).close()
        self._files[key] = handle  # most recently used last
        return handle

    def _path(self, key: _FileKey) -> Path:
        return self.active / key[0].isoformat() / key[1]


def _group(records: Iterable[Record]) -> dict[_FileKey, bytes]:
    chunks: dict[_FileKey, list[bytes]] = {}
    for record in records:
        for name, lowest in LEVEL_FILES:
            if record.level >= lowest:
                chunks.setdefault((record.day, name), []).append(record.raw)
    return {key: b"\n".join(lines) + b"\n" for key, lines in chunks.items()}


def _rotate(path: Path) -> None:
    """``app.log`` → ``app.log.1``, ``.1`` → ``.2`` …, dropping the oldest."""
    path.with_name(f"{path.name}.{MAX_ROTATED_FILES}").unlink(missing_ok=True)
    for index in range(MAX_ROTATED_FILES - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{index + 1}"))
    path.replace(path.with_name(f"{path.name}.1"))


def _probe(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    probe = directory / PROBE_FILE
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"ok")
    finally:
        os.close(fd)
    probe.unlink()
