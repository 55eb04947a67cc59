"""Custom emotes: offered to the model by name, rendered as Discord emoji in answers."""

from __future__ import annotations

from typing import Any

import pytest

from trollama.relay.emotes import EmoteSink, fitting, render_emotes
from trollama.relay.splitting import DISCORD_MESSAGE_LIMIT
from trollama.testkit.script import Reply

EMOTES = {"trollface": "<:trollface:111>", "party": "<a:party:222>"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hi :trollface:!", "hi <:trollface:111>!"),
        (":party::trollface:", "<a:party:222><:trollface:111>"),
        (
            "already <:trollface:111> and <a:party:222>",
            "already <:trollface:111> and <a:party:222>",
        ),
        (":unknown: stays", ":unknown: stays"),
        ("time 12:30:45", "time 12:30:45"),
        ("`:trollface:` inline code", "`:trollface:` inline code"),
        ("```\n:trollface:\n```\nthen :trollface:", "```\n:trollface:\n```\nthen <:trollface:111>"),
        ("```py\n:party: (an unclosed block)", "```py\n:party: (an unclosed block)"),
        ("no emotes at all", "no emotes at all"),
    ],
)
def test_render_emotes(text: str, expected: str) -> None:
    assert render_emotes(text, EMOTES) == expected


def test_a_render_that_would_pass_discords_limit_keeps_the_text() -> None:
    text = "x" * (DISCORD_MESSAGE_LIMIT - 11) + ":trollface:"
    assert fitting(text, EMOTES) == text
    assert fitting("a :trollface:", EMOTES) == "a <:trollface:111>"


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, content: str) -> int:
        self.sent.append(content)
        return len(self.sent)

    async def edit(self, handle: int, content: str) -> None:
        self.sent[handle - 1] = content

    async def upload(self, filename: str, data: bytes) -> None:
        self.sent.append(filename)


async def test_the_sink_renders_sends_and_edits() -> None:
    recorder = _Recorder()
    sink = EmoteSink(recorder, EMOTES)
    handle = await sink.send(":party")
    await sink.edit(handle, ":party: time")
    await sink.upload(":party:.txt", b"")
    assert recorder.sent == ["<a:party:222> time", ":party:.txt"]


async def test_an_answer_shows_the_servers_emote(stack: Any, fake_ollama: Any) -> None:
    fake_ollama.script.add(Reply(text="Behold :trollface: and `:trollface:`"), user_contains="hi")
    fake = stack.discord
    message = await fake.user_message(fake.general.id, fake.alice, "hi", mentions_bot=True)
    await fake.wait_for(lambda: "✅" in fake.current_reactions(message.id), timeout=20)
    thread = fake.threads()[0]
    answers = [m.content for m in fake.messages(thread.id) if m.author_id == fake.bot_user.id]
    assert answers == [f"Behold <:trollface:{fake.emoji.id}> and `:trollface:`"]
    item = await stack.brain.queue.get(str(message.id))
    assert item.request.emojis == ["trollface"]
