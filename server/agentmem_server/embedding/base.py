"""The `Embedder` protocol every embedding model implements."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


MAX_CPU_LANES = 8
"""At most this many `embed` calls of a CPU embedder run at once (one per core below that)."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors; synchronous and CPU/GPU-bound.

    Call it through `EmbeddingBatcher` from async code: it must never run on the event loop.
    An implementation may also set `parallel_lanes` (default 1): how many `embed` calls may run
    at once, on separate threads, to keep its device busy; and define `embed_query(texts)`, the
    same vectors computed for latency rather than throughput (used for recall queries).
    """

    model_id: str
    """Names the model that made a vector; stored with the vectors to refuse mixing models."""
    dimension: int
    max_seq_length: int
    """Tokens the model reads (special tokens included); the rest of a text is ignored."""

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` as this model's tokenizer counts them, special tokens included."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Shape `(len(texts), dimension)`, float32, each row of unit length."""
        ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # A zero row stays zero rather than becoming NaN; no real model produces one.
    return vectors / np.where(norms == 0, 1, norms)


def model_shape(model: SentenceTransformer, source: Path | str) -> tuple[int, int]:
    """(dimension, max_seq_length) of a loaded sentence-transformers model; both are Optional in
    its API, and an embedder needs both."""
    dimension, max_seq_length = model.get_embedding_dimension(), model.max_seq_length
    if dimension is None or max_seq_length is None:
        raise ValueError(f"{source}: the model states no embedding dimension or sequence length")
    return int(dimension), int(max_seq_length)
