"""The router: decide the route and model of one message.

In order:

1. images attached → :attr:`Route.VISION` (no classifier call); a vision-capable
   per-user model override serves it, otherwise the profile's vision model;
2. a per-user model override that is a chat model of the profile → that model on
   :attr:`Route.SELF_HANDLE` (no classifier call);
3. otherwise the profile's router model classifies the message
   (``prompts/router.md``); its answer is parsed leniently;
4. a timeout, a model error or an answer naming no route → the configured
   default route, with the reason in :attr:`RouteDecision.error`.

Routing never raises for a model failure: the user always gets an answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from trollama.brain.backends.base import (
    BackendError,
    ChatMessage,
    GenerationOptions,
    ModelBackend,
)
from trollama.brain.context.think import strip_think
from trollama.brain.routing.profiles import Profile
from trollama.brain.routing.prompt_files import ROUTER_PROMPT_PATH, read_prompt
from trollama.brain.routing.routes import CLASSIFIER_ROUTES, Route

logger = logging.getLogger(__name__)

#: Characters of the user's message shown to the classifier (the start decides).
MAX_CLASSIFIED_CHARS = 4000
#: Tokens the router model may generate (reasoning models think first).
ROUTER_MAX_TOKENS = 512
#: Characters of the router's answer kept in a decision (for logs and metrics).
RAW_ANSWER_MAX_CHARS = 200
#: Characters of the router's answer searched for a route name.
MAX_PARSED_CHARS = 2000
#: Closing reminder after the fenced message; the fake model server keys on it.
ANSWER_INSTRUCTION = "Answer with exactly one route name."

DecisionSource = Literal["override", "vision", "classifier", "default"]
BackendFor = Callable[[str], ModelBackend]

_ROUTER_OPTIONS = GenerationOptions(temperature=0.0, max_tokens=ROUTER_MAX_TOKENS)
_BACKTICK_RUN = re.compile(r"`+")
_ROUTE_PATTERNS: tuple[tuple[Route, re.Pattern[str]], ...] = tuple(
    (
        route,
        re.compile(
            r"(?<![a-z0-9])" + r"[\s_-]*".join(route.value.split("_")) + r"(?![a-z0-9])",
            re.IGNORECASE,
        ),
    )
    for route in CLASSIFIER_ROUTES
)


class RouteDecision(BaseModel):
    """Where one message goes, and why."""

    model_config = ConfigDict(frozen=True)

    route: Route
    model: str
    source: DecisionSource
    #: Time spent deciding, in milliseconds (mostly the classifier call).
    latency_ms: float
    #: The classifier's answer, truncated to :data:`RAW_ANSWER_MAX_CHARS`.
    raw_answer: str = ""
    #: Why the default route was used (timeout, model error, unknown answer).
    error: str | None = None


def parse_route_answer(answer: str) -> Route | None:
    """The first route named in a classifier's answer, or None.

    Ignores ``<think>`` blocks, letter case, punctuation and surrounding words;
    accepts ``SIMPLE CODE`` and ``simple-code`` for ``SIMPLE_CODE``. VISION is
    never a classifier answer."""
    text = strip_think(answer)[:MAX_PARSED_CHARS]
    found = [
        (m.start(), route) for route, pattern in _ROUTE_PATTERNS if (m := pattern.search(text))
    ]
    return min(found)[1] if found else None


def classifier_messages(system_prompt: str, text: str) -> list[ChatMessage]:
    """The classifier's chat: instructions, then the message fenced as data."""
    excerpt = text[:MAX_CLASSIFIED_CHARS]
    longest_run = max((len(run) for run in _BACKTICK_RUN.findall(excerpt)), default=0)
    fence = "`" * max(3, longest_run + 1)
    user = f"Message to classify:\n{fence}text\n{excerpt}\n{fence}\n\n{ANSWER_INSTRUCTION}"
    return [
        ChatMessage(role="system", content=system_prompt),
        ChatMessage(role="user", content=user),
    ]


class Router:
    """Classifies messages with the profile's router model."""

    def __init__(
        self,
        backend_for: BackendFor,
        profile: Profile,
        *,
        default_route: Route,
        timeout_seconds: float,
        prompt_path: Path | None = None,
    ) -> None:
        self._backend_for = backend_for
        self._profile = profile
        self._default_route = default_route
        self._timeout_seconds = timeout_seconds
        self._prompt = read_prompt(prompt_path or ROUTER_PROMPT_PATH)

    async def route(
        self, text: str, *, has_images: bool = False, model_override: str | None = None
    ) -> RouteDecision:
        """Decide the route and model for ``text``; never raises for model failures."""
        started = time.perf_counter()
        override = self._usable_override(model_override)
        if has_images:
            decision = self._vision(override, started)
        elif override is not None:
            decision = self._decide(Route.SELF_HANDLE, "override", started, model=override)
        else:
            decision = await self._classify(text, started)
        logger.info(
            "routed to %s (%s) by %s in %.0f ms",
            decision.route,
            decision.model,
            decision.source,
            decision.latency_ms,
        )
        return decision

    def _usable_override(self, model: str | None) -> str | None:
        if model is None or model in self._profile.models:
            return model
        logger.warning("ignoring model override %r: no chat model of %r", model, self._profile.name)
        return None

    def _vision(self, override: str | None, started: float) -> RouteDecision:
        if override is not None and self._profile.spec(override).capabilities.vision:
            return self._decide(Route.VISION, "override", started, model=override)
        return self._decide(Route.VISION, "vision", started)

    async def _classify(self, text: str, started: float) -> RouteDecision:
        if not text.strip():
            return self._decide(self._default_route, "default", started)
        model = self._profile.router_model
        try:
            backend = self._backend_for(model)
            messages = classifier_messages(self._prompt, text)
            async with asyncio.timeout(self._timeout_seconds):
                answer = await backend.complete(model, messages, options=_ROUTER_OPTIONS)
        except TimeoutError:
            error = f"router model timed out after {self._timeout_seconds:g} s"
            return self._fallback(started, "", error)
        except BackendError as exc:
            return self._fallback(started, "", f"router model failed: {exc}")
        except Exception as exc:  # routing must never fail the request
            logger.exception("router failed unexpectedly")
            return self._fallback(started, "", f"router failed: {type(exc).__name__}")
        route = parse_route_answer(answer)
        if route is None:
            return self._fallback(started, answer, "router answer names no route")
        return self._decide(route, "classifier", started, raw=answer)

    def _fallback(self, started: float, raw: str, error: str) -> RouteDecision:
        logger.warning("routing to default %s: %s", self._default_route, error)
        return self._decide(self._default_route, "default", started, raw=raw, error=error)

    def _decide(
        self,
        route: Route,
        source: DecisionSource,
        started: float,
        *,
        model: str | None = None,
        raw: str = "",
        error: str | None = None,
    ) -> RouteDecision:
        return RouteDecision(
            route=route,
            model=model or self._profile.model_for(route),
            source=source,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            raw_answer=raw[:RAW_ANSWER_MAX_CHARS],
            error=error,
        )
