"""The relay's WebSocket: the whole path of a message through a real brain."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from trollama.common.protocol import AcceptedFrame, DoneFrame, ErrorFrame, StatusFrame
from trollama.testkit.brain import BrainClient, final_text
from trollama.testkit.script import Reply

ROUTER_PHRASE = "Answer with exactly one route name"


def request(request_id: str, content: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "request",
        "request_id": request_id,
        "user_id": extra.pop("user_id", "u1"),
        "user_name": "Ada",
        "conversation_id": extra.pop("conversation_id", "thread-1"),
        "content": content,
        **extra,
    }


async def test_message_streams_back_complete_answer(brain: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="MATH"), system_contains=ROUTER_PHRASE)
    fake_ollama.script.add(Reply(text="x = 2 or x = -2, by factoring."), model="rnj-1:8b")
    async with brain.relay() as client:
        await client.send(request("m1", "solve x^2 = 4"))
        frames = await client.until_terminal("m1")
    accepted = frames[0]
    assert isinstance(accepted, AcceptedFrame) and not accepted.duplicate
    done = frames[-1]
    assert isinstance(done, DoneFrame)
    assert done.text == "x = 2 or x = -2, by factoring."
    assert final_text(frames) == done.text
    assert (done.route, done.model) == ("MATH", "rnj-1:8b")
    assert done.usage.completion_tokens > 0
    item = await brain.services.queue.get("m1")
    assert item.route == "MATH" and item.route_latency_ms is not None


async def test_think_tags_never_reach_the_user(brain: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="SELF_HANDLE"), system_contains=ROUTER_PHRASE)
    fake_ollama.script.add(Reply(text="<think>secret plan</think>Hello there!"))
    async with brain.relay() as client:
        await client.send(request("t1", "hi"))
        frames = await client.until_terminal("t1")
    wire = " ".join(f.model_dump_json() for f in frames)
    assert "secret plan" not in wire and "<think>" not in wire
    assert frames[-1].text == "Hello there!"  # type: ignore[union-attr]
    assert any(isinstance(f, StatusFrame) and f.status == "thinking" for f in frames)


async def test_history_carries_previous_turns(brain: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(
        Reply(text="Nice to meet you, Ada."), model="gpt-oss:20b", user_contains="I am Ada"
    )
    fake_ollama.script.add(
        Reply(text="You are Ada."), model="gpt-oss:20b", user_contains="who am I"
    )
    async with brain.relay() as client:
        for rid, text in (("h1", "I am Ada"), ("h2", "who am I")):
            await client.send(request(rid, text, model_override="gpt-oss:20b"))
            await client.until_terminal(rid)
    last_chat = [r for r in fake_ollama.requests if r.path == "/api/chat"][-1].body
    contents = [m["content"] for m in last_chat["messages"]]
    assert "I am Ada" in contents and "Nice to meet you, Ada." in contents
    assert contents[-1] == "who am I"


async def test_duplicate_request_id_replays_stored_answer(brain: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="only once"), model="gpt-oss:20b")
    async with brain.relay() as client:
        await client.send(request("d1", "hello", model_override="gpt-oss:20b"))
        await client.until_terminal("d1")
        chats_before = sum(1 for r in fake_ollama.requests if r.path == "/api/chat")
        await client.send(request("d1", "hello", model_override="gpt-oss:20b"))
        frames = await client.until_terminal("d1")
    assert isinstance(frames[0], AcceptedFrame) and frames[0].duplicate
    assert isinstance(frames[-1], DoneFrame) and frames[-1].text == "only once"
    assert sum(1 for r in fake_ollama.requests if r.path == "/api/chat") == chats_before
    history = await brain.services.conversations.messages("thread-1", 50)
    assert [m.role for m in history] == ["user", "assistant"]


async def test_cancel_running_request_stops_model_stream(brain: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="word " * 400, tokens_per_second=20), model="gpt-oss:20b")
    async with brain.relay() as client:
        await client.send(request("c1", "write a lot", model_override="gpt-oss:20b"))
        while True:
            frame = await client.recv()
            if frame.type == "delta":
                break
        await client.send({"type": "cancel", "request_id": "c1"})
        frames = await client.until_terminal("c1")
    assert isinstance(frames[-1], ErrorFrame) and frames[-1].code == "cancelled"
    for _ in range(50):
        if fake_ollama.client_disconnects:
            break
        await asyncio.sleep(0.02)
    assert fake_ollama.client_disconnects >= 1
    assert (await brain.services.queue.get("c1")).state == "cancelled"


async def test_position_query_and_unknown_ids(brain: Any) -> None:
    async with brain.relay() as client:
        await client.send({"type": "position", "request_id": "nope"})
        frame = await client.recv()
        await client.send({"type": "cancel", "request_id": "nope"})
        cancel = await client.recv()
    assert isinstance(frame, ErrorFrame) and frame.code == "not_found"
    assert isinstance(cancel, ErrorFrame) and cancel.code == "not_found"


@pytest.mark.parametrize(
    ("raw", "expect"),
    [
        ("{not json", "invalid frame"),
        (json.dumps({"type": "launch_missiles"}), "type"),
        (json.dumps({"type": "request", "request_id": "x"}), "content"),
        (json.dumps(request("big", "x" * 100_000)), "content"),
        (json.dumps(request("bad id; DROP TABLE", "hi")), "request_id"),
        (b"\x00\x01\x02binary", "binary"),
        (
            json.dumps(
                request(
                    "att",
                    "see file",
                    attachments=[
                        {
                            "filename": "a.txt",
                            "content_type": "text/plain",
                            "size_bytes": 3,
                            "data_b64": "%%% not base64 %%%",
                        }
                    ],
                )
            ),
            "base64",
        ),
    ],
    ids=["bad-json", "unknown-type", "missing-fields", "100kB", "hostile-id", "binary", "bad-b64"],
)
async def test_bad_frames_get_clear_errors_and_connection_survives(
    brain: Any, fake_ollama: Any, raw: str | bytes, expect: str
) -> None:
    fake_ollama.script.add(Reply(text="still here"), model="gpt-oss:20b")
    async with brain.relay() as client:
        await client.send(raw)
        error = await client.recv()
        assert isinstance(error, ErrorFrame) and error.code == "invalid_frame"
        assert expect in error.message
        assert "DROP TABLE" not in error.message and "xxxxxxxx" not in error.message
        await client.send(request("after", "ping", model_override="gpt-oss:20b"))
        frames = await client.until_terminal("after")
    assert frames[-1].text == "still here"  # type: ignore[union-attr]


async def test_empty_message_is_refused_clearly(brain: Any) -> None:
    async with brain.relay() as client:
        await client.send(request("e1", "   "))
        frame = await client.recv()
    assert isinstance(frame, ErrorFrame) and "empty" in frame.message
    assert await brain.services.queue.get("e1") is None


async def test_unicode_and_injection_text_round_trips(brain: Any, fake_ollama: Any) -> None:
    hostile = "🦙 ñ 中文 '; DROP TABLE users; -- {{7*7}} <script>alert(1)</script> \u202e"
    fake_ollama.script.add(Reply(text=hostile), model="gpt-oss:20b")
    async with brain.relay() as client:
        await client.send(request("u1", hostile, model_override="gpt-oss:20b"))
        frames = await client.until_terminal("u1")
    assert frames[-1].text == hostile  # type: ignore[union-attr]
    history = await brain.services.conversations.messages("thread-1", 10)
    assert history[0].content == hostile


async def test_wrong_secret_is_refused_and_closed(brain: Any) -> None:
    async with BrainClient.connect(brain.url, "wrong-secret") as client:
        frame = await client.recv()
        assert isinstance(frame, ErrorFrame) and frame.code == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_user_token_cannot_use_relay_socket_but_can_chat(
    brain: Any, fake_ollama: Any
) -> None:
    fake_ollama.script.add(Reply(text="hi user"), model="gpt-oss:20b")
    token = brain.token("web-user")
    async with BrainClient.connect(brain.url, token) as client:
        frame = await client.recv()
        assert isinstance(frame, ErrorFrame) and frame.code == "unauthorized"
    async with BrainClient.connect(brain.url, token, path="/ws/chat") as client:
        await client.send(
            request("w1", "hello", user_id="someone-else", model_override="gpt-oss:20b")
        )
        frames = await client.until_terminal("w1")
    assert frames[-1].text == "hi user"  # type: ignore[union-attr]
    assert (await brain.services.queue.get("w1")).user_id == "web-user"


async def test_expired_token_is_refused(brain: Any) -> None:
    async with BrainClient.connect(brain.url, brain.token("late", ttl=-10), path="/ws/chat") as c:
        frame = await c.recv()
    assert isinstance(frame, ErrorFrame) and "expired" in frame.message


async def test_two_users_at_once_both_answered(brain: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="for alice", tokens_per_second=200), user_contains="alice")
    fake_ollama.script.add(Reply(text="for bob", tokens_per_second=200), user_contains="bob")
    async with brain.relay() as a, brain.relay() as b:
        await a.send(
            request(
                "a1",
                "alice here",
                user_id="alice",
                conversation_id="ta",
                model_override="gpt-oss:20b",
            )
        )
        await b.send(
            request(
                "b1", "bob here", user_id="bob", conversation_id="tb", model_override="gpt-oss:20b"
            )
        )
        fa, fb = await asyncio.gather(a.until_terminal("a1"), b.until_terminal("b1"))
    assert fa[-1].text == "for alice" and fb[-1].text == "for bob"  # type: ignore[union-attr]


async def test_tool_route_reports_tool_use_and_answers(brain: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="RESEARCH"), system_contains=ROUTER_PHRASE)
    fake_ollama.script.add(Reply(text="The clock says it is late."), tool_result_contains="T")
    fake_ollama.script.add(Reply.calling(("current_time", {})), model="gpt-oss:20b")
    async with brain.relay() as client:
        await client.send(request("tool1", "research what time it is right now"))
        frames = await client.until_terminal("tool1")
    done = frames[-1]
    assert isinstance(done, DoneFrame) and done.route == "RESEARCH"
    assert done.text == "The clock says it is late."
    tools = [f for f in frames if isinstance(f, StatusFrame) and f.status == "tool"]
    assert tools and "current_time" in tools[0].message


async def test_store_failure_is_a_clear_error_and_the_connection_survives(brain: Any) -> None:
    await brain.services.store.close()  # every store call now fails
    async with brain.relay() as client:
        await client.send(request("s1", "hello"))
        error = await client.recv()
        await client.send({"type": "ping"})
        pong = await client.recv()
    assert isinstance(error, ErrorFrame) and error.retryable
    assert "storage is unavailable" in error.message
    assert pong.type == "pong"
    import httpx

    async with httpx.AsyncClient(base_url=brain.url) as http:
        health = await http.get("/health")
        chat = await http.post(
            "/api/chat",
            json={"content": "hi"},
            headers={"Authorization": f"Bearer {brain.token('a')}"},
        )
    assert (
        health.status_code == 503 and health.json()["components"]["store"]["status"] == "unhealthy"
    )
    assert chat.status_code == 503 and "storage is unavailable" in chat.json()["detail"]


async def test_text_attachment_reaches_the_model(brain: Any, fake_ollama: Any) -> None:
    import base64

    fake_ollama.script.add(Reply(text="I read it."), model="gpt-oss:20b")
    body = base64.b64encode(b"line one\nline two").decode()
    attachment = {
        "filename": "notes.txt",
        "content_type": "text/plain",
        "size_bytes": 17,
        "data_b64": body,
    }
    async with brain.relay() as client:
        await client.send(
            request(
                "a1", "summarize my notes", attachments=[attachment], model_override="gpt-oss:20b"
            )
        )
        frames = await client.until_terminal("a1")
    assert frames[-1].text == "I read it."  # type: ignore[union-attr]
    prompt = fake_ollama.requests_to("/api/chat")[-1].body["messages"][-1]["content"]
    assert "[notes.txt]" in prompt and "line two" in prompt
