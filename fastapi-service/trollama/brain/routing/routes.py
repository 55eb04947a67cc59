"""The routes a message can take.

The classifier picks one of :data:`CLASSIFIER_ROUTES`; :attr:`Route.VISION` is
chosen only when images are attached. The active profile maps every route to
a model (:mod:`.profiles`).
"""

from __future__ import annotations

from enum import StrEnum


class Route(StrEnum):
    """Kinds of request, each served by the model the profile assigns to it."""

    SELF_HANDLE = "SELF_HANDLE"
    SIMPLE_CODE = "SIMPLE_CODE"
    COMPLEX_CODE = "COMPLEX_CODE"
    REASONING = "REASONING"
    RESEARCH = "RESEARCH"
    MATH = "MATH"
    VISION = "VISION"

    @property
    def uses_tools(self) -> bool:
        """True when answers on this route may call tools (web search, fetch)."""
        return self in TOOL_ROUTES


#: Routes whose answers run through the tool-calling path (web search, fetch).
TOOL_ROUTES = frozenset({Route.RESEARCH, Route.REASONING})

#: Routes the LLM classifier may answer (VISION depends on attachments only).
CLASSIFIER_ROUTES: tuple[Route, ...] = tuple(r for r in Route if r is not Route.VISION)


class UnknownRoute(ValueError):
    """A route name that is not one of :class:`Route`."""


def parse_route(name: str) -> Route:
    """The route called ``name`` (case and ``-``/space/``_`` insensitive).

    Raises :class:`UnknownRoute` listing the valid names, e.g. for the
    ``ROUTER_DEFAULT_ROUTE`` setting."""
    normalized = "_".join(name.replace("-", " ").replace("_", " ").split()).upper()
    try:
        return Route(normalized)
    except ValueError:
        valid = ", ".join(r.value for r in Route)
        raise UnknownRoute(f"unknown route {name!r}; valid routes: {valid}") from None
