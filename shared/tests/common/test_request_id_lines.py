"""One request's log lines, in the relay's link and in the brain, share its request id."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trollama.brain.services import build_services
from trollama.common.logging import JsonFormatter, request_id_var
from trollama.common.protocol import DoneFrame, ErrorFrame, RequestFrame, ServerFrame
from trollama.common.store.sqlite import SqliteStore
from trollama.relay.brain_link import BrainLink
from trollama.testkit.brain import brain_settings, serve_brain
from trollama.testkit.script import Reply

#: The Discord message id the relay uses as the request id.
MESSAGE_ID = "1187654321098765432"
#: Seconds the test waits for the answer.
ANSWER_TIMEOUT_SECONDS = 20.0
MODEL = "gpt-oss:20b"


class Capture(logging.Handler):
    """Keeps every record as the JSON line a service would write (or ship)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.formatter_ = JsonFormatter("test")
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.formatter_.format(record)))


@pytest.fixture
def captured() -> Iterator[Capture]:
    capture = Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture)
    root.setLevel(level)


async def relay_submit(url: str, secret: str, request: RequestFrame) -> ServerFrame:
    """What the relay does for one Discord message: set the id, submit over the link."""
    link = BrainLink(url.replace("http://", "ws://") + "/ws/discord", secret, max_pending=4)
    await link.start()
    finished: asyncio.Future[ServerFrame] = asyncio.get_running_loop().create_future()

    async def on_frame(frame: ServerFrame) -> None:
        logging.getLogger("trollama.relay.test").info("relay got a %s frame", frame.type)
        if isinstance(frame, DoneFrame | ErrorFrame) and not finished.done():
            finished.set_result(frame)

    request_id_var.set(request.request_id)  # as Conversations._submit_batch does
    try:
        await link.submit(request, on_frame)
        return await asyncio.wait_for(finished, ANSWER_TIMEOUT_SECONDS)
    finally:
        await link.stop()


async def test_relay_and_brain_lines_share_the_request_id(
    fake_ollama: Any, tmp_path: Path, captured: Capture
) -> None:
    fake_ollama.script.add(Reply(text="Traced."), model=MODEL)
    settings = brain_settings(ollama_host=fake_ollama.url)
    services = build_services(settings, store=SqliteStore(tmp_path / "brain.db"))
    request = RequestFrame(
        request_id=MESSAGE_ID,
        user_id="42",
        user_name="Ada",
        conversation_id="thread-7",
        content="hello",
        model_override=MODEL,
    )
    async with serve_brain(services) as url:
        secret = settings.relay_shared_secret.get_secret_value()
        answer = await asyncio.create_task(relay_submit(url, secret, request))
    assert isinstance(answer, DoneFrame)

    # The link's own connection lines belong to no request; every line written
    # while handling this request's frames carries its id.
    handled = [line for line in captured.lines if line["logger"] == "trollama.relay.test"]
    assert len(handled) >= 2, "the relay handled no frames"
    assert {line.get("request_id") for line in handled} == {MESSAGE_ID}
    relay = [line for line in captured.lines if line["logger"].startswith("trollama.relay")]
    assert {line.get("request_id") for line in relay} <= {MESSAGE_ID, None}
    brain = [line for line in captured.lines if line["logger"].startswith("trollama.brain")]
    ours = [line for line in brain if line.get("request_id") == MESSAGE_ID]
    assert ours, f"no brain line carried the request id: {brain}"
    others = {line.get("request_id") for line in brain} - {MESSAGE_ID, None}
    assert not others, f"brain lines carried another request's id: {others}"
