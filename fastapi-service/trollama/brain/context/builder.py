"""Build the chat a model sees for one request.

The messages are, in order:

1. one system message: the route's system prompt, followed by
   "Summary of the earlier conversation: …" when the thread has a summary
   (one system message, since some chat templates keep only the first);
2. the stored messages the summary does not cover, verbatim;
3. the new user message.

When the uncovered history exceeds ``summary_threshold_tokens``, everything
but its last ``keep_last_messages`` messages is folded into the summary (one
model call), and the summary remembers the last message it covers. If that
call fails, the request goes on with only the last messages (logged): a
summarizer failure never fails the user's request.

Append the user turn to the history after :meth:`ContextBuilder.build`. On a
retry whose user turn was already stored, the stored copy is not repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from trollama.brain.backends.base import ChatMessage
from trollama.brain.context.history import ConversationStore, StoredMessage, Summary
from trollama.brain.context.summarizer import Summarizer, SummarizerError
from trollama.brain.context.tokens import (
    MESSAGE_OVERHEAD_TOKENS,
    count_message_tokens,
    count_tokens,
)

logger = logging.getLogger(__name__)

SUMMARY_HEADING = "Summary of the earlier conversation: "


@dataclass(frozen=True)
class BuiltContext:
    """The chat for the model, with estimated token counts."""

    messages: tuple[ChatMessage, ...]
    #: Estimated tokens of all messages.
    prompt_tokens: int
    #: Estimated tokens of the verbatim history.
    history_tokens: int
    #: Estimated tokens of the summary text (0 without one).
    summary_tokens: int
    #: Stored messages included verbatim.
    history_messages: int
    summary: str | None
    #: A new summary was made while building.
    summarized: bool
    #: The summarizer failed, so older messages were left out.
    truncated: bool


@dataclass(frozen=True)
class SummarizeResult:
    """What ``/summarize`` did."""

    #: The conversation's summary now (None when there is nothing at all).
    summary: str | None
    #: Messages folded in by this call; 0 means there was nothing new to summarize.
    new_messages: int

    @property
    def nothing_to_summarize(self) -> bool:
        return self.new_messages == 0


def message_tokens(message: StoredMessage) -> int:
    """The stored count when known, else an estimate, plus the message overhead."""
    return (message.tokens or count_tokens(message.content)) + MESSAGE_OVERHEAD_TOKENS


class ContextBuilder:
    """Assembles prompts from history and keeps each thread's summary current."""

    def __init__(
        self,
        conversations: ConversationStore,
        summarizer: Summarizer,
        *,
        summary_threshold_tokens: int,
        keep_last_messages: int,
    ) -> None:
        self._conversations = conversations
        self._summarizer = summarizer
        self._threshold = summary_threshold_tokens
        self._keep = max(0, keep_last_messages)

    async def build(
        self, conversation_id: str, system_prompt: str, user_message: ChatMessage
    ) -> BuiltContext:
        """The messages for the model: system prompt (+ summary), history, new message."""
        summary = await self._conversations.summary(conversation_id)
        pending = _not_repeated(await self._uncovered(conversation_id, summary), user_message)
        summarized = truncated = False
        if self._over_threshold(pending):
            older, pending = (
                pending[: len(pending) - self._keep],
                pending[len(pending) - self._keep :],
            )
            try:
                summary = await self._fold(conversation_id, summary, older)
                summarized = True
            except SummarizerError as exc:
                logger.warning(
                    "summary of %s failed (%s); using the last %d messages",
                    conversation_id,
                    exc,
                    len(pending),
                )
                truncated = True
        return _assemble(system_prompt, summary, pending, user_message, summarized, truncated)

    async def summarize_now(self, conversation_id: str) -> SummarizeResult:
        """Fold every message not yet summarized into the summary (``/summarize``).

        Raises :class:`SummarizerError` when the model fails: the user asked."""
        summary = await self._conversations.summary(conversation_id)
        pending = await self._uncovered(conversation_id, summary)
        if not pending:
            return SummarizeResult(summary.text if summary else None, 0)
        updated = await self._fold(conversation_id, summary, pending)
        return SummarizeResult(updated.text, len(pending))

    async def _uncovered(
        self, conversation_id: str, summary: Summary | None
    ) -> list[StoredMessage]:
        history = await self._conversations.messages(conversation_id)
        if summary is None:
            return history
        return [m for m in history if m.sort_key > summary.last_message_key]

    def _over_threshold(self, pending: Sequence[StoredMessage]) -> bool:
        if len(pending) <= self._keep:
            return False
        return sum(message_tokens(m) for m in pending) > self._threshold

    async def _fold(
        self, conversation_id: str, previous: Summary | None, older: Sequence[StoredMessage]
    ) -> Summary:
        text = await self._summarizer.summarize(older, previous.text if previous else None)
        summary = Summary(
            text=text,
            last_message_id=older[-1].message_id,
            last_message_key=older[-1].sort_key,
            message_count=(previous.message_count if previous else 0) + len(older),
            tokens=count_tokens(text),
            model=self._summarizer.model,
        )
        await self._conversations.set_summary(conversation_id, summary)
        logger.info("summarized %d messages of %s", len(older), conversation_id)
        return summary


def _not_repeated(pending: list[StoredMessage], user_message: ChatMessage) -> list[StoredMessage]:
    """Drop a stored copy of the new user message (a retried request stored it already)."""
    last = pending[-1] if pending else None
    if last is not None and last.role == "user" and last.content == user_message.content:
        return pending[:-1]
    return pending


def _assemble(
    system_prompt: str,
    summary: Summary | None,
    history: Sequence[StoredMessage],
    user_message: ChatMessage,
    summarized: bool,
    truncated: bool,
) -> BuiltContext:
    system = system_prompt
    if summary is not None:
        system = f"{system_prompt}\n\n{SUMMARY_HEADING}{summary.text}"
    verbatim = [ChatMessage(role=m.role, content=m.content) for m in history]
    messages = (ChatMessage(role="system", content=system), *verbatim, user_message)
    return BuiltContext(
        messages=messages,
        prompt_tokens=count_message_tokens(messages),
        history_tokens=sum(message_tokens(m) for m in history),
        summary_tokens=count_tokens(summary.text) if summary else 0,
        history_messages=len(history),
        summary=summary.text if summary else None,
        summarized=summarized,
        truncated=truncated,
    )
