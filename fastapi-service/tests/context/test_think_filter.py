"""The think filter hides reasoning however the stream is split."""

from __future__ import annotations

import random
import re

import pytest

from trollama.brain.context.think import MAX_PENDING_CHARS, ThinkFilter, strip_think

SPLITS_PER_TEXT = 200
SEED = 20261121

# An independent definition of the expected output: a block runs from an
# opening tag to the next closing tag (or the end), and stray closing tags go.
_BLOCK = re.compile(r"<think(?:ing)?>.*?(?:</think(?:ing)?>|\Z)", re.IGNORECASE | re.DOTALL)
_STRAY_CLOSE = re.compile(r"</think(?:ing)?>", re.IGNORECASE)


def expected_visible(text: str) -> str:
    return _STRAY_CLOSE.sub("", _BLOCK.sub("", text))


SAMPLES = [
    "plain answer with no tags",
    "<think>step 1, step 2</think>The answer is 4.",
    "Before <think>hidden</think> middle <thinking>also hidden</thinking> after",
    "<THINK>Shouting</THINK>visible",
    "a < b and c > d, <thin ice>, <thinker>, </thin>",
    "<think>nested <think> still hidden</think> shown </think> shown too",
    "reasoning that the template opened</think>\n\nFinal answer",
    "answer then <think>never closed, never shown",
    "ends with a partial tag <thi",
    "ends with a partial close <think>secret</thin",
    "emoji 🧠 and CJK 思考 <think>内心</think>答え",
    "<<think>>x</think>>",
    "",
]


def random_cuts(rng: random.Random, text: str) -> list[int]:
    if len(text) < 2:
        return []
    return sorted(rng.sample(range(1, len(text)), rng.randint(0, len(text) - 1)))


def feed_in_pieces(text: str, cuts: list[int]) -> tuple[str, str]:
    think_filter = ThinkFilter()
    visible: list[str] = []
    thinking: list[str] = []
    for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True):
        out = think_filter.feed(text[start:end])
        visible.append(out.visible)
        thinking.append(out.thinking)
    last = think_filter.flush()
    return "".join(visible) + last.visible, "".join(thinking) + last.thinking


@pytest.mark.parametrize("text", SAMPLES)
def test_random_splits_show_exactly_the_text_without_think_blocks(text: str) -> None:
    rng = random.Random(f"{SEED}:{text}")
    expected = expected_visible(text)
    for _ in range(SPLITS_PER_TEXT):
        cuts = random_cuts(rng, text)
        visible, _ = feed_in_pieces(text, cuts)
        assert visible == expected, cuts


@pytest.mark.parametrize("text", SAMPLES)
def test_whole_text_stripping_agrees(text: str) -> None:
    assert strip_think(text) == expected_visible(text)


def test_random_generated_texts() -> None:
    rng = random.Random(SEED)
    alphabet = [
        "a",
        " ",
        "<",
        ">",
        "/",
        "think",
        "<think>",
        "</think>",
        "<thinking>",
        "</thinking>",
    ]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        cuts = random_cuts(rng, text)
        assert feed_in_pieces(text, cuts)[0] == expected_visible(text), (text, cuts)


def test_a_tag_split_across_chunks_is_recognised() -> None:
    think_filter = ThinkFilter()
    assert think_filter.feed("Hello <thi") == ("Hello ", "")
    assert think_filter.feed("nk>secret") == ("", "secret")
    assert think_filter.in_think
    assert think_filter.feed("</th") == ("", "")
    assert think_filter.feed("ink> world") == (" world", "")
    assert think_filter.flush() == ("", "")


def test_thinking_text_is_returned_separately() -> None:
    visible, thinking = feed_in_pieces("<think>a plan</think>done", [3, 9, 15])
    assert (visible, thinking) == ("done", "a plan")


def test_an_unclosed_block_is_never_shown() -> None:
    think_filter = ThinkFilter()
    assert think_filter.feed("ok <think>half a thou").visible == "ok "
    assert think_filter.flush() == ("", "")
    assert strip_think("ok <think>half a thought") == "ok "


def test_only_an_unfinished_tag_is_held_back() -> None:
    think_filter = ThinkFilter()
    assert think_filter.feed("x <").visible == "x "
    assert think_filter.feed("b").visible == "<b"
    assert think_filter.feed("</thinking").visible == ""
    assert think_filter.flush() == ("</thinking", "")
    assert len("</thinking>") - 1 == MAX_PENDING_CHARS


def test_flush_resets_for_the_next_stream() -> None:
    think_filter = ThinkFilter()
    think_filter.feed("<think>open")
    think_filter.flush()
    assert think_filter.feed("fresh").visible == "fresh"
