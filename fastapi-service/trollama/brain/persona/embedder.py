"""Embeddings from the model server, for fact matching and ranking."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from trollama.brain.backends.base import BackendError, ModelBackend
from trollama.brain.persona.vectors import MAX_DIMENSIONS, Vector, unit

#: Texts sent in one embedding call.
MAX_EMBED_BATCH = 64


class EmbeddingError(Exception):
    """The embedding model failed or answered nonsense; safe to log."""


class Embedder:
    def __init__(
        self,
        backend_for: Callable[[str], ModelBackend],
        model: str,
        *,
        timeout_seconds: float,
        dimensions: int | None = None,
    ) -> None:
        self._backend_for = backend_for
        self.model = model
        self._timeout = timeout_seconds
        #: Vector length asked of the model (None: its full length).
        self.dimensions = dimensions

    @property
    def label(self) -> str:
        """What made a stored vector: the model, and the length asked of it.
        Vectors with another label are embedded again before they are compared."""
        return f"{self.model}@{self.dimensions}" if self.dimensions else self.model

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """One unit vector per text, in order."""
        vectors: list[Vector] = []
        for start in range(0, len(texts), MAX_EMBED_BATCH):
            batch = list(texts[start : start + MAX_EMBED_BATCH])
            try:
                async with asyncio.timeout(self._timeout):
                    raw = await self._backend_for(self.model).embed(
                        self.model, batch, dimensions=self.dimensions
                    )
            except TimeoutError as exc:
                raise EmbeddingError(f"{self.model} took over {self._timeout:g} s") from exc
            except BackendError as exc:
                raise EmbeddingError(str(exc)) from exc
            if len(raw) != len(batch) or any(not 0 < len(v) <= MAX_DIMENSIONS for v in raw):
                raise EmbeddingError(f"{self.model} returned malformed embeddings")
            vectors.extend(unit(v) for v in raw)
        return vectors

    async def embed_one(self, text: str) -> Vector:
        return (await self.embed([text]))[0]
