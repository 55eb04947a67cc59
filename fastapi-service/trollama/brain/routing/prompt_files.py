"""Prompt files of the routing package.

``prompts/router.md`` instructs the classifier; ``prompts/routes/<route>.md``
(lower-case route name) is the system prompt of each route. Files are read
once and kept; restart the brain after editing them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from trollama.brain.routing.routes import Route

PROMPTS_DIR = Path(__file__).with_name("prompts")
ROUTER_PROMPT_PATH = PROMPTS_DIR / "router.md"
#: Prompt files kept in memory at once (one per route, the router's, and spare).
MAX_CACHED_PROMPTS = 16


def system_prompt_for(route: Route) -> str:
    """The system prompt of ``route``."""
    return read_prompt(PROMPTS_DIR / "routes" / f"{route.value.lower()}.md")


@lru_cache(maxsize=MAX_CACHED_PROMPTS)
def read_prompt(path: Path) -> str:
    """The text of a prompt file, without surrounding whitespace."""
    return path.read_text(encoding="utf-8").strip()
