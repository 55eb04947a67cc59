"""How an answer is rendered into Discord messages, against an in-memory sink."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from trollama.common.protocol import (
    AcceptedFrame,
    Artifact,
    DeltaFrame,
    DoneFrame,
    ErrorCode,
    ErrorFrame,
    StatusFrame,
    StatusKind,
)
from trollama.relay.pacing import WINDOW_OPS, WINDOW_SECONDS, ChannelPacer
from trollama.relay.rendering import (
    EMPTY_ANSWER,
    FULL_ANSWER_FILENAME,
    MAX_ANSWER_MESSAGES,
    STATUS_THINKING,
    SUPERSEDED,
    AnswerRenderer,
    RenderState,
    RetryPolicy,
    layout_messages,
    status_text,
)
from trollama.relay.splitting import DISCORD_MESSAGE_LIMIT, split_message

INTERVAL = 0.05
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.02)
RID = "req-1"


class RecordingPacer(ChannelPacer):
    """A real pacer that remembers every turn's start and who is inside a turn."""

    def __init__(self, interval: float) -> None:
        super().__init__(interval)
        self.starts: defaultdict[Hashable, list[float]] = defaultdict(list)
        self.urgent: defaultdict[Hashable, list[float]] = defaultdict(list)
        self.inside: Counter[Hashable] = Counter()

    @asynccontextmanager
    async def turn(self, channel_id: Hashable, *, urgent: bool = False) -> AsyncIterator[float]:
        async with super().turn(channel_id, urgent=urgent) as started:
            self.starts[channel_id].append(started)
            if urgent:
                self.urgent[channel_id].append(started)
            self.inside[channel_id] += 1
            try:
                yield started
            finally:
                self.inside[channel_id] -= 1


@dataclass
class Record:
    at: float
    channel: str
    op: str
    index: int
    content: str
    in_turn: bool


@dataclass
class FakeSink:
    """A Discord thread in memory: numbered messages, every operation recorded."""

    channel: str = "thread-1"
    fail_next: int = 0
    always_fail: bool = False
    fail_uploads: set[str] = field(default_factory=set)
    pacer: RecordingPacer | None = None
    messages: list[str] = field(default_factory=list)
    uploads: list[tuple[str, bytes]] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``check()`` holds (the renderer works in the background)."""
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(check)

    async def send(self, content: str) -> int:
        await self._io("send", len(self.messages), content)
        self.messages.append(content)
        await self._notify()
        return len(self.messages) - 1

    async def edit(self, handle: int, content: str) -> None:
        await self._io("edit", handle, content)
        self.messages[handle] = content
        await self._notify()

    async def upload(self, filename: str, data: bytes) -> None:
        await self._io("upload", -1, filename)
        if filename in self.fail_uploads:
            raise ConnectionError("413 from Discord")
        self.uploads.append((filename, data))

    async def _io(self, op: str, index: int, content: str) -> None:
        in_turn = self.pacer is not None and self.pacer.inside[self.channel] > 0
        self.records.append(Record(time.monotonic(), self.channel, op, index, content, in_turn))
        await asyncio.sleep(0)
        if self.always_fail or self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectionError("503 from Discord")

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    def count(self, op: str) -> int:
        return sum(1 for record in self.records if record.op == op)


def renderer_for(
    sink: FakeSink, pacer: RecordingPacer | None = None, edit_interval: float = INTERVAL
) -> AnswerRenderer[int]:
    sink.pacer = pacer or RecordingPacer(INTERVAL)
    return AnswerRenderer(
        sink,
        sink.pacer,
        sink.channel,
        placeholder="⏳ On it…",
        edit_interval=edit_interval,
        retry=FAST_RETRY,
    )


def status(
    kind: StatusKind,
    message: str = "",
    position: int | None = None,
    eta_seconds: float | None = None,
) -> StatusFrame:
    return StatusFrame(
        request_id=RID, status=kind, message=message, position=position, eta_seconds=eta_seconds
    )


def deltas(text: str, size: int) -> list[DeltaFrame]:
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    return [DeltaFrame(request_id=RID, seq=seq, text=piece) for seq, piece in enumerate(pieces)]


def done(text: str, artifacts: list[Artifact] | None = None) -> DoneFrame:
    return DoneFrame(request_id=RID, text=text, artifacts=artifacts or [])


def assert_paced(sink: FakeSink) -> None:
    """Every operation ran inside a turn; turns in a channel started an interval apart,
    except the urgent turn of each answer's first text (at most one per answer, never a
    retry); never more than WINDOW_OPS turns in WINDOW_SECONDS."""
    assert sink.pacer is not None
    assert sink.records and all(record.in_turn for record in sink.records)
    for channel, starts in sink.pacer.starts.items():
        urgent = sink.pacer.urgent[channel]
        gaps = [b - a for a, b in itertools.pairwise(starts) if b not in urgent]
        assert all(gap >= sink.pacer.min_interval for gap in gaps), gaps
        for i in range(len(starts) - WINDOW_OPS):
            assert starts[i + WINDOW_OPS] - starts[i] >= WINDOW_SECONDS


def assert_within_limit(records: list[Record]) -> None:
    assert all(len(r.content) <= DISCORD_MESSAGE_LIMIT for r in records if r.op != "upload")


# ---------------------------------------------------------------- status lines


def test_status_lines() -> None:
    queued = status(StatusKind.QUEUED, position=3, eta_seconds=20.0)
    assert status_text(queued) == "⏳ Queued — position 3, about 20 s"
    later = status(StatusKind.QUEUED, position=12, eta_seconds=300.0)
    assert status_text(later) == "⏳ Queued — position 12, about 5 min"
    assert status_text(status(StatusKind.THINKING, "Thinking…")) == "🤔 Thinking…"
    assert status_text(status(StatusKind.TOOL, "Using calculate…")) == "🔧 Using calculate…"
    assert status_text(status(StatusKind.GENERATING)) == "✍️ Writing…"
    retry = status(StatusKind.RETRYING, "Retrying your request…")
    assert status_text(retry) == "🔁 Retrying your request…"
    accepted = AcceptedFrame(request_id=RID, position=2, eta_seconds=9.6, notice="Maintenance")
    assert status_text(accepted) == "Maintenance\n⏳ Queued — position 2, about 10 s"
    long_tool = status(StatusKind.TOOL, "x" * 5000)
    assert len(status_text(long_tool)) <= 300


def test_layout_puts_the_status_under_the_text_or_in_its_own_message() -> None:
    assert layout_messages("Hi", "🔧 Using search…") == (["Hi\n\n🔧 Using search…"], False)
    full = "word " * 380  # exactly one full message
    messages, _ = layout_messages(full, "❌ " + "e" * 250)
    assert len(messages) == 2 and messages[1].startswith("❌")
    assert all(len(message) <= DISCORD_MESSAGE_LIMIT for message in messages)


# ---------------------------------------------------------------- streaming


async def test_status_message_comes_first_then_the_answer_replaces_it() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink)
    renderer.start()
    await sink.wait_for(lambda: sink.messages == ["⏳ On it…"])
    await renderer.handle(status(StatusKind.QUEUED, position=3, eta_seconds=20.0))
    await sink.wait_for(lambda: sink.messages == ["⏳ Queued — position 3, about 20 s"])
    await renderer.handle(status(StatusKind.THINKING, "Thinking…"))
    await sink.wait_for(lambda: sink.messages == [STATUS_THINKING])
    operations = len(sink.records)
    await renderer.handle(status(StatusKind.GENERATING))  # text follows: no edit spent on it
    await asyncio.sleep(0.1)
    assert sink.messages == [STATUS_THINKING] and len(sink.records) == operations
    for frame in deltas("The answer is 42.", 4):
        await renderer.handle(frame)
    await sink.wait_for(lambda: sink.messages[0].startswith("The answer"))
    await renderer.handle(done("The answer is 42."))
    assert await renderer.wait_done()
    assert sink.messages == ["The answer is 42."]
    assert renderer.state is RenderState.DONE
    assert renderer.stats.first_text_at is not None
    assert renderer.stats.first_visible_at is not None
    assert renderer.stats.first_visible_at >= renderer.stats.first_text_at
    assert_paced(sink)


async def test_a_tool_call_shows_under_the_text_until_writing_resumes() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink)
    await renderer.handle(DeltaFrame(request_id=RID, seq=0, text="Let me compute that."))
    await renderer.handle(status(StatusKind.TOOL, "Using calculate…"))
    await sink.wait_for(lambda: sink.messages == ["Let me compute that.\n\n🔧 Using calculate…"])
    await renderer.handle(DeltaFrame(request_id=RID, seq=1, text=" It is 4."))
    await sink.wait_for(lambda: sink.messages == ["Let me compute that. It is 4."])
    await renderer.handle(done("Let me compute that. It is 4."))
    assert await renderer.wait_done()


async def test_deltas_are_coalesced_into_a_few_edits() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink)
    tokens = [f"token{i} " for i in range(100)]
    text = "".join(tokens)
    started = time.monotonic()
    for seq, token in enumerate(tokens):
        await renderer.handle(DeltaFrame(request_id=RID, seq=seq, text=token))
        await asyncio.sleep(0.3 / 100)
    await renderer.handle(done(text))
    assert await renderer.wait_done()
    elapsed = time.monotonic() - started
    assert sink.messages == [text]
    operations = renderer.stats.sends + renderer.stats.edits
    assert operations == sink.count("send") + sink.count("edit")
    assert operations <= elapsed / INTERVAL + 2  # at most one per interval, plus the final one
    assert operations < len(tokens) / 3
    partial = [r.content for r in sink.records if r.content not in (text, "⏳ On it…")]
    assert partial, "the text was visible before the answer was done"
    assert all(text.startswith(content) for content in partial)
    assert_paced(sink)


async def test_a_long_answer_continues_in_new_messages() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink)
    text = long_answer_with_code()
    for frame in deltas(text, 40):
        await renderer.handle(frame)
        await asyncio.sleep(0)
    await renderer.handle(done(text))
    assert await renderer.wait_done()
    expected = split_message(text)
    assert len(expected) >= 3
    assert sink.messages == expected
    assert all(message.count("```") % 2 == 0 for message in sink.messages)
    assert_within_limit(sink.records)
    assert_paced(sink)


def long_answer_with_code() -> str:
    blocks = []
    for i in range(5):
        blocks.append(f"Part {i}: here is how the function works, step by step. " * 6)
        code = "".join(f"    total += values[{j}] * {i}\n" for j in range(12))
        body = f"def part_{i}(values):\n    total = 0\n{code}    return total\n"
        blocks.append(f"```python\n{body}```")
    blocks.append("```sql\n" + "SELECT id, name FROM users WHERE active;\n" * 40 + "```")
    text = "\n\n".join(blocks)
    assert len(text) >= 5000
    return text


async def test_the_final_text_lands_even_right_after_an_edit() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink, edit_interval=30.0)  # far longer than the test may take
    await renderer.handle(DeltaFrame(request_id=RID, seq=0, text="Partial"))
    await sink.wait_for(lambda: sink.messages == ["Partial"])
    await renderer.handle(DeltaFrame(request_id=RID, seq=1, text=" answer"))
    await renderer.handle(done("Partial answer, complete."))
    assert await asyncio.wait_for(renderer.wait_done(), timeout=5)
    assert sink.messages == ["Partial answer, complete."]
    assert_paced(sink)


async def test_retrying_discards_the_partial_text() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink)
    old = "Old attempt. " * 300  # three messages' worth
    for frame in deltas(old, 500):
        await renderer.handle(frame)
    await sink.wait_for(lambda: len(sink.messages) >= 2)
    await renderer.handle(status(StatusKind.RETRYING, "Retrying your request…"))
    await sink.wait_for(lambda: sink.messages[0] == "🔁 Retrying your request…")
    await renderer.handle(DeltaFrame(request_id=RID, seq=0, text="New answer."))
    await renderer.handle(done("New answer."))
    assert await renderer.wait_done()
    assert sink.messages[0] == "New answer."
    assert all(message == SUPERSEDED for message in sink.messages[1:])
    assert not any("Old attempt" in message for message in sink.messages)


async def test_a_delta_restarting_at_zero_restarts_the_text() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink)
    await renderer.handle(DeltaFrame(request_id=RID, seq=0, text="first try"))
    await renderer.handle(DeltaFrame(request_id=RID, seq=1, text=" and more"))
    await renderer.handle(DeltaFrame(request_id=RID, seq=1, text=" and more"))  # duplicate
    await sink.wait_for(lambda: sink.messages == ["first try and more"])
    await renderer.handle(DeltaFrame(request_id=RID, seq=0, text="second"))
    await sink.wait_for(lambda: sink.messages == ["second"])
    await renderer.handle(ErrorFrame(request_id=RID, code=ErrorCode.CANCELLED, message="Stopped."))
    assert await renderer.wait_done()


async def test_an_error_keeps_the_partial_text() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink)
    await renderer.handle(DeltaFrame(request_id=RID, seq=0, text="Half of the"))
    await sink.wait_for(lambda: sink.messages == ["Half of the"])
    error = ErrorFrame(request_id=RID, code=ErrorCode.FAILED, message="The model stopped.")
    await renderer.handle(error)
    assert await renderer.wait_done()
    assert sink.messages == ["Half of the\n\n❌ The model stopped."]


async def test_an_error_before_any_text_replaces_the_status() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink)
    await renderer.handle(status(StatusKind.QUEUED, position=1, eta_seconds=3.0))
    error = ErrorFrame(request_id=RID, code=ErrorCode.QUEUE_FULL, message="The queue is full.")
    await renderer.handle(error)
    assert await renderer.wait_done()
    assert sink.messages == ["❌ The queue is full."]


async def test_an_empty_answer_says_so() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink)
    await renderer.handle(done("   "))
    assert await renderer.wait_done()
    assert sink.messages == [EMPTY_ANSWER]


async def test_frames_after_the_end_are_ignored() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink)
    await renderer.handle(done("Final."))
    await renderer.handle(DeltaFrame(request_id=RID, seq=5, text="late"))
    await renderer.handle(done("Replayed."))
    assert await renderer.wait_done()
    assert sink.messages == ["Final."]


# ---------------------------------------------------------------- failures


async def test_a_sink_that_fails_twice_loses_nothing() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink)
    renderer.start()
    await sink.wait_for(lambda: sink.messages == ["⏳ On it…"])
    sink.fail_next = 2
    text = "Every word of this answer must arrive."
    for frame in deltas(text, 5):
        await renderer.handle(frame)
    await renderer.handle(done(text))
    assert await renderer.wait_done()
    assert sink.messages == [text]
    assert renderer.stats.failed_attempts == 2
    assert_paced(sink)


async def test_giving_up_after_every_attempt_failed(caplog: pytest.LogCaptureFixture) -> None:
    sink = FakeSink(always_fail=True)
    renderer = renderer_for(sink)
    with caplog.at_level(logging.WARNING, logger="trollama.relay.rendering"):
        await renderer.handle(done("Nobody will see this."))
        assert not await asyncio.wait_for(renderer.wait_done(), timeout=5)
    assert renderer.state is RenderState.FAILED
    assert renderer.stats.failed_attempts == FAST_RETRY.attempts
    assert any(r.levelno == logging.ERROR and "gave up" in r.message for r in caplog.records)
    assert "Nobody will see" not in caplog.text  # answers stay out of the logs


async def test_a_failed_upload_does_not_stop_the_others() -> None:
    sink = FakeSink(fail_uploads={"a.py"})
    renderer = renderer_for(sink)
    files = [
        Artifact(filename="a.py", content_type="text/x-python", content="print('a')"),
        Artifact(filename="b.md", content_type="text/markdown", content="# b ✓"),
    ]
    await renderer.handle(done("Here are your files.", files))
    assert await renderer.wait_done()
    assert sink.messages == ["Here are your files."]
    assert sink.uploads == [("b.md", "# b ✓".encode())]
    assert renderer.stats.uploads == 1
    assert renderer.stats.failed_uploads == 1
    assert sink.count("upload") == FAST_RETRY.attempts + 1


# ---------------------------------------------------------------- limits and pacing


async def test_an_answer_too_long_for_discord_is_attached_whole() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink, pacer=RecordingPacer(0.0), edit_interval=0.0)
    text = "A sentence that goes on. " * 1200  # 30,000 characters
    await renderer.handle(done(text))
    assert await renderer.wait_done()
    assert len(sink.messages) == MAX_ANSWER_MESSAGES
    assert "attached" in sink.messages[-1]
    assert sink.uploads == [(FULL_ANSWER_FILENAME, text.encode())]
    assert_within_limit(sink.records)


async def test_two_channels_have_separate_budgets() -> None:
    pacer = RecordingPacer(30.0)  # a shared budget would make the second send wait 30 s
    first, second = FakeSink(channel="a"), FakeSink(channel="b")
    for sink in (first, second):
        renderer_for(sink, pacer=pacer).start()
    await first.wait_for(lambda: first.messages == ["⏳ On it…"])
    await second.wait_for(lambda: second.messages == ["⏳ On it…"])


async def test_two_answers_in_one_channel_share_its_budget() -> None:
    pacer = RecordingPacer(INTERVAL)
    records: list[Record] = []
    sinks = [FakeSink(records=records), FakeSink(records=records)]
    renderers = [renderer_for(sink, pacer=pacer) for sink in sinks]
    for number, renderer in enumerate(renderers):
        for frame in deltas(f"Answer {number}: " + "word " * 50, 20):
            await renderer.handle(frame)
            await asyncio.sleep(0.002)
        await renderer.handle(done(f"Answer {number} done."))
    assert all([await renderer.wait_done() for renderer in renderers])
    assert [sink.messages for sink in sinks] == [["Answer 0 done."], ["Answer 1 done."]]
    assert_paced(sinks[0])
    assert len(pacer.starts) == 1  # one channel, one budget


async def test_aclose_stops_the_renderer() -> None:
    sink = FakeSink()
    renderer = renderer_for(sink)
    await renderer.handle(DeltaFrame(request_id=RID, seq=0, text="Some"))
    await renderer.aclose()
    assert renderer.finished
    assert renderer.state is RenderState.CLOSED
    assert not await renderer.wait_done()
