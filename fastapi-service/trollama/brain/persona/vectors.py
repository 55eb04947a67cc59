"""Embedding vectors: compact storage and similarity.

A vector is stored as base64 of little-endian float32 (1 KB for 256
dimensions instead of about 5 KB of JSON numbers)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]

#: Most dimensions accepted from a model server (larger vectors are refused).
MAX_DIMENSIONS = 8192


def encode(vector: Sequence[float] | Vector) -> str:
    array = np.asarray(vector, dtype="<f4")
    if array.ndim != 1 or not 0 < array.size <= MAX_DIMENSIONS:
        raise ValueError("an embedding must be a non-empty flat vector")
    return base64.b64encode(array.tobytes()).decode("ascii")


def decode(text: str) -> Vector:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def unit(vector: Sequence[float] | Vector) -> Vector:
    """The vector scaled to length 1 (a zero vector stays zero)."""
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array


def similarities(query: Vector, matrix: Vector) -> Vector:
    """Cosine similarity of ``query`` with each row of ``matrix`` (rows of any length
    different from the query's score 0: another embedding model made them)."""
    if matrix.size == 0:
        return np.zeros(0, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(query))
    dots: Vector = matrix @ query
    result: Vector = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return result


def stack(vectors: Sequence[Vector], dimensions: int) -> Vector:
    """Rows for :func:`similarities`; vectors of another length become zero rows."""
    matrix = np.zeros((len(vectors), dimensions), dtype=np.float32)
    for row, vector in enumerate(vectors):
        if vector.size == dimensions:
            matrix[row] = vector
    return matrix
