"""Split an answer into Discord messages without breaking its Markdown.

A part ends, in order of preference: at the end of the text, between
paragraphs or code blocks, at a line end, after a space, and only as a last
resort anywhere (never between a character and the marks that combine with
it). A code block is kept whole when it fits in a message; one that does not
is closed (```) at the end of a part and reopened with its language tag
(```python) at the start of the next, and those markers count towards the
limit. Removing the added markers gives back the original text exactly.

Lengths are in characters (code points), the unit Discord's API counts in.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import IntEnum

#: Discord's hard cap on a message's content, in characters (code points).
DISCORD_MESSAGE_LIMIT = 2000
#: The size parts are cut to, in characters: leaves room under the hard cap for a status line.
MESSAGE_LIMIT = 1900
#: Smallest limit accepted, in characters (room for fence markers and some text).
MIN_SPLIT_LIMIT = 200
#: Longest fence prefix (indentation + backticks or tildes) recognised, in characters.
MAX_FENCE_PREFIX_CHARS = 64
#: Longest language tag carried over when a code block is reopened, in characters.
MAX_FENCE_LANG_CHARS = 32

_FENCE_LINE = re.compile(r"(?P<indent>[ \t]*)(?P<marker>`{3,}|~{3,})(?P<info>.*)")
_FENCE_START = re.compile(r"[ \t]*(?:```|~~~)")
# Every position where what follows would read as a fence at the start of a message.
_BEFORE_FENCE_CHARS = re.compile(r"(?=[ \t]*(?:```|~~~))")
_JOINERS = frozenset("\u200d\u034f")  # zero-width joiner, combining grapheme joiner
_MARK_CATEGORIES = frozenset({"Mn", "Mc", "Me"})
_REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)
_MODIFIERS = (
    range(0xFE00, 0xFE10),  # variation selectors
    range(0x1F3FB, 0x1F400),  # skin tones
    range(0xE0000, 0xE0080),  # tags (subdivision flags)
    range(0xE0100, 0xE01F0),  # variation selectors supplement
    range(0xDC00, 0xE000),  # a low surrogate never starts a character
)


class _Break(IntEnum):
    """Where a part may end, best first."""

    END = 0
    BLOCK = 1  # between paragraphs, before or after a code block
    LINE = 2
    SPACE = 3
    FENCED_BLOCK = 4  # blank line inside a code block (the block is closed and reopened)
    FENCED_LINE = 5
    FENCED_SPACE = 6
    HARD = 7
    NEVER = 8


class _Role(IntEnum):
    PLAIN = 0
    OPENER = 1
    CONTENT = 2
    CLOSER = 3


@dataclass(frozen=True, slots=True)
class _Fence:
    """An open code block: what reopens and what closes it."""

    indent: str
    marker: str
    lang: str

    @property
    def reopen(self) -> str:
        return f"{self.indent}{self.marker}{self.lang}\n"

    def close(self, ends_line: bool) -> str:
        newline = "" if ends_line else "\n"
        return f"{newline}{self.indent}{self.marker}"

    def is_closed_by(self, line: str) -> bool:
        stripped = line.strip()
        char = self.marker[0]
        return len(stripped) >= len(self.marker) and stripped == char * len(stripped)


@dataclass(frozen=True, slots=True)
class _Line:
    start: int
    end: int  # after the newline, if any
    inside: _Fence | None  # the code block this line belongs to
    opens: _Fence | None  # the code block this line starts
    role: _Role
    blank: bool


@dataclass(frozen=True, slots=True)
class Part:
    """One message: a slice of the original text plus any fence markers added around it."""

    reopen: str
    body: str
    close: str

    @property
    def text(self) -> str:
        return self.reopen + self.body + self.close


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """The messages that show ``text``, each at most ``limit`` characters.

    Parts that would be only whitespace are left out (Discord refuses empty
    messages); an empty or blank text gives no messages.
    """
    return [part.text for part in split_parts(text, limit) if part.text.strip()]


def split_parts(text: str, limit: int = MESSAGE_LIMIT) -> list[Part]:
    """Like :func:`split_message`, with the added fence markers kept apart.

    ``"".join(part.body for part in parts) == text`` always holds.
    """
    if limit < MIN_SPLIT_LIMIT:
        raise ValueError(f"limit must be at least {MIN_SPLIT_LIMIT} characters, got {limit}")
    marks = _Marks(text)
    parts: list[Part] = []
    start = 0
    while start < len(text):
        end = marks.best_end(start, limit)
        parts.append(marks.part(start, end))
        start = end
    return parts


class _Marks:
    """For every position of a text: how good a place to end a part it is,
    and which code block (if any) is open there."""

    def __init__(self, text: str) -> None:
        self.text = text
        size = len(text) + 1
        self.kind: list[_Break] = [_Break.NEVER] * size
        self.fence: list[_Fence | None] = [None] * size
        self._mark_lines(_scan_lines(text))
        self._forbid_cuts_before_fence_chars()

    def _mark_lines(self, lines: list[_Line]) -> None:
        previous: _Line | None = None
        for line in lines:
            if previous is not None:
                self.kind[line.start] = _line_start_kind(previous, line)
                self.fence[line.start] = line.inside
            self._mark_inside(line)
            previous = line
        end = len(self.text)
        self.kind[end] = _Break.END
        if previous is not None:
            self.fence[end] = previous.opens or (
                previous.inside if previous.role is _Role.CONTENT else None
            )

    def _mark_inside(self, line: _Line) -> None:
        if line.role in (_Role.OPENER, _Role.CLOSER) or _FENCE_START.match(self.text, line.start):
            return  # a piece of such a line could read as a fence of its own
        for position in range(line.start + 1, line.end):
            self.fence[position] = line.inside
            self.kind[position] = _mid_line_kind(self.text, position, line.inside is not None)

    def _forbid_cuts_before_fence_chars(self) -> None:
        for match in _BEFORE_FENCE_CHARS.finditer(self.text):
            position = match.start()
            if position > 0 and self.text[position - 1] != "\n":
                self.kind[position] = _Break.NEVER

    def cost(self, start: int, end: int) -> int:
        """Length of the part text[start:end] once its fence markers are added."""
        opening, closing = self.fence[start], self.fence[end]
        reopen = len(opening.reopen) if opening and start > 0 else 0
        close = len(closing.close(self.text[end - 1] == "\n")) if closing else 0
        return reopen + (end - start) + close

    def best_end(self, start: int, limit: int) -> int:
        """The best place to end the part that starts at ``start``."""
        best, best_kind = 0, _Break.NEVER
        for end in range(min(len(self.text), start + limit), start, -1):
            kind = self.kind[end]
            if kind < best_kind and self.cost(start, end) <= limit:
                best, best_kind = end, kind
                if kind <= _Break.BLOCK:
                    break
        return best if best else self._forced_end(start, limit)

    def _forced_end(self, start: int, limit: int) -> int:
        # Only inside a fence line longer than the limit: cut it like plain text.
        for end in range(min(len(self.text), start + limit), start, -1):
            if self.cost(start, end) <= limit:
                return end
        return start + 1

    def part(self, start: int, end: int) -> Part:
        opening, closing = self.fence[start], self.fence[end]
        body = self.text[start:end]
        return Part(
            reopen=opening.reopen if opening and start > 0 else "",
            body=body,
            close=closing.close(body.endswith("\n")) if closing else "",
        )


def _scan_lines(text: str) -> list[_Line]:
    lines: list[_Line] = []
    fence: _Fence | None = None
    start = 0
    while start < len(text):
        newline = text.find("\n", start)
        end = len(text) if newline < 0 else newline + 1
        content = text[start:end].rstrip("\r\n")
        blank = not content.strip()
        if fence is None:
            opened = _opener(content)
            role = _Role.OPENER if opened else _Role.PLAIN
            lines.append(_Line(start, end, None, opened, role, blank))
            fence = opened
        elif fence.is_closed_by(content):
            lines.append(_Line(start, end, fence, None, _Role.CLOSER, blank))
            fence = None
        else:
            lines.append(_Line(start, end, fence, None, _Role.CONTENT, blank))
        start = end
    return lines


def _opener(content: str) -> _Fence | None:
    match = _FENCE_LINE.fullmatch(content)
    if match is None:
        return None
    indent, marker, info = match["indent"], match["marker"], match["info"]
    if len(indent) + len(marker) > MAX_FENCE_PREFIX_CHARS:
        return None
    if marker.startswith("`") and "`" in info:
        return None  # inline code such as ```` ``` ````, not a fence
    words = info.split()
    return _Fence(indent, marker, words[0][:MAX_FENCE_LANG_CHARS] if words else "")


def _line_start_kind(previous: _Line, line: _Line) -> _Break:
    if line.inside is None:
        between_blocks = previous.blank or previous.role is _Role.CLOSER
        return _Break.BLOCK if between_blocks or line.role is _Role.OPENER else _Break.LINE
    if line.role is _Role.CLOSER or previous.role is _Role.OPENER:
        return _Break.NEVER  # would leave an empty code block behind
    return _Break.FENCED_BLOCK if previous.blank else _Break.FENCED_LINE


def _mid_line_kind(text: str, position: int, fenced: bool) -> _Break:
    before, after = text[position - 1], text[position]
    if not _safe_cut(before, after):
        return _Break.NEVER
    if before in " \t" and after not in "\r\n":
        return _Break.FENCED_SPACE if fenced else _Break.SPACE
    return _Break.HARD


def _safe_cut(before: str, after: str) -> bool:
    """Whether a cut between these two characters leaves both sides intact."""
    if (before == "\r" and after == "\n") or before in _JOINERS or after in _JOINERS:
        return False
    if unicodedata.category(after) in _MARK_CATEGORIES:
        return False
    if ord(before) in _REGIONAL_INDICATORS and ord(after) in _REGIONAL_INDICATORS:
        return False
    return not any(ord(after) in modifiers for modifiers in _MODIFIERS)
