"""Separate a model's ``<think>`` reasoning from the answer the user sees.

Some models write their chain of thought inline, between ``<think>`` and
``</think>`` (or ``<thinking>`` and ``</thinking>``, any letter case). The user
must never see it. :class:`ThinkFilter` does this on a stream, where a tag may
be split across chunks ("<thi" + "nk>"):

* text inside a block goes to ``thinking``, text outside to ``visible``;
* any closing tag ends a block, whichever opening tag began it;
* a block still open when the stream ends is dropped (never shown);
* a stray closing tag outside a block is dropped too: some chat templates
  open the block themselves, so the model only writes the closing tag;
* ``<`` that does not start a tag is ordinary text and is shown.

Only an unfinished tag is held back, so the buffer never exceeds the
longest tag.
"""

from __future__ import annotations

from typing import NamedTuple

OPEN_TAGS = ("<think>", "<thinking>")
CLOSE_TAGS = ("</think>", "</thinking>")
_ALL_TAGS = OPEN_TAGS + CLOSE_TAGS
#: Longest text held back while waiting for the rest of a tag, in characters.
MAX_PENDING_CHARS = max(len(tag) for tag in _ALL_TAGS) - 1


class ThinkOutput(NamedTuple):
    visible: str
    thinking: str


class ThinkFilter:
    """A streaming state machine: feed it chunks, show ``visible``, keep ``thinking``."""

    def __init__(self) -> None:
        self._pending = ""
        self._in_think = False

    @property
    def in_think(self) -> bool:
        """True while inside a think block (e.g. to show a "thinking" status)."""
        return self._in_think

    def feed(self, chunk: str) -> ThinkOutput:
        """Process the next chunk; returns the text that can be released now."""
        text = self._pending + chunk
        self._pending = ""
        visible: list[str] = []
        thinking: list[str] = []
        pos = 0
        while pos < len(text):
            lt = text.find("<", pos)
            if lt < 0:
                self._emit(text[pos:], visible, thinking)
                break
            self._emit(text[pos:lt], visible, thinking)
            pos = self._at_angle(text, lt, visible, thinking)
        return ThinkOutput("".join(visible), "".join(thinking))

    def flush(self) -> ThinkOutput:
        """End of stream: release what was held back and reset the filter.

        An unfinished tag outside a block is plain text; anything inside an
        unclosed block is returned as thinking, never as visible text."""
        pending, in_think = self._pending, self._in_think
        self._pending, self._in_think = "", False
        return ThinkOutput("", pending) if in_think else ThinkOutput(pending, "")

    def _at_angle(self, text: str, lt: int, visible: list[str], thinking: list[str]) -> int:
        """Handle the ``<`` at ``lt``; returns where scanning resumes."""
        rest = text[lt:]
        lowered = rest[: MAX_PENDING_CHARS + 1].lower()
        for tag in _ALL_TAGS:
            if lowered.startswith(tag):
                self._switch(tag)
                return lt + len(tag)
        if any(tag.startswith(lowered) for tag in _ALL_TAGS):
            self._pending = rest  # an unfinished tag at the end of this chunk
            return len(text)
        self._emit("<", visible, thinking)
        return lt + 1

    def _switch(self, tag: str) -> None:
        if tag in OPEN_TAGS:
            self._in_think = True
        else:
            self._in_think = False

    def _emit(self, part: str, visible: list[str], thinking: list[str]) -> None:
        if part:
            (thinking if self._in_think else visible).append(part)


def strip_think(text: str) -> str:
    """``text`` without its think blocks, for a whole answer at once."""
    think_filter = ThinkFilter()
    return think_filter.feed(text).visible + think_filter.flush().visible
