"""Token estimates are offline, monotone and err on the high side."""

from __future__ import annotations

from trollama.brain.backends.base import ChatMessage
from trollama.brain.context.tokens import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD_TOKENS,
    count_message_tokens,
    count_tokens,
)


def test_empty_text_has_no_tokens() -> None:
    assert count_tokens("") == 0


def test_ascii_text_is_about_four_characters_a_token() -> None:
    assert count_tokens("abcdefgh" * 100) == 200
    assert count_tokens("abc") == 1


def test_short_words_never_count_less_than_one_token_each() -> None:
    assert count_tokens("a b c d e f g h") == 8


def test_non_ascii_characters_count_one_token_each() -> None:
    assert count_tokens("思考思考") == 4
    assert count_tokens("🧠🧠") == 2
    assert count_tokens("caf\u00e9 ok") == 2 + 1


def test_longer_text_never_counts_fewer_tokens() -> None:
    text = "The quick brown fox jumps over the lazy dog. 思考 🧠 "
    counts = [count_tokens(text[:n]) for n in range(len(text) + 1)]
    assert counts == sorted(counts)


def test_messages_add_overhead_and_images() -> None:
    messages = [
        ChatMessage(role="system", content="abcd"),
        ChatMessage(role="user", content="abcdefgh", images=("aGk=",)),
    ]
    expected = 1 + 2 + 2 * MESSAGE_OVERHEAD_TOKENS + IMAGE_TOKENS
    assert count_message_tokens(messages) == expected
