"""Offline token estimates.

No tokenizer can be downloaded here, and each model family tokenizes
differently anyway, so counts are estimates that err on the high side:

* ASCII text: about :data:`ASCII_CHARS_PER_TOKEN` characters per token (the
  usual figure for English and code with BPE tokenizers);
* other characters (CJK, emoji, most accented letters): one token each, since
  BPE vocabularies split them into one or more byte-level tokens;
* never fewer tokens than whitespace-separated words;
* each chat message adds :data:`MESSAGE_OVERHEAD_TOKENS` for its role and
  separators, and each image :data:`IMAGE_TOKENS`.

Budgets and the summarization threshold use these numbers; the model
server's own counts (``prompt_eval_count``) are what gets billed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Protocol

#: Average ASCII characters per token.
ASCII_CHARS_PER_TOKEN = 4
#: Tokens per chat message for its role marker and separators.
MESSAGE_OVERHEAD_TOKENS = 4
#: Tokens one attached image costs a vision model (a typical tile budget).
IMAGE_TOKENS = 768


class HasContent(Protocol):
    @property
    def content(self) -> str: ...


def count_tokens(text: str) -> int:
    """Estimated tokens of ``text`` (0 for empty text)."""
    if not text:
        return 0
    non_ascii = 0 if text.isascii() else sum(1 for ch in text if ord(ch) > 0x7F)
    estimate = math.ceil((len(text) - non_ascii) / ASCII_CHARS_PER_TOKEN) + non_ascii
    return max(estimate, len(text.split()))


def count_message_tokens(messages: Iterable[HasContent]) -> int:
    """Estimated tokens of a chat: contents plus per-message and per-image overhead."""
    total = 0
    for message in messages:
        images = getattr(message, "images", ())
        total += count_tokens(message.content) + MESSAGE_OVERHEAD_TOKENS
        total += IMAGE_TOKENS * len(images)
    return total
