"""The same sentence-transformers model run by ONNX Runtime: same vectors, a query embedded 2-2.4x
faster on CPU (docs/recall.md, "ONNX backend").

    export_dir = ensure_onnx_export(model_folder, data_dir / "onnx")  # once; needs torch + onnx
    embedder = OnnxSentenceEmbedder(export_dir, model_id="bundled:all-MiniLM-L6-v2")

The export is made from the local torch weights (torch's own ONNX exporter; no network, no
`optimum`: sentence-transformers' `backend="onnx"` needs `optimum-onnx`, whose every release pins
`transformers<4.58` while sentence-transformers 6 needs `transformers>=5`). It is kept in a folder
named after a hash of the model folder, checked against torch on fixed texts before it is kept
(cosine >= `MIN_COSINE` or the export fails), and loaded with `onnxruntime` and the Rust tokenizer
only: serving does not import torch. Importing this module imports numpy only.

Vectors match torch's (measured min cosine 0.9999999 on 1,000 texts), so the embedder keeps the
torch embedder's `model_id`: stored vectors stay valid and switching backends needs no reindex.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import MAX_CPU_LANES, model_shape, normalize_rows

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from tokenizers import Encoding

log = logging.getLogger("agentmem.embedding")

EXPORT_FORMAT = 1
"""Bump when the exported graph or the files in an export folder change: old exports are ignored."""
MIN_COSINE = 0.999
"""An export whose vectors differ more than this from torch's on the check texts is refused."""
ONNX_FILE = "model.onnx"
COUNT_SLICE = 512
"""Texts per tokenizer call when counting (see `count_tokens_batch`)."""
FORWARD_ROWS = 8
"""Texts per forward pass, after sorting by token count: fewer rows pad less, more rows use the
matrix kernels better; 4, 8, 16 and 32 gave 14.8, 13.0-14.0, 14.6-15.3 and 16.8-17.5 ms per
appended line of keys and scaffolds on one thread (one pass per text: 17.3)."""
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

CHECK_TEXTS = (
    "",
    "hi",
    "What did Alice say about the trip to Lisbon last March?",
    "2024-03-14 Bob: I moved the standup to 9:30 because of the dentist.",
    "Ünïcode: naïve café, 漢字, emoji ☃🙂, and Ελληνικά.",
    "def recall(query: str, limit: int = 5) -> list[Result]:  # returns the best chunks",
    "The quick brown fox jumps over the lazy dog. " * 40,  # longer than the model reads
    "word " * 300,
    "User prefers dark mode, metric units and replies under 100 words.",
    "   leading and trailing spaces   ",
)


def _fingerprint(folder: Path) -> str:
    """sha256 over the model folder's file names and contents (~0.3 s for MiniLM's 90 MB)."""
    digest = hashlib.sha256(f"agentmem-onnx-export-{EXPORT_FORMAT}".encode())
    for path in sorted(
        p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def export_folder_for(model_folder: Path | str, cache_root: Path | str) -> Path:
    """Where `ensure_onnx_export` keeps the export of `model_folder` under `cache_root`."""
    model_folder = Path(model_folder).resolve()
    return Path(cache_root) / f"{model_folder.name}-{_fingerprint(model_folder)[:16]}"


def ensure_onnx_export(model_folder: Path | str, cache_root: Path | str) -> Path:
    """The export folder for `model_folder`, exporting it first if the cache has none (seconds)."""
    target = export_folder_for(model_folder, cache_root)
    if (target / "meta.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info(
        "exporting %s to ONNX (once per machine, ~30 s on 2 cores) into %s",
        Path(model_folder).name,
        target,
    )
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    work.chmod(0o755)
    try:
        export_onnx(model_folder, work)
        try:
            work.rename(target)  # atomic: a concurrent server sees a whole export or none
        except OSError:
            if not (target / "meta.json").is_file():
                raise
            # Another process finished the same export first; its copy is as good as ours.
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def export_onnx(model_folder: Path | str, out_dir: Path | str) -> dict[str, Any]:
    """Export a local sentence-transformers folder to `out_dir` (model.onnx, tokenizer.json,
    meta.json).

    Needs torch, sentence-transformers and `onnx`. The graph maps token ids to the model's final
    `sentence_embedding` (its own pooling and normalisation), with dynamic batch and length.
    Raises if ONNX Runtime's vectors differ from torch's on `CHECK_TEXTS` (cosine < MIN_COSINE).
    """
    import torch
    from sentence_transformers import SentenceTransformer

    model_folder, out_dir = Path(model_folder).resolve(), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = SentenceTransformer(str(model_folder), device="cpu", local_files_only=True).eval()
    fast = getattr(model.tokenizer, "_tokenizer", None)
    if fast is None:
        raise ValueError(
            f"{model_folder}: the ONNX backend needs a model with a fast (Rust) tokenizer"
        )
    dimension, max_seq_length = model_shape(model, model_folder)
    first = model[0]
    do_lower_case = bool(getattr(first, "do_lower_case", False))

    class Graph(torch.nn.Module):
        def __init__(self, st: SentenceTransformer) -> None:
            super().__init__()
            self.st = st

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            features = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            embedding: torch.Tensor = self.st(features)["sentence_embedding"]
            return embedding

    # Trace with padding in the batch, so the attention-mask path is the one recorded.
    example = model.preprocess(
        ["a short text", "a longer text, so that the first one is padded here"]
    )
    uses_types = "token_type_ids" in example
    if not uses_types:
        example["token_type_ids"] = torch.zeros_like(example["input_ids"])
    args = tuple(example[name] for name in _INPUTS)
    dynamic = {name: {0: "batch", 1: "tokens"} for name in _INPUTS} | {
        "sentence_embedding": {0: "batch"}
    }
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # The TorchScript exporter: deprecated in favour of torch.export (which needs onnxscript)
        # but works for BERT-style encoders and is what torch 2.13 still ships. Tracing warnings
        # are about shapes it records as constants; the checks below compare real outputs.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Graph(model),
            args,
            str(out_dir / ONNX_FILE),
            dynamo=False,
            input_names=list(_INPUTS),
            output_names=["sentence_embedding"],
            dynamic_axes=dynamic,
            opset_version=17,
        )
    tokenizer_text = fast.to_str()
    (out_dir / "tokenizer.json").write_text(tokenizer_text, encoding="utf-8")
    meta = {
        "format": EXPORT_FORMAT,
        "source": str(model_folder),
        "dimension": dimension,
        "max_seq_length": max_seq_length,
        "do_lower_case": do_lower_case,
        "uses_token_type_ids": uses_types,
        "torch": torch.__version__,
    }
    (out_dir / "meta.json.tmp").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    # Check before keeping: same token ids as sentence-transformers, vectors within MIN_COSINE.
    onnx_embedder = OnnxSentenceEmbedder(out_dir, model_id="check", meta_file="meta.json.tmp")
    texts = list(CHECK_TEXTS)
    for text in texts:
        ours = onnx_embedder._encode([text])[0]
        theirs = model.preprocess([text])["input_ids"][0].tolist()
        if ours != theirs:
            raise RuntimeError(
                f"ONNX export of {model_folder}: tokenizer differs from sentence-transformers "
                f"on {text[:40]!r}"
            )
    want = model.encode(
        texts,
        convert_to_numpy=True,
        normalize_embeddings=True,
        batch_size=len(texts),
        show_progress_bar=False,
    )
    got = np.vstack(
        [
            onnx_embedder.embed(texts),
            onnx_embedder.embed(texts[:1]),
            onnx_embedder.embed(texts[6:7]),
        ]
    )
    want = np.vstack([want, want[:1], want[6:7]])
    cosine = float(np.min(np.sum(got * want, axis=1)))
    if not cosine >= MIN_COSINE:
        raise RuntimeError(
            f"ONNX export of {model_folder}: min cosine to torch {cosine:.6f} < {MIN_COSINE}"
        )
    meta["check_min_cosine"] = cosine
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    (out_dir / "meta.json.tmp").unlink()
    log.info("exported %s to ONNX in %s (min cosine to torch %.7f)", model_folder, out_dir, cosine)
    return meta


class OnnxSentenceEmbedder:
    """An exported sentence-transformers model (see `ensure_onnx_export`) run by ONNX Runtime on
    CPU.

    `embed` may be called from several threads at once (the batcher's lanes): each call runs on its
    caller's thread with one ONNX Runtime thread, for the reason `SentenceTransformerEmbedder` uses
    one torch thread per lane; `parallel_lanes` is one per core, at most `MAX_CPU_LANES`.
    """

    def __init__(
        self,
        export_dir: Path | str,
        *,
        model_id: str,
        batch_size: int = 64,
        onnx_file: str = ONNX_FILE,
        meta_file: str = "meta.json",
        query_threads: int = 1,
    ):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        export_dir = Path(export_dir)
        meta = json.loads((export_dir / meta_file).read_text(encoding="utf-8"))
        if meta.get("format") != EXPORT_FORMAT:
            raise ValueError(
                f"{export_dir}: ONNX export format {meta.get('format')}, expected {EXPORT_FORMAT}"
            )
        self.model_id = model_id
        self.device = "cpu"
        self.batch_size = batch_size
        self.dimension = int(meta["dimension"])
        self.max_seq_length = int(meta["max_seq_length"])
        self.export_dir = export_dir
        self.parallel_lanes = max(1, min(MAX_CPU_LANES, os.cpu_count() or 1))
        self._lower = bool(meta.get("do_lower_case", False))

        self._session = _session(ort, export_dir / onnx_file, threads=1)
        # A query is one short text: one thread leaves most of a core's vector units idle, and a
        # second thread cuts its latency (9.6 -> 7.2 ms p50 here). Spinning is off so a waiting
        # thread sleeps instead of taking a core from the ingestion lanes.
        threads = max(1, min(query_threads, os.cpu_count() or 1))
        self._query_session = (
            self._session
            if threads == 1
            else _session(ort, export_dir / onnx_file, threads=threads)
        )
        self._input_names = {i.name for i in self._session.get_inputs()}

        text = (export_dir / "tokenizer.json").read_text(encoding="utf-8")
        self._tokenizer = Tokenizer.from_str(text)
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self.max_seq_length)
        self._pad_id = self._tokenizer.token_to_id("[PAD]") or 0
        # Queries get a tokenizer of their own: sharing the bulk lanes' lock made a recall wait
        # behind a bulk batch's tokenising, and bulk lanes run at a lower OS priority.
        self._query_tokenizer = Tokenizer.from_str(text)
        self._query_tokenizer.no_padding()
        self._query_tokenizer.enable_truncation(self.max_seq_length)
        self._query_lock = threading.Lock()
        # A private copy for counting (no truncation), used from the chunking thread meanwhile.
        self._counter = Tokenizer.from_str(text)
        self._counter.no_truncation()
        self._counter.no_padding()
        self._lock = threading.Lock()
        self._output_names = [self._session.get_outputs()[0].name]

    def count_tokens(self, text: str) -> int:
        return len(
            self._counter.encode(text.lower() if self._lower else text, add_special_tokens=True).ids
        )

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        """`count_tokens` of each text, a slice of texts per call of the Rust tokenizer: one call
        holds the GIL while it hands back its encodings (20,000 chunks: ~1 s in which no other
        thread, the event loop included, ran Python)."""
        if self._lower:
            texts = [t.lower() for t in texts]
        counts: list[int] = []
        for start in range(0, len(texts), COUNT_SLICE):
            part = list(texts[start : start + COUNT_SLICE])
            counts.extend(
                len(e.ids) for e in self._counter.encode_batch(part, add_special_tokens=True)
            )
        return counts

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._encode_full(texts)]

    def _encode_full(self, texts: Sequence[str], *, query: bool = False) -> list[Encoding]:
        texts = [t.lower() for t in texts] if self._lower else list(texts)
        tokenizer, lock = (
            (self._query_tokenizer, self._query_lock) if query else (self._tokenizer, self._lock)
        )
        with lock:  # the Rust tokenizer is not safe to share between threads
            return tokenizer.encode_batch(texts, add_special_tokens=True)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(self._session, texts)

    def embed_query(self, texts: Sequence[str]) -> np.ndarray:
        """`embed` for the few texts of a recall, with `query_threads` threads and a tokenizer
        of its own (never waiting for a bulk batch's)."""
        if len(texts) != 1:
            return self._run(self._query_session, texts, query=True)
        # One text: no padding, no sorting, no batch arrays to fill; the graph's output is already
        # unit length (the model's own Normalize), normalised again only for float rounding.
        text = texts[0].lower() if self._lower else texts[0]
        with self._query_lock:
            encoding = self._query_tokenizer.encode(text, add_special_tokens=True)
        ids = np.array([encoding.ids], dtype=np.int64)
        feed = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.array([encoding.type_ids], dtype=np.int64),
        }
        out = self._query_session.run(
            self._output_names, {k: v for k, v in feed.items() if k in self._input_names}
        )[0]
        return normalize_rows(np.asarray(out, dtype=np.float32))

    def _run(self, session: Any, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        encodings = self._encode_full(texts, query=query)
        # Every row of a forward pass is as wide as its longest; the model's cost is per token,
        # padding included. Sorted by token count and cut into passes of `FORWARD_ROWS`, an
        # append's keys and its short scaffolds stop paying for each other's width (an append's
        # texts per line 20.3 -> 13.0-14.0 ms on one thread; docs/recall.md, "Ingestion").
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        step = max(1, min(self.batch_size, FORWARD_ROWS))
        for start in range(0, len(order), step):
            rows = order[start : start + step]
            width = len(encodings[rows[0]].ids)
            ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                e = encodings[i]
                n = len(e.ids)
                ids[r, :n], mask[r, :n], types[r, :n] = e.ids, 1, e.type_ids
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            out[rows] = session.run(
                None, {k: v for k, v in feed.items() if k in self._input_names}
            )[0]
        return normalize_rows(out)


def _session(ort: Any, path: Path, *, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads > 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
