"""Embedding vectors, and the embedder against the fake Ollama server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import numpy as np
import pytest

from trollama.brain.backends.base import ModelBackend
from trollama.brain.backends.ollama import OllamaBackend
from trollama.brain.persona.embedder import MAX_EMBED_BATCH, Embedder, EmbeddingError
from trollama.brain.persona.vectors import (
    MAX_DIMENSIONS,
    decode,
    encode,
    similarities,
    stack,
    unit,
)
from trollama.testkit.fake_ollama import EMBED_DIMENSIONS, FakeOllama
from trollama.testkit.server import ServerThread

EMBEDDING_MODEL = "qwen3-embedding:4b"
#: Seconds the backend waits to connect / for an answer in these tests.
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 10.0
#: The embedder's own deadline in these tests, and a model load far beyond it.
EMBED_TIMEOUT_SECONDS = 0.3
SLOW_LOAD_SECONDS = 3.0


def backend_at(url: str) -> OllamaBackend:
    return OllamaBackend(
        url,
        keep_alive_seconds=120,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )


def embedder_on(backend: ModelBackend, model: str = EMBEDDING_MODEL) -> Embedder:
    return Embedder(lambda _: backend, model, timeout_seconds=READ_TIMEOUT_SECONDS)


@pytest.fixture
async def ollama_backend(fake_ollama: ServerThread[FakeOllama]) -> AsyncIterator[OllamaBackend]:
    backend = backend_at(fake_ollama.url)
    yield backend
    await backend.close()


@pytest.fixture
def closed_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------- vectors


def test_encode_decode_round_trip() -> None:
    vector = np.random.default_rng(0).standard_normal(EMBED_DIMENSIONS).astype(np.float32)

    text = encode(vector)

    assert len(text) == (EMBED_DIMENSIONS * 4 + 2) // 3 * 4  # base64 of float32
    assert np.array_equal(decode(text), vector)
    assert decode(encode([0.5, -2.0])).tolist() == [0.5, -2.0]


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(0, dtype=np.float32),
        np.zeros((2, 2), dtype=np.float32),
        [0.0] * (MAX_DIMENSIONS + 1),
    ],
)
def test_encode_refuses_shapes_that_are_no_embedding(bad: object) -> None:
    with pytest.raises(ValueError, match="non-empty flat vector"):
        encode(bad)  # type: ignore[arg-type]


def test_unit() -> None:
    assert unit([3.0, 4.0]).tolist() == pytest.approx([0.6, 0.8])
    assert unit([0.0, 0.0]).tolist() == [0.0, 0.0]


def test_similarities_rank_the_closest_first() -> None:
    query = unit([1.0, 0.0, 0.0])
    rows = stack(
        [
            unit([1.0, 0.1, 0.0]),
            unit([0.0, 1.0, 0.0]),
            unit([-1.0, 0.0, 0.0]),
            unit([1.0, 1.0, 0.0]),
        ],
        3,
    )

    scores = similarities(query, rows)

    assert list(np.argsort(-scores)) == [0, 3, 1, 2]
    assert scores[2] == pytest.approx(-1.0)
    assert scores[1] == pytest.approx(0.0, abs=1e-6)


def test_similarity_ignores_length() -> None:
    scores = similarities(
        np.array([2.0, 0.0], dtype=np.float32), stack([np.array([5.0, 0.0], dtype=np.float32)], 2)
    )

    assert scores.tolist() == pytest.approx([1.0])


def test_rows_of_another_length_and_zero_rows_score_zero() -> None:
    query = unit([1.0, 1.0, 1.0])
    rows = stack([unit([1.0, 1.0]), unit([1.0, 1.0, 1.0]), np.zeros(3, dtype=np.float32)], 3)

    scores = similarities(query, rows)

    assert scores.tolist() == pytest.approx([0.0, 1.0, 0.0])
    assert similarities(query, stack([], 3)).tolist() == []


# ---------------------------------------------------------------- embedder


async def test_embeddings_are_unit_vectors_in_order(ollama_backend: OllamaBackend) -> None:
    embedder = embedder_on(ollama_backend)
    texts = ["I love green tea", "green tea I love", "my cat is called Miso"]

    vectors = await embedder.embed(texts)

    assert len(vectors) == len(texts)
    for vector in vectors:
        assert vector.shape == (EMBED_DIMENSIONS,)
        assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)
    scores = similarities(vectors[0], stack(vectors, EMBED_DIMENSIONS))
    assert scores[1] == pytest.approx(1.0, abs=1e-5)  # same words
    assert scores[2] < 0.5


async def test_embed_one(ollama_backend: OllamaBackend) -> None:
    embedder = embedder_on(ollama_backend)

    one = await embedder.embed_one("likes chess")

    assert np.allclose(one, (await embedder.embed(["likes chess"]))[0])


async def test_large_inputs_go_in_batches(
    ollama_backend: OllamaBackend, fake_ollama: ServerThread[FakeOllama]
) -> None:
    texts = [f"fact number {n}" for n in range(MAX_EMBED_BATCH + 6)]

    vectors = await embedder_on(ollama_backend).embed(texts)

    assert len(vectors) == len(texts)
    sizes = [len(r.body["input"]) for r in fake_ollama.requests_to("/api/embed")]
    assert sizes == [MAX_EMBED_BATCH, 6]
    alone = await embedder_on(ollama_backend).embed([texts[-1]])
    assert np.allclose(vectors[-1], alone[0])  # the batches stay in order


async def test_nothing_to_embed_asks_nothing(
    ollama_backend: OllamaBackend, fake_ollama: ServerThread[FakeOllama]
) -> None:
    assert await embedder_on(ollama_backend).embed([]) == []
    assert fake_ollama.requests_to("/api/embed") == []


async def test_dead_server_is_an_embedding_error(closed_url: str) -> None:
    backend = backend_at(closed_url)
    try:
        with pytest.raises(EmbeddingError):
            await embedder_on(backend).embed(["anything"])
    finally:
        await backend.close()


async def test_unknown_model_is_an_embedding_error(ollama_backend: OllamaBackend) -> None:
    with pytest.raises(EmbeddingError, match="no-such-embedder"):
        await embedder_on(ollama_backend, "no-such-embedder:1b").embed(["anything"])


async def test_slow_model_is_an_embedding_error(
    ollama_backend: OllamaBackend, fake_ollama: ServerThread[FakeOllama]
) -> None:
    fake_ollama.server.load_seconds = SLOW_LOAD_SECONDS
    embedder = Embedder(
        lambda _: ollama_backend, EMBEDDING_MODEL, timeout_seconds=EMBED_TIMEOUT_SECONDS
    )

    with pytest.raises(EmbeddingError, match=f"took over {EMBED_TIMEOUT_SECONDS:g} s"):
        await embedder.embed(["anything"])


async def test_shortened_vectors_and_the_label_that_says_so(
    ollama_backend: OllamaBackend,
) -> None:
    full = embedder_on(ollama_backend)
    short = Embedder(
        lambda _: ollama_backend,
        EMBEDDING_MODEL,
        timeout_seconds=READ_TIMEOUT_SECONDS,
        dimensions=32,
    )
    assert (await short.embed_one("green tea")).size == 32
    assert full.label == EMBEDDING_MODEL and short.label == f"{EMBEDDING_MODEL}@32"
