"""Splitting answers into Discord messages: limits, preferred break points, code fences."""

from __future__ import annotations

import itertools
import random
import re
import unicodedata
from dataclasses import dataclass, field

import pytest

from trollama.relay.splitting import (
    DISCORD_MESSAGE_LIMIT,
    MESSAGE_LIMIT,
    MIN_SPLIT_LIMIT,
    Part,
    split_message,
    split_parts,
)

# The test's own reading of fences (CommonMark's rule), independent of the module's.
FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})(.*)")


def open_fence_after(text: str) -> str | None:
    """The marker of the code block left open at the end of ``text``."""
    marker: str | None = None
    for line in text.split("\n"):
        match = FENCE.fullmatch(line.rstrip("\r"))
        if marker is None:
            if match and not (match[1][0] == "`" and "`" in match[2]):
                marker = match[1]
        elif match and not match[2].strip() and match[1].startswith(marker):
            marker = None
    return marker


def check_parts(text: str, parts: list[Part], limit: int) -> None:
    assert "".join(part.body for part in parts) == text
    for part in parts:
        assert len(part.text) <= limit
        assert part.text == part.reopen + part.body + part.close
        assert open_fence_after(part.text) is None, part.text
    for before, after in itertools.pairwise(parts):
        assert bool(before.close) == bool(after.reopen)
        if after.reopen:
            assert after.reopen.strip().startswith(before.close.strip())
    messages = split_message(text, limit)
    assert messages == [part.text for part in parts if part.text.strip()]


# ---------------------------------------------------------------- examples


def test_short_text_is_one_message() -> None:
    assert split_message("Hello **world**") == ["Hello **world**"]
    assert split_message("") == []
    assert split_message(" \n\n ") == []


def test_limit_constants() -> None:
    assert DISCORD_MESSAGE_LIMIT == 2000
    assert MIN_SPLIT_LIMIT <= MESSAGE_LIMIT < DISCORD_MESSAGE_LIMIT
    with pytest.raises(ValueError, match="at least"):
        split_message("x", limit=MIN_SPLIT_LIMIT - 1)


def test_paragraph_boundary_is_preferred_over_a_later_line_break() -> None:
    first = "A" * 150 + "\n\n"
    second = "line one\n" * 10 + "B" * 150
    parts = split_message(first + second, limit=250)
    assert parts[0] == first


def test_line_boundary_is_preferred_over_spaces() -> None:
    text = "word " * 30 + "\n" + "more " * 30
    parts = split_message(text, limit=200)
    assert parts[0] == "word " * 30 + "\n"


def test_spaces_before_hard_cuts() -> None:
    text = " ".join(["abcdefghi"] * 60)
    parts = split_message(text, limit=200)
    assert all(part.endswith(" ") for part in parts[:-1])
    assert "".join(parts) == text


def test_hard_cut_as_last_resort() -> None:
    text = "x" * 450
    parts = split_message(text, limit=200)
    assert [len(part) for part in parts] == [200, 200, 50]


def test_code_block_that_fits_is_never_split() -> None:
    prose = "Some words here. " * 8 + "\n\n"
    block = "```python\n" + "print('hello')\n" * 10 + "```\n"
    parts = split_message(prose + block + "\nAfter.", limit=220)
    assert any(block in part for part in parts)


def test_long_code_block_is_closed_and_reopened_with_its_language() -> None:
    block = "```python\n" + "".join(f"value_{i} = {i}\n" for i in range(100)) + "```"
    parts = split_parts("Intro.\n\n" + block, limit=300)
    check_parts("Intro.\n\n" + block, parts, 300)
    code_parts = [part for part in parts if "value_" in part.text]
    assert len(code_parts) >= 5
    for part in code_parts:
        assert part.text.startswith("```python\n")
        assert part.text.endswith("```")
    assert parts[1].reopen == ""  # the first piece carries the original opening line
    assert all(part.reopen == "```python\n" for part in code_parts[1:])


def test_code_line_longer_than_a_message_is_cut_inside_the_block() -> None:
    block = "```js\n" + "let a = 1; " * 60 + "\n```"
    parts = split_parts(block, limit=250)
    check_parts(block, parts, 250)
    assert parts[0].close == "\n```"
    assert parts[1].reopen == "```js\n"


def test_tilde_fences_and_nested_backtick_fences() -> None:
    inner = "```\nnot a closing fence for ~~~\n```\n"
    block = "~~~markdown\n" + inner * 20 + "~~~\n"
    parts = split_parts(block, limit=200)
    check_parts(block, parts, 200)
    assert all(part.text.startswith("~~~markdown\n") for part in parts)
    four = "````text\n" + "```\n" * 80 + "````\n"
    parts = split_parts(four, limit=200)
    check_parts(four, parts, 200)
    assert all(part.text.rstrip().endswith("````") for part in parts)


def test_inline_code_with_backticks_is_not_a_fence() -> None:
    text = "```` ``` ```` opens a fence.\n" + "Plain prose line.\n" * 30
    parts = split_parts(text, limit=200)
    check_parts(text, parts, 200)
    assert all(part.reopen == "" and part.close == "" for part in parts)


def test_unclosed_block_at_the_end_is_closed() -> None:
    """While streaming, the text often stops inside a code block."""
    parts = split_parts("Look:\n```py\nprint(1)\n", limit=200)
    assert [part.text for part in parts] == ["Look:\n```py\nprint(1)\n```"]
    parts = split_parts("```py", limit=200)
    assert [part.text for part in parts] == ["```py\n```"]


def test_combining_marks_and_emoji_sequences_stay_whole() -> None:
    family = "👨\u200d👩\u200d👧"
    accented = "e\u0301"
    text = (family + accented + "🇫🇷" + "👍🏽") * 60
    parts = split_message(text, limit=200)
    assert "".join(parts) == text
    offset = 0
    for part in parts[:-1]:
        offset += len(part)
        following = text[offset]
        assert unicodedata.category(following) not in {"Mn", "Me"}
        assert not part.endswith("\u200d")
        assert following not in "\u200d\U0001f3fd"
    assert all(part.count("🇫🇷") * 2 == part.count("🇫") + part.count("🇷") for part in parts)


def test_five_thousand_character_answer_with_several_code_blocks() -> None:
    text = five_thousand_character_answer()
    assert 5000 <= len(text) <= 5500
    parts = split_parts(text)
    check_parts(text, parts, MESSAGE_LIMIT)
    assert len(parts) >= 3
    small_blocks = [b for b in re.findall(r"```\w*\n.*?```\n", text, re.S) if len(b) < 400]
    for block in small_blocks:
        assert any(block in part.text for part in parts)


def five_thousand_character_answer() -> str:
    sections = []
    for i in range(7):
        sections.append(f"## Step {i}\n\n" + f"This step explains part {i} of the solution. " * 4)
        code = "".join(f"    result_{i}_{j} = compute({j})  # ünïcödé ✓\n" for j in range(6))
        sections.append(f"```python\ndef step_{i}():\n{code}    return result\n```\n")
    sections.append("```bash\n" + "echo 'a long script line'\n" * 64 + "```\n")
    sections.append("That's all — hope it helps! 🎉")
    return "\n".join(sections)


# ---------------------------------------------------------------- property


@dataclass
class Generated:
    text: str = ""
    blocks: list[tuple[int, int]] = field(default_factory=list)  # spans of whole code blocks


WORDS = [
    "the",
    "naïve",
    "日本語",
    "e\u0301t\u0301e\u0301",
    "👍🏽",
    "🇫🇷",
    "👨\u200d👩\u200d👧",
    "x²",
]
INLINE = ["`code`", "`` a ` b ``", "```` ``` ````", "**bold**", "~~gone~~", "a~~~b"]


def prose(rng: random.Random) -> str:
    words = [rng.choice(WORDS + INLINE + ["word"] * 10) for _ in range(rng.randint(1, 120))]
    if rng.random() < 0.1:
        words.append("y" * rng.randint(200, 900))  # a "word" longer than a message
    return " ".join(words)


def code_block(rng: random.Random) -> str:
    marker = rng.choice(["```", "```", "~~~", "````"])
    lang = rng.choice(["python", "js", "", "c++", "rust"])
    lines = []
    for _ in range(rng.randint(1, 80)):
        kind = rng.random()
        if kind < 0.1:
            lines.append("")
        elif kind < 0.15 and marker != "```":
            lines.append("```")  # not a closing fence for this block
        elif kind < 0.2:
            lines.append("z = '" + "q " * rng.randint(50, 250) + "'")
        else:
            lines.append("    " * rng.randint(0, 3) + f"value = {rng.randint(0, 999)}  # ✓")
    return f"{marker}{lang}\n" + "\n".join(lines) + f"\n{marker}\n"


def random_answer(rng: random.Random) -> Generated:
    out = Generated()
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.4:
            block = code_block(rng)
            out.blocks.append((len(out.text), len(out.text) + len(block)))
            out.text += block
        else:
            out.text += prose(rng) + rng.choice(["\n\n", "\n", "\r\n", "\n- item\n"])
    if rng.random() < 0.3:
        out.text += "```python\nunfinished = True"  # a stream cut inside a block
    return out


@pytest.mark.parametrize("seed", range(8))
def test_random_answers_keep_their_content_and_fences(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        answer = random_answer(rng)
        limit = rng.choice([MIN_SPLIT_LIMIT, 350, 800, MESSAGE_LIMIT])
        parts = split_parts(answer.text, limit)
        check_parts(answer.text, parts, limit)
        ends = {0}
        for part in parts:
            ends.add(max(ends) + len(part.body))
        for start, end in answer.blocks:
            if end - start <= limit:  # a block that fits is never split
                assert not any(start < cut < end for cut in ends), (start, end, sorted(ends))
