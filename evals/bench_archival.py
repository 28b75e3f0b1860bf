"""Archival benchmarks against docs/design.md §9: ingestion, recall latency, the 1M-chunk scope,
RSS.

    python -m evals.bench_archival                      # everything (the 1M part takes a while)
    python -m evals.bench_archival --parts batcher,ingest,latency --sizes 10000
    python -m evals.bench_archival --parts big --big 1000000

Parts (each writes its figures into evals/out/bench_archival.json, merged with earlier runs):
- fusion:  recall quality (our eval dataset) of ways to fuse the vector and keyword rankings.
- batcher: does merging concurrent requests into one model batch raise throughput?
- ingest:  archival append over HTTP (a real `agentmem serve` with MiniLM) vs the bare embedder
           on the same chunks in the same run; target ratio >= 0.85.
- latency: recall over HTTP, k=5, one scope of N chunks; p50/p95. Targets at 100k: 15/30 ms.
- big:     N (1M) chunks with pre-computed synthetic vectors: ANN build time, ANN recall@10
           against exact search (target >= 0.95), recall p95 (target <= 60 ms), server RSS
           (target <= 1.5 GB).

Synthetic vectors are a mixture of 2,000 clusters (unit vectors plus noise), and queries are
perturbed data points: uniformly random 384-d vectors have no meaningful neighbours (every
similarity is ~0), which makes ANN recall a measure of noise. Chunks are loaded straight into
the archival store so the model is not the bottleneck; HTTP queries are embedded by MiniLM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from evals._bench import Server, latency_summary, log

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OUT = Path(__file__).resolve().parent / "out" / "bench_archival.json"
BACKEND = "auto"
DIM = 384
MODEL_ID = "bundled:all-MiniLM-L6-v2"
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


# ---- the text of the ingestion benchmark ---------------------------------------------------


def session_batches(limit_lines: int) -> list[tuple[str, list[str]]]:
    """(agent id, lines) per conversation session of our eval dataset: one append each."""
    from evals.dataset import load_dataset

    batches: list[tuple[str, list[str]]] = []
    total = 0
    for conv in load_dataset():
        for session in conv.sessions:
            lines = conv.session_lines(session)
            batches.append((conv.conversation_id, lines))
            total += len(lines)
            if total >= limit_lines:
                return batches
    return batches


def chunk_texts(batches, settings, embedder) -> list[list[str]]:
    """What the server embeds for each append: its chunks' texts, or its line units' keys
    (`archival_units`)."""
    from agentmem_server.chunking import ChunkBudget, build_units, chunk_lines
    from agentmem_server.tokens import count_tokens

    budget = ChunkBudget(
        settings.chunk_tokens, count_tokens, embedder.max_seq_length, embedder.count_tokens
    )
    if settings.archival_units == "lines":
        return [[u.index_text for u in build_units(lines, budget)] for _, lines in batches]
    return [
        [c.text for c in chunk_lines(lines, budget, overlap_lines=settings.chunk_overlap_lines)]
        for _, lines in batches
    ]


def bare_throughput(embedder, texts: list[str], lines: int, batch: int) -> dict:
    """The model alone, run the two best ways we know; the better one is the baseline.

    `encode`: sentence-transformers' own loop with torch's default threads (one per core).
    `lanes`: our batcher's worker threads, one torch thread each (what the server does).
    """
    import torch

    from agentmem_server.embedding import EmbeddingBatcher

    encode_s = float("inf")
    if hasattr(embedder, "_model"):  # the torch embedder
        threads = torch.get_num_threads()
        torch.set_num_threads(os.cpu_count() or 1)
        try:
            t0 = time.perf_counter()
            embedder._model.encode(texts, batch_size=batch, show_progress_bar=False)
            encode_s = time.perf_counter() - t0
        finally:
            torch.set_num_threads(threads)

    async def lanes() -> float:
        batcher = EmbeddingBatcher(
            embedder, max_batch=batch, workers=getattr(embedder, "parallel_lanes", 1)
        )
        t0 = time.perf_counter()
        await batcher.embed(texts)
        elapsed = time.perf_counter() - t0
        await batcher.aclose()
        return elapsed

    lanes_s = asyncio.run(lanes())
    return {
        "encode_lines_per_s": round(lines / encode_s, 1) if encode_s != float("inf") else None,
        "lanes_lines_per_s": round(lines / lanes_s, 1),
        "lines_per_s": round(lines / min(encode_s, lanes_s), 1),
        "texts": len(texts),
    }


async def http_ingest(server: Server, batches, clients: int) -> dict:
    import agentmem

    queue: asyncio.Queue = asyncio.Queue()
    for item in batches:
        queue.put_nowait(item)

    async def worker(client) -> None:
        while not queue.empty():
            agent, lines = queue.get_nowait()
            await client.memory.append("archival", "\n".join(lines), agent_id=agent, timeout=600)

    async with agentmem.AsyncClient(api_key=server.key, base_url=server.url, timeout=600) as client:
        await client.memory.append("archival", "warm-up line", agent_id="warmup")
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    lines = sum(len(lines) for _, lines in batches)
    return {
        "seconds": round(elapsed, 2),
        "lines_per_s": round(lines / elapsed, 1),
        "clients": clients,
    }


def bench_ingest(args) -> dict:
    """Each table format of `--ingest-units` (chunks, line units) in turn, in one run: the
    server's appends against the bare embedder on the texts that format embeds."""
    from agentmem_server.settings import Settings

    formats = args.ingest_units.split(",")
    results = {units: _ingest_one(args, Settings(archival_units=units)) for units in formats}
    return results if len(formats) > 1 else results[formats[0]]


def _ingest_one(args, settings) -> dict:
    from agentmem_server.embedding import load_embedder
    from agentmem_server.settings import Settings

    batches = session_batches(args.ingest_lines)
    lines = sum(len(b) for _, b in batches)
    log(f"ingest: {lines} lines in {len(batches)} appends, {args.clients} concurrent clients")
    embedder = load_embedder(
        Settings(embedding_device="cpu", embedding_backend=args.embedding_backend)
    )
    per_request = chunk_texts(batches, settings, embedder)
    texts = [t for chunks in per_request for t in chunks]
    on_lines = [line for _, b in batches for line in b]
    embedder.embed(texts[:64])  # warm-up
    log(f"table format: {settings.archival_units} ({len(texts)} texts to embed)")
    bare_before = bare_throughput(embedder, texts, lines, settings.embedding_batch_size)
    log("bare embedder on the chunks:", bare_before)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(
            Path(tmp),
            embedding_backend=args.embedding_backend,
            archival_units=settings.archival_units,
        ).start()
        try:
            http = asyncio.run(http_ingest(server, batches, args.clients))
        finally:
            server.stop()
    log("HTTP append:", http)
    bare_after = bare_throughput(embedder, texts, lines, settings.embedding_batch_size)
    log("bare embedder again:", bare_after)
    bare_lines = bare_throughput(embedder, on_lines, lines, settings.embedding_batch_size)
    log("bare embedder, one text per line:", bare_lines)
    bare = (bare_before["lines_per_s"] + bare_after["lines_per_s"]) / 2
    return {
        "lines": lines,
        "appends": len(batches),
        "chunks": len(texts),
        "http_append": http,
        "bare_embedder_on_chunks": [bare_before, bare_after],
        "bare_embedder_per_line": bare_lines,
        "ratio_vs_bare_on_chunks": round(http["lines_per_s"] / bare, 3),
        "ratio_vs_bare_per_line": round(http["lines_per_s"] / bare_lines["lines_per_s"], 3),
        "target_ratio": 0.85,
    }


def bench_batcher(args) -> dict:
    """Concurrent small requests, as many agents appending at once, merged vs one at a time."""
    from agentmem_server.embedding import EmbeddingBatcher, load_embedder
    from agentmem_server.settings import Settings

    embedder = load_embedder(Settings(embedding_device="cpu"))
    lines = [line for _, b in session_batches(2000) for line in b]
    embedder.embed(lines[:64])
    result: dict = {}
    for size in (1, 4):
        requests = [lines[i : i + size] for i in range(0, size * args.batcher_requests, size)]
        for merge in (False, True, False, True):

            async def run(merge: bool, requests: list[list[str]]) -> tuple[float, int]:
                batcher = EmbeddingBatcher(
                    embedder, max_batch=64, merge=merge, workers=embedder.parallel_lanes
                )
                t0 = time.perf_counter()
                await asyncio.gather(*(batcher.embed(r) for r in requests))
                elapsed = time.perf_counter() - t0
                batches = batcher.batches_run
                await batcher.aclose()
                return elapsed, batches

            elapsed, batches = asyncio.run(run(merge, requests))
            how = "merged" if merge else "one request per batch"
            key = f"{len(requests)} requests of {size} line(s), {how}"
            result.setdefault(key, []).append(
                {"texts_per_s": round(size * len(requests) / elapsed, 1), "batches": batches}
            )
            log(f"batcher {key}: {result[key][-1]}")
    return result


# ---- synthetic chunks ----------------------------------------------------------------------


def synthetic_vectors(n: int, seed: int = 0, clusters: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        noise = rng.standard_normal((m, DIM), dtype=np.float32)
        noise *= 0.6 / np.linalg.norm(noise, axis=1, keepdims=True)
        block = centres[rng.integers(0, clusters, m)] + noise
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def synthetic_queries(vectors: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = vectors[rng.integers(0, len(vectors), n)] + 0.8 * _unit(
        rng.standard_normal((n, DIM), dtype=np.float32)
    )
    return _unit(q)


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


class VectorTableEmbedder:
    """Stands in for MiniLM when chunks carry synthetic vectors: `q:<i>` embeds to query i."""

    model_id = MODEL_ID
    dimension = DIM
    max_seq_length = 256

    def __init__(self, queries: np.ndarray):
        self.queries = queries

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    def embed(self, texts):
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            if t.startswith("q:"):
                out[i] = self.queries[int(t[2:])]
            else:
                out[i, hash(t) % DIM] = 1.0
        return out


async def load_synthetic(index, block_ref, vectors: np.ndarray, batch: int = 100_000) -> float:
    from agentmem_server.chunking import Chunk, text_hash
    from agentmem_server.services.archival import PreparedChunks

    t0 = time.perf_counter()
    words = [
        "garden",
        "budget",
        "dentist",
        "project",
        "sister",
        "recipe",
        "knee",
        "offsite",
        "dog",
        "train",
    ]
    for start in range(0, len(vectors), batch):
        part = vectors[start : start + batch]
        texts = [
            f"synthetic note {start + i}: something about the {words[(start + i) % 10]} and "
            f"item {(start + i) % 997}"
            for i in range(len(part))
        ]
        units = index.default_units  # rows in the format of a new table, searched by their key
        chunks = [Chunk(t, 1 + i, 1 + i, key=t if units else None) for i, t in enumerate(texts)]
        await index.add(
            block_ref,
            PreparedChunks(
                chunks, part, index.model_id, [text_hash(c.index_text) for c in chunks], units
            ),
            first_line=start + 1,
            written_at=1_700_000_000_000_000 + start,
        )
    return time.perf_counter() - t0


def register_block(settings, tenant_id: str, lines: int) -> None:
    """The SQL row of the benchmark's archival block: recall searches only the blocks SQL
    holds (a scope loaded into LanceDB alone is never searched)."""
    from agentmem_server.storage.base import now_micros
    from agentmem_server.storage.sql.blocks import insert_block_if_missing
    from agentmem_server.storage.sql.store import SqlStore

    sql = SqlStore.open(settings.resolved_database_url())
    try:
        with sql.begin() as conn:
            insert_block_if_missing(
                conn, tenant_id, "archival", "bench", "", lines, now_micros(), block_id="blk_bench"
            )
    finally:
        sql.close()


def bench_table(tenant_id: str) -> str:
    """The LanceDB table of the benchmark's one agent scope."""
    from agentmem_server.storage.base import ScopeKey
    from agentmem_server.storage.lance.schema import block_table_name

    return block_table_name(tenant_id, ScopeKey("agent", "bench"), "blk_bench")


async def load_scope(
    data_dir: Path, tenant_id: str, vectors, queries, ann_min_rows: int, recall_cache_mb: int = 0
) -> tuple[dict, object]:
    """Load `vectors` as one agent scope of the tenant and let maintenance index it (a store
    kept from an earlier run with the same size is reused as it is)."""
    from agentmem_server.services.archival import ArchivalIndex
    from agentmem_server.settings import Settings
    from agentmem_server.storage.base import BlockRef

    settings = Settings(
        data_dir=data_dir, ann_index_min_rows=ann_min_rows, recall_cache_mb=recall_cache_mb
    )
    index = await ArchivalIndex.open(
        settings, VectorTableEmbedder(queries), background_maintenance=False
    )
    block = BlockRef(tenant_id, "blk_bench", "agent", "bench")
    state = await index.store.lance.table(bench_table(tenant_id))
    if state is not None and await state.table.count_rows() == len(vectors):
        log(f"reusing the {len(vectors)} chunks stored in {data_dir}")
        register_block(settings, tenant_id, len(vectors))
        return {"reused_store": True, "ann_index": bool(state.ann_rows)}, index
    facts = {"load_s": round(await load_synthetic(index, block, vectors), 1)}
    register_block(settings, tenant_id, len(vectors))
    log(f"loaded {len(vectors)} chunks in {facts['load_s']}s")
    t0 = time.perf_counter()
    await index.maintain()
    facts["maintenance_s"] = round(time.perf_counter() - t0, 1)
    state = await index.store.lance.table(bench_table(tenant_id))
    facts["ann_index"] = bool(state.ann_rows)
    log(
        f"maintenance (FTS fold-in, compaction{', ANN build' if state.ann_rows else ''}): "
        f"{facts['maintenance_s']}s"
    )
    return facts, index


async def search_quality(
    index, tenant_id: str, vectors: np.ndarray, queries: np.ndarray, k: int = 10
) -> dict:
    """In-process vector recall vs exact top-k (numpy), and search-only latency (no model)."""
    from agentmem_server.storage.base import ScopeKey

    similarity = vectors @ queries.T
    exact = np.argpartition(-similarity, k, axis=0)[:k].T + 1  # line numbers of the true top k
    del similarity
    recalls, times = [], []
    scope = [ScopeKey("agent", "bench")]
    for i in range(len(queries)):
        t0 = time.perf_counter()
        hits = await index.recall(tenant_id, f"q:{i}", scopes=scope, mode="vector", limit=k)
        times.append(time.perf_counter() - t0)
        recalls.append(len({h.line_number for h in hits} & set(exact[i].tolist())) / k)
    hybrid = []
    for i in range(len(queries)):
        t0 = time.perf_counter()
        await index.recall(tenant_id, f"q:{i}", scopes=scope, mode="hybrid", limit=5)
        hybrid.append(time.perf_counter() - t0)
    return {
        f"recall_at_{k}": round(float(np.mean(recalls)), 4),
        "in_process_vector_k10": latency_summary(times),
        "in_process_hybrid_k5": latency_summary(hybrid),
    }


async def copy_quality(data_dir: Path, tenant_id: str, vectors, queries, args) -> dict:
    """The same as `search_quality`, answered by the in-memory copy (`VectorCache`) once built."""
    from agentmem_server.storage.base import ScopeKey
    from agentmem_server.storage.lance.vector_cache import estimated_bytes

    _, index = await load_scope(
        data_dir, tenant_id, vectors, queries, args.ann_min_rows, args.recall_cache_mb
    )
    try:
        name = bench_table(tenant_id)
        cache, table = index.store.lance.vector_cache, (await index.store.lance.table(name)).table
        if estimated_bytes(await table.count_rows(), DIM) > cache.budget_bytes:
            log("the scope is too large for the in-memory copy: LanceDB answers it")
            return {"copied": False}
        t0 = time.perf_counter()
        await index.recall(
            tenant_id, "q:0", scopes=[ScopeKey("agent", "bench")], mode="vector"
        )  # starts the copy
        while not await cache.current(name, table):
            if time.perf_counter() - t0 > 600:
                return {"copied": False}
            await asyncio.sleep(0.1)
        facts = {
            "copied": True,
            "copy_s": round(time.perf_counter() - t0, 1),
            "copy_mb": round(cache.nbytes / 2**20, 1),
        }
        served = cache.served
        facts.update(await search_quality(index, tenant_id, vectors, queries))
        facts["served_from_copy"] = cache.served - served
        log("in-process, from the in-memory copy:", facts)
        return facts
    finally:
        await index.close()


async def http_recall(server: Server, n: int, settle_s: float = 0.0) -> dict:
    """Recall latency as agent code sees it, through both public clients, taking turns query by
    query (httpx's async client costs ~1 ms more per request than its sync one here).

    The first recall of a scope starts the server copying it into memory (`VectorCache`, ~10 s
    at 100k chunks); `settle_s` waits for that, so the figures are a running server's."""
    import agentmem

    out = {}
    with agentmem.Client(api_key=server.key, base_url=server.url) as sync_client:
        async with agentmem.AsyncClient(api_key=server.key, base_url=server.url) as async_client:
            sync_client.memory.recall(QUESTIONS[0], agent_id="bench", scope="agent", limit=5)
            if settle_s:
                log(f"waiting {settle_s:g}s for the server to copy the scope into memory")
                await asyncio.sleep(settle_s)
            for mode in ("hybrid", "vector", "keyword"):
                kwargs = dict(agent_id="bench", scope="agent", limit=5, mode=mode)
                for i in range(10):
                    sync_client.memory.recall(QUESTIONS[i % len(QUESTIONS)], **kwargs)
                    await async_client.memory.recall(QUESTIONS[i % len(QUESTIONS)], **kwargs)
                sync_times, async_times = [], []
                for i in range(n):
                    t0 = time.perf_counter()
                    hits = sync_client.memory.recall(
                        f"{QUESTIONS[i % len(QUESTIONS)]} ({i})", **kwargs
                    )
                    sync_times.append(time.perf_counter() - t0)
                    assert hits or mode == "keyword"
                    t0 = time.perf_counter()
                    await async_client.memory.recall(
                        f"{QUESTIONS[(i + 3) % len(QUESTIONS)]} ({i})", **kwargs
                    )
                    async_times.append(time.perf_counter() - t0)
                out[mode] = {
                    "sync_client": latency_summary(sync_times),
                    "async_client": latency_summary(async_times),
                }
                log(f"HTTP recall {mode} k=5: {out[mode]}")
    return out


def bench_scope(n: int, args) -> dict:
    log(f"--- one scope with {n} chunks ---")
    vectors = synthetic_vectors(n)
    queries = synthetic_queries(vectors, args.quality_queries)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        if args.keep_data:
            tmp = str(Path(args.keep_data, str(n)))
            Path(tmp).mkdir(parents=True, exist_ok=True)
        server = Server(
            Path(tmp),
            ann_index_min_rows=args.ann_min_rows,
            embedding_backend=args.embedding_backend,
            recall_cache_mb=args.recall_cache_mb,
        )

        async def prepare(vectors):
            facts, index = await load_scope(
                Path(tmp), server.tenant_id, vectors, queries, args.ann_min_rows
            )
            facts.update(await search_quality(index, server.tenant_id, vectors, queries))
            log("in-process:", {k: v for k, v in facts.items() if k != "load_s"})
            await index.close()
            if args.recall_cache_mb:
                facts["in_memory_copy"] = await copy_quality(
                    Path(tmp), server.tenant_id, vectors, queries, args
                )
            return facts

        result = asyncio.run(prepare(vectors))
        del vectors  # 1.5 GB at 1M: not held while the server runs and its RSS is read
        server.start()
        try:
            result["http_k5"] = asyncio.run(http_recall(server, args.queries, args.settle_s))
            result["server_rss_mb"] = server.rss_mb()
            log(f"server RSS {result['server_rss_mb']} MB")
        finally:
            server.stop()
    result["chunks"] = n
    return result


# ---- fusion: how hybrid combines the two legs ---------------------------------------------


FUSIONS = {
    "vector only": ("rrf", 60, 0.0),
    "keyword only": ("keyword", 0, 0.0),
    "rrf k=60 w_kw=1": ("rrf", 60, 1.0),
    "rrf k=60 w_kw=0.5": ("rrf", 60, 0.5),
    "rrf k=60 w_kw=0.3": ("rrf", 60, 0.3),
    "rrf k=10 w_kw=0.5": ("rrf", 10, 0.5),
    "convex a=0.95": ("convex", 0, 0.95),
    "convex a=0.9": ("convex", 0, 0.9),
    "convex a=0.85": ("convex", 0, 0.85),
    "convex a=0.8": ("convex", 0, 0.8),
    "convex a=0.7": ("convex", 0, 0.7),
    "convex a=0.5": ("convex", 0, 0.5),
}


def fuse_offline(vec: list, kw: list, how: tuple) -> list:
    """Order candidates: `vec` [(key, cosine)] by cosine, `kw` [(key, bm25, cosine)] by BM25."""
    kind, k, w = how
    if kind == "keyword":
        return [key for key, _, _ in kw]
    if kind == "rrf":
        fused: dict = {}
        for rank, (key, _) in enumerate(vec):
            fused[key] = fused.get(key, 0) + 1 / (k + rank + 1)
        for rank, (key, _, _) in enumerate(kw):
            fused[key] = fused.get(key, 0) + w / (k + rank + 1)
        return sorted(fused, key=lambda key: -fused[key])
    cos = {key: c for key, c in vec} | {key: c for key, _, c in kw}
    top = max((b for _, b, _ in kw), default=1.0) or 1.0
    bm = {key: b / top for key, b, _ in kw}
    return sorted(cos, key=lambda key: -(w * cos[key] + (1 - w) * bm.get(key, 0.0)))


def bench_fusion(args) -> dict:
    """Recall quality of fusion rules on our eval dataset, from one ingestion and one query pass."""
    from agentmem_server.embedding import load_embedder
    from agentmem_server.services.archival import ArchivalIndex
    from agentmem_server.services.recall import keyword_query
    from agentmem_server.settings import Settings
    from agentmem_server.storage.base import BlockRef, ScopeKey
    from agentmem_server.storage.lance.arrow import vectors_of
    from agentmem_server.storage.lance.schema import block_table_name
    from evals.dataset import load_dataset
    from evals.metrics import recall_at_k, reciprocal_rank

    conversations = load_dataset()
    embedder = load_embedder(Settings(embedding_device="cpu"))

    async def run() -> dict:
        with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
            index = await ArchivalIndex.open(
                Settings(data_dir=Path(tmp)), embedder, background_maintenance=False
            )
            t0 = time.perf_counter()
            for conv in conversations:
                agent = re.sub(r"[^A-Za-z0-9_.\-]", "_", conv.conversation_id)
                block, line = BlockRef("t", f"b_{agent}", "agent", agent), 1
                for session in conv.sessions:
                    lines = conv.session_lines(session)
                    await index.add(
                        block, await index.prepare(lines), first_line=line, written_at=1
                    )
                    line += len(lines)
            log(
                f"fusion: ingested {len(conversations)} conversations in "
                f"{time.perf_counter() - t0:.1f}s"
            )
            depth = 40
            scores = {name: {"r5": [], "r10": [], "mrr": [], "types": {}} for name in FUSIONS}
            for conv in conversations:
                agent = re.sub(r"[^A-Za-z0-9_.\-]", "_", conv.conversation_id)
                state = await index.store.lance.table(
                    block_table_name("t", ScopeKey("agent", agent), f"b_{agent}")
                )
                for q in conv.questions:
                    qvec = embedder.embed([q.question])[0]
                    cols = ["chunk_id", "start_line", "end_line", "vector"]
                    vt = await index.store.lance.vector_search(
                        state, qvec, limit=depth, where=None, columns=cols
                    )
                    kt = await index.store.lance.text_search(
                        state, keyword_query(q.question), limit=depth, where=None, columns=cols
                    )
                    spans = {}

                    def rows(t, qvec=qvec, spans=spans):
                        sims = (
                            vectors_of(t.column("vector"), len(qvec)) @ qvec if t.num_rows else []
                        )
                        for r, s in zip(t.drop_columns(["vector"]).to_pylist(), sims, strict=True):
                            spans[r["chunk_id"]] = (r["start_line"], r["end_line"])
                            yield r, float(s)

                    vec = sorted(((r["chunk_id"], s) for r, s in rows(vt)), key=lambda x: -x[1])
                    kw = [(r["chunk_id"], r["_score"], s) for r, s in rows(kt)]
                    evidence = conv.evidence_lines(q)
                    for name, how in FUSIONS.items():
                        ranked = [spans[key] for key in fuse_offline(vec, kw, how)]
                        s = scores[name]
                        s["r5"].append(recall_at_k(ranked, evidence, 5))
                        s["r10"].append(recall_at_k(ranked, evidence, 10))
                        s["mrr"].append(reciprocal_rank(ranked, evidence))
                        s["types"].setdefault(q.type, []).append(recall_at_k(ranked, evidence, 5))
            await index.close()
        table = {}
        for name, s in scores.items():
            table[name] = {
                "R@5": round(float(np.mean(s["r5"])), 3),
                "R@10": round(float(np.mean(s["r10"])), 3),
                "MRR": round(float(np.mean(s["mrr"])), 3),
                "R@5 by type": {
                    t: round(float(np.mean(v)), 3) for t, v in sorted(s["types"].items())
                },
            }
            log(
                f"{name:22s} R@5 {table[name]['R@5']:.3f}  R@10 {table[name]['R@10']:.3f}  MRR "
                f"{table[name]['MRR']:.3f}  {table[name]['R@5 by type']}"
            )
        return {"questions": len(scores["vector only"]["r5"]), "rules": table}

    return asyncio.run(run())


def save(part: str, result: dict) -> None:
    if BACKEND != "auto" and part != "fusion":
        part = f"{part} [{BACKEND}]"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data[part] = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **result}
    data["machine"] = {
        "cpus": os.cpu_count(),
        "note": "shared 2-core CPU box; other work ran alongside",
    }
    OUT.write_text(json.dumps(data, indent=2))
    log(f"wrote {OUT} [{part}]")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="batcher,ingest,latency,big")
    parser.add_argument("--ingest-lines", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4, help="concurrent appending clients")
    parser.add_argument(
        "--ingest-units",
        default="chunks,lines",
        help="table formats the ingest part measures, in turn (archival_units values)",
    )
    parser.add_argument("--batcher-requests", type=int, default=64)
    parser.add_argument("--sizes", default="10000,100000", help="chunk counts for the latency part")
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="HTTP recalls per mode")
    parser.add_argument("--quality-queries", type=int, default=100)
    parser.add_argument(
        "--ann-min-rows", type=int, default=None, help="default: the setting's default"
    )
    parser.add_argument("--tmp", default=None, help="where the temporary stores go")
    parser.add_argument(
        "--embedding-backend",
        default="auto",
        choices=["auto", "torch", "onnx"],
        help="the server's (and the bare baseline's) backend",
    )
    parser.add_argument(
        "--recall-cache-mb",
        type=int,
        default=256,
        help="the server's AGENTMEM_RECALL_CACHE_MB (0: LanceDB answers every vector leg)",
    )
    parser.add_argument(
        "--settle-s",
        type=float,
        default=20.0,
        help="wait after the first recall, for the server's in-memory copy of the scope",
    )
    parser.add_argument(
        "--keep-data",
        default=None,
        help="keep the stores under DIR/<size> and reuse them on the next run",
    )
    args = parser.parse_args()
    global BACKEND
    BACKEND = args.embedding_backend
    if args.ann_min_rows is None:
        from agentmem_server.settings import Settings

        args.ann_min_rows = Settings().ann_index_min_rows
    parts = set(args.parts.split(","))
    if "fusion" in parts:
        save("fusion", bench_fusion(args))
    if "batcher" in parts:
        save("batcher", bench_batcher(args))
    if "ingest" in parts:
        save("ingest", bench_ingest(args))
    if "latency" in parts:
        save("latency", {str(n): bench_scope(n, args) for n in map(int, args.sizes.split(","))})
    if "big" in parts:
        save("big", bench_scope(args.big, args))


if __name__ == "__main__":
    main()
