"""The scripting model shared by the fake model servers.

A :class:`ModelScript` is an ordered list of rules; the first rule that
matches a request decides the :class:`Reply`. When none matches, the
script's default reply is used, or — when there is none — the *demo
default*: a deterministic, clearly labelled simulated answer (and a keyword
route for the router's classification prompt).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

#: The phrase of the router's classification prompt that asks for one route.
ROUTE_PROMPT_PHRASE = "Answer with exactly one route name"
#: Characters of the user's question echoed back by the simulated answer.
ECHO_CHARS = 80
#: Rules one script holds at most (a script is test data, not a log).
MAX_RULES = 1000

_TOKEN_PATTERN = re.compile(r"\s+|\S+\s*")

#: Keyword routes of the demo default, tried in this order.
_ROUTE_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("COMPLEX_CODE", re.compile(r"\barchitecture\b|\bdesign (?:a|the) system\b|\bdistributed\b")),
    ("SIMPLE_CODE", re.compile(r"\bwrite a function\b|\bcode\b|\bscript\b|\bpython\b|\bbug\b")),
    ("MATH", re.compile(r"\bequations?\b|\bsolve\b|\bintegral\b|\bderivative\b")),
    ("RESEARCH", re.compile(r"\bresearch\b|\blatest\b|\bsearch\b|\bnews\b")),
    ("REASONING", re.compile(r"\bwhy\b|\banaly[sz]e\b|\bcompare\b|\btrade-?offs?\b")),
)
_DEFAULT_ROUTE = "SELF_HANDLE"


@dataclass(frozen=True)
class ToolCall:
    """A tool call the fake model makes instead of (or before) answering."""

    name: str
    arguments: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ScriptedError:
    """An HTTP error the fake returns instead of streaming.

    ``code`` is the OpenAI error code (``context_length_exceeded``...);
    the Ollama fake only uses ``status`` and ``message``."""

    status: int
    message: str
    code: str | None = None


@dataclass(frozen=True)
class Reply:
    """What the fake model answers to one request."""

    text: str = ""
    #: Text of the separate reasoning channel (Ollama ``thinking``,
    #: OpenAI-compatible ``reasoning_content``), streamed before ``text``.
    thinking: str = ""
    ttft_seconds: float = 0.0
    #: ``None`` streams as fast as the connection allows.
    tokens_per_second: float | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    error: ScriptedError | None = None
    #: Abort the connection after this many streamed tokens.
    disconnect_after_tokens: int | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None

    def __post_init__(self) -> None:
        # Accept plain ``(name, arguments)`` pairs as well as ToolCall values.
        calls = tuple(c if isinstance(c, ToolCall) else ToolCall(*c) for c in self.tool_calls)
        object.__setattr__(self, "tool_calls", calls)

    @classmethod
    def calling(cls, *calls: tuple[str, Mapping[str, object]], text: str = "") -> Reply:
        """A reply calling tools: ``Reply.calling(("calculate", {"expression": "2+2"}))``."""
        return cls(text=text, tool_calls=tuple(ToolCall(name, args) for name, args in calls))

    @classmethod
    def failing(cls, status: int, message: str, code: str | None = None) -> Reply:
        """A reply that is an HTTP error."""
        return cls(error=ScriptedError(status, message, code))


@dataclass(frozen=True)
class ChatView:
    """The parts of a chat request the script matches on."""

    model: str
    system: str = ""
    last_user: str = ""
    #: Content of the last message when it is a tool result, else ``None``.
    last_tool_result: str | None = None
    #: Rough prompt size in tokens (words), for the default token counts.
    prompt_tokens: int = 0


@dataclass
class Rule:
    """One scripted rule; every given condition must hold."""

    reply: Reply
    model: str | None = None
    user_contains: str | None = None
    system_contains: str | None = None
    tool_result_contains: str | None = None
    #: Apply only this many times, then the rule is skipped.
    times: int | None = None
    used: int = 0

    def matches(self, view: ChatView) -> bool:
        """True when this rule applies to ``view``."""
        if self.times is not None and self.used >= self.times:
            return False
        if self.model is not None and self.model != view.model:
            return False
        if self.user_contains is not None and self.user_contains not in view.last_user:
            return False
        if self.system_contains is not None and self.system_contains not in view.system:
            return False
        return self.tool_result_contains is None or (
            view.last_tool_result is not None and self.tool_result_contains in view.last_tool_result
        )


class ModelScript:
    """Ordered rules deciding the fake model's replies. Thread-safe."""

    def __init__(
        self,
        default: Reply | None = None,
        *,
        demo_ttft_seconds: float = 0.0,
        demo_tokens_per_second: float | None = None,
    ) -> None:
        self.default = default
        #: Pace of the demo default (used when no rule and no default apply).
        self.demo_ttft_seconds = demo_ttft_seconds
        self.demo_tokens_per_second = demo_tokens_per_second
        self._rules: list[Rule] = []
        self._lock = threading.Lock()

    def add(
        self,
        reply: Reply,
        *,
        model: str | None = None,
        user_contains: str | None = None,
        system_contains: str | None = None,
        tool_result_contains: str | None = None,
        times: int | None = None,
    ) -> ModelScript:
        """Append a rule (first match wins); returns the script for chaining."""
        rule = Rule(reply, model, user_contains, system_contains, tool_result_contains, times)
        with self._lock:
            if len(self._rules) >= MAX_RULES:
                raise ValueError(f"a script holds at most {MAX_RULES} rules")
            self._rules.append(rule)
        return self

    def clear(self) -> None:
        """Forget every rule (the default reply stays)."""
        with self._lock:
            self._rules.clear()

    def reply_for(self, view: ChatView) -> Reply:
        """The reply to the request described by ``view``."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(view):
                    rule.used += 1
                    return rule.reply
        if self.default is not None:
            return self.default
        return replace(
            demo_reply(view),
            ttft_seconds=self.demo_ttft_seconds,
            tokens_per_second=self.demo_tokens_per_second,
        )


def tokenize(text: str) -> list[str]:
    """Split text into streamable tokens: words with their trailing space."""
    return _TOKEN_PATTERN.findall(text)


def count_tokens(text: str) -> int:
    """A rough token count (words), used when a reply sets none."""
    return len(text.split())


def route_for(question: str) -> str:
    """The demo router's keyword route for ``question``."""
    lowered = question.lower()
    for route, pattern in _ROUTE_KEYWORDS:
        if pattern.search(lowered):
            return route
    return _DEFAULT_ROUTE


def demo_reply(view: ChatView) -> Reply:
    """The deterministic answer of the simulated model server."""
    if ROUTE_PROMPT_PHRASE in view.system:
        return Reply(text=route_for(view.last_user))
    label = f"[simulated model {view.model}]"
    if view.last_tool_result is not None:
        return Reply(text=f"{label} The tool returned: {_echo(view.last_tool_result)}")
    return Reply(
        text=(
            f"{label} This answer comes from the simulated model server, not a real model. "
            f"You asked: “{_echo(view.last_user)}”. "
            "A real model would answer here; the demo shows streaming, queueing and routing."
        )
    )


def _echo(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= ECHO_CHARS else flat[: ECHO_CHARS - 1] + "…"


def build_view(
    model: str, messages: Sequence[tuple[str, str]], extra_prompt_tokens: int = 0
) -> ChatView:
    """A :class:`ChatView` from ``(role, text)`` pairs in request order."""
    system = "\n".join(text for role, text in messages if role in ("system", "developer"))
    users = [text for role, text in messages if role == "user"]
    last_tool = messages[-1][1] if messages and messages[-1][0] == "tool" else None
    prompt_tokens = sum(count_tokens(text) for _, text in messages) + extra_prompt_tokens
    return ChatView(
        model=model,
        system=system,
        last_user=users[-1] if users else "",
        last_tool_result=last_tool,
        prompt_tokens=prompt_tokens,
    )
