"""`ArchivalIndex`: chunks, embeds, stores and recalls archival memory (used by `MemoryService`).

    index = await ArchivalIndex.open(settings, embedder)
    prepared = await index.prepare(lines)                      # chunk + embed; touches no state
    await index.add(block_ref, prepared, first_line=41, written_at=ts)
    hits = await index.recall(tenant_id, "where does Maria live?", scopes=[ScopeKey("user")])
    await index.close()

It owns the embedder's batcher and the chunking budget, and talks to storage only through the
`ArchivalStore` Protocol (`storage/base.py`; LanceDB in `storage/lance/index.py`). How a recall's
candidates are ranked is `recall.py`'s.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional, TypeVar, Union

import numpy as np

from agentmem.types import MemoryRecallResult

from ..chunking import Chunk, ChunkBudget, build_units, chunk_lines, rechunk, text_hash
from ..embedding import Embedder, EmbeddingBatcher
from ..errors import InvalidInput
from ..ids import new_write_id
from ..scaffold import with_scaffolds
from ..storage.base import (
    ArchivalStore,
    BlockRef,
    Leases,
    Progress,
    ScopeIndex,
    ScopeKey,
    StoredChunk,
    TextHits,
    VectorHits,
    from_micros,
    to_micros,
)
from ..tokens import count_tokens
from . import recall
from .recall import Candidate, RecallMode

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger("agentmem.archival")

T = TypeVar("T")
Timestamp = Union[datetime, int]
"""A timezone-aware datetime or UTC microseconds."""

INLINE_CHUNKING_LINES = 64
INLINE_CHUNKING_CHARS = 4096
"""Chunk small appends on the event loop (microseconds); larger ones in a worker thread. Both
caps: one long line costs as much to chunk as many short ones."""


def _inline(lines: Sequence[str]) -> bool:
    if len(lines) > INLINE_CHUNKING_LINES:
        return False
    return sum(len(line) for line in lines) <= INLINE_CHUNKING_CHARS


@dataclass(frozen=True)
class PreparedChunks:
    """Chunks (or line units) of some lines and their vectors, made by `prepare` before any
    state is touched."""

    chunks: list[Chunk]
    """Line numbers relative to the prepared lines (1 = the first); `add` shifts them."""
    vectors: np.ndarray
    model_id: str
    text_hashes: Sequence[str]
    """`text_hash` of each chunk's `index_text` (made with the chunks, off the event loop)."""
    units: bool = False
    """Line units (`build_units`), not chunks."""
    lines: Optional[Sequence[str]] = None
    """The lines, kept to prepare them again in the other format if the block's index turns
    out to be of it (`add`)."""


@dataclass(frozen=True)
class ReplaceResult:
    chunks: int
    """Chunks the block holds now."""
    embedded: int
    """Of those, chunks that needed the model; the others kept their stored vectors."""


def _micros(ts: Timestamp) -> int:
    return ts if isinstance(ts, int) else to_micros(ts)


def _optional_micros(ts: Optional[Timestamp]) -> Optional[int]:
    return None if ts is None else _micros(ts)


class ArchivalIndex:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        store: ArchivalStore,
        batcher: EmbeddingBatcher,
    ):
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.batcher = batcher
        # Chunking big inputs runs here, not in asyncio's default pool, which is everybody's.
        self._chunker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentmem-chunk")
        self._closing = threading.Event()
        """Set by `close`: chunking in progress gives up, so shutdown never waits for it."""
        self.budget = ChunkBudget(
            max_tokens=settings.chunk_tokens,
            count_tokens=count_tokens,
            model_max_tokens=embedder.max_seq_length,
            count_model_tokens=embedder.count_tokens,
            count_model_tokens_batch=getattr(embedder, "count_tokens_batch", None),
        )

    @classmethod
    async def open(
        cls,
        settings: Settings,
        embedder: Embedder,
        *,
        allow_model_mismatch: bool = False,
        background_maintenance: bool = True,
        leases: Optional[Leases] = None,
    ) -> ArchivalIndex:
        """Connect to `settings.archival_uri`; raises `EmbeddingModelMismatch` if its vectors came
        from another model (unless `allow_model_mismatch`, which only `reindex` should use).
        `leases` (SQL's, shared by every replica) let one replica at a time maintain a table."""
        from ..storage.lance.index import LanceArchivalStore

        store = await LanceArchivalStore.open(
            settings,
            model_id=embedder.model_id,
            dimension=embedder.dimension,
            allow_model_mismatch=allow_model_mismatch,
            background_maintenance=background_maintenance,
            leases=leases,
        )
        batcher = EmbeddingBatcher(
            embedder,
            max_batch=settings.embedding_batch_size,
            workers=getattr(embedder, "parallel_lanes", 1),
        )
        return cls(settings, embedder, store, batcher)

    async def close(self) -> None:
        self._closing.set()
        await self.batcher.aclose()
        await self.store.close()
        self._chunker.shutdown(wait=True)

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    # ---- writes -------------------------------------------------------------------------------

    @property
    def default_units(self) -> bool:
        """Whether a new block's index holds line units (`archival_units`)."""
        return self.settings.archival_units == "lines"

    async def prepare(
        self,
        lines: Sequence[str],
        *,
        units: Optional[bool] = None,
        scope: Optional[tuple[str, ScopeKey]] = None,
    ) -> PreparedChunks:
        """Chunk (or cut into line units) and embed `lines` (no newlines inside); touches no
        state, so callers may run it before taking locks or opening transactions.

        The format is `units` if given, else what this process knows of the `(tenant_id, scope)`
        index, else the default for new blocks; `add` prepares again if the index is of the
        other one."""
        if units is None and scope is not None:
            units = self.store.units_of(*scope)
        if units is None:
            units = self.default_units
        run = None if _inline(lines) else self._off_loop
        if run is None:
            chunks, hashes = self._chunk_and_hash(lines, units)
        else:
            chunks, hashes = await run(self._chunk_and_hash, lines, units)
        vectors = await self.batcher.embed([c.index_text for c in chunks])
        if units:
            chunks = await with_scaffolds(chunks, vectors, self.batcher.embed, run=run)
        return PreparedChunks(chunks, vectors, self.model_id, hashes, units, lines)

    def _off_loop(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`fn(*args)` in the chunking thread: per-line Python work of a big input."""
        return asyncio.get_running_loop().run_in_executor(self._chunker, fn, *args)

    def _chunk_and_hash(self, lines: Sequence[str], units: bool) -> tuple[list[Chunk], list[str]]:
        chunks = self._chunk(lines, units)
        return chunks, _hashes(chunks)

    def _chunk(self, lines: Sequence[str], units: bool) -> list[Chunk]:
        if units:
            return build_units(lines, self.budget, stop=self._closing.is_set)
        return chunk_lines(
            lines,
            self.budget,
            overlap_lines=self.settings.chunk_overlap_lines,
            stop=self._closing.is_set,
        )

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
        async with self.store.writing(block_ref) as writer:
            if writer.units is not None and writer.units != prepared.units:
                # The block's index is of the other format (made before the default changed, or
                # by another replica): its rows must be of that one.
                if prepared.lines is None:
                    raise ValueError("prepared rows of another format, without their lines")
                prepared = await self.prepare(prepared.lines, units=writer.units)
            # The store shifts the line numbers as it makes the rows: copying every chunk here
            # took ~0.5 s of the event loop for an 8 MiB append.
            await writer.add(
                prepared.chunks,
                prepared.vectors,
                text_hashes=prepared.text_hashes,
                written_at=_micros(written_at),
                write_id=write_id or new_write_id(),
                units=prepared.units,
                line_offset=first_line - 1,
            )

    async def discard_write(
        self, tenant_id: str, scope: ScopeKey, write_id: str, *, block_id: Optional[str] = None
    ) -> None:
        """Remove the rows one `add` stored in the scope (its SQL side did not commit); from
        that block's index when `block_id` is given, else from any the scope has."""
        await self.store.discard_write(tenant_id, scope, write_id, block_id=block_id)

    async def drop_scope(
        self, tenant_id: str, scope: ScopeKey, *, keep: Optional[str] = None
    ) -> None:
        """Remove the scope's index, whatever block it holds (but block `keep`'s)."""
        await self.store.drop_scope(tenant_id, scope, keep=keep)

    async def replace(
        self, block_ref: BlockRef, lines: Sequence[str], *, written_at: Timestamp
    ) -> ReplaceResult:
        """Make the block's chunks those of `lines`, embedding only chunks whose text is new.

        New rows are committed before the old ones are deleted: a crash in between leaves both
        versions searchable (duplicates, never a loss) until the block's next update.
        """
        async with self.store.writing(block_ref) as writer:
            units = writer.units if writer.units is not None else self.default_units
            old = await writer.stored_chunks()
            old_chunks, old_ids, by_hash = _plan_inputs(old)
            big = not _inline(lines) or len(old_chunks) > INLINE_CHUNKING_LINES
            plan: list[tuple[Chunk, Optional[int]]]
            if units:
                # Units are cheap to cut again; their vectors are found by the key's hash.
                if big:
                    cut = await asyncio.get_running_loop().run_in_executor(
                        self._chunker, self._chunk, lines, True
                    )
                else:
                    cut = self._chunk(lines, True)
                plan = [(u, None) for u in cut]
            elif big:
                plan = await asyncio.get_running_loop().run_in_executor(
                    self._chunker, self._rechunk, old_chunks, lines
                )
            else:
                plan = self._rechunk(old_chunks, lines)
            chunks = [c for c, _ in plan]
            hashes = await self._off_loop(_hashes, chunks) if big else _hashes(chunks)
            sources: list[Optional[str]] = [
                old_ids[i] if i is not None else by_hash.get(h)
                for (_, i), h in zip(plan, hashes, strict=True)
            ]
            stored = await writer.stored_vectors({s for s in sources if s})
            # A chunk planned from the stored ones may be gone by now (another replica's
            # write to the scope removed it): it is embedded anew, like new text.
            fresh = [k for k, s in enumerate(sources) if s is None or s not in stored]
            embedded = await self.batcher.embed([chunks[k].index_text for k in fresh])
            vectors = np.empty((len(chunks), self.embedder.dimension), dtype=np.float32)
            if fresh:
                vectors[fresh] = embedded
            for k, s in enumerate(sources):
                if s is not None and s in stored:
                    vectors[k] = stored[s]
            if units:
                chunks = await with_scaffolds(
                    chunks, vectors, self.batcher.embed, run=self._off_loop if big else None
                )
            await writer.replace(
                chunks, vectors, text_hashes=hashes, written_at=_micros(written_at), units=units
            )
        return ReplaceResult(len(chunks), len(fresh))

    def _rechunk(
        self, old_chunks: list[Chunk], lines: Sequence[str]
    ) -> list[tuple[Chunk, Optional[int]]]:
        return rechunk(
            old_chunks, lines, self.budget, overlap_lines=self.settings.chunk_overlap_lines
        )

    def vanished(self, error: BaseException) -> bool:
        """Whether `error` from a write says the index's files went away under it: another
        replica dropping the block's index (`ArchivalStore.vanished`)."""
        return self.store.vanished(error)

    async def delete_block(
        self, tenant_id: str, block_id: str, *, scope: Optional[ScopeKey] = None
    ) -> None:
        """Remove the block's chunks and vectors; the store's files lose them at once. Pass the
        block's scope when known: then no other table is looked at."""
        await self.store.delete_block(tenant_id, block_id, scope=scope)

    async def delete_tenant(self, tenant_id: str) -> None:
        await self.store.delete_tenant(tenant_id)

    # ---- recall -------------------------------------------------------------------------------

    async def recall(
        self,
        tenant_id: str,
        query: str,
        *,
        scopes: Sequence[Union[ScopeKey, BlockRef]],
        mode: RecallMode = "hybrid",
        limit: int = 5,
        min_score: float = 0.0,
        updated_after: Optional[Timestamp] = None,
        updated_before: Optional[Timestamp] = None,
        hidden_writes: Union[None, AbstractSet[str], Callable[[], Awaitable[set[str]]]] = None,
        query_vector: Optional[Awaitable[np.ndarray]] = None,
    ) -> list[MemoryRecallResult]:
        """The best `limit` chunks of the tenant's `scopes` scoring at least `min_score`.

        `hidden_writes` (or what it returns: it then runs while the query is searched) names
        writes whose rows must not be returned (they never committed: services/repair.py).
        `query_vector`: the query's embedding already started (`embed_query`).

        Services pass the blocks SQL holds now (`BlockRef` with `updated_at`): only those are
        searched, at least as new as SQL says. A bare `ScopeKey` searches what this process
        last knew of the scope (tools and tests without SQL)."""
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
        indexes = await self.store.open_scopes(tenant_id, scopes)
        if not indexes or not query.strip():
            return []
        after, before = _optional_micros(updated_after), _optional_micros(updated_before)
        keywords = recall.keyword_query(query) if mode != "vector" else ""
        text_limit = recall.text_leg_limit(mode, limit)
        # The keyword leg searches while the query is embedded. With the vector leg answered from
        # memory (the vector cache), that overlap is most of what a hybrid recall saves; with
        # LanceDB answering both legs, the order made no difference on 2 cores (docs/recall.md).
        hidden: Optional[asyncio.Future[set[str]]] = None
        known_hidden: AbstractSet[str] = frozenset()
        if callable(hidden_writes):
            hidden = asyncio.ensure_future(hidden_writes())
        elif hidden_writes is not None:
            known_hidden = hidden_writes
        text_legs: list[asyncio.Future[TextHits]] = []
        if keywords:
            text_legs = [
                asyncio.ensure_future(
                    self.store.text_search(
                        s, keywords, limit=text_limit, written_after=after, written_before=before
                    )
                )
                for s in indexes
            ]
        try:
            if query_vector is None:
                query_vector = self.batcher.embed([query], urgent=True)
            qvec = (await query_vector)[0]
            vector_legs: Sequence[VectorHits] = []
            if mode != "keyword":
                searches = [
                    self.store.vector_search(
                        s,
                        qvec,
                        limit=recall.vector_leg_limit(limit),
                        written_after=after,
                        written_before=before,
                    )
                    for s in indexes
                ]
                # One scope's search is awaited in this task: gather would wrap it in a task of
                # its own, two more turns of the loop on the critical path (an in-memory copy
                # answers without ever suspending).
                if len(searches) == 1:
                    vector_legs = [await searches[0]]
                else:
                    vector_legs = await asyncio.gather(*searches)
            # Awaiting a finished leg does not suspend; gather would take a turn of the loop.
            text_found = [await leg for leg in text_legs]
            skip = set(known_hidden) | (await hidden if hidden is not None else set())
            if skip:
                vector_legs = [_without_vector_hits(leg, skip) for leg in vector_legs]
                text_found = [_without_text_hits(leg, skip) for leg in text_found]
        finally:
            for leg in text_legs:
                leg.cancel()
            if hidden is not None:
                hidden.cancel()
        chosen = recall.rank(
            recall.vector_candidates(vector_legs),
            recall.text_candidates(text_found, qvec),
            mode=mode,
            limit=limit,
            min_score=min_score,
            depth=recall.candidate_depth(limit),
            order=recall.order_for(mode, units=all(s.units for s in indexes), query=query),
        )
        return [_result(tenant_id, indexes[c.scope], c) for c in chosen]

    def embed_query(self, query: str) -> asyncio.Future[np.ndarray]:
        """Start embedding a recall's query now, on the query lane, for `recall(query_vector=)`:
        work that needs no vector (SQL, opening tables, the keyword leg) then overlaps it."""
        return self.batcher.start_query([query])

    # ---- maintenance --------------------------------------------------------------------------

    async def maintain(self) -> None:
        """Run the pending background maintenance now (index updates, ANN builds, compaction)."""
        await self.store.maintain()

    async def cleanup(self, *, all_tables: bool = False) -> None:
        """Compact and prune every table written since the last cleanup (or every table): after
        it, no file of the store holds text or vectors that were deleted or replaced."""
        await self.store.cleanup(all_tables=all_tables)

    async def reindex(
        self, progress: Optional[Progress] = None, *, as_units: Optional[bool] = None
    ) -> int:
        """Re-embed every stored row with this index's model, and rebuild tables of chunks as
        line units if `as_units` (default: when new tables get units); returns how many rows
        were read.

        Open the index with `allow_model_mismatch=True` to run it (the `agentmem reindex` CLI).
        An interrupted run resumes: tables already on this model (and format) are skipped.
        """
        rebuild = self.default_units if as_units is None else as_units
        return await self.store.reindex(
            self.batcher.embed,
            batch_rows=max(256, self.settings.embedding_batch_size * 8),
            progress=progress,
            to_units=(lambda lines: build_units(lines, self.budget)) if rebuild else None,
        )


# ---- helpers --------------------------------------------------------------------------------


def _hashes(chunks: Sequence[Chunk]) -> list[str]:
    return [text_hash(c.index_text) for c in chunks]


def write_of(chunk_id: str) -> str:
    """The write that stored a chunk: chunk ids are `<write_id>-<n>`."""
    return chunk_id.rsplit("-", 1)[0]


def _without_vector_hits(leg: VectorHits, writes: set[str]) -> VectorHits:
    keep = [k for k, h in enumerate(leg.hits) if write_of(h.chunk_id) not in writes]
    if len(keep) == len(leg.hits):
        return leg
    vectors = leg.vectors[keep] if leg.vectors is not None else None
    return VectorHits([leg.hits[k] for k in keep], [leg.cosines[k] for k in keep], vectors)


def _without_text_hits(leg: TextHits, writes: set[str]) -> TextHits:
    keep = [k for k, h in enumerate(leg.hits) if write_of(h.chunk_id) not in writes]
    if len(keep) == len(leg.hits):
        return leg
    return TextHits([leg.hits[k] for k in keep], [leg.bm25[k] for k in keep], leg.vectors[keep])


def _plan_inputs(
    old: Sequence[StoredChunk],
) -> tuple[list[Chunk], list[str], dict[str, str]]:
    """What `rechunk` plans with: the stored chunks, their ids, and an id by text hash."""
    chunks = [Chunk(c.text, c.start_line, c.end_line, c.piece) for c in old]
    by_hash = {c.text_hash: c.chunk_id for c in old}
    return chunks, [c.chunk_id for c in old], by_hash


def _result(tenant_id: str, index: ScopeIndex, c: Candidate) -> MemoryRecallResult:
    if index.tenant_id != tenant_id:  # the store names whose rows these are
        raise RuntimeError(
            f"archival search for tenant {tenant_id!r} opened another tenant's index"
        )
    return MemoryRecallResult(
        content=c.hit.text,
        score=c.score,
        block_type="archival",
        scope=index.scope.scope,
        agent_id=index.scope.agent_id if index.scope.scope == "agent" else None,
        line_number=c.hit.start_line,
        end_line=c.hit.end_line,
        updated_at=from_micros(c.hit.written_at),
        block_id=index.block_id,
    )
