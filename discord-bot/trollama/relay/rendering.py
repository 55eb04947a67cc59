"""How one answer appears in Discord: which messages exist, and when they change.

An :class:`AnswerRenderer` turns the brain's frames for one request into
sends and edits on a :class:`MessageSink` (the discord.py side implements it
with real messages). The first message shows a status line at once
("⏳ Queued — position 3, about 20 s", "🤔 Thinking…"); the answer replaces it
as it streams, edited at most once per interval and continued in new
messages past Discord's limit; the complete text always lands at the end.
Every operation takes its turn from the channel's :class:`ChannelPacer` and
is retried with backoff when it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from trollama.common.protocol import (
    AcceptedFrame,
    Artifact,
    DeltaFrame,
    DoneFrame,
    ErrorFrame,
    StatusFrame,
    StatusKind,
)
from trollama.relay.pacing import ChannelPacer
from trollama.relay.splitting import DISCORD_MESSAGE_LIMIT, MESSAGE_LIMIT, split_message

log = logging.getLogger(__name__)

#: Seconds between two edits of the growing message (the pacer may add to it).
DEFAULT_EDIT_INTERVAL_SECONDS = 1.1
#: Attempts per Discord operation before giving up on it.
MAX_ATTEMPTS = 5
#: Pause after the first failed attempt, in seconds; it doubles after each one.
RETRY_BASE_DELAY_SECONDS = 0.5
#: Longest pause between two attempts, in seconds.
RETRY_MAX_DELAY_SECONDS = 8.0
#: Most messages one answer fills; the rest of a longer answer is attached as a file.
MAX_ANSWER_MESSAGES = 8
#: Most streamed characters kept (the done frame brings the whole text anyway).
MAX_STREAM_CHARS = MAX_ANSWER_MESSAGES * DISCORD_MESSAGE_LIMIT
#: Most files uploaded with one answer (Discord's attachments per message).
MAX_UPLOADS = 10
#: Longest status line shown, in characters.
MAX_STATUS_CHARS = 300

# What users see. Kept together so the wording can change in one place.
STATUS_PLACEHOLDER = "⏳ Sending…"
STATUS_QUEUED = "⏳ Queued — position {position}, about {eta}"
STATUS_QUEUED_NO_ETA = "⏳ Queued — position {position}"
STATUS_QUEUED_UNKNOWN = "⏳ Queued…"
STATUS_STARTING = "⏳ Starting…"
STATUS_ROUTING = "🧭 Choosing a model…"
STATUS_THINKING = "🤔 Thinking…"
STATUS_TOOL = "🔧 {detail}"
STATUS_TOOL_DEFAULT = "Using a tool…"
STATUS_GENERATING = "✍️ Writing…"
STATUS_RETRYING = "🔁 {detail}"
STATUS_RETRYING_DEFAULT = "Retrying…"
ERROR_PREFIX = "❌ "
EMPTY_ANSWER = "🤷 The model gave an empty answer."
SUPERSEDED = "-# (replaced by the answer above)"
TRUNCATED_NOTICE = "-# (the answer is too long for Discord; the whole of it is attached)"
FULL_ANSWER_FILENAME = "answer.md"
LINE_BREAK = "\n\n"

MessageHandle = TypeVar("MessageHandle")
AnswerFrame = AcceptedFrame | StatusFrame | DeltaFrame | DoneFrame | ErrorFrame


class MessageSink(Protocol[MessageHandle]):
    """Where an answer is shown: one Discord thread, as seen by the renderer."""

    async def send(self, content: str) -> MessageHandle:
        """Post a new message; the handle identifies it for later edits."""
        ...

    async def edit(self, handle: MessageHandle, content: str) -> None:
        """Replace a message's content."""
        ...

    async def upload(self, filename: str, data: bytes) -> None:
        """Post a file."""
        ...


class RenderState(StrEnum):
    """streaming → flushing (a done or error frame arrived) → done | failed; closed on aclose()."""

    STREAMING = "streaming"
    FLUSHING = "flushing"
    DONE = "done"
    FAILED = "failed"
    CLOSED = "closed"


@dataclass
class RenderStats:
    """What the renderer did, for tests and benchmarks (times are clock readings)."""

    sends: int = 0
    edits: int = 0
    uploads: int = 0
    failed_attempts: int = 0
    failed_uploads: int = 0
    first_text_at: float | None = None
    first_visible_at: float | None = None

    @property
    def operations(self) -> int:
        return self.sends + self.edits + self.uploads


@dataclass(frozen=True, slots=True)
class _Op:
    index: int
    content: str
    tail: bool  # the growing last message
    shows_text: bool


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a failed Discord operation is retried."""

    attempts: int = MAX_ATTEMPTS
    base_delay: float = RETRY_BASE_DELAY_SECONDS
    max_delay: float = RETRY_MAX_DELAY_SECONDS

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
        return float(min(self.base_delay * 2 ** (attempt - 1), self.max_delay))


class _GaveUp(Exception):
    """An operation failed on every attempt."""


@dataclass
class _Answer:
    """What should be visible: the text so far and the status line."""

    text: str = ""
    status: str | None = None
    #: A notice from the brain (e.g. soft maintenance), shown above progress lines.
    notice: str | None = None
    next_seq: int = 0
    artifacts: list[Artifact] = field(default_factory=list)


def layout_messages(
    text: str, status: str | None, limit: int = MESSAGE_LIMIT
) -> tuple[list[str], bool]:
    """The messages showing ``text`` with ``status`` under it, and whether text was cut off.

    The status line goes under the last part when it fits, else in a message
    of its own. Past MAX_ANSWER_MESSAGES parts the rest is left out.
    """
    parts = split_message(text[: MAX_ANSWER_MESSAGES * limit], limit)
    truncated = len(text) > MAX_ANSWER_MESSAGES * limit or len(parts) > MAX_ANSWER_MESSAGES
    parts = parts[:MAX_ANSWER_MESSAGES]
    for line in (TRUNCATED_NOTICE if truncated else None, status):
        if line is not None:
            _add_line(parts, line)
    return parts, truncated


def _add_line(parts: list[str], line: str) -> None:
    if parts and len(parts[-1]) + len(LINE_BREAK) + len(line) <= DISCORD_MESSAGE_LIMIT:
        parts[-1] += LINE_BREAK + line
    else:
        parts.append(line)


def status_text(frame: StatusFrame | AcceptedFrame) -> str:
    """The status line shown for a status (or accepted) frame."""
    if isinstance(frame, AcceptedFrame):
        line = _queued(frame.position, frame.eta_seconds)
        return _clip(f"{frame.notice}\n{line}" if frame.notice else line)
    detail = frame.message.strip()
    lines = {
        # A queued status without a position carries its own words (e.g. "restarting").
        StatusKind.QUEUED: detail
        if frame.position is None and detail
        else _queued(frame.position, frame.eta_seconds),
        StatusKind.ROUTING: STATUS_ROUTING,
        StatusKind.THINKING: STATUS_THINKING,
        StatusKind.TOOL: STATUS_TOOL.format(detail=detail or STATUS_TOOL_DEFAULT),
        StatusKind.GENERATING: STATUS_GENERATING,
        StatusKind.RETRYING: STATUS_RETRYING.format(detail=detail or STATUS_RETRYING_DEFAULT),
    }
    return _clip(lines[frame.status])


def _queued(position: int | None, eta_seconds: float | None) -> str:
    if position is None:
        return STATUS_QUEUED_UNKNOWN
    if position == 0:
        return STATUS_STARTING
    if eta_seconds is None:
        return STATUS_QUEUED_NO_ETA.format(position=position)
    return STATUS_QUEUED.format(position=position, eta=_duration(eta_seconds))


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"


def _clip(line: str, limit: int = MAX_STATUS_CHARS) -> str:
    return line if len(line) <= limit else line[: limit - 1] + "…"


class AnswerRenderer(Generic[MessageHandle]):
    """Shows one answer in one channel; feed it that request's frames with :meth:`handle`."""

    def __init__(
        self,
        sink: MessageSink[MessageHandle],
        pacer: ChannelPacer,
        channel_id: Hashable,
        placeholder: str = STATUS_PLACEHOLDER,
        edit_interval: float = DEFAULT_EDIT_INTERVAL_SECONDS,
        *,
        retry: RetryPolicy | None = None,
        limit: int = MESSAGE_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._pacer = pacer
        self._channel_id = channel_id
        self._edit_interval = edit_interval
        self._retry = retry or RetryPolicy()
        self._limit = limit
        self._clock = clock
        self._answer = _Answer(status=_clip(placeholder.strip() or STATUS_PLACEHOLDER))
        self._handles: list[MessageHandle] = []
        self._shown: list[str] = []
        self._text_shown_at: float | None = None
        self._changed = asyncio.Event()
        #: Set once answer text exists: a status edit waiting for its turn gives way to it.
        self._text_arrived = asyncio.Event()
        self._terminal = asyncio.Event()
        self._flushed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._state = RenderState.STREAMING
        self.stats = RenderStats()

    # ------------------------------------------------------------------ public

    @property
    def state(self) -> RenderState:
        """Where the renderer is in its lifecycle."""
        return self._state

    @property
    def messages(self) -> list[str]:
        """What each message of this answer shows now, as far as the renderer knows."""
        return list(self._shown)

    @property
    def finished(self) -> bool:
        """Everything is flushed (or given up on, or closed)."""
        return self._flushed.is_set()

    def start(self) -> None:
        """Start showing the answer (the placeholder first); handle() calls it too."""
        if self._task is None and self._state is not RenderState.CLOSED:
            self._task = asyncio.create_task(self._run(), name=f"render-{self._channel_id}")

    async def handle(self, frame: AnswerFrame) -> None:
        """Take the next frame of this answer; returns at once, the sink is updated behind."""
        if self._state is not RenderState.STREAMING:
            log.debug("frame %s after the answer ended; ignored", frame.type)
            return
        self._apply(frame)
        self._changed.set()
        self.start()

    async def wait_done(self) -> bool:
        """Wait until the final answer and its files are on Discord; False if that failed."""
        self.start()
        await self._flushed.wait()
        return self._state is RenderState.DONE

    async def aclose(self) -> None:
        """Stop at once (shutdown); whatever is not on Discord yet stays unsent."""
        if self.finished:
            return
        self._state = RenderState.CLOSED
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._flushed.set()

    # ------------------------------------------------------------------ frames

    def _apply(self, frame: AnswerFrame) -> None:
        answer = self._answer
        if isinstance(frame, DeltaFrame):
            self._on_delta(frame)
        elif isinstance(frame, DoneFrame):
            answer.text, answer.artifacts = frame.text, list(frame.artifacts)
            answer.status = None if frame.text.strip() else EMPTY_ANSWER
            self._end()
        elif isinstance(frame, ErrorFrame):
            answer.status = _clip(ERROR_PREFIX + frame.message)
            self._end()
        elif isinstance(frame, StatusFrame) and frame.status is StatusKind.RETRYING:
            answer.text, answer.next_seq = "", 0
            answer.status = status_text(frame)
        elif isinstance(frame, StatusFrame) and frame.status is StatusKind.GENERATING:
            pass  # text follows at once: a status edit now would only spend the channel's budget
        elif not answer.text.strip():  # progress shows while there is no text yet...
            if isinstance(frame, AcceptedFrame) and frame.notice:
                answer.notice = _clip(frame.notice)
            line = status_text(frame)
            keep = answer.notice and not line.startswith(answer.notice)
            answer.status = _clip(f"{answer.notice}\n{line}") if keep else line
        elif isinstance(frame, StatusFrame) and frame.status is StatusKind.TOOL:
            answer.status = status_text(frame)  # ...or under it, while a tool runs

    def _on_delta(self, frame: DeltaFrame) -> None:
        answer = self._answer
        if frame.seq == 0:
            answer.text = ""  # a new attempt (or a replay) starts from the beginning
        elif frame.seq < answer.next_seq:
            return  # seen already
        answer.next_seq = frame.seq + 1
        answer.text += frame.text[: max(0, MAX_STREAM_CHARS - len(answer.text))]
        if answer.text.strip():
            answer.status = None
            self._text_arrived.set()
            if self.stats.first_text_at is None:
                self.stats.first_text_at = self._clock()

    def _end(self) -> None:
        self._state = RenderState.FLUSHING
        self._terminal.set()

    # ------------------------------------------------------------------ flushing

    async def _run(self) -> None:
        try:
            await self._show_all()
            await self._upload_all()
            self._state = RenderState.DONE
        except _GaveUp as exc:
            log.error("gave up showing an answer in channel %s: %s", self._channel_id, exc)
            self._state = RenderState.FAILED
        except Exception:
            log.exception("rendering an answer in channel %s failed", self._channel_id)
            self._state = RenderState.FAILED
        finally:
            self._flushed.set()

    async def _show_all(self) -> None:
        """Bring the messages in line with the answer until the final text is shown."""
        while True:
            op = self._next_op()
            if op is None:
                if self._terminal.is_set():
                    return
                await self._wait_for_change()
                continue
            await self._throttle(op)
            if await self._text_overtook(op):
                continue  # plan again: the op now carries the first text
            final = self._terminal.is_set()
            first_text = op.shows_text and self._text_shown_at is None
            try:
                await self._with_retries(self._step, "showing the answer", urgent=first_text)
            except _GaveUp:
                if final:
                    raise
                if not self._terminal.is_set():
                    await self._wait_for_change()  # try again with the next change

    async def _text_overtook(self, op: _Op) -> bool:
        """For a status-only edit: wait for its turn outside the pacer, and True if the
        answer's first text arrived meanwhile (it then goes out at once, as urgent)."""
        if op.shows_text or self._text_arrived.is_set() or self._terminal.is_set():
            return False
        delay = self._pacer.ready_in(self._channel_id)
        if delay <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._text_arrived.wait(), delay)
        return self._text_arrived.is_set()

    async def _wait_for_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    async def _throttle(self, op: _Op) -> None:
        """Edits of the growing message come at most once per interval, until the end."""
        if not op.tail or op.index >= len(self._handles) or self._text_shown_at is None:
            return
        delay = self._text_shown_at + self._edit_interval - self._clock()
        if delay > 0 and not self._terminal.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._terminal.wait(), delay)

    def _desired(self) -> list[str]:
        answer = self._answer
        messages, _ = layout_messages(answer.text, answer.status, self._limit)
        return messages or [EMPTY_ANSWER]

    def _next_op(self) -> _Op | None:
        """The first message that differs from what it should show, in order."""
        desired = self._desired()
        shows_text = bool(self._answer.text.strip())
        for index, content in enumerate(desired):
            if index >= len(self._shown) or self._shown[index] != content:
                return _Op(index, content, index == len(desired) - 1, shows_text)
        for index in range(len(desired), len(self._shown)):
            if self._shown[index] != SUPERSEDED:
                return _Op(index, SUPERSEDED, tail=False, shows_text=shows_text)
        return None

    async def _step(self) -> None:
        """One send or edit, computed from the latest answer once the turn is ours."""
        op = self._next_op()
        if op is None:
            return
        if op.index < len(self._handles):
            await self._sink.edit(self._handles[op.index], op.content)
            self._shown[op.index] = op.content
            self.stats.edits += 1
        else:
            self._handles.append(await self._sink.send(op.content))
            self._shown.append(op.content)
            self.stats.sends += 1
        if op.shows_text:
            self._text_shown_at = self._clock()
            if self.stats.first_visible_at is None:
                self.stats.first_visible_at = self._text_shown_at

    async def _upload_all(self) -> None:
        answer = self._answer
        files = [(a.filename, a.content.encode()) for a in answer.artifacts]
        if layout_messages(answer.text, None, self._limit)[1]:
            files.insert(0, (FULL_ANSWER_FILENAME, answer.text.encode()))
        for filename, data in files[:MAX_UPLOADS]:
            try:
                await self._with_retries(self._uploader(filename, data), f"uploading {filename}")
            except _GaveUp as exc:
                self.stats.failed_uploads += 1
                log.error("gave up on a file in channel %s: %s", self._channel_id, exc)
        if len(files) > MAX_UPLOADS:
            log.warning("%d files not uploaded (limit %d)", len(files) - MAX_UPLOADS, MAX_UPLOADS)

    def _uploader(self, filename: str, data: bytes) -> Callable[[], Awaitable[None]]:
        async def upload() -> None:
            await self._sink.upload(filename, data)
            self.stats.uploads += 1

        return upload

    async def _with_retries(
        self, action: Callable[[], Awaitable[None]], what: str, *, urgent: bool = False
    ) -> None:
        """Run ``action`` in a paced turn, retrying with backoff; _GaveUp when all attempts fail.

        ``urgent`` (the first text of the answer) skips the pacer's spacing, not its window."""
        attempts = self._retry.attempts
        for attempt in range(1, attempts + 1):
            try:
                async with self._pacer.turn(self._channel_id, urgent=urgent and attempt == 1):
                    await action()
                return
            except Exception as exc:
                self.stats.failed_attempts += 1
                log.warning(
                    "%s failed (attempt %d of %d): %s", what, attempt, attempts, type(exc).__name__
                )
            if attempt < attempts:
                await asyncio.sleep(self._retry.delay(attempt))
        raise _GaveUp(f"{what} failed {attempts} times")
