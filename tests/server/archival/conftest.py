"""Archival fixtures: settings on a temp dir, indexes on the hash embedder, one real MiniLM."""

from __future__ import annotations

import os
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import pytest

from agentmem_server.embedding import Embedder, HashEmbedder
from agentmem_server.services.archival import ArchivalIndex
from agentmem_server.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

OpenIndex = Callable[..., Awaitable[ArchivalIndex]]


@pytest.fixture
def archival_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", embedding_model="hash:64", chunk_tokens=64, chunk_overlap_lines=1)


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder(64)


@pytest.fixture
async def open_index(archival_settings: Settings, hash_embedder: HashEmbedder) -> AsyncIterator[OpenIndex]:
    """Factory: `await open_index(embedder=None, **settings)`; background maintenance off, so
    tests decide when indexes update (`maintain()`, `cleanup()`). All are closed at teardown."""
    opened: list[ArchivalIndex] = []

    async def open_(embedder: Embedder | None = None, **overrides) -> ArchivalIndex:
        allow_model_mismatch = overrides.pop("allow_model_mismatch", False)
        settings = archival_settings.model_copy(update=overrides)
        index = await ArchivalIndex.open(
            settings, embedder or hash_embedder, background_maintenance=False, allow_model_mismatch=allow_model_mismatch
        )
        opened.append(index)
        return index

    yield open_
    for index in opened:
        await index.close()


@pytest.fixture
async def index(open_index: OpenIndex) -> ArchivalIndex:
    return await open_index()


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    """The bundled all-MiniLM-L6-v2 run by torch (the reference backend), loaded once (seconds, ~90 MB)."""
    from agentmem_server.embedding import load_embedder

    return load_embedder(Settings(embedding_device="cpu", embedding_backend="torch"))
