"""The persona layers of the system prompt, read from the store at every request.

After the route's system prompt come, each from its template in
``templates/`` (plain text with ``{placeholders}``):

``persona``       the bot's identity: core traits, lore, facts & quirks;
``user``          who is talking: current name, earlier names;
``memories``      the most relevant memory facts (:mod:`.relevance`);
``relationship``  the relationship as tone guidance (:mod:`.tone`);
``mood``          the day's mood;
``emotes``        the server's custom emotes the bot may use as ``:name:``;
``channel``       the channel's last 24 hours, only when the conversation has
                  no history yet (a new thread, or a channel's first message).

A layer without data (no facts, no emotes, an empty channel) is left out,
and so is one whose template file is missing or empty; within a template, a
paragraph whose placeholders are all empty is left out. A layer whose data
cannot be read is left out and logged: the user still gets an answer.
Nothing is cached between requests, so an admin's change applies to the very
next reply.

Memory facts, names and channel messages are written by users, so they are
data: each item is flattened to one line (no newlines, no backticks, double
quotes turned single) and quoted, inside a block that says it is information,
never instructions.
"""

from __future__ import annotations

import asyncio
import logging
import string
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from trollama.brain.context.tokens import count_tokens
from trollama.brain.persona.bundle import Persona
from trollama.brain.persona.fact_index import FactIndex
from trollama.brain.persona.identity import IdentityEntry, IdentityKind
from trollama.brain.persona.message_log import SHORT_TERM_SECONDS, LoggedMessage
from trollama.brain.persona.mood import read_mood
from trollama.brain.persona.profiles import UserProfile
from trollama.brain.persona.relevance import relevant_facts
from trollama.brain.persona.tone import tone_guidance
from trollama.common.protocol import RequestFrame

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).with_name("templates")
#: Each layer and the placeholders its template may use.
LAYER_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "persona": frozenset({"traits", "lore", "quirks"}),
    "user": frozenset({"name", "earlier_names"}),
    "memories": frozenset({"name", "facts"}),
    "relationship": frozenset({"name", "guidance"}),
    "mood": frozenset({"mood"}),
    "emotes": frozenset({"emotes"}),
    "channel": frozenset({"transcript"}),
}
#: Longest user-written item (a fact, one channel message) in a prompt, in characters.
MAX_ITEM_CHARS = 600
#: Longest user or author name in a prompt, in characters.
MAX_NAME_CHARS = 64
#: Longest custom emote name, in characters (Discord's limit).
MAX_EMOTE_CHARS = 32
#: Earlier names of a user shown (the most recent).
MAX_EARLIER_NAMES = 5
#: How the user is called in a layer when no name is known.
UNNAMED_USER = "the user"
#: How the bot's own messages are labelled in a channel transcript.
BOT_AUTHOR = "you (the bot)"

_UNSAFE_CHARS = str.maketrans({"`": " ", '"': "'"})
_EMOTE_CHARS = frozenset(string.ascii_letters + string.digits + "_")


# ---------------------------------------------------------------- templates


class LayerTemplates:
    """The layer templates, read once (they are code, not data)."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        for layer, text in texts.items():
            unknown = placeholders(text) - LAYER_FIELDS.get(layer, frozenset())
            if unknown:
                raise ValueError(f"template {layer!r} uses unknown placeholders {sorted(unknown)}")
        self._texts = dict(texts)

    @classmethod
    def load(cls, directory: Path = TEMPLATES_DIR) -> LayerTemplates:
        """Every ``<layer>.md`` of ``directory``; a missing or empty file leaves its layer out."""
        texts: dict[str, str] = {}
        for layer in LAYER_FIELDS:
            path = directory / f"{layer}.md"
            text = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
            if text:
                texts[layer] = text
            else:
                log.info("prompt layer %s has no template; it is left out", layer)
        return cls(texts)

    def render(self, layer: str, **values: str) -> str:
        """The layer's text, or "" when it has no template or no values."""
        return fill(self._texts.get(layer, ""), values)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def fill(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{placeholders}``; paragraphs whose placeholders are all empty are
    left out, and the whole text when all of its placeholders are."""
    if not any(values.get(name) for name in placeholders(template)):
        return ""
    kept: list[str] = []
    for paragraph in template.split("\n\n"):
        names = placeholders(paragraph)
        if names and not any(values.get(name) for name in names):
            continue
        kept.append(paragraph.format_map({name: values.get(name, "") for name in names}))
    return "\n\n".join(kept).strip()


# ---------------------------------------------------------------- user data as data


def quoted(text: str, limit: int = MAX_ITEM_CHARS) -> str:
    """User-written text as one quoted line that cannot break out of its block."""
    return f'"{flat(text, limit)}"'


def flat(text: str, limit: int) -> str:
    """One line: whitespace (newlines included) collapsed, no backticks or double quotes."""
    line = " ".join(text.translate(_UNSAFE_CHARS).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def display_name(name: str) -> str:
    return flat(name, MAX_NAME_CHARS)


def emote_names(names: Iterable[str]) -> list[str]:
    """Valid custom emote names (letters, digits, ``_``), each once, in order."""
    seen: dict[str, None] = {}
    for name in names:
        clean = "".join(ch for ch in name if ch in _EMOTE_CHARS)[:MAX_EMOTE_CHARS]
        if clean:
            seen.setdefault(clean, None)
    return list(seen)


# ---------------------------------------------------------------- rendering


def identity_values(entries: Sequence[IdentityEntry]) -> dict[str, str]:
    def bullets(kind: IdentityKind) -> str:
        return "\n".join(f"- {e.text}" for e in entries if e.kind is kind)

    return {
        "traits": bullets(IdentityKind.TRAIT),
        "lore": bullets(IdentityKind.LORE),
        "quirks": bullets(IdentityKind.FACT),
    }


def earlier_names(profile: UserProfile | None, current: str) -> str:
    if profile is None:
        return ""
    names = [display_name(n.name) for n in reversed(profile.nicknames)]
    earlier = [n for n in dict.fromkeys(names) if n and n != current]
    return ", ".join(quoted(n) for n in earlier[:MAX_EARLIER_NAMES])


def transcript_line(message: LoggedMessage) -> str:
    at = datetime.fromtimestamp(message.created_at, UTC).strftime("%H:%M")
    author = BOT_AUTHOR if message.from_bot else quoted(message.author_name or message.author_id)
    return f"> [{at} UTC] {author}: {quoted(message.content)}"


def newest_within(lines: Sequence[str], budget_tokens: int) -> list[str]:
    """The newest lines (oldest first) whose tokens fit ``budget_tokens``."""
    kept: list[str] = []
    left = budget_tokens
    for line in reversed(lines):
        cost = count_tokens(line)
        if cost > left:
            break
        kept.append(line)
        left -= cost
    return kept[::-1]


def join_layers(*parts: str) -> str:
    """Prompt parts separated by blank lines; empty parts are left out."""
    return "\n\n".join(part for part in parts if part)


# ---------------------------------------------------------------- the layers


@dataclass(frozen=True)
class PromptBudgets:
    #: Tokens of memory facts in one prompt.
    memory_tokens: int
    #: Tokens of the channel transcript in one prompt.
    channel_tokens: int


class PersonaPrompt:
    """Builds the persona layers for one request from the store, every time."""

    def __init__(
        self,
        persona: Persona,
        budgets: PromptBudgets,
        *,
        templates: LayerTemplates | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._persona = persona
        self._budgets = budgets
        self._templates = templates or LayerTemplates.load()
        self._clock = clock
        self._fact_index = FactIndex(persona.facts, embedder_label=persona.embedder.label)

    async def system_layers(self, request: RequestFrame) -> str:
        """Persona, user, memories, relationship, mood and emotes, joined.

        Never raises: a layer that fails to load is left out (logged)."""
        name = display_name(request.user_name)
        label = quoted(name) if name else UNNAMED_USER
        layers = await asyncio.gather(
            _safe("persona", self._identity()),
            _safe("user", self._user(request.user_id, name)),
            _safe("memories", self._memories(request, label)),
            _safe("relationship", self._relationship(request.user_id, label)),
            _safe("mood", self._mood()),
        )
        return join_layers(*layers, self._emotes(request.emojis))

    async def channel_layer(self, request: RequestFrame) -> str:
        """The channel's last 24 hours within the budget ("" without a channel).

        Never raises: a failure to read the log leaves the layer out (logged)."""
        if not request.channel_id:
            return ""
        return await _safe("channel", self._channel(request.channel_id, request.request_id))

    async def _identity(self) -> str:
        entries = await self._persona.identity.entries()
        return self._templates.render("persona", **identity_values(entries))

    async def _user(self, user_id: str, name: str) -> str:
        profile = await self._persona.profiles.get(user_id)
        current = name or (display_name(profile.current_name or "") if profile else "")
        return self._templates.render(
            "user",
            name=quoted(current) if current else "",
            earlier_names=earlier_names(profile, current),
        )

    async def _memories(self, request: RequestFrame, label: str) -> str:
        facts = await relevant_facts(
            self._fact_index,
            self._persona.embedder,
            request.user_id,
            request.content,
            budget_tokens=self._budgets.memory_tokens,
            now=self._clock(),
        )
        if not facts:
            return ""
        lines = "\n".join(f"- {quoted(fact.fact)}" for fact in facts)
        return self._templates.render("memories", name=label, facts=lines)

    async def _relationship(self, user_id: str, label: str) -> str:
        relationship = await self._persona.relationships.get(user_id)
        return self._templates.render(
            "relationship", name=label, guidance=tone_guidance(relationship)
        )

    async def _mood(self) -> str:
        mood = await read_mood(self._persona.state)
        return self._templates.render("mood", mood=mood.describe())

    def _emotes(self, names: Sequence[str]) -> str:
        emotes = " ".join(f":{name}:" for name in emote_names(names))
        return self._templates.render("emotes", emotes=emotes)

    async def _channel(self, channel_id: str, request_id: str) -> str:
        since = self._clock() - SHORT_TERM_SECONDS
        window = await self._persona.log.channel_window(channel_id)
        # the message being answered is the user's turn already
        lines = [
            transcript_line(m)
            for m in window
            if m.created_at >= since and m.message_id != request_id
        ]
        kept = newest_within(lines, self._budgets.channel_tokens)
        if not kept:
            return ""
        return self._templates.render("channel", transcript="\n".join(kept))


async def _safe(layer: str, build: Awaitable[str]) -> str:
    try:
        return await build
    except Exception:
        log.warning("prompt layer %s left out: reading it failed", layer, exc_info=True)
        return ""
