"""A deterministic, model-free embedder for tests: hashed bag of words, instant to load."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence

import numpy as np

from .base import normalize_rows

_TOKEN = re.compile(r"\w+")


class HashEmbedder:
    """`hash:DIM`: each lower-cased word adds +-1 to one hashed dimension.

    Texts sharing words share dimensions, so "the cat sat" is nearer "a cat" than "dog food":
    enough for tests of ranking, filtering and storage, without loading a model.

        HashEmbedder(64).embed(["the cat sat", "a cat"]) @ ...  # cosine > 0
    """

    def __init__(self, dimension: int = 384, *, max_seq_length: int = 256):
        if dimension < 2:
            raise ValueError(f"hash embedder dimension must be >= 2, not {dimension}")
        self.dimension = dimension
        self.max_seq_length = max_seq_length
        self.model_id = f"hash:{dimension}"
        self.calls = 0
        """How many times `embed` ran; tests use it to prove work was skipped."""
        self.texts_embedded = 0
        self.parallel_lanes = 1
        self._count_lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN.findall(text)) + 2  # +2 like a BERT tokenizer's [CLS] and [SEP]

    def _slot(self, token: str) -> tuple[int, float]:
        digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self.dimension, (1.0 if (value >> 63) & 1 else -1.0)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._count_lock:
            self.calls += 1
            self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            tokens = _TOKEN.findall(text.lower()) or [f"\x00{text}"]
            for token in tokens:
                slot, sign = self._slot(token)
                out[row, slot] += sign
        return normalize_rows(out)
