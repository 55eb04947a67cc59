"""Summarize older conversation messages with the profile's summarization model."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from trollama.brain.backends.base import (
    BackendError,
    ChatMessage,
    GenerationOptions,
    ModelBackend,
)
from trollama.brain.context.history import StoredMessage
from trollama.brain.context.think import strip_think

logger = logging.getLogger(__name__)

SUMMARIZE_PROMPT_PATH = Path(__file__).with_name("prompts") / "summarize.md"
#: Characters of one message shown to the summarizer (longer ones are cut).
MAX_CHARS_PER_MESSAGE = 4_000
#: Characters of transcript sent in one call; the oldest lines go first.
MAX_TRANSCRIPT_CHARS = 48_000
#: Tokens the summarizer may generate.
SUMMARY_MAX_TOKENS = 1_024
#: Longest summary kept, in characters.
MAX_SUMMARY_CHARS = 8_000
SUMMARY_TEMPERATURE = 0.2
_TILDE_RUN = re.compile(r"~+")

BackendFor = Callable[[str], ModelBackend]


class SummarizerError(Exception):
    """The summary could not be made (timeout, model error, empty answer)."""


class Summarizer:
    """Folds messages into a running summary through :meth:`ModelBackend.complete`."""

    def __init__(
        self,
        backend_for: BackendFor,
        model: str,
        timeout_seconds: float,
        *,
        prompt_path: Path = SUMMARIZE_PROMPT_PATH,
    ) -> None:
        self._backend_for = backend_for
        self.model = model
        self._timeout_seconds = timeout_seconds
        self._prompt = prompt_path.read_text(encoding="utf-8").strip()

    async def summarize(self, messages: Sequence[StoredMessage], previous: str | None) -> str:
        """``previous`` updated with ``messages``; raises :class:`SummarizerError`."""
        chat = [
            ChatMessage(role="system", content=self._prompt),
            ChatMessage(role="user", content=_request_text(messages, previous)),
        ]
        options = GenerationOptions(temperature=SUMMARY_TEMPERATURE, max_tokens=SUMMARY_MAX_TOKENS)
        try:
            async with asyncio.timeout(self._timeout_seconds):
                answer = await self._backend_for(self.model).complete(
                    self.model, chat, options=options
                )
        except TimeoutError:
            raise SummarizerError(f"timed out after {self._timeout_seconds:g} s") from None
        except BackendError as exc:
            raise SummarizerError(f"model failed: {exc}") from exc
        except Exception as exc:  # the caller falls back; never crash a request
            logger.exception("summarizer failed unexpectedly")
            raise SummarizerError(f"failed: {type(exc).__name__}") from exc
        text = strip_think(answer).strip()[:MAX_SUMMARY_CHARS]
        if not text:
            raise SummarizerError("the model returned no summary")
        return text


def _request_text(messages: Sequence[StoredMessage], previous: str | None) -> str:
    earlier = previous or "(none yet)"
    transcript = _transcript(messages)
    runs = _TILDE_RUN.findall(earlier + "\n" + transcript)
    fence = "~" * max(3, 1 + max((len(run) for run in runs), default=0))
    return (
        f"Earlier summary:\n{fence}\n{earlier}\n{fence}\n\n"
        f"Newer messages:\n{fence}\n{transcript}\n{fence}\n\n"
        "Summarize the conversation: write the updated summary now."
    )


def _transcript(messages: Sequence[StoredMessage]) -> str:
    lines = [f"{m.role}: {_clip(m.content)}" for m in messages]
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line) + 1
        if size > MAX_TRANSCRIPT_CHARS:
            kept.append("[earlier messages omitted]")
            break
        kept.append(line)
    return "\n".join(reversed(kept))


def _clip(text: str) -> str:
    if len(text) <= MAX_CHARS_PER_MESSAGE:
        return text
    return text[:MAX_CHARS_PER_MESSAGE] + " […]"
