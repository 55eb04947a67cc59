"""The relay's WebSocket link against a real brain and the fake Ollama.

A request submitted to the link is answered once, whatever happens to the
connection: the brain refusing the secret, the brain not running yet, or the
brain killed mid-answer and started again on the same store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from trollama.brain.app import create_app
from trollama.brain.context.history import ConversationStore
from trollama.brain.services import Services, build_services
from trollama.common.protocol import (
    MAX_FRAME_BYTES,
    AcceptedFrame,
    DeltaFrame,
    DoneFrame,
    ErrorCode,
    ErrorFrame,
    RequestFrame,
    ServerFrame,
    StatusFrame,
    StatusKind,
)
from trollama.common.store.sqlite import SqliteStore
from trollama.relay.brain_link import (
    BrainLink,
    LinkFull,
    LinkState,
    LinkStateError,
    _admit,
    _Pending,
)
from trollama.testkit.brain import (
    BrainProcess,
    brain_settings,
    free_port,
    fresh_secrets,
    serve_brain,
)
from trollama.testkit.script import Reply

MODEL = "gpt-oss:20b"
ANSWER = " ".join(f"word{i}" for i in range(40))
#: Seconds a test waits for something that should happen (a safety net, not a measure).
WAIT_SECONDS = 30.0
#: Seconds watched for a reconnect that must not happen.
QUIET_SECONDS = 0.5


def request(request_id: str, conversation: str = "conv-1", content: str = "") -> RequestFrame:
    return RequestFrame(
        request_id=request_id,
        user_id="u-" + conversation,
        user_name="ada",
        conversation_id=conversation,
        content=content or f"question {request_id}",
        model_override=MODEL,
    )


def ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://", 1) + "/ws/discord"


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)


class Recorder:
    """A frame handler that keeps every frame it is given."""

    def __init__(self) -> None:
        self.frames: list[ServerFrame] = []
        self.finished = asyncio.Event()
        self.first_delta = asyncio.Event()

    async def __call__(self, frame: ServerFrame) -> None:
        self.frames.append(frame)
        if isinstance(frame, DeltaFrame):
            self.first_delta.set()
        if isinstance(frame, DoneFrame | ErrorFrame):
            self.finished.set()

    async def terminal(self) -> ServerFrame:
        await asyncio.wait_for(self.finished.wait(), WAIT_SECONDS)
        return self.frames[-1]

    def terminals(self) -> list[ServerFrame]:
        return [f for f in self.frames if isinstance(f, DoneFrame | ErrorFrame)]


def assert_shown_text_never_wrong(frames: list[ServerFrame], answer: str) -> None:
    """What a client shows (deltas since the last retrying) is always a prefix of ``answer``."""
    shown = ""
    for frame in frames:
        if isinstance(frame, StatusFrame) and frame.status is StatusKind.RETRYING:
            shown = ""
        if isinstance(frame, DeltaFrame):
            shown += frame.text
        assert answer.startswith(shown), shown


@dataclass
class Brain:
    url: str
    secret: str
    services: Services


@asynccontextmanager
async def running_brain(fake_ollama: Any, tmp_path: Path, **overrides: Any) -> AsyncIterator[Brain]:
    settings = brain_settings(ollama_host=fake_ollama.url, **overrides)
    services = build_services(settings, store=SqliteStore(tmp_path / "brain.db"))
    async with serve_brain(services) as url:
        yield Brain(url, settings.relay_shared_secret.get_secret_value(), services)


@asynccontextmanager
async def brain_on_port(
    fake_ollama: Any, tmp_path: Path, port: int, secret: str
) -> AsyncIterator[Services]:
    """A brain on a port chosen before it starts (``serve_brain`` picks its own)."""
    settings = brain_settings(
        ollama_host=fake_ollama.url, brain_port=port, relay_shared_secret=secret
    )
    services = build_services(settings, store=SqliteStore(tmp_path / "late.db"))
    app = create_app(services)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, ws_max_size=MAX_FRAME_BYTES
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started or task.done())
    try:
        yield services
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def brain(fake_ollama: Any, tmp_path: Path) -> AsyncIterator[Brain]:
    async with running_brain(fake_ollama, tmp_path) as running:
        yield running


LinkFactory = Callable[..., BrainLink]


@pytest.fixture
async def links() -> AsyncIterator[LinkFactory]:
    """Makes links with fast backoff; every one is stopped after the test."""
    made: list[BrainLink] = []

    def make(url: str, secret: str, **options: Any) -> BrainLink:
        values: dict[str, Any] = {"max_pending": 10, "backoff_initial": 0.05, "backoff_max": 0.3}
        link = BrainLink(url, secret, **{**values, **options})
        made.append(link)
        return link

    yield make
    for link in made:
        await link.stop()


# ------------------------------------------------------------ answers


async def test_submit_streams_from_accepted_to_done(
    brain: Brain, links: LinkFactory, fake_ollama: Any
) -> None:
    fake_ollama.script.add(Reply(text=ANSWER), model=MODEL)
    states: list[LinkState] = []

    async def on_state(state: LinkState) -> None:
        states.append(state)

    link = links(ws_url(brain.url), brain.secret, on_state=on_state)
    await link.start()
    handler = Recorder()
    await link.submit(request("r1"), handler)

    done = await handler.terminal()
    assert isinstance(handler.frames[0], AcceptedFrame) and not handler.frames[0].duplicate
    assert isinstance(done, DoneFrame) and done.text == ANSWER
    deltas = [f for f in handler.frames if isinstance(f, DeltaFrame)]
    assert [d.seq for d in deltas] == list(range(len(deltas)))
    assert "".join(d.text for d in deltas) == ANSWER
    await wait_until(lambda: link.pending() == 0)
    assert states == [LinkState.CONNECTING, LinkState.CONNECTED]
    assert link.connected_since is not None and link.reconnects == 0


async def test_concurrent_requests_each_get_their_own_frames_in_order(
    brain: Brain, links: LinkFactory, fake_ollama: Any
) -> None:
    answers = {
        f"c{i}": f"answer {i}: " + " ".join(f"w{i}-{n}" for n in range(15)) for i in range(3)
    }
    for rid, text in answers.items():
        fake_ollama.script.add(Reply(text=text, tokens_per_second=100), user_contains=rid)
    link = links(ws_url(brain.url), brain.secret)
    await link.start()
    handlers = {rid: Recorder() for rid in answers}
    await asyncio.gather(*(link.submit(request(rid, f"t-{rid}"), h) for rid, h in handlers.items()))

    for rid, handler in handlers.items():
        done = await handler.terminal()
        assert isinstance(done, DoneFrame) and done.text == answers[rid]
        assert {getattr(f, "request_id", None) for f in handler.frames} == {rid}
        assert isinstance(handler.frames[0], AcceptedFrame)
        assert len(handler.terminals()) == 1
        deltas = [f for f in handler.frames if isinstance(f, DeltaFrame)]
        assert [d.seq for d in deltas] == list(range(len(deltas)))
        assert "".join(d.text for d in deltas) == answers[rid]


async def test_a_failing_handler_does_not_break_the_link(
    brain: Brain, links: LinkFactory, fake_ollama: Any
) -> None:
    fake_ollama.script.add(Reply(text=ANSWER), model=MODEL)
    link = links(ws_url(brain.url), brain.secret)
    await link.start()
    calls: list[ServerFrame] = []

    async def broken(frame: ServerFrame) -> None:
        calls.append(frame)
        raise RuntimeError("handler bug")

    await link.submit(request("bad", "t-bad"), broken)
    await wait_until(lambda: any(isinstance(f, DoneFrame) for f in calls))
    await wait_until(lambda: link.pending() == 0)

    handler = Recorder()
    await link.submit(request("good", "t-good"), handler)
    done = await handler.terminal()
    assert isinstance(done, DoneFrame) and done.text == ANSWER
    assert link.state is LinkState.CONNECTED and link.reconnects == 0


# ------------------------------------------------------------ connection trouble


async def test_wrong_secret_is_reported_and_not_retried_in_a_loop(
    brain: Brain, links: LinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = fresh_secrets()["relay_shared_secret"]
    states: list[LinkState] = []
    link = links(
        ws_url(brain.url), wrong, backoff_initial=0.01, backoff_max=60.0, on_state=states.append
    )
    handler = Recorder()
    await link.submit(request("kept"), handler)
    await link.start()

    await wait_until(lambda: link.refused and link.state is LinkState.DISCONNECTED)
    await asyncio.sleep(QUIET_SECONDS)
    assert states.count(LinkState.CONNECTING) == 1
    assert link.state is LinkState.DISCONNECTED and link.connected_since is None
    assert link.pending() == 1 and handler.frames == []
    assert link.last_error is not None and "RELAY_SHARED_SECRET" in link.last_error
    refusals = [
        r for r in caplog.records if r.name.endswith("brain_link") and "refused" in r.message
    ]
    assert len(refusals) == 1 and refusals[0].levelno == logging.ERROR
    # the relay's side only (the in-process brain's uvicorn logs what it receives)
    relay_lines = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(("websockets", "trollama.relay"))
    ]
    assert "> Authorization: Bearer ***" in relay_lines  # websockets logs headers, masked
    assert not [line for line in relay_lines if wrong in line]
    assert wrong not in link.last_error


async def test_requests_kept_while_the_brain_is_down_are_answered_once(
    fake_ollama: Any, tmp_path: Path, links: LinkFactory
) -> None:
    fake_ollama.script.add(Reply(text=ANSWER), model=MODEL)
    port = free_port()
    secret = fresh_secrets()["relay_shared_secret"]
    link = links(f"ws://127.0.0.1:{port}/ws/discord", secret)
    await link.start()
    handlers = {f"k{i}": Recorder() for i in range(3)}
    for rid, handler in handlers.items():
        await link.submit(request(rid, f"t-{rid}"), handler)
    await wait_until(lambda: link.last_error is not None)  # an attempt failed
    assert link.pending() == 3 and not link.refused
    assert link.last_error is not None and secret not in link.last_error

    async with brain_on_port(fake_ollama, tmp_path, port, secret):
        for rid, handler in handlers.items():
            done = await handler.terminal()
            assert isinstance(done, DoneFrame) and done.text == ANSWER, rid
            assert isinstance(handler.frames[0], AcceptedFrame), rid
            assert len(handler.terminals()) == 1, rid
        await wait_until(lambda: link.pending() == 0)
    asked = [r.body["messages"][-1]["content"] for r in fake_ollama.requests_to("/api/chat")]
    for rid in handlers:
        assert asked.count(f"question {rid}") == 1, rid
    assert link.reconnects == 0


def brain_env(fake_ollama: Any, store_env: dict[str, str], secret: str) -> dict[str, str]:
    return {
        **store_env,
        "BRAIN_PORT": str(free_port()),
        "NODE_ID": "brain-a",
        "OLLAMA_HOST": fake_ollama.url,
        "RELAY_SHARED_SECRET": secret,
        "JWT_SECRET_KEY": fresh_secrets()["jwt_secret_key"],
        "DEV_MODE": "false",
        "QUEUE_POLL_SECONDS": "0.1",
        "NODE_HEARTBEAT_SECONDS": "0.5",
        "VISIBILITY_TIMEOUT": "60",
        "USER_RATE_LIMIT_PER_MINUTE": "0",
    }


@pytest.fixture
def processes() -> Iterator[list[BrainProcess]]:
    started: list[BrainProcess] = []
    yield started
    for proc in started:
        proc.stop()


async def start_process(
    processes: list[BrainProcess], env: dict[str, str], log: Path
) -> BrainProcess:
    proc = BrainProcess(env, log_path=log).start()
    processes.append(proc)
    await proc.wait_healthy()
    return proc


@pytest.mark.parametrize("store_backend", ["sqlite"])
async def test_brain_killed_mid_answer_link_reconnects_and_gets_one_answer(
    fake_ollama: Any,
    store_factory: Any,
    processes: list[BrainProcess],
    links: LinkFactory,
    tmp_path: Path,
) -> None:
    fake_ollama.script.default = Reply(text=ANSWER, tokens_per_second=20)
    secret = fresh_secrets()["relay_shared_secret"]
    env = brain_env(fake_ollama, store_factory.env(), secret)
    brain = await start_process(processes, env, tmp_path / "a.log")
    link = links(ws_url(brain.url), secret)
    await link.start()
    handler = Recorder()
    await link.submit(request("crash-1", "t-crash"), handler)
    await asyncio.wait_for(handler.first_delta.wait(), WAIT_SECONDS)

    brain.kill()
    await wait_until(lambda: link.state is not LinkState.CONNECTED)
    await start_process(processes, env, tmp_path / "a2.log")

    done = await handler.terminal()
    assert isinstance(done, DoneFrame) and done.text == ANSWER, brain.log_tail()
    assert len(handler.terminals()) == 1
    assert_shown_text_never_wrong(handler.frames, ANSWER)
    assert link.reconnects == 1 and link.state is LinkState.CONNECTED
    history = await ConversationStore(store_factory.open()).messages("t-crash", 100)
    assert sorted((m.role, m.message_id) for m in history) == [
        ("assistant", "crash-1:assistant"),
        ("user", "crash-1:user"),
    ]


# ------------------------------------------------------------ limits and control


async def test_link_full_past_max_pending(links: LinkFactory) -> None:
    link = links(f"ws://127.0.0.1:{free_port()}/ws/discord", "s" * 32, max_pending=2)
    await link.start()
    for rid in ("p1", "p2"):
        await link.submit(request(rid), Recorder())
    with pytest.raises(ValueError, match="already pending"):
        await link.submit(request("p1"), Recorder())
    with pytest.raises(LinkFull) as refused:
        await link.submit(request("p3"), Recorder())
    assert "restarts" in refused.value.message
    assert link.pending() == 2
    await link.stop()
    assert link.pending() == 0 and link.state is LinkState.CLOSED


def is_position(frame: ServerFrame) -> bool:
    """The answer to a position frame for a running request."""
    return isinstance(frame, StatusFrame) and frame.position == 0 and frame.route is None


async def test_position_and_cancel_while_connected(
    brain: Brain, links: LinkFactory, fake_ollama: Any
) -> None:
    long_answer = " ".join(f"slow{i}" for i in range(200))
    fake_ollama.script.add(Reply(text=long_answer, tokens_per_second=20), model=MODEL)
    link = links(ws_url(brain.url), brain.secret)
    await link.start()
    handler = Recorder()
    await link.submit(request("stop-me"), handler)
    await asyncio.wait_for(handler.first_delta.wait(), WAIT_SECONDS)

    seen = len(handler.frames)
    await link.position("stop-me")
    await wait_until(lambda: any(is_position(f) for f in handler.frames[seen:]))
    await link.cancel("stop-me")
    error = await handler.terminal()
    assert isinstance(error, ErrorFrame) and error.code is ErrorCode.CANCELLED
    assert not any(isinstance(f, DoneFrame) for f in handler.frames)
    await wait_until(lambda: link.pending() == 0)


async def test_cancel_while_disconnected_is_sent_after_the_request(
    fake_ollama: Any, tmp_path: Path, links: LinkFactory
) -> None:
    fake_ollama.script.add(Reply(text=ANSWER, ttft_seconds=2.0), model=MODEL)
    port = free_port()
    secret = fresh_secrets()["relay_shared_secret"]
    link = links(f"ws://127.0.0.1:{port}/ws/discord", secret)
    await link.start()
    handler = Recorder()
    await link.submit(request("late-cancel"), handler)
    await link.cancel("late-cancel")
    await link.position("late-cancel")  # nothing to send it on: a no-op
    async with brain_on_port(fake_ollama, tmp_path, port, secret):
        error = await handler.terminal()
    assert isinstance(error, ErrorFrame) and error.code is ErrorCode.CANCELLED
    assert isinstance(handler.frames[0], AcceptedFrame)


async def test_state_machine_refuses_illegal_moves() -> None:
    states: list[LinkState] = []
    link = BrainLink("ws://127.0.0.1:1/ws/discord", "s" * 32, max_pending=1, on_state=states.append)
    assert link.state is LinkState.DISCONNECTED
    await link.stop()
    assert states == [LinkState.CLOSED]
    with pytest.raises(LinkStateError, match="closed"):
        await link.start()
    with pytest.raises(LinkStateError, match="closed"):
        await link.submit(request("r"), Recorder())
    with pytest.raises(LinkStateError, match="Cannot go from closed to connecting"):
        await link._set_state(LinkState.CONNECTING)
    with pytest.raises(ValueError, match="ws://"):
        BrainLink("http://example.com/ws/discord", "s" * 32, max_pending=1)


def test_deltas_out_of_sequence_are_held_back_until_an_attempt_starts() -> None:
    entry = _Pending(request("seq"), Recorder(), asyncio.Queue())

    def delta(seq: int) -> DeltaFrame:
        return DeltaFrame(request_id="seq", seq=seq, text=f"t{seq} ")

    assert _admit(entry, delta(0)) == [delta(0)]
    assert _admit(entry, delta(1)) == [delta(1)]
    assert _admit(entry, delta(1)) == []  # a duplicate
    entry.next_seq = None  # as after a reconnect
    assert _admit(entry, delta(5)) == []  # mid-attempt: its start was missed
    restarted = _admit(entry, delta(0))  # a new attempt whose retrying status was missed
    assert [type(f) for f in restarted] == [StatusFrame, DeltaFrame]
    assert isinstance(restarted[0], StatusFrame) and restarted[0].status is StatusKind.RETRYING
    assert _admit(entry, delta(2)) == []  # a gap: wait for the next attempt or done
    assert _admit(entry, delta(3)) == []
    done = DoneFrame(request_id="seq", text="whole")
    assert _admit(entry, done) == [done] and entry.finished
