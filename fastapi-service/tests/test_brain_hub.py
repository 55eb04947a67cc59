"""The in-process fan-out keeps order, bounds buffers and always delivers the end."""

from __future__ import annotations

from trollama.brain.hub import SUBSCRIBER_BUFFER_FRAMES, StreamHub
from trollama.common.protocol import DeltaFrame, DoneFrame


async def test_frames_arrive_in_order_until_terminal() -> None:
    hub = StreamHub()
    sub = hub.subscribe("r1")
    for seq in range(3):
        hub.publish(DeltaFrame(request_id="r1", seq=seq, text=str(seq)))
    hub.publish(DeltaFrame(request_id="other", seq=0, text="not mine"))
    hub.publish(DoneFrame(request_id="r1", text="012"))
    frames = [f async for f in sub.frames()]
    assert [f.type for f in frames] == ["delta", "delta", "delta", "done"]
    assert "".join(f.text for f in frames if isinstance(f, DeltaFrame)) == "012"


async def test_slow_subscriber_is_bounded_but_gets_the_answer() -> None:
    hub = StreamHub()
    sub = hub.subscribe("r1")
    for seq in range(SUBSCRIBER_BUFFER_FRAMES + 500):
        hub.publish(DeltaFrame(request_id="r1", seq=seq, text="x"))
    hub.publish(DoneFrame(request_id="r1", text="full answer"))
    frames = [f async for f in sub.frames()]
    assert sub.lagged
    assert len(frames) == SUBSCRIBER_BUFFER_FRAMES + 1
    assert isinstance(frames[-1], DoneFrame) and frames[-1].text == "full answer"


def test_closing_a_subscription_forgets_it() -> None:
    hub = StreamHub()
    sub = hub.subscribe("r1")
    assert hub.watching("r1") == 1
    sub.close()
    assert hub.watching("r1") == 0
