"""Dynamic status: a short line in the bot's voice, shown as its Discord presence.

Generated once a day after consolidation, from the identity and the day's
mood, with the summarization model; kept in the global state under
:data:`STATUS_KEY` and handed to the relay as an outbox ``presence`` item.
A failing model keeps the old status.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from trollama.brain.backends.base import GenerationOptions
from trollama.brain.persona.bundle import Persona
from trollama.brain.persona.extraction import JobModel, JobModelError, load_prompt
from trollama.brain.persona.identity import IdentityEntry, IdentityKind
from trollama.brain.persona.mood import read_mood
from trollama.brain.persona.outbox import MAX_PRESENCE_CHARS, Outbox, OutboxFull

log = logging.getLogger(__name__)

#: Global-state key holding the current status.
STATUS_KEY = "bot_status"
#: Longest status, in characters (Discord's custom status limit).
MAX_STATUS_CHARS = MAX_PRESENCE_CHARS
#: Tokens the model may write for a status.
STATUS_MAX_TOKENS = 80
STATUS_TEMPERATURE = 0.9

_KIND_TITLES = {
    IdentityKind.TRAIT: "Core traits",
    IdentityKind.LORE: "Lore",
    IdentityKind.FACT: "Facts and quirks",
}
_LABEL = re.compile(r"^(status|presence|playing)\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'`“”‘’*"


@dataclass
class StatusReport:
    """The status in effect after a run, and whether the run changed it."""

    status: str | None
    changed: bool
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_identity(entries: Sequence[IdentityEntry]) -> str:
    """The identity as prompt text, one section per kind."""
    sections = []
    for kind, title in _KIND_TITLES.items():
        lines = [f"- {e.text}" for e in entries if e.kind is kind]
        if lines:
            sections.append(f"{title}:\n" + "\n".join(lines))
    return "\n\n".join(sections) or "(no identity set)"


async def persona_context(persona: Persona) -> str:
    """Who the bot is and how it feels today, for the jobs' prompts."""
    identity = describe_identity(await persona.identity.entries())
    mood = await read_mood(persona.state)
    return f"{identity}\n\nToday's mood: {mood.describe()}."


def clean_status(text: str) -> str | None:
    """The model's answer as one presence line (None when nothing usable)."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = " ".join(_LABEL.sub("", line).strip(_QUOTES).split())
    if not line:
        return None
    if len(line) <= MAX_STATUS_CHARS:
        return line
    cut = line[: MAX_STATUS_CHARS - 1]
    return cut[: cut.rfind(" ")].rstrip(" ,;:-") + "…" if " " in cut else cut + "…"


class DynamicStatus:
    def __init__(
        self, persona: Persona, model: JobModel, outbox: Outbox, *, prompt: str | None = None
    ) -> None:
        self._persona = persona
        self._model = model
        self._outbox = outbox
        self._prompt = prompt or load_prompt("status")

    async def current(self) -> str | None:
        value = await self._persona.state.get(STATUS_KEY)
        return str(value) if value is not None else None

    async def refresh(self) -> StatusReport:
        """Generate a new status, store it and post it for the relay."""
        old = await self.current()
        request = await persona_context(self._persona) + "\n\nWrite the status line now."
        options = GenerationOptions(temperature=STATUS_TEMPERATURE, max_tokens=STATUS_MAX_TOKENS)
        try:
            status = clean_status(await self._model.complete(self._prompt, request, options))
        except JobModelError as exc:
            log.warning("status not refreshed: %s", exc)
            return StatusReport(old, changed=False, error=str(exc))
        if status is None:
            return StatusReport(old, changed=False, error="the model wrote no status")
        await self._persona.state.set(STATUS_KEY, status)
        try:
            await self._outbox.post("presence", status)
        except OutboxFull as exc:
            log.warning("status stored but not posted: %s", exc)
            return StatusReport(status, changed=True, error=str(exc))
        log.info("status refreshed", extra={"status": status})
        return StatusReport(status, changed=True)
