"""`LanceArchivalStore`: the `ArchivalStore` of `storage/base.py` on LanceDB.

    store = await LanceArchivalStore.open(settings, model_id=embedder.model_id, dimension=384)
    async with store.writing(block) as writer:
        await writer.add(chunks, vectors, text_hashes=hashes, written_at=us, write_id=write_id)
    (scope,) = await store.open_scopes(tenant_id, [ScopeKey("user")])
    hits = await store.vector_search(scope, query_vector, limit=5)

One table per (tenant, scope) (`schema.py`), holding that scope's one block; `LanceStore` keeps
the tables, `Maintenance` folds writes into their indexes off the request path. Filters are built
by `filters.py`, Arrow read and written by `arrow.py`: nothing of either leaves this package.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Optional

import numpy as np
import pyarrow as pa

from ...ids import new_write_id
from ..base import (
    BlockRef,
    Progress,
    ScopeIndex,
    ScopeKey,
    StoredChunk,
    TextHits,
    VectorHits,
)
from . import filters
from .arrow import chunk_hits, rows_table, stored_chunks, vectors_of
from .maintenance import Maintenance
from .reindex import reindex_store
from .schema import TABLE_PREFIX, table_name, tenant_prefix
from .store import PRUNE_NOW, LanceStore, TableState, storage_options

if TYPE_CHECKING:
    from ...chunking import Chunk
    from ...settings import Settings

log = logging.getLogger("agentmem.archival")


class LanceBlockWriter:
    """Writes one block's rows; made by `LanceArchivalStore.writing`, under the scope's lock."""

    def __init__(self, lance: LanceStore, name: str, block: BlockRef, state: Optional[TableState]):
        self._lance = lance
        self._name = name
        self._block = block
        self.state = state
        """The scope's table; None until the first write creates it."""

    async def stored_chunks(self) -> list[StoredChunk]:
        if self.state is None:
            return []
        return stored_chunks(await self._lance.read_plan_rows(self.state, self._block.block_id))

    async def stored_vectors(self, chunk_ids: Iterable[str]) -> dict[str, np.ndarray]:
        if self.state is None:
            return {}
        return await self._lance.read_vectors(self.state, chunk_ids)

    async def add(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        *,
        text_hashes: Sequence[str],
        written_at: int,
        write_id: str,
    ) -> None:
        state = await self._table()
        rows = self._rows(state, chunks, vectors, text_hashes, written_at, write_id)
        await self._lance.add_rows(state, rows)

    async def replace(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        *,
        text_hashes: Sequence[str],
        written_at: int,
    ) -> None:
        if self.state is None and not chunks:
            return
        state = await self._table()
        write_id = new_write_id()
        await self._lance.add_rows(
            state, self._rows(state, chunks, vectors, text_hashes, written_at, write_id)
        )
        await self._lance.delete_rows(
            state, filters.of_block_except_write(self._block.block_id, write_id)
        )

    async def _table(self) -> TableState:
        if self.state is None:
            self.state = await self._lance.create_table(self._name, self._block.block_id)
        return self.state

    def _rows(
        self,
        state: TableState,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        text_hashes: Sequence[str],
        written_at: int,
        write_id: str,
    ) -> pa.Table:
        return rows_table(
            state.table_schema,
            tenant_id=self._block.tenant_id,
            scope=self._block.scope,
            agent_key=self._block.scope_key.agent_key,
            block_id=self._block.block_id,
            write_id=write_id,
            chunks=chunks,
            vectors=vectors,
            text_hashes=text_hashes,
            written_at=written_at,
        )


class LanceArchivalStore:
    """Archival chunks in LanceDB, one table per scope; implements `ArchivalStore`."""

    def __init__(self, lance: LanceStore, maintenance: Maintenance):
        self.lance = lance
        self.maintenance = maintenance

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        model_id: str,
        dimension: int,
        allow_model_mismatch: bool = False,
        background_maintenance: bool = True,
    ) -> LanceArchivalStore:
        """Connect to `settings.archival_uri`; raises `EmbeddingModelMismatch` if its vectors came
        from another model (unless `allow_model_mismatch`, which only `reindex` should use)."""
        lance = await LanceStore.open(
            settings.resolved_archival_uri(),
            model_id=model_id,
            dimension=dimension,
            ann_index_min_rows=settings.ann_index_min_rows,
            storage_options=storage_options(settings),
            allow_model_mismatch=allow_model_mismatch,
            cache_bytes=settings.recall_cache_mb * 2**20,
        )
        maintenance = Maintenance(
            lance,
            prune_grace=timedelta(seconds=settings.archival_version_grace_s),
            background=background_maintenance,
        )
        return cls(lance, maintenance)

    @property
    def model_id(self) -> str:
        return self.lance.model_id

    @property
    def dimension(self) -> int:
        return self.lance.dimension

    async def close(self) -> None:
        await self.maintenance.aclose()
        await self.lance.close()

    # ---- writes -------------------------------------------------------------------------------

    @asynccontextmanager
    async def writing(self, block: BlockRef) -> AsyncIterator[LanceBlockWriter]:
        name = table_name(block.tenant_id, block.scope_key)
        async with self.lance.lock(name):
            state = await self.lance.table(name)
            if state is not None and state.block_id != block.block_id:
                await self._drop_stale(name, state.block_id, block.block_id)
                state = None
            writer = LanceBlockWriter(self.lance, name, block, state)
            yield writer
        if writer.state is not None:
            self.maintenance.mark(name)

    async def discard_write(self, tenant_id: str, scope: ScopeKey, write_id: str) -> None:
        """Remove the rows one `add` stored in the scope (its SQL side did not commit)."""
        name = table_name(tenant_id, scope)
        async with self.lance.lock(name):
            state = await self.lance.table(name)
            if state is not None:
                await self.lance.delete_rows(state, filters.of_writes([write_id]))
        self.maintenance.mark(name)

    async def drop_scope(self, tenant_id: str, scope: ScopeKey) -> None:
        """Remove the scope's table, whatever block it holds."""
        await self._drop_table(table_name(tenant_id, scope))

    async def delete_block(self, tenant_id: str, block_id: str) -> None:
        """Remove the block's chunks and vectors; its table's files go with it at once."""
        prefix = tenant_prefix(tenant_id)
        name = self.lance.cached_block_table(block_id)
        if name is None or not name.startswith(prefix):
            name = None
            for candidate in await self.lance.table_names(prefix):
                if await self.lance.block_of(candidate) == block_id:
                    name = candidate
                    break
        if name is not None:
            await self._drop_table(name)

    async def delete_tenant(self, tenant_id: str) -> None:
        for name in await self.lance.table_names(tenant_prefix(tenant_id)):
            await self._drop_table(name)

    async def _drop_table(self, name: str) -> None:
        async with self.lance.lock(name):
            self.maintenance.forget(name)
            await self.lance.drop_table(name)

    async def _drop_stale(self, name: str, stale: Optional[str], current: str) -> None:
        # Each scope has one archival block; rows of an older one are left over from a delete
        # that did not reach this index (a crash), and must not surface in recall.
        log.warning(
            "archival table %s held block %s, not %s; dropping the stale rows", name, stale, current
        )
        await self.lance.drop_table(name)

    # ---- searches -----------------------------------------------------------------------------

    async def open_scopes(self, tenant_id: str, scopes: Sequence[ScopeKey]) -> list[ScopeIndex]:
        names = list(dict.fromkeys(table_name(tenant_id, s) for s in scopes))
        states = await asyncio.gather(*(self.lance.table(n) for n in names))
        return [
            ScopeIndex(s.tenant_id, s.scope, s.block_id, handle=s) for s in states if s is not None
        ]

    async def vector_search(
        self,
        scope: ScopeIndex,
        vector: np.ndarray,
        *,
        limit: int,
        written_after: Optional[int] = None,
        written_before: Optional[int] = None,
    ) -> VectorHits:
        where = filters.written_between(written_after, written_before)
        table = await self.lance.vector_search(scope.handle, vector, limit=limit, where=where)
        distances = table.column("_distance").to_pylist()
        return VectorHits(chunk_hits(table), [1.0 - d for d in distances])

    async def text_search(
        self,
        scope: ScopeIndex,
        text: str,
        *,
        limit: int,
        written_after: Optional[int] = None,
        written_before: Optional[int] = None,
    ) -> TextHits:
        where = filters.written_between(written_after, written_before)
        table = await self.lance.text_search(scope.handle, text, limit=limit, where=where)
        vectors = vectors_of(table.column("vector"), self.dimension)
        return TextHits(chunk_hits(table), table.column("_score").to_pylist(), vectors)

    # ---- maintenance --------------------------------------------------------------------------

    async def maintain(self) -> None:
        await self.maintenance.run(prune_older_than=PRUNE_NOW)

    async def cleanup(self, *, all_tables: bool = False) -> None:
        """Compact and prune every table written since the last cleanup (or every table): after
        it, no file of the store holds text or vectors that were deleted or replaced.

        Deleted blocks are gone at once (their table is dropped); this is what removes the
        chunks an update replaced. Pruning removes old versions other readers might still use.
        """
        if all_tables:
            names = set(await self.lance.table_names())
        else:
            names = self.maintenance.take_touched()
        await self.maintenance.run(prune_older_than=PRUNE_NOW, names=names)

    async def reindex(
        self,
        embed: Callable[[Sequence[str]], Awaitable[np.ndarray]],
        *,
        batch_rows: int,
        progress: Optional[Progress] = None,
    ) -> int:
        done = await reindex_store(
            self.lance,
            embed=embed,
            dimension=self.dimension,
            batch_rows=batch_rows,
            progress=progress,
        )
        for name in await self.lance.table_names(TABLE_PREFIX):
            await self.maintenance.run(prune_older_than=PRUNE_NOW, names={name})
        return done
