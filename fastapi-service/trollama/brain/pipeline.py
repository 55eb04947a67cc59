"""The worker pipeline: lease → route → context → model stream → done.

Each of ``concurrency`` workers leases the next request in fair order and
answers it, publishing frames to the :class:`~.hub.StreamHub` as they happen.
Every prompt carries the persona layers (:mod:`.persona.prompt`), read from
the store for that request; after a completed answer the user's profile and
relationship are updated once (a failure there never fails the answer).
A request's turns enter the conversation history only once it completes
(idempotently, keyed by the request id), so a retried or crashed attempt never
leaves half a turn behind and never answers twice in its conversation.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field

from trollama.brain.backends.base import BackendError, ChatMessage, StreamChunk
from trollama.brain.backends.registry import BackendRegistry
from trollama.brain.context.builder import ContextBuilder
from trollama.brain.context.history import ConversationStore, StoredMessage
from trollama.brain.context.think import ThinkFilter
from trollama.brain.context.tokens import count_tokens
from trollama.brain.hub import StreamHub
from trollama.brain.metrics import BrainMetrics
from trollama.brain.persona.bundle import Persona
from trollama.brain.persona.prompt import PersonaPrompt, PromptBudgets, join_layers
from trollama.brain.persona.tone import assess
from trollama.brain.preferences import UserPreferences
from trollama.brain.queue import ItemState, LeaseLost, QueueItem, RequestQueue
from trollama.brain.routing.classifier import RouteDecision, Router
from trollama.brain.routing.profiles import Profile
from trollama.brain.routing.prompt_files import system_prompt_for
from trollama.brain.routing.routes import Route
from trollama.common.logging import request_id_var
from trollama.common.protocol import (
    DeltaFrame,
    DoneFrame,
    ErrorCode,
    ErrorFrame,
    RequestFrame,
    StatusFrame,
    StatusKind,
    Usage,
)

log = logging.getLogger(__name__)

#: Seconds between two looks at a running request's stored state (remote cancel).
CANCEL_POLL_SECONDS = 0.5
#: Tools offered on the tool routes.
ROUTE_TOOLS = ("current_time", "calculate")
#: Largest text attachment inlined into the prompt, in characters.
MAX_INLINE_ATTACHMENT_CHARS = 20_000
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
CANCELLED_MESSAGE = "Request cancelled."
#: Longest a piece of answer text waits to be sent with the next ones, in seconds.
DELTA_COALESCE_SECONDS = 0.05
#: Longest each profile or relationship update after an answer may take, in seconds.
PERSONA_UPDATE_TIMEOUT_SECONDS = 5.0


@dataclass
class Answer:
    text: str
    model: str
    usage: Usage
    route: str | None = None


class Pipeline:
    def __init__(
        self,
        *,
        queue: RequestQueue,
        hub: StreamHub,
        router: Router,
        builder: ContextBuilder,
        conversations: ConversationStore,
        backends: BackendRegistry,
        profile: Profile,
        preferences: UserPreferences,
        persona: Persona,
        prompt_budgets: PromptBudgets,
        fallback_model: str | None,
        concurrency: int,
        poll_seconds: float,
        visibility_timeout: float,
        metrics: BrainMetrics | None = None,
    ) -> None:
        self.queue = queue
        self.hub = hub
        self.router = router
        self.builder = builder
        self.conversations = conversations
        self.backends = backends
        self.profile = profile
        self.preferences = preferences
        self.persona = persona
        self.persona_prompt = PersonaPrompt(persona, prompt_budgets)
        self.fallback_model = fallback_model
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.extend_every = max(1.0, visibility_timeout / 3)
        self.metrics = metrics or BrainMetrics(profile.models)
        self._dispatcher: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        recovered = await self.queue.recover()
        if recovered:
            log.info("re-queued requests interrupted by the last stop", extra={"count": recovered})
        self._dispatcher = asyncio.create_task(self._dispatch(), name="dispatcher")

    async def stop(self) -> None:
        """Stop leasing and cancel running requests; they stay leased and are
        recovered at the next start (or taken over by another brain)."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
            self._dispatcher = None
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    @property
    def running(self) -> int:
        return len(self._running)

    def cancel_local(self, request_id: str) -> bool:
        """Stop a request running in this process; True when it was running here."""
        task = self._running.get(request_id)
        if task is None:
            return False
        self._cancelled.add(request_id)
        task.cancel()
        return True

    async def _dispatch(self) -> None:
        """One leaser per process: take the next request whenever a slot is free.

        A single dispatcher (rather than one polling loop per worker slot)
        keeps idle capacity from hammering the store with empty scans."""
        slots = asyncio.Semaphore(self.concurrency)
        while True:
            await slots.acquire()
            item = await self._next_item()
            task = asyncio.create_task(self._process(item), name=f"request-{item.request_id}")
            self._running[item.request_id] = task
            task.add_done_callback(functools.partial(self._done, item.request_id, slots))

    def _done(self, request_id: str, slots: asyncio.Semaphore, task: asyncio.Task[None]) -> None:
        self._running.pop(request_id, None)
        self._cancelled.discard(request_id)
        slots.release()
        if not task.cancelled() and task.exception() is not None:
            # e.g. the store failed while recording the outcome: the item stays
            # leased and is retried once its visibility timeout expires.
            log.error(
                "request could not be settled",
                exc_info=task.exception(),
                extra={"request_id": request_id},  # callbacks run outside the request
            )

    async def _next_item(self) -> QueueItem:
        while True:
            try:
                item = await self.queue.lease()
            except Exception:
                log.exception("leasing failed; retrying shortly")
                item = None
            if item is not None:
                self._observe_wait(item)
                return item
            await self.queue.wait_for_work(self.poll_seconds)

    def _observe_wait(self, item: QueueItem) -> None:
        """Record how long a request waited for its first lease (a retry's wait
        would include its earlier attempts, so it is not a queue wait)."""
        if item.attempts == 1 and item.started_at is not None:
            self.metrics.queue_wait.observe(max(item.started_at - item.enqueued_at, 0.0))

    # ------------------------------------------------------------ one request

    async def _process(self, item: QueueItem) -> None:
        request_id_var.set(item.request_id)
        watchdog = asyncio.create_task(self._watch(item, asyncio.current_task()))
        try:
            if item.attempts > 1:
                self._status(item, StatusKind.RETRYING, "Retrying your request…")
            answer = await self._answer(item)
        except asyncio.CancelledError:
            if item.request_id not in self._cancelled:
                raise  # shutting down: the lease is recovered at the next start
            await self._finish_cancelled(item)
        except LeaseLost:
            log.warning("lease lost; another brain owns this request now")
        except BackendError as exc:
            await self._finish_failed(item, exc, retryable=exc.retryable)
        except Exception as exc:
            log.exception("request failed")
            await self._finish_failed(item, exc, retryable=True)
        else:
            await self._finish_done(item, answer)
        finally:
            watchdog.cancel()

    async def _watch(self, item: QueueItem, task: asyncio.Task[None] | None) -> None:
        """Keep the lease alive and notice a cancel made through another brain."""
        last_extend = time.monotonic()
        while task is not None:
            await asyncio.sleep(CANCEL_POLL_SECONDS)
            try:
                if time.monotonic() - last_extend >= self.extend_every:
                    current = await self.queue.extend(item)
                    last_extend = time.monotonic()
                else:
                    current = await self.queue.get(item.request_id) or item
            except LeaseLost:
                task.cancel()
                return
            except Exception:
                log.warning("could not check the request's state", exc_info=True)
                continue
            if current.cancel_requested:
                self.cancel_local(item.request_id)
                return

    async def _answer(self, item: QueueItem) -> Answer:
        request = item.request
        self._status(item, StatusKind.ROUTING, "Choosing a model…")
        override = request.model_override or await self.preferences.model(request.user_id)
        decision = await self.router.route(
            request.content,
            has_images=any(a.content_type in IMAGE_TYPES for a in request.attachments),
            model_override=override,
        )
        await self.queue.annotate(
            item,
            route=str(decision.route),
            model=decision.model,
            route_latency_ms=decision.latency_ms,
        )
        messages = await self._prompt(request, decision.route)
        answer = await self._generate(item, decision, messages)
        answer.route = str(decision.route)
        return answer

    async def _prompt(self, request: RequestFrame, route: Route) -> tuple[ChatMessage, ...]:
        """Route prompt + persona layers (+ summary), then the thread's history, or
        the channel's last 24 hours when the conversation has none yet."""
        layers = await self.persona_prompt.system_layers(request)
        context = await self.builder.build(
            request.conversation_id,
            join_layers(system_prompt_for(route), layers),
            user_message(request),
        )
        if context.history_messages or context.summary is not None:
            return context.messages
        channel = await self.persona_prompt.channel_layer(request)
        return with_system_suffix(context.messages, channel)

    async def _generate(
        self, item: QueueItem, decision: RouteDecision, messages: Sequence[ChatMessage]
    ) -> Answer:
        candidates = [decision.model]
        if self.fallback_model and self.fallback_model != decision.model:
            candidates.append(self.fallback_model)
        for index, model in enumerate(candidates):
            streamed = _Progress()
            try:
                return await self._stream_model(item, decision.route, model, messages, streamed)
            except BackendError as exc:
                self.metrics.model_error(model, exc)
                if streamed.any_text or index == len(candidates) - 1:
                    raise
                log.warning("model failed; trying the fallback", extra={"model": model})
                self._status(item, StatusKind.RETRYING, f"{model} is unavailable; trying another.")
        raise AssertionError("unreachable")

    async def _stream_model(
        self,
        item: QueueItem,
        route: Route,
        model: str,
        messages: Sequence[ChatMessage],
        progress: _Progress,
    ) -> Answer:
        self._status(item, StatusKind.GENERATING, "", route=str(route), model=model)
        think = ThinkFilter()
        parts: list[str] = []
        usage = Usage()
        async for chunk in self._chunks(route, model, messages):
            visible, thinking = think.feed(chunk.text)
            if (thinking or chunk.thinking) and not progress.announced_thinking:
                progress.announced_thinking = True
                self._status(item, StatusKind.THINKING, "Thinking…")
            if chunk.tool:
                self._flush(item, progress)
                self._status(item, StatusKind.TOOL, f"Using {chunk.tool}…")
            self._delta(item, visible, parts, progress)
            if chunk.done:
                usage = Usage(
                    prompt_tokens=chunk.prompt_tokens, completion_tokens=chunk.completion_tokens
                )
        visible, _ = think.flush()
        self._delta(item, visible, parts, progress)
        self._flush(item, progress)
        return Answer(text="".join(parts), model=model, usage=usage)

    def _chunks(
        self, route: Route, model: str, messages: Sequence[ChatMessage]
    ) -> AsyncIterator[StreamChunk]:
        backend = self.backends.backend_for(model)
        if route.uses_tools and self._supports_tools(model):
            return backend.stream_with_tools(model, messages, ROUTE_TOOLS)
        return backend.stream_chat(model, messages)

    def _supports_tools(self, model: str) -> bool:
        return self.profile.has_model(model) and self.profile.spec(model).capabilities.tools

    # ------------------------------------------------------------ endings

    async def _finish_done(self, item: QueueItem, answer: Answer) -> None:
        request = item.request
        await self._remember(request, answer)
        done = DoneFrame(
            request_id=item.request_id,
            text=answer.text,
            route=answer.route,
            model=answer.model,
            usage=answer.usage,
        )
        try:
            await self.queue.complete(item, done.model_dump(mode="json"))
        except LeaseLost:
            log.warning("finished after losing the lease; the other brain's answer stands")
            return
        # only after the one successful complete: a retry never counts twice
        self.metrics.outcome("done")
        self.metrics.observe_usage(answer.route, answer.model, answer.usage)
        await self._after_answer(request)
        self.hub.publish(done)

    async def _after_answer(self, request: RequestFrame) -> None:
        """Record the name the user was seen under and move the relationship by
        the message's tone. Only numbers and the user's name are written here,
        never anything the message asks for."""
        persona = self.persona
        await _logged_failure(
            "profile update", persona.profiles.seen(request.user_id, request.user_name)
        )
        await _logged_failure(
            "relationship update",
            persona.relationships.nudge(request.user_id, assess(request.content)),
        )

    async def _remember(self, request: RequestFrame, answer: Answer) -> None:
        now = time.time()
        turns = (
            ("user", request.content, request.user_id),
            ("assistant", answer.text, "assistant"),
        )
        for offset, (role, content, author) in enumerate(turns):
            await self.conversations.append(
                request.conversation_id,
                StoredMessage(
                    message_id=f"{request.request_id}:{role}",
                    role=role,
                    content=content,
                    user_id=author,
                    created_at=now + offset * 1e-3,
                    tokens=count_tokens(content),
                    request_id=request.request_id,
                ),
            )

    async def _finish_failed(self, item: QueueItem, exc: Exception, *, retryable: bool) -> None:
        message = str(exc) if isinstance(exc, BackendError) else "The assistant hit an error."
        error = ErrorFrame(
            request_id=item.request_id, code=ErrorCode.FAILED, message=message, retryable=False
        )
        try:
            after = await self.queue.fail(item, error.model_dump(mode="json"), retryable=retryable)
        except LeaseLost:
            return
        if after.state is ItemState.QUEUED:
            self._status(item, StatusKind.RETRYING, f"{message} Retrying…")
            self.queue.wake()
        else:
            self.metrics.outcome("failed")
            self.hub.publish(error)

    async def _finish_cancelled(self, item: QueueItem) -> None:
        error = ErrorFrame(
            request_id=item.request_id, code=ErrorCode.CANCELLED, message=CANCELLED_MESSAGE
        )
        with contextlib.suppress(LeaseLost):
            await self.queue.mark_cancelled(item)
        self.metrics.outcome("cancelled")
        self.hub.publish(error)

    # ------------------------------------------------------------ frames

    def _status(
        self,
        item: QueueItem,
        status: StatusKind,
        message: str,
        *,
        route: str | None = None,
        model: str | None = None,
    ) -> None:
        self.hub.publish(
            StatusFrame(
                request_id=item.request_id,
                status=status,
                message=message,
                route=route,
                model=model,
            )
        )

    def _delta(self, item: QueueItem, text: str, parts: list[str], progress: _Progress) -> None:
        """Record answer text; the first piece goes out at once, later ones are
        coalesced for :data:`DELTA_COALESCE_SECONDS` (fewer frames, same text)."""
        if not text:
            return
        parts.append(text)
        progress.pending.append(text)
        progress.any_text = True
        if progress.seq == 0 or time.monotonic() - progress.flushed_at >= DELTA_COALESCE_SECONDS:
            self._flush(item, progress)

    def _flush(self, item: QueueItem, progress: _Progress) -> None:
        if not progress.pending:
            return
        text = "".join(progress.pending)
        progress.pending.clear()
        progress.flushed_at = time.monotonic()
        self.hub.publish(DeltaFrame(request_id=item.request_id, seq=progress.seq, text=text))
        progress.seq += 1


@dataclass
class _Progress:
    seq: int = 0
    any_text: bool = False
    announced_thinking: bool = False
    pending: list[str] = field(default_factory=list)
    flushed_at: float = 0.0


async def _logged_failure(what: str, update: Awaitable[object]) -> None:
    """Run a persona update; a failure or timeout is logged, never raised."""
    try:
        async with asyncio.timeout(PERSONA_UPDATE_TIMEOUT_SECONDS):
            await update
    except Exception:
        log.warning("%s failed; the answer stands", what, exc_info=True)


def with_system_suffix(messages: Sequence[ChatMessage], suffix: str) -> tuple[ChatMessage, ...]:
    """``messages`` with ``suffix`` appended to the leading system message (one
    system message, since some chat templates keep only the first)."""
    if not suffix or not messages or messages[0].role != "system":
        return tuple(messages)
    first = messages[0]
    return (ChatMessage(role="system", content=join_layers(first.content, suffix)), *messages[1:])


def user_message(request: RequestFrame) -> ChatMessage:
    """The user's turn: text attachments inlined, images passed to vision models."""
    text = request.content
    images: list[str] = []
    for attachment in request.attachments:
        if attachment.content_type in IMAGE_TYPES and attachment.data_b64:
            images.append(attachment.data_b64)
        elif attachment.content_type.startswith("text/") and attachment.data_b64:
            body = base64.b64decode(attachment.data_b64).decode("utf-8", errors="replace")
            text += f"\n\n[{attachment.filename}]\n{body[:MAX_INLINE_ATTACHMENT_CHARS]}"
    return ChatMessage(role="user", content=text, images=tuple(images))
