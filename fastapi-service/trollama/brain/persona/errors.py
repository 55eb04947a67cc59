"""Errors of the persona and memory repositories; messages are safe to show."""

from __future__ import annotations


class PersonaError(Exception):
    """Base class; ``str(exc)`` is safe to show the caller."""


class UnknownEntry(PersonaError):
    """The user, fact, identity entry or state key does not exist."""


class InvalidEntry(PersonaError):
    """The value is refused (too long, out of range, too many entries)."""
