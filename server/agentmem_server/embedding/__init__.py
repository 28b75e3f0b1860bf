"""Embedding models behind one protocol, and the batcher that runs them off the event loop.

Importing this package loads numpy only; torch and sentence-transformers load with a real model.
"""

from typing import Any

from .base import Embedder, normalize_rows
from .batcher import EmbeddingBatcher
from .hashing import HashEmbedder
from .loader import BUNDLED_MINILM, load_embedder

__all__ = [
    "BUNDLED_MINILM",
    "Embedder",
    "EmbeddingBatcher",
    "HashEmbedder",
    "load_embedder",
    "normalize_rows",
]


def __getattr__(name: str) -> Any:
    # Lazy: naming the class must not import torch.
    if name == "SentenceTransformerEmbedder":
        from .sentence import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder
    raise AttributeError(name)
