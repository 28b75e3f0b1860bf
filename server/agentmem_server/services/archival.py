"""`ArchivalIndex`: chunks, embeds, stores and recalls archival memory (used by `MemoryService`).

    index = await ArchivalIndex.open(settings, embedder)
    prepared = await index.prepare(lines)                      # chunk + embed; touches no state
    await index.add(block_ref, prepared, first_line=41, written_at=ts)
    hits = await index.recall(tenant_id, "where does Maria live?", scopes=[ScopeKey("user")])
    await index.close()

Score: the cosine similarity of the query and the chunk, clamped to [0, 1], in every mode. The
mode only decides which chunks are candidates and in what order they come back; `min_score`
filters on that one score. docs/recall.md explains the choice and the fusion.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, Optional, Sequence, Union

import numpy as np
import pyarrow as pa

from agentmem.types import MemoryRecallResult

from ..chunking import Chunk, ChunkBudget, chunk_lines, rechunk
from ..embedding import Embedder, EmbeddingBatcher
from ..errors import InvalidInput
from ..ids import new_write_id
from ..storage.base import BlockRef, ScopeKey, from_micros, to_micros
from ..storage.lance.maintenance import Maintenance
from ..storage.lance.reindex import Progress, reindex_store
from ..storage.lance.schema import TABLE_PREFIX, table_name, tenant_prefix
from ..storage.lance.store import (
    PRUNE_NOW,
    RESULT_COLUMNS,
    LanceStore,
    rows_table,
    sql_str,
    storage_options,
    vectors_of,
)
from ..tokens import count_tokens

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger("agentmem.archival")

RecallMode = Literal["hybrid", "vector", "keyword"]
Timestamp = Union[datetime, int]
"""A timezone-aware datetime or UTC microseconds."""

CANDIDATES_PER_RESULT = 4
MIN_CANDIDATES = 20
"""depth = max(4 x limit, 20): the keyword leg of a hybrid recall returns that many candidates,
enough for fusion to matter (the vector leg needs only `limit`: see `recall`)."""
HYBRID_VECTOR_WEIGHT = 0.9
"""Hybrid order: 0.9 x cosine + 0.1 x BM25 / the query's best BM25, over both legs' candidates.

Measured on our eval set (evals/bench_archival.py --parts fusion, 336 questions): R@5 0.780 vs
0.751 for vector alone, 0.589 for keyword alone and 0.689 for equal-weight RRF (k=60), which
let weak keyword hits push out good vector hits on paraphrased questions."""
INLINE_CHUNKING_LINES = 64
"""Chunk small appends on the event loop (microseconds); larger ones in a worker thread."""

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class PreparedChunks:
    """Chunks of some lines and their vectors, made by `prepare` before any state is touched."""

    chunks: list[Chunk]
    """Line numbers relative to the prepared lines (1 = the first); `add` shifts them."""
    vectors: np.ndarray
    model_id: str


@dataclass(frozen=True)
class ReplaceResult:
    chunks: int
    """Chunks the block holds now."""
    embedded: int
    """Of those, chunks that needed the model; the others kept their stored vectors."""


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _micros(ts: Timestamp) -> int:
    return ts if isinstance(ts, int) else to_micros(ts)


class ArchivalIndex:
    def __init__(
        self,
        settings: "Settings",
        embedder: Embedder,
        store: LanceStore,
        batcher: EmbeddingBatcher,
        maintenance: Maintenance,
    ):
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.batcher = batcher
        self.maintenance = maintenance
        # Chunking big inputs runs here, not in asyncio's default pool: that pool carries the SQL
        # store's blocking calls, and a request holding a write lock must always find a thread.
        self._chunker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentmem-chunk")
        self.budget = ChunkBudget(
            max_tokens=settings.chunk_tokens,
            count_tokens=count_tokens,
            model_max_tokens=embedder.max_seq_length,
            count_model_tokens=embedder.count_tokens,
        )

    @classmethod
    async def open(
        cls,
        settings: "Settings",
        embedder: Embedder,
        *,
        allow_model_mismatch: bool = False,
        background_maintenance: bool = True,
    ) -> "ArchivalIndex":
        """Connect to `settings.archival_uri`; raises `EmbeddingModelMismatch` if its vectors came
        from another model (unless `allow_model_mismatch`, which only `reindex` should use)."""
        store = await LanceStore.open(
            settings.resolved_archival_uri(),
            model_id=embedder.model_id,
            dimension=embedder.dimension,
            ann_index_min_rows=settings.ann_index_min_rows,
            storage_options=storage_options(settings),
            allow_model_mismatch=allow_model_mismatch,
            cache_bytes=settings.recall_cache_mb * 2**20,
        )
        batcher = EmbeddingBatcher(
            embedder,
            max_batch=settings.embedding_batch_size,
            workers=getattr(embedder, "parallel_lanes", 1),
        )
        maintenance = Maintenance(
            store,
            prune_grace=timedelta(seconds=settings.archival_version_grace_s),
            background=background_maintenance,
        )
        return cls(settings, embedder, store, batcher, maintenance)

    async def close(self) -> None:
        await self.maintenance.aclose()
        await self.batcher.aclose()
        await self.store.close()
        self._chunker.shutdown(wait=True)

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    # ---- writes -------------------------------------------------------------------------------

    async def prepare(self, lines: Sequence[str]) -> PreparedChunks:
        """Chunk and embed `lines` (no newlines inside); touches no state, so callers may run it
        before taking locks or opening transactions."""
        if len(lines) > INLINE_CHUNKING_LINES:
            chunks = await asyncio.get_running_loop().run_in_executor(
                self._chunker, self._chunk, lines
            )
        else:
            chunks = self._chunk(lines)
        vectors = await self.batcher.embed([c.text for c in chunks])
        return PreparedChunks(chunks, vectors, self.model_id)

    def _chunk(self, lines: Sequence[str]) -> list[Chunk]:
        return chunk_lines(lines, self.budget, overlap_lines=self.settings.chunk_overlap_lines)

    async def add(
        self,
        block_ref: BlockRef,
        prepared: PreparedChunks,
        *,
        first_line: int,
        written_at: Timestamp,
        write_id: Optional[str] = None,
    ) -> None:
        """Store prepared chunks as lines `first_line...` of the block, tagged with `write_id`
        (a new one if None), which `discard_write` takes back."""
        if prepared.model_id != self.model_id:
            raise ValueError(
                f"chunks were embedded by {prepared.model_id!r}, this index uses {self.model_id!r}"
            )
        if not prepared.chunks:
            return
        if first_line < 1:
            raise ValueError(f"first_line must be >= 1, not {first_line}")
        shift = first_line - 1
        chunks = [
            dataclass_replace(c, start_line=c.start_line + shift, end_line=c.end_line + shift)
            for c in prepared.chunks
        ]
        name = self._table_name(block_ref)
        async with self.store.lock(name):
            state = await self._table_for_block(name, block_ref.block_id)
            rows = self._rows(
                state, block_ref, chunks, prepared.vectors, written_at, write_id=write_id
            )
            await self.store.add_rows(state, rows)
        self.maintenance.mark(name)

    async def discard_write(self, tenant_id: str, scope: ScopeKey, write_id: str) -> None:
        """Remove the rows one `add` stored in the scope (its SQL side did not commit)."""
        name = table_name(tenant_id, scope)
        async with self.store.lock(name):
            state = await self.store.table(name)
            if state is not None:
                await self.store.delete_rows(state, f"write_id = {sql_str(write_id)}")
        self.maintenance.mark(name)

    async def drop_scope(self, tenant_id: str, scope: ScopeKey) -> None:
        """Remove the scope's table, whatever block it holds."""
        await self._drop_table(table_name(tenant_id, scope))

    async def replace(
        self, block_ref: BlockRef, lines: Sequence[str], *, written_at: Timestamp
    ) -> ReplaceResult:
        """Make the block's chunks those of `lines`, embedding only chunks whose text is new.

        New rows are committed before the old ones are deleted: a crash in between leaves both
        versions searchable (duplicates, never a loss) until the block's next update.
        """
        name = self._table_name(block_ref)
        async with self.store.lock(name):
            state = await self.store.table(name)
            if state is not None and state.block_id != block_ref.block_id:
                await self._drop_stale(name, state.block_id, block_ref.block_id)
                state = None
            old = (
                await self.store.read_plan_rows(state, block_ref.block_id)
                if state is not None
                else None
            )
            old_chunks, old_ids, by_hash = _stored_chunks(old)
            if len(lines) > INLINE_CHUNKING_LINES or len(old_chunks) > INLINE_CHUNKING_LINES:
                plan = await asyncio.get_running_loop().run_in_executor(
                    self._chunker, self._rechunk, old_chunks, lines
                )
            else:
                plan = self._rechunk(old_chunks, lines)
            chunks = [c for c, _ in plan]
            hashes = [text_hash(c.text) for c in chunks]
            sources: list[Optional[str]] = [
                old_ids[i] if i is not None else by_hash.get(h) for (_, i), h in zip(plan, hashes)
            ]
            fresh = [k for k, s in enumerate(sources) if s is None]
            embedded = await self.batcher.embed([chunks[k].text for k in fresh])
            vectors = np.empty((len(chunks), self.embedder.dimension), dtype=np.float32)
            if fresh:
                vectors[fresh] = embedded
            if state is not None:
                stored = await self.store.read_vectors(state, {s for s in sources if s})
                for k, s in enumerate(sources):
                    if s is not None:
                        vectors[k] = stored[s]
            if state is None:
                if not chunks:
                    return ReplaceResult(0, 0)
                state = await self.store.create_table(name, block_ref.block_id)
            rows = self._rows(state, block_ref, chunks, vectors, written_at, hashes=hashes)
            await self.store.add_rows(state, rows)
            write_id = rows.column("write_id")[0].as_py() if rows.num_rows else ""
            await self.store.delete_rows(
                state,
                f"block_id = {sql_str(block_ref.block_id)} AND write_id != {sql_str(write_id)}",
            )
        self.maintenance.mark(name)
        return ReplaceResult(len(chunks), len(fresh))

    def _rechunk(
        self, old_chunks: list[Chunk], lines: Sequence[str]
    ) -> list[tuple[Chunk, Optional[int]]]:
        return rechunk(
            old_chunks, lines, self.budget, overlap_lines=self.settings.chunk_overlap_lines
        )

    async def delete_block(self, tenant_id: str, block_id: str) -> None:
        """Remove the block's chunks and vectors; its table's files go with it at once."""
        prefix = tenant_prefix(tenant_id)
        name = self.store.cached_block_table(block_id)
        if name is None or not name.startswith(prefix):
            name = None
            for candidate in await self.store.table_names(prefix):
                if await self.store.block_of(candidate) == block_id:
                    name = candidate
                    break
        if name is not None:
            await self._drop_table(name)

    async def delete_tenant(self, tenant_id: str) -> None:
        for name in await self.store.table_names(tenant_prefix(tenant_id)):
            await self._drop_table(name)

    async def _drop_table(self, name: str) -> None:
        async with self.store.lock(name):
            self.maintenance.forget(name)
            await self.store.drop_table(name)

    async def _table_for_block(self, name: str, block_id: str):
        state = await self.store.table(name)
        if state is not None and state.block_id != block_id:
            await self._drop_stale(name, state.block_id, block_id)
            state = None
        if state is None:
            state = await self.store.create_table(name, block_id)
        return state

    async def _drop_stale(self, name: str, stale: Optional[str], current: str) -> None:
        # Each scope has one archival block; rows of an older one are left over from a delete
        # that did not reach this index (a crash), and must not surface in recall.
        log.warning(
            "archival table %s held block %s, not %s; dropping the stale rows", name, stale, current
        )
        await self.store.drop_table(name)

    def _table_name(self, block_ref: BlockRef) -> str:
        return table_name(block_ref.tenant_id, block_ref.scope_key)

    def _rows(
        self,
        state,
        block_ref: BlockRef,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        written_at: Timestamp,
        *,
        hashes: Optional[Sequence[str]] = None,
        write_id: Optional[str] = None,
    ) -> pa.Table:
        return rows_table(
            state.table_schema,
            tenant_id=block_ref.tenant_id,
            scope=block_ref.scope,
            agent_id=block_ref.scope_key.agent_key,
            block_id=block_ref.block_id,
            write_id=write_id or new_write_id(),
            chunks=chunks,
            vectors=vectors,
            text_hashes=hashes if hashes is not None else [text_hash(c.text) for c in chunks],
            written_at=_micros(written_at),
        )

    # ---- recall -------------------------------------------------------------------------------

    async def recall(
        self,
        tenant_id: str,
        query: str,
        *,
        scopes: Sequence[ScopeKey],
        mode: RecallMode = "hybrid",
        limit: int = 5,
        min_score: float = 0.0,
        updated_after: Optional[Timestamp] = None,
        updated_before: Optional[Timestamp] = None,
    ) -> list[MemoryRecallResult]:
        """The best `limit` chunks of the tenant's `scopes` scoring at least `min_score`."""
        if mode not in ("hybrid", "vector", "keyword"):
            raise InvalidInput(
                f"mode must be 'hybrid', 'vector' or 'keyword', not {mode!r}", field="mode"
            )
        if limit < 1:
            raise InvalidInput(f"limit must be >= 1, not {limit}", field="limit", limit=1)
        if not 0.0 <= min_score <= 1.0:
            raise InvalidInput(
                f"min_score must be within [0, 1], not {min_score}", field="min_score"
            )
        names = list(dict.fromkeys(table_name(tenant_id, s) for s in scopes))
        states = [
            s for s in await asyncio.gather(*(self.store.table(n) for n in names)) if s is not None
        ]
        if not states or not query.strip():
            return []
        where = _time_filter(updated_after, updated_before)
        depth = max(limit * CANDIDATES_PER_RESULT, MIN_CANDIDATES)
        keywords = " ".join(_WORD.findall(query)) if mode != "vector" else ""
        # The keyword order needs only `limit` hits; the hybrid order may pick any of `depth`.
        text_limit = limit if mode == "keyword" else depth

        def text_legs() -> list[asyncio.Future]:
            return [
                asyncio.ensure_future(
                    self.store.text_search(s, keywords, limit=text_limit, where=where)
                )
                for s in states
            ]

        # The keyword leg searches while the query is embedded. With the vector leg answered from
        # memory (`VectorCache`), that overlap is most of what a hybrid recall saves; with LanceDB
        # answering both legs, the order made no difference on 2 cores (docs/recall.md).
        legs = text_legs() if keywords else []
        try:
            qvec = (await self.batcher.embed([query], urgent=True))[0]
            vector_tables = []
            if mode != "keyword":
                # Only the `limit` nearest can win: a vector-only hit scores 0.9 x cosine in
                # hybrid, at most what each of the `limit` nearer ones scores, and hits of both
                # legs come with the keyword leg. Reading 5 rows instead of 20 saved ~2.5 ms at 100k.
                vector_tables = await asyncio.gather(
                    *(self.store.vector_search(s, qvec, limit=limit, where=where) for s in states)
                )
            text_tables = await asyncio.gather(*legs)
        finally:
            for leg in legs:
                leg.cancel()
        chosen = _rank(
            qvec,
            vector_tables,
            text_tables,
            mode=mode,
            limit=limit,
            min_score=min_score,
            depth=depth,
        )
        results = []
        for c in chosen:
            state = states[c.table]
            if state.tenant_id != tenant_id:  # the table name says whose rows these are
                raise RuntimeError(
                    f"archival search for tenant {tenant_id!r} opened another tenant's table"
                )
            results.append(
                MemoryRecallResult(
                    content=c.row["text"],
                    score=c.score,
                    block_type="archival",
                    scope=state.scope.scope,
                    agent_id=state.scope.agent_id if state.scope.scope == "agent" else None,
                    line_number=c.row["start_line"],
                    end_line=c.row["end_line"],
                    updated_at=from_micros(c.row["written_at"]),
                    block_id=state.block_id,
                )
            )
        return results

    # ---- maintenance --------------------------------------------------------------------------

    async def maintain(self) -> None:
        """Run the pending background maintenance now (index updates, ANN builds, compaction)."""
        await self.maintenance.run(prune_older_than=PRUNE_NOW)

    async def cleanup(self, *, all_tables: bool = False) -> None:
        """Compact and prune every table written since the last cleanup (or every table): after
        it, no file of the store holds text or vectors that were deleted or replaced.

        Deleted blocks are gone at once (their table is dropped); this is what removes the
        chunks an update replaced. Pruning removes old versions other readers might still use.
        """
        names = (
            set(await self.store.table_names()) if all_tables else self.maintenance.take_touched()
        )
        await self.maintenance.run(prune_older_than=PRUNE_NOW, names=names)

    async def reindex(self, progress: Optional[Progress] = None) -> int:
        """Re-embed every stored chunk with this index's model; returns how many were embedded.

        Open the index with `allow_model_mismatch=True` to run it (the `agentmem reindex` CLI).
        An interrupted run resumes: tables already on this model are skipped.
        """
        done = await reindex_store(
            self.store,
            embed=self.batcher.embed,
            dimension=self.embedder.dimension,
            batch_rows=max(256, self.settings.embedding_batch_size * 8),
            progress=progress,
        )
        for name in await self.store.table_names(TABLE_PREFIX):
            await self.maintenance.run(prune_older_than=PRUNE_NOW, names={name})
        return done


# ---- helpers --------------------------------------------------------------------------------


def _stored_chunks(table: Optional[pa.Table]) -> tuple[list[Chunk], list[str], dict[str, str]]:
    if table is None or table.num_rows == 0:
        return [], [], {}
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    chunks = [
        Chunk(t, s, e, p)
        for t, s, e, p in zip(cols["text"], cols["start_line"], cols["end_line"], cols["piece"])
    ]
    by_hash = {h: c for h, c in zip(cols["text_hash"], cols["chunk_id"])}
    return chunks, cols["chunk_id"], by_hash


def _time_filter(after: Optional[Timestamp], before: Optional[Timestamp]) -> Optional[str]:
    parts = []
    if after is not None:
        parts.append(f"written_at >= {_micros(after)}")
    if before is not None:
        parts.append(f"written_at < {_micros(before)}")
    return " AND ".join(parts) or None


@dataclass(frozen=True)
class _Candidate:
    table: int
    """Index of the scope's table in this recall."""
    row: dict
    """The chunk's result columns (`RESULT_COLUMNS`)."""
    score: float


def _rank(
    qvec: np.ndarray,
    vector_tables: Sequence[pa.Table],
    text_tables: Sequence[pa.Table],
    *,
    mode: str,
    limit: int,
    min_score: float,
    depth: int,
) -> list[_Candidate]:
    """The chunks to return, in order: candidates of both legs ordered by the mode, scored by cosine."""
    cosine: dict[tuple[int, str], float] = {}
    rows: dict[tuple[int, str], dict] = {}
    by_vector: list[tuple[int, str]] = []
    text_hits: list[tuple[tuple[int, str], float]] = []
    for t, table in enumerate(vector_tables):
        distances = table.column("_distance").to_pylist()
        for row, distance in zip(table.select(RESULT_COLUMNS).to_pylist(), distances):
            key = (t, row["chunk_id"])
            cosine[key], rows[key] = 1.0 - distance, row
            by_vector.append(key)
    for t, table in enumerate(text_tables):
        if table.num_rows == 0:
            continue
        sims = vectors_of(table.column("vector"), len(qvec)) @ qvec
        bm25s = table.column("_score").to_pylist()
        for row, bm25, sim in zip(table.select(RESULT_COLUMNS).to_pylist(), bm25s, sims.tolist()):
            key = (t, row["chunk_id"])
            cosine.setdefault(key, sim)
            rows.setdefault(key, row)
            text_hits.append((key, bm25))
    by_vector = sorted(by_vector, key=lambda k: -cosine[k])[:depth]
    text_hits = sorted(text_hits, key=lambda kv: -kv[1])[:depth]
    if mode == "vector":
        order = by_vector
    elif mode == "keyword":
        order = [k for k, _ in text_hits]
    else:
        best = max((bm25 for _, bm25 in text_hits), default=0.0) or 1.0
        boost = {key: bm25 / best for key, bm25 in text_hits}
        w = HYBRID_VECTOR_WEIGHT
        order = sorted(
            dict.fromkeys(by_vector + [k for k, _ in text_hits]),
            key=lambda k: -(w * cosine[k] + (1 - w) * boost.get(k, 0.0)),
        )
    chosen = []
    for key in order:
        score = min(1.0, max(0.0, cosine[key]))
        if score >= min_score:
            chosen.append(_Candidate(key[0], rows[key], score))
            if len(chosen) == limit:
                break
    return chosen
