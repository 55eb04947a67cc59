"""Which backend serves which model.

The active profile names, for some models, the backend that serves them
(``"openai"`` for a model on SGLang); every other model goes to the default
backend (Ollama).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from trollama.brain.backends.base import ModelBackend

logger = logging.getLogger(__name__)


class BackendRegistry:
    """The model backends of one brain, by name and by model."""

    def __init__(
        self,
        backends: Mapping[str, ModelBackend],
        model_backends: Mapping[str, str],
        default_backend: str,
    ) -> None:
        if default_backend not in backends:
            raise ValueError(f"the default backend {default_backend!r} is not configured")
        missing = sorted({name for name in model_backends.values() if name not in backends})
        if missing:
            raise ValueError(f"models are assigned to unconfigured backends: {', '.join(missing)}")
        self._backends = dict(backends)
        self._model_backends = dict(model_backends)
        self._default = default_backend

    def backend_for(self, model: str) -> ModelBackend:
        """The backend serving ``model``."""
        return self._backends[self._model_backends.get(model, self._default)]

    def get(self, name: str) -> ModelBackend:
        """The backend called ``name`` (``KeyError`` if there is none)."""
        return self._backends[name]

    def all(self) -> list[ModelBackend]:
        """Every configured backend, the default first."""
        default = self._backends[self._default]
        return [default, *(b for name, b in self._backends.items() if name != self._default)]

    async def close_all(self) -> None:
        """Close every backend; one failing to close does not stop the others."""
        results = await asyncio.gather(
            *(backend.close() for backend in self._backends.values()), return_exceptions=True
        )
        for name, result in zip(self._backends, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("closing the %s backend failed: %s", name, type(result).__name__)
