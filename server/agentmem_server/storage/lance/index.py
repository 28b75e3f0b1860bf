"""`LanceArchivalStore`: the `ArchivalStore` of `storage/base.py` on LanceDB.

    store = await LanceArchivalStore.open(settings, model_id=embedder.model_id, dimension=384)
    async with store.writing(block) as writer:
        await writer.add(chunks, vectors, text_hashes=hashes, written_at=us, write_id=write_id)
    (scope,) = await store.open_scopes(tenant_id, [ScopeKey("user")])
    hits = await store.vector_search(scope, query_vector, limit=5)

One table per archival block (`schema.py`: named after the block, so never reused); `LanceStore`
keeps the tables, `Maintenance` folds writes into their indexes off the request path. Filters are
built by `filters.py`, Arrow read and written by `arrow.py`: nothing of either leaves this package.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Optional

import numpy as np
import pyarrow as pa

from ...ids import new_write_id
from ..base import (
    BlockRef,
    BlockTable,
    Leases,
    Progress,
    ScopeIndex,
    ScopeKey,
    StoredChunk,
    TextHits,
    VectorHits,
)
from . import filters
from .arrow import chunk_hits, rows_table, stored_chunks, vectors_of
from .maintenance import Maintenance, lease_name, leased
from .reindex import reindex_store
from .schema import (
    TABLE_PREFIX,
    block_table_name,
    legacy_table_name,
    parse_table_name_full,
    scope_prefix,
    tenant_prefix,
)
from .store import (
    PRUNE_NOW,
    LanceStore,
    TableState,
    is_not_found,
    is_raced_removal,
    storage_options,
)

if TYPE_CHECKING:
    from ...chunking import Chunk
    from ...settings import Settings

log = logging.getLogger("agentmem.archival")

INLINE_ROWS = 1024
"""Writes of more rows build their Arrow table in a worker thread, off the event loop."""


class LanceBlockWriter:
    """Writes one block's rows; made by `LanceArchivalStore.writing`, under the scope's lock."""

    def __init__(self, lance: LanceStore, name: str, block: BlockRef, state: Optional[TableState]):
        self._lance = lance
        self._name = name
        self._block = block
        self.state = state
        """The scope's table; None until the first write creates it."""

    @property
    def units(self) -> Optional[bool]:
        return None if self.state is None else self.state.units

    async def stored_chunks(self) -> list[StoredChunk]:
        if self.state is None:
            return []
        await self._lance.refresh(self.state, force=True)  # plan with the latest rows
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
        units: bool = False,
        line_offset: int = 0,
    ) -> None:
        state = await self._table(units)
        rows = await self._rows(
            state, chunks, vectors, text_hashes, written_at, write_id, line_offset
        )
        try:
            await self._lance.add_rows(state, rows)
        except Exception as exc:
            if not is_not_found(exc):
                raise
            # Another replica deleted the block and dropped its table under this append: write
            # into a fresh one; the append's guarded SQL step then finds the block gone, takes
            # these rows back and retries (services/memory.py).
            self._lance.forget(self._name)
            self.state = None
            await self._lance.add_rows(await self._table(units), rows)

    async def replace(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        *,
        text_hashes: Sequence[str],
        written_at: int,
        units: bool = False,
    ) -> None:
        if self.state is None and not chunks:
            return
        state = await self._table(units)
        write_id = new_write_id()
        await self._lance.add_rows(
            state, await self._rows(state, chunks, vectors, text_hashes, written_at, write_id)
        )
        await self._lance.delete_rows(
            state, filters.of_block_except_write(self._block.block_id, write_id)
        )

    async def _table(self, units: bool) -> TableState:
        if self.state is None:
            self.state = await self._lance.create_table(
                self._name, self._block.block_id, units=units
            )
        return self.state

    async def _rows(
        self,
        state: TableState,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        text_hashes: Sequence[str],
        written_at: int,
        write_id: str,
        line_offset: int = 0,
    ) -> pa.Table:
        make = partial(
            rows_table,
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
            line_offset=line_offset,
        )
        if len(chunks) <= INLINE_ROWS:
            return make()
        # Python objects for every row: ~0.4 s of the event loop for an 8 MiB append's 125k.
        return await asyncio.to_thread(make)


class LanceArchivalStore:
    """Archival chunks in LanceDB, one table per scope; implements `ArchivalStore`."""

    def __init__(self, lance: LanceStore, maintenance: Maintenance):
        self.lance = lance
        self.maintenance = maintenance
        self._scopes: dict[tuple[str, ScopeKey], str] = {}
        """The table this process last wrote or found for a scope (bare `ScopeKey` searches)."""

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        model_id: str,
        dimension: int,
        allow_model_mismatch: bool = False,
        background_maintenance: bool = True,
        leases: Optional[Leases] = None,
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
            lance_cache_bytes=(
                settings.lance_index_cache_mb * 2**20,
                settings.lance_metadata_cache_mb * 2**20,
            ),
        )
        maintenance = Maintenance(
            lance,
            prune_grace=timedelta(seconds=settings.archival_version_grace_s),
            background=background_maintenance,
            leases=leases,
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

    def units_of(self, tenant_id: str, scope: ScopeKey) -> Optional[bool]:
        name = self._scopes.get((tenant_id, scope))
        state = self.lance.open_state(name) if name is not None else None
        return None if state is None else state.units

    async def _name_of(self, block: BlockRef, *, for_write: bool) -> Optional[str]:
        """The table of the block: its own (block-named) one; or the scope's legacy table if
        that holds this block. For a write, a legacy table holding another block (left by a
        delete that did not reach it) is dropped, and the block's own name returned."""
        cached = self.lance.cached_block_table(block.block_id)
        if cached is not None:
            return cached
        name = block_table_name(block.tenant_id, block.scope_key, block.block_id)
        if await self.lance.table(name) is not None:
            return name
        legacy = legacy_table_name(block.tenant_id, block.scope_key)
        held = await self.lance.block_of(legacy)
        if held == block.block_id:
            return legacy
        if held is not None and for_write:
            await self._drop_stale(legacy, held, block.block_id)
        return name if for_write else None

    @asynccontextmanager
    async def writing(self, block: BlockRef) -> AsyncIterator[LanceBlockWriter]:
        name = await self._name_of(block, for_write=True)
        assert name is not None
        async with self.lance.lock(name):
            state = await self.lance.table(name)
            if state is not None:
                # An edit plans with the stored chunks: read them at the latest version.
                await self.lance.refresh(state, stamp=block.updated_at)
            writer = LanceBlockWriter(self.lance, name, block, state)
            yield writer
        if writer.state is not None:
            self._scopes[(block.tenant_id, block.scope_key)] = name
            self.maintenance.mark(name)

    async def _scope_tables(self, tenant_id: str, scope: ScopeKey) -> list[str]:
        """Every table of the scope, by listing the store (the legacy one included)."""
        legacy, prefix = legacy_table_name(tenant_id, scope), scope_prefix(tenant_id, scope)
        return [
            n
            for n in await self.lance.table_names(tenant_prefix(tenant_id))
            if n == legacy or n.startswith(prefix)
        ]

    async def discard_write(
        self, tenant_id: str, scope: ScopeKey, write_id: str, *, block_id: Optional[str] = None
    ) -> None:
        """Remove the rows one `add` stored (its SQL side did not commit): in the block's table
        when `block_id` is given, else in every table of the scope."""
        if block_id is not None:
            found = await self._name_of(
                BlockRef(tenant_id, block_id, scope.scope, scope.agent_id), for_write=False
            )
            names = [found] if found is not None else []
        else:
            names = await self._scope_tables(tenant_id, scope)
        for name in names:
            async with self.lance.lock(name):
                state = await self.lance.table(name)
                if state is None:
                    continue
                try:
                    await self.lance.refresh(state, force=True)
                    await self.lance.delete_rows(state, filters.of_writes([write_id]))
                except Exception as exc:
                    if not is_not_found(exc):
                        raise
                    self.lance.forget(name)  # dropped meanwhile: its rows went with it
            self.maintenance.mark(name)

    async def drop_scope(
        self, tenant_id: str, scope: ScopeKey, *, keep: Optional[str] = None
    ) -> None:
        """Remove the scope's tables, but for block `keep`'s."""
        for name in await self._scope_tables(tenant_id, scope):
            parsed = parse_table_name_full(name)
            held = (
                parsed[2] if parsed is not None and parsed[2] else await self.lance.block_of(name)
            )
            if keep is None or held != keep:
                await self._drop_table(name)

    async def delete_block(
        self, tenant_id: str, block_id: str, *, scope: Optional[ScopeKey] = None
    ) -> None:
        """Remove the block's chunks and vectors; its table's files go with it at once. With
        the scope given, that is one drop (and one look at the scope's legacy table); without,
        the tenant's tables are looked through."""
        prefix = tenant_prefix(tenant_id)
        if scope is not None:
            # Dropped by name, never opened first: a table another replica was writing while
            # it was dropped can be left half-removed, and would fail to open.
            legacy = legacy_table_name(tenant_id, scope)
            if await self.lance.block_of(legacy) == block_id:
                await self._drop_table(legacy)
            await self._drop_table(block_table_name(tenant_id, scope, block_id))
            return
        name = self.lance.cached_block_table(block_id)
        if name is None or not name.startswith(prefix):
            name = None
            for candidate in await self.lance.table_names(prefix):
                parsed = parse_table_name_full(candidate)
                held = parsed[2] if parsed is not None and parsed[2] else None
                if held == block_id or (
                    held is None and await self.lance.block_of(candidate) == block_id
                ):
                    name = candidate
                    break
        if name is not None:
            await self._drop_table(name)

    async def delete_tenant(self, tenant_id: str) -> None:
        for name in await self.lance.table_names(tenant_prefix(tenant_id)):
            await self._drop_table(name)

    def vanished(self, error: BaseException) -> bool:
        return is_raced_removal(error)

    async def block_tables(self) -> list[BlockTable]:
        found = []
        for name in await self.lance.table_names():
            parsed = parse_table_name_full(name)
            if parsed is not None and parsed[2]:  # legacy (scope-named) tables are not listed
                found.append(BlockTable(name, parsed[0], parsed[1], parsed[2]))
        return found

    async def drop_unused_table(self, name: str) -> bool:
        async with leased(self.maintenance.leases, lease_name(name)) as held:
            if held:
                await self._drop_table(name)
        return held

    async def _drop_table(self, name: str) -> None:
        async with self.lance.lock(name):
            self.maintenance.forget(name)
            await self.lance.drop_table(name)
        for key, known in list(self._scopes.items()):
            if known == name:
                del self._scopes[key]

    async def _drop_stale(self, name: str, stale: Optional[str], current: str) -> None:
        # Each scope has one archival block; a legacy table holding an older one is left over
        # from a delete that did not reach this index (a crash), and must not surface in recall.
        log.warning(
            "archival table %s held block %s, not %s; dropping the stale rows", name, stale, current
        )
        await self._drop_table(name)

    async def scope_table(self, tenant_id: str, scope: ScopeKey | BlockRef) -> Optional[TableState]:
        """The open table a recall of the scope (or block) would search; None if it has none."""
        return await self._open_scope(tenant_id, scope)

    # ---- searches -----------------------------------------------------------------------------

    async def open_scopes(
        self, tenant_id: str, scopes: Sequence[ScopeKey | BlockRef]
    ) -> list[ScopeIndex]:
        states = await asyncio.gather(*(self._open_scope(tenant_id, s) for s in scopes))
        seen: set[str] = set()
        found: list[ScopeIndex] = []
        for state in states:
            if state is not None and state.name not in seen:
                seen.add(state.name)
                found.append(
                    ScopeIndex(
                        state.tenant_id, state.scope, state.block_id, state, units=state.units
                    )
                )
        return found

    async def _open_scope(self, tenant_id: str, scope: ScopeKey | BlockRef) -> Optional[TableState]:
        if isinstance(scope, BlockRef):
            if scope.tenant_id != tenant_id:
                raise ValueError("a block of another tenant")
            name = await self._name_of(scope, for_write=False)
            stamp = scope.updated_at
        else:
            name = self._scopes.get((tenant_id, scope))
            if name is None:
                names = await self._scope_tables(tenant_id, scope)
                name = names[0] if names else None
                if name is not None:
                    self._scopes[(tenant_id, scope)] = name
            stamp = None
        if name is None:
            return None
        state = await self.lance.table(name)
        if state is None:
            return None
        try:
            await self.lance.refresh(state, stamp=stamp)
        except Exception as exc:
            if not is_not_found(exc):
                raise
            self.lance.forget(name)  # dropped by another replica
            return None
        return state

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
        table = await self._searching(
            scope,
            lambda state: self.lance.vector_search(state, vector, limit=limit, where=where),
        )
        if table is None:
            return VectorHits([], [])
        distances = table.column("_distance").to_pylist()
        vectors = (
            vectors_of(table.column("vector"), self.dimension)
            if "vector" in table.column_names
            else None
        )
        return VectorHits(chunk_hits(table), [1.0 - d for d in distances], vectors)

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
        table = await self._searching(
            scope, lambda state: self.lance.text_search(state, text, limit=limit, where=where)
        )
        if table is None:
            return TextHits([], [], np.zeros((0, self.dimension), dtype=np.float32))
        vectors = vectors_of(table.column("vector"), self.dimension)
        return TextHits(chunk_hits(table), table.column("_score").to_pylist(), vectors)

    async def _searching(
        self, scope: ScopeIndex, search: Callable[[TableState], Awaitable[pa.Table]]
    ) -> Optional[pa.Table]:
        """Run a search; if its files are gone (pruned under an old version, or the table
        dropped by another replica), move to the latest version and search once more. None when
        the table itself is gone: the scope holds nothing now."""
        state: TableState = scope.handle
        try:
            return await search(state)
        except Exception as exc:
            if not is_not_found(exc):
                raise
            log.info("archival table %s changed under a search; looking again: %s", state.name, exc)
        try:
            await self.lance.refresh(state, force=True)
        except Exception as exc:
            if not is_not_found(exc):
                raise
            self.lance.forget(state.name)
            return None
        return await search(state)

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
        to_units: Optional[Callable[[Sequence[str]], list[Chunk]]] = None,
    ) -> int:
        done = await reindex_store(
            self.lance,
            embed=embed,
            dimension=self.dimension,
            batch_rows=batch_rows,
            progress=progress,
            to_units=to_units,
        )
        # Handles opened before a rebuild describe the table as it was.
        for name in list(self.lance.open_names()):
            self.lance.forget(name)
        for name in await self.lance.table_names(TABLE_PREFIX):
            await self.maintenance.run(prune_older_than=PRUNE_NOW, names={name})
        return done
