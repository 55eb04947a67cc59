"""Splitting a TCP byte stream into bounded lines.

A line longer than the cap is never buffered whole: once the partial line
passes the cap it is dropped and the rest is skipped up to the next newline.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LineSplitter:
    """Complete lines of at most ``max_bytes`` (newline excluded) from a stream."""

    max_bytes: int
    _partial: bytearray = field(default_factory=bytearray)
    _skipping: bool = False

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """The lines completed by ``data`` and how many oversized lines it ended."""
        lines: list[bytes] = []
        oversized = 0
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            if self._skipping:
                self._skipping = False
            elif len(self._partial) + newline - start > self.max_bytes:
                oversized += 1
            else:
                lines.append(bytes(self._partial) + data[start:newline])
            self._partial.clear()
            start = newline + 1
        return lines, oversized + self._keep(data[start:])

    def _keep(self, rest: bytes) -> int:
        if self._skipping:
            return 0
        if len(self._partial) + len(rest) > self.max_bytes:
            self._partial.clear()
            self._skipping = True
            return 1
        self._partial += rest
        return 0

    def finish(self) -> bytes | None:
        """The unterminated last line at end of stream, if one was kept."""
        rest = None if self._skipping or not self._partial else bytes(self._partial)
        self._partial.clear()
        self._skipping = False
        return rest
