"""The TCP side: many connections, each a stream of newline-delimited lines.

Every connection is read in chunks and split into bounded lines; the lines go
to one handler (classification and writing). Nothing a client sends can stop
the server or another connection: oversized lines are skipped, bad lines are
the handler's to count, and a reset connection just ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from trollama.logsink.lines import LineSplitter
from trollama.logsink.metrics import SinkStats

#: Bytes read from a connection at a time.
READ_CHUNK_BYTES = 64 * 1024
#: Connections served at once; further ones are closed on arrival.
MAX_CONNECTIONS = 256
#: Seconds a stopping server waits for its connections to finish their last lines.
STOP_GRACE_SECONDS = 2.0

#: Called with the complete lines of one read and how many oversized lines it ended.
LineHandler = Callable[[list[bytes], int], None]

log = logging.getLogger(__name__)


class LogServer:
    """Accepts log connections on ``host:port`` and hands their lines to ``on_lines``."""

    def __init__(
        self, host: str, port: int, *, on_lines: LineHandler, stats: SinkStats, max_line_bytes: int
    ) -> None:
        self.host, self._port = host, port
        self.on_lines = on_lines
        self.stats = stats
        self.max_line_bytes = max_line_bytes
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked for)."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def listening(self) -> bool:
        """True while new connections are accepted."""
        return self._server is not None and self._server.is_serving()

    async def start(self) -> None:
        """Start listening."""
        self._server = await asyncio.start_server(self._serve, self.host, self._port)

    async def stop(self) -> None:
        """Stop accepting, end every connection after its buffered lines, and close."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients.values()):
            writer.close()
        tasks = list(self._clients)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._clients) >= MAX_CONNECTIONS or not self.listening:
            writer.close()
            return
        self._clients[task] = writer
        self.stats.connection(+1)
        try:
            await self._read(reader)
        except OSError as exc:
            log.debug("log connection ended: %s", type(exc).__name__)
        finally:
            self._clients.pop(task, None)
            self.stats.connection(-1)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        splitter = LineSplitter(self.max_line_bytes)
        while chunk := await reader.read(READ_CHUNK_BYTES):
            lines, oversized = splitter.feed(chunk)
            self.on_lines(lines, oversized)
        rest = splitter.finish()
        if rest is not None:
            self.on_lines([rest], 0)
