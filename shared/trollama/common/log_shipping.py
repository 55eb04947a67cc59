"""Ship every log line to the central logging service over TCP, losing none.

:class:`ShippingHandler` is a :class:`logging.Handler` whose ``emit`` only
formats the record (one JSON line, secrets masked) and appends it to a bounded
in-memory buffer: it never touches the network or the disk, so the event loop
never waits on the log service. A background thread owns everything else:

* it connects to the logging service and writes lines (newline-delimited JSON,
  the contract of ``trollama.logsink``), reconnecting with exponential backoff;
* while the service is unreachable, or the buffer passes its high-water mark,
  it moves buffered lines to a spool file (``<spool dir>/<service>.spool``);
* when the service is back it replays the spool first, in order, then the
  live lines, and empties the spool once it has all been sent.

Order: lines leave in the order they were emitted. The thread keeps one
invariant for that: every line in the spool is older than every line in the
buffer, and a batch in flight is older than both.

Delivery: a line counts as delivered once it has been written to the socket.
The wire has no acknowledgements, so after a broken connection the batch in
flight is sent again from its first line: the sink may see a few duplicates
around a reconnect (and one cut-off line it drops as malformed), never a gap.
A spool replay interrupted by a restart of this process starts over, which can
also duplicate. What cannot be recovered: lines the kernel accepted into a
socket whose peer died before reading them — the handler checks that the sink
has not closed the connection before each write, which covers a sink that
stops cleanly.

Bounds: the buffer holds :data:`MAX_BUFFERED_LINES`, the spool
:data:`MAX_SPOOL_BYTES`; past either, lines are dropped, counted, and a warning
goes to stderr (never through ``logging``, which would loop).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from trollama.common.logging import JsonFormatter

#: Longest line the sink accepts, in bytes (newline excluded); longer lines are cut.
MAX_LOG_LINE_BYTES = 64 * 1024
#: Lines held in memory before new ones are dropped.
MAX_BUFFERED_LINES = 10_000
#: Buffered lines above which the thread moves the buffer to the spool.
HIGH_WATER_LINES = 5_000
#: Largest spool file, in bytes; past it new lines are dropped.
MAX_SPOOL_BYTES = 256 * 1024 * 1024
#: Most lines written to the socket in one batch.
MAX_BATCH_LINES = 1_000
#: Bytes read from the spool per replayed batch.
SPOOL_READ_BYTES = 256 * 1024
#: Seconds to wait for the sink to accept a connection.
CONNECT_TIMEOUT_SECONDS = 2.0
#: Seconds one blocking socket write may wait before the thread looks around.
SEND_POLL_SECONDS = 0.05
#: Seconds without any progress writing before the connection counts as broken.
SEND_STALL_SECONDS = 5.0
#: First and largest pause between reconnection attempts, in seconds.
BACKOFF_FIRST_SECONDS = 0.05
BACKOFF_MAX_SECONDS = 2.0
#: Seconds the idle thread sleeps before looking at the buffer again.
IDLE_WAIT_SECONDS = 0.5
#: Seconds ``close()`` keeps trying to deliver before spooling the rest.
CLOSE_FLUSH_SECONDS = 3.0
#: Fields kept whole when a record is too long to ship (``msg`` and ``exc`` are cut).
_KEPT_FIELDS = ("ts", "level", "service", "logger", "request_id")


@dataclass(frozen=True)
class ShippingStats:
    """Counters of one handler, for health reports and metrics."""

    delivered: int
    spooled: int
    replayed: int
    dropped: int
    truncated: int
    buffered: int
    spool_lines: int
    connected: bool


def fit_line(line: str, limit: int = MAX_LOG_LINE_BYTES) -> tuple[str, bool]:
    """The line, or a valid JSON line of at most ``limit`` bytes marked ``truncated``."""
    size = len(line.encode("utf-8"))
    if size <= limit:
        return line, False
    entry = json.loads(line)
    small: dict[str, Any] = {k: entry[k] for k in _KEPT_FIELDS if k in entry}
    small.update(truncated=True, original_bytes=size)
    for key in ("msg", "exc"):
        if key in entry:
            small[key] = _cut_to_fit(small, key, str(entry[key]), limit)
    return json.dumps(small, ensure_ascii=False), True


def _cut_to_fit(entry: dict[str, Any], key: str, text: str, limit: int) -> str:
    """The longest prefix of ``text`` that keeps ``entry`` under ``limit`` bytes."""
    keep = limit
    while keep > 0:
        candidate = text.encode("utf-8")[:keep].decode("utf-8", "ignore")
        if len(json.dumps({**entry, key: candidate}, ensure_ascii=False).encode()) <= limit:
            return candidate
        keep //= 2  # escapes can grow the text up to six times; halve until it fits
    return ""


class _Spool:
    """An append-only file of lines with a read position (used by the thread only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.read_offset = 0
        self.lines = 0
        self._writer: IO[bytes] | None = None
        if path.exists():
            self._trim_partial_tail()
            with path.open("rb") as file:
                self.lines = sum(
                    chunk.count(b"\n") for chunk in iter(partial(file.read, 1 << 20), b"")
                )

    @property
    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    @property
    def empty(self) -> bool:
        return self.lines == 0

    def append(self, lines: list[str]) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self.path.open("ab")
        self._writer.write("".join(line + "\n" for line in lines).encode("utf-8"))
        self._writer.flush()
        self.lines += len(lines)

    def read_batch(self) -> tuple[list[bytes], int]:
        """The next whole lines after the read position, and their size in bytes."""
        with self.path.open("rb") as file:
            file.seek(self.read_offset)
            chunk = file.read(SPOOL_READ_BYTES)
        end = chunk.rfind(b"\n") + 1
        if end == 0 and chunk:  # one line longer than a read: take it whole
            with self.path.open("rb") as file:
                file.seek(self.read_offset)
                chunk = file.readline()
            end = len(chunk)
        return chunk[:end].splitlines(), end

    def consumed(self, lines: int, size: int) -> None:
        self.read_offset += size
        self.lines -= lines
        if self.lines <= 0:
            self.lines = 0
            self.read_offset = 0
            with contextlib.suppress(OSError):
                os.truncate(self.path, 0)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _trim_partial_tail(self) -> None:
        """Cut a line left half-written by a crash (it could never be sent whole)."""
        size = self.path.stat().st_size
        with self.path.open("rb+") as file:
            file.seek(max(0, size - MAX_LOG_LINE_BYTES - 1))
            tail = file.read()
            if tail and not tail.endswith(b"\n"):
                file.truncate(size - len(tail) + tail.rfind(b"\n") + 1)


class _Batch:
    """Lines in flight; ``spool_bytes`` > 0 when they are still in the spool."""

    def __init__(self, lines: list[bytes], spool_bytes: int = 0) -> None:
        self.lines = lines
        self.spool_bytes = spool_bytes
        self.data = b"".join(line + b"\n" for line in lines)


class ShippingHandler(logging.Handler):
    """A logging handler that ships JSON lines to the logging service (see module doc)."""

    def __init__(
        self,
        service: str,
        *,
        host: str,
        port: int,
        spool_dir: Path,
        close_timeout: float = CLOSE_FLUSH_SECONDS,
    ) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter(service))
        self.address = (host, port)
        self.close_timeout = close_timeout
        self._spool = _Spool(Path(spool_dir) / f"{service}.spool")
        self._buffer: collections.deque[str] = collections.deque()
        self._buffer_lock = threading.Lock()
        # A socket pair wakes the thread (from emit or close) even mid-write.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = threading.Event()
        self._deadline = float("inf")
        self._sock: socket.socket | None = None
        self._batch: _Batch | None = None
        self._counts = collections.Counter[str]()
        self._warned: set[str] = set()
        self._thread = threading.Thread(
            target=self._run, name=f"log-shipping-{service}", daemon=True
        )
        self._thread.start()

    # ---------------------------------------------------------------- producer side

    def emit(self, record: logging.LogRecord) -> None:
        """Queue one record for shipping; never blocks on I/O, never raises."""
        try:
            line, cut = fit_line(self.format(record))
        except Exception:
            self.handleError(record)
            return
        with self._buffer_lock:
            size = len(self._buffer)
            if size < MAX_BUFFERED_LINES:
                self._buffer.append(line)
                self._counts["truncated"] += cut
            else:
                self._counts["dropped"] += 1
        if size >= MAX_BUFFERED_LINES:
            self._warn("buffer", f"log buffer full ({MAX_BUFFERED_LINES} lines); dropping lines")
        elif size == 0 or size >= HIGH_WATER_LINES:
            self._notify()  # new work after idle, or time to spill

    def stats(self) -> ShippingStats:
        """A snapshot of the counters."""
        return ShippingStats(
            delivered=self._counts["delivered"],
            spooled=self._counts["spooled"],
            replayed=self._counts["replayed"],
            dropped=self._counts["dropped"],
            truncated=self._counts["truncated"],
            buffered=len(self._buffer),
            spool_lines=self._spool.lines,
            connected=self._sock is not None,
        )

    def flush(self) -> None:
        """Nothing to do: the thread ships continuously (``close`` drains)."""

    def close(self) -> None:
        """Deliver what is buffered for up to ``close_timeout`` seconds, spool the rest."""
        if not self._stopping.is_set():
            self._deadline = time.monotonic() + self.close_timeout
            self._stopping.set()
            self._notify()
            self._thread.join(self.close_timeout + CONNECT_TIMEOUT_SECONDS + 1.0)
            if not self._thread.is_alive():
                self._wake_r.close()
                self._wake_w.close()
        super().close()

    def _notify(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake-up is already pending
            self._wake_w.send(b"\0")

    # ---------------------------------------------------------------- the thread

    def _run(self) -> None:
        backoff = BACKOFF_FIRST_SECONDS
        while not self._finished():
            if self._sock is None and not self._connect():
                self._spill()
                if self._stopping.is_set():
                    break
                self._pause(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
                continue
            backoff = BACKOFF_FIRST_SECONDS
            if not self._send_next():
                self._sleep(IDLE_WAIT_SECONDS)
        self._spill()
        self._disconnect()
        self._spool.close()

    def _sleep(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a wake-up, then clear it."""
        select.select([self._wake_r], [], [], seconds)
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def _pause(self, seconds: float) -> None:
        """Back off before reconnecting, still spilling a filling buffer to the spool."""
        until = time.monotonic() + seconds
        while not self._stopping.is_set() and (left := until - time.monotonic()) > 0:
            self._sleep(left)
            if len(self._buffer) >= HIGH_WATER_LINES:
                self._spill()

    def _finished(self) -> bool:
        if not self._stopping.is_set():
            return False
        idle = self._batch is None and not self._buffer and self._spool.empty
        return idle or time.monotonic() >= self._deadline

    def _connect(self) -> bool:
        try:
            self._sock = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT_SECONDS)
        except OSError:
            return False
        self._sock.settimeout(SEND_POLL_SECONDS)
        self._warned.clear()
        return True

    def _disconnect(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def _send_next(self) -> bool:
        """Send the batch in flight, else the spool's next, else the buffer's; False when idle."""
        if self._batch is None:
            self._batch = self._next_batch()
        if self._batch is None:
            return False
        if self._write(self._batch):
            self._delivered(self._batch)
            self._batch = None
        else:
            self._disconnect()
        return True

    def _next_batch(self) -> _Batch | None:
        if not self._spool.empty:
            lines, size = self._spool.read_batch()
            return _Batch(lines, size) if lines else None
        with self._buffer_lock:
            count = min(len(self._buffer), MAX_BATCH_LINES)
            lines = [self._buffer.popleft().encode("utf-8") for _ in range(count)]
        return _Batch(lines) if lines else None

    def _delivered(self, batch: _Batch) -> None:
        self._counts["delivered"] += len(batch.lines)
        if batch.spool_bytes:
            self._counts["replayed"] += len(batch.lines)
            self._spool.consumed(len(batch.lines), batch.spool_bytes)

    def _write(self, batch: _Batch) -> bool:
        """Write the whole batch; False when the connection broke or stalled."""
        sock = self._sock
        if sock is None or _peer_closed(sock):
            return False
        view = memoryview(batch.data)
        progress_at = time.monotonic()
        while view:
            try:
                wake, writable, _ = select.select([self._wake_r], [sock], [], SEND_POLL_SECONDS)
                sent = sock.send(view) if writable else 0
            except TimeoutError:
                sent = 0
            except OSError:
                return False
            if wake:
                self._sleep(0)
            view = view[sent:]
            now = time.monotonic()
            progress_at = now if sent else progress_at
            if now - progress_at > SEND_STALL_SECONDS or now >= self._deadline:
                return False
            if len(self._buffer) > HIGH_WATER_LINES:
                self._spill()
        return True

    def _spill(self) -> None:
        """Move the batch in flight (if from the buffer) and the buffer to the spool, in order."""
        batch = self._batch
        if batch is not None and not batch.spool_bytes:
            lines = [line.decode("utf-8") for line in batch.lines]
            if self._to_spool(lines):
                batch.spool_bytes = len(batch.data)
        with self._buffer_lock:
            lines = list(self._buffer)
            self._buffer.clear()
        self._to_spool(lines)

    def _to_spool(self, lines: list[str]) -> bool:
        if not lines:
            return True
        host, port = self.address
        self._warn(
            "down", f"log service {host}:{port} down or slow; spooling to {self._spool.path}"
        )
        if self._spool.size + sum(len(line) for line in lines) > MAX_SPOOL_BYTES:
            self._counts["dropped"] += len(lines)
            self._warn("spool", f"log spool over {MAX_SPOOL_BYTES} bytes; dropping lines")
            return False
        try:
            self._spool.append(lines)
        except OSError as exc:
            self._counts["dropped"] += len(lines)
            self._warn("spool-io", f"cannot write the log spool ({exc.strerror}); dropping lines")
            return False
        self._counts["spooled"] += len(lines)
        return True

    def _warn(self, kind: str, message: str) -> None:
        """One stderr line per kind of trouble until it clears (not through logging)."""
        if kind not in self._warned:
            self._warned.add(kind)
            with contextlib.suppress(OSError, ValueError):
                print(f"log shipping: {message}", file=sys.stderr, flush=True)


def _peer_closed(sock: socket.socket) -> bool:
    """True when the sink has closed its end (it never sends us anything)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True
