"""LanceDB archival storage: one table of chunk rows per (tenant, scope), with its indexes.

Every table gets a full-text (FTS) index when it is created; LanceDB searches rows appended since
the last index update flat, so a fresh row is found at once. Maintenance off the request path
folds new rows into the indexes, compacts small appends, prunes old versions and builds the ANN
index (IVF_HNSW_SQ) once a table reaches `ann_index_min_rows`. Measurements: docs/recall.md.

    store = await LanceStore.open(uri, storage_options=None, model_id="hash:384", dimension=384)
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, TypeVar

import numpy as np
import pyarrow as pa

from ...errors import EmbeddingModelMismatch
from ..base import ScopeKey
from .arrow import PLAN_COLUMNS, result_columns, vectors_of
from .filters import of_block
from .schema import (
    STORE_SCHEMA,
    STORE_TABLE,
    TABLE_PREFIX,
    chunk_schema,
    parse_table_name,
    schema_block,
    schema_model,
    schema_units,
    search_column,
)
from .vector_cache import COPIED_RESULT_COLUMNS, VectorCache

if TYPE_CHECKING:
    from lancedb import AsyncConnection
    from lancedb.index import FTS, HnswSq
    from lancedb.table import AsyncTable

    from ...settings import Settings

log = logging.getLogger("agentmem.archival")

ANN_EF = 128
"""HNSW candidates per query: recall@10 0.99-1.0 against exact search at 10k-1M rows
(docs/recall.md)."""
ANN_CANDIDATES_PER_RESULT = 2
"""The vector leg reads 2x `limit` ANN hits with their stored vectors and ranks them by exact cosine
(the index's distances are of 8-bit quantised vectors). More candidates found nothing more at
100k and 1M rows: what the index misses, HNSW's graph search missed."""
ANN_REBUILD_GROWTH = 2.0
"""Rebuild the ANN index once a table holds this many times the rows it was built on."""
PRUNE_NOW = timedelta(milliseconds=1)
"""`cleanup()` prunes everything but the latest version (0 would trigger LanceDB's warning)."""
REFRESH_S = 10.0
"""A cached table handle looks for commits of other processes that no SQL stamp announces
(maintenance, repair) at most this often. Writes are announced: services pass the block's SQL
`updated_at` with each recall (`BlockRef.updated_at`), and a handle that has not seen that stamp
moves to the table's latest version first (read-your-writes across replicas, docs/deploy.md).
Between those, a recall makes no object-store request to learn whether it is current."""
OPEN_TABLES = 256
"""Table handles kept open (each caches index pages); the least recently used close first."""

# Both legs read the result columns of their candidates (`result_columns`): at 100k rows, reading
# them for 20 candidates in the search cost ~1.5 ms less than a second query taking the 5 chosen
# rows by row id (a LanceDB query has ~3 ms of fixed cost here). The keyword leg needs the vector
# to score its hits by cosine.


def storage_options(settings: Settings) -> Optional[dict[str, str]]:
    """Object-store options for `s3://` and `s3+ddb://` URIs from settings; None for a local
    folder. Refuses another URI scheme rather than silently ignoring the S3 settings."""
    uri = settings.resolved_archival_uri()
    scheme = uri.partition("://")[0] if "://" in uri else ""
    if not scheme or scheme == "file":
        return None
    if scheme not in ("s3", "s3+ddb"):
        raise ValueError(
            f"AGENTMEM_ARCHIVAL_URI {uri!r}: only a folder, s3:// and s3+ddb:// URIs are supported"
        )
    options = {
        "aws_endpoint": settings.s3_endpoint,
        "aws_region": settings.s3_region,
        "aws_access_key_id": settings.s3_access_key_id,
        "aws_secret_access_key": settings.s3_secret_access_key,
        "aws_session_token": settings.s3_session_token,
    }
    result = {k: v for k, v in options.items() if v}
    if settings.s3_allow_http:
        result["allow_http"] = "true"
    if settings.s3_virtual_hosted_style:
        result["aws_virtual_hosted_style_request"] = "true"
    return result


@dataclass
class TableState:
    name: str
    table: AsyncTable
    table_schema: pa.Schema
    block_id: Optional[str]
    tenant_id: str
    scope: ScopeKey
    ann_rows: int = 0
    """Rows the ANN index was built on; 0 while there is none (search is flat)."""
    synced_to: int = 0
    """The newest SQL stamp (UTC microseconds) of the block whose commit this handle has seen."""
    checked_at: float = 0.0
    """Loop time this handle last moved to the table's latest version."""
    changes: int = 0
    """Bumped before and after every change made through this handle (a write, maintenance,
    moving to the latest version): the handle's version can only move within such a change."""
    known_version: Optional[tuple[int, int]] = None
    """`(changes, version)`: the last version read, under the count of changes when the read
    began (`LanceStore.version`)."""

    @property
    def units(self) -> bool:
        """Whether the table holds line units (else chunks): `schema.py`'s formats."""
        return schema_units(self.table_schema)

    @property
    def leg_columns(self) -> list[str]:
        """What both legs of a search read of each candidate: its result columns and its vector
        (the keyword leg scores by cosine, hybrid diversity compares candidates' vectors)."""
        return [*result_columns(self.table_schema), "vector"]


class LanceStore:
    """The LanceDB side of the archival index: tables, rows, searches and maintenance."""

    def __init__(
        self,
        db: AsyncConnection,
        uri: str,
        *,
        model_id: str,
        dimension: int,
        ann_index_min_rows: int,
        cache_bytes: int = 0,
    ):
        self.db = db
        self.uri = uri
        self.model_id = model_id
        self.dimension = dimension
        self.ann_index_min_rows = ann_index_min_rows
        self._open: OrderedDict[str, TableState] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._block_tables: dict[str, str] = {}
        self.vector_cache = (
            VectorCache(
                budget_bytes=cache_bytes, dimension=dimension, exact_below_rows=ann_index_min_rows
            )
            if cache_bytes > 0
            else None
        )

    @classmethod
    async def open(
        cls,
        uri: str,
        *,
        model_id: str,
        dimension: int,
        ann_index_min_rows: int,
        storage_options: Optional[dict[str, str]] = None,
        allow_model_mismatch: bool = False,
        cache_bytes: int = 0,
        lance_cache_bytes: Optional[tuple[int, int]] = None,
    ) -> LanceStore:
        """`cache_bytes` > 0 keeps in-memory copies of recalled tables for the vector leg
        (`VectorCache`). `lance_cache_bytes`: LanceDB's (index, metadata) cache sizes; None
        leaves LanceDB's defaults (6 GiB, 1 GiB)."""
        uri, db = await _connect(uri, storage_options, lance_cache_bytes)
        store = cls(
            db,
            uri,
            model_id=model_id,
            dimension=dimension,
            ann_index_min_rows=ann_index_min_rows,
            cache_bytes=cache_bytes,
        )
        stored = await store.stored_model()
        if stored is None:
            await store.set_stored_model(model_id)
        elif stored != model_id and not allow_model_mismatch:
            raise store.mismatch(stored)
        return store

    @classmethod
    async def open_as_stored(
        cls, uri: str, *, ann_index_min_rows: int, storage_options: Optional[dict[str, str]] = None
    ) -> LanceStore:
        """The store with the model its vectors were made by, for tools that embed nothing
        (`agentmem cleanup`): loading the model only to learn its id would take seconds."""
        uri, db = await _connect(uri, storage_options)
        store = cls(db, uri, model_id="", dimension=0, ann_index_min_rows=ann_index_min_rows)
        table = await store.open_raw(STORE_TABLE)
        if table is not None:
            stored = {row["key"]: row["value"] for row in await table.query().to_list()}
            store.model_id, store.dimension = (
                stored.get("model_id", ""),
                int(stored.get("dimension", 0)),
            )
        return store

    def mismatch(self, stored: str) -> EmbeddingModelMismatch:
        return EmbeddingModelMismatch(
            f"the archival store at {self.uri} holds vectors made by {stored!r}, but this server "
            f"loaded {self.model_id!r}; run `agentmem reindex` to re-embed every chunk with "
            f"{self.model_id!r}, "
            f"or set AGENTMEM_EMBEDDING_MODEL={stored} to keep using the stored vectors",
            stored_model=stored,
            loaded_model=self.model_id,
        )

    # ---- the store-wide record of the embedding model ------------------------------------------

    async def stored_model(self) -> Optional[str]:
        table = await self.open_raw(STORE_TABLE)
        if table is None:
            return None
        rows = await table.query().where("key = 'model_id'").to_list()
        return rows[0]["value"] if rows else None

    async def set_stored_model(self, model_id: str) -> None:
        table = await self.open_raw(STORE_TABLE)
        if table is None:
            table = await self.db.create_table(STORE_TABLE, schema=STORE_SCHEMA, exist_ok=True)
        row = pa.table(
            {"key": ["model_id", "dimension"], "value": [model_id, str(self.dimension)]},
            schema=STORE_SCHEMA,
        )
        await (
            table.merge_insert("key")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(row)
        )

    # ---- table handles ------------------------------------------------------------------------

    async def open_raw(self, name: str) -> Optional[AsyncTable]:
        try:
            return await self.db.open_table(name)
        except ValueError as exc:
            if "not found" in str(exc).lower():
                return None
            raise

    def lock(self, name: str) -> asyncio.Lock:
        """Serialises this process's writes to one table (a replace is two commits)."""
        return self._locks.setdefault(name, asyncio.Lock())

    async def table(self, name: str) -> Optional[TableState]:
        """The open table, or None if it does not exist. Refuses a table of another model."""
        state = self._open.get(name)
        if state is not None:
            self._open.move_to_end(name)
            return state
        table = await self.open_raw(name)
        if table is None:
            return None
        schema = await table.schema()
        model = schema_model(schema)
        if model != self.model_id:
            table.close()
            raise self.mismatch(model or "an unknown model")
        tenant_id, scope = _owner(name)
        rows = await table.query().select(["tenant_id", "agent_id"]).limit(1).to_list()
        if rows and (rows[0]["tenant_id"], rows[0]["agent_id"]) != (tenant_id, scope.agent_key):
            # Recall trusts the table name for tenant and scope; never let a misnamed table leak.
            table.close()
            raise RuntimeError(
                f"archival table {name} holds rows of tenant {rows[0]['tenant_id']!r}"
            )
        state = TableState(name, table, schema, schema_block(schema), tenant_id, scope)
        state.checked_at = asyncio.get_running_loop().time()
        await self._read_indices(state)
        self._remember(name, state)
        return state

    async def _read_indices(self, state: TableState) -> None:
        table = state.table
        # Index types read back as e.g. "IvfHnswSq" or "FTS", so the indexed column identifies them.
        by_column = {tuple(i.columns): i for i in await table.list_indices()}
        searched = search_column(state.table_schema)
        if (searched,) not in by_column:
            # Created by a process that stopped before indexing it: keyword search needs the index.
            await table.create_index(searched, config=fts_config(), replace=True)
        if ("vector",) in by_column:
            stats = await table.index_stats(by_column[("vector",)].name)
            state.ann_rows = max(1, stats.num_indexed_rows if stats else 1)

    async def refresh(
        self, state: TableState, *, stamp: Optional[int] = None, force: bool = False
    ) -> None:
        """Move the handle to the table's latest version if `stamp` (the block's SQL
        `updated_at`) is newer than any it has seen, or `REFRESH_S` passed since it last looked,
        or `force`. One look is a listing of the table's versions' latest entry, O(1) requests."""
        now = asyncio.get_running_loop().time()
        if not (
            force
            or (stamp is not None and stamp > state.synced_to)
            or now - state.checked_at > REFRESH_S
        ):
            return
        with changing(state):
            before = await state.table.version()
            await state.table.checkout_latest()
            state.checked_at = now
            if stamp is not None:
                state.synced_to = max(state.synced_to, stamp)
            if await state.table.version() != before:
                await self._read_indices(state)  # another replica may have built the ANN index

    async def version(self, state: TableState) -> int:
        """The handle's version. Only a change through the handle moves it (no read-consistency
        interval: `_connect`), so it is read once after each change, not per recall: the read
        is a round trip to LanceDB's threads, ~0.2 ms of the vector leg's 1.4-1.7 ms on a busy
        2-core box (docs/recall.md). A read is remembered under the count of changes when it
        began, so one that a change overlapped is never used."""
        known = state.known_version
        if known is not None and known[0] == state.changes:
            return known[1]
        changes = state.changes
        version: int = await state.table.version()
        state.known_version = (changes, version)
        return version

    def _remember(self, name: str, state: TableState) -> None:
        self._open[name] = state
        if state.block_id:
            self._block_tables[state.block_id] = name
        while len(self._open) > OPEN_TABLES:
            _, old = self._open.popitem(last=False)
            old.table.close()

    def forget(self, name: str) -> None:
        if self.vector_cache is not None:
            self.vector_cache.forget(name)
        state = self._open.pop(name, None)
        if state is not None:
            if state.block_id and self._block_tables.get(state.block_id) == name:
                del self._block_tables[state.block_id]
            state.table.close()

    async def create_table(self, name: str, block_id: str, *, units: bool = False) -> TableState:
        """A new table of chunks, or of line units; if another replica created it first, theirs
        (in whatever format they chose)."""
        schema = chunk_schema(
            self.dimension, model_id=self.model_id, block_id=block_id, units=units
        )
        try:
            table = await self.db.create_table(name, schema=schema)
        except ValueError as exc:
            # Another replica created it first (a repair beside a write): use theirs.
            if "already exists" not in str(exc).lower():
                raise
            state = await self.table(name)
            if state is None:
                raise
            return state
        await retrying(lambda: table.create_index(search_column(schema), config=fts_config()))
        state = TableState(name, table, schema, block_id, *_owner(name))
        state.checked_at = asyncio.get_running_loop().time()
        self._remember(name, state)
        return state

    async def drop_table(self, name: str) -> None:
        """Drop the table and its files; done when it does not exist. On a folder, removing the
        files fails while another process writes new ones into it ("Directory not empty"): that
        is retried until the writer is done (an append racing a delete of its block)."""
        self.forget(name)
        for attempt in range(1, DROP_RETRIES + 1):
            try:
                await self.db.drop_table(name)
                return
            except ValueError as exc:
                if "not found" in str(exc).lower():
                    return
                raise
            except Exception as exc:
                if attempt == DROP_RETRIES or not is_raced_removal(exc):
                    raise
                log.info("retrying the drop of %s (written meanwhile): %s", name, exc)
                await asyncio.sleep(random.uniform(0.02, 0.05) * 2 ** min(attempt, 5))

    async def table_names(self, prefix: str = TABLE_PREFIX) -> list[str]:
        names: list[str] = []
        token: Optional[str] = None
        while True:
            page = await self.db.list_tables(page_token=token, limit=1000)
            names.extend(n for n in page.tables if n.startswith(prefix))
            token = page.page_token
            if not token or not page.tables:
                return names

    def open_names(self) -> list[str]:
        return list(self._open)

    def open_state(self, name: str) -> Optional[TableState]:
        """The table's handle if this process has it open (no I/O)."""
        return self._open.get(name)

    def cached_block_table(self, block_id: str) -> Optional[str]:
        return self._block_tables.get(block_id)

    async def block_of(self, name: str) -> Optional[str]:
        """The block a table holds, read from its metadata (whatever its model)."""
        state = self._open.get(name)
        if state is not None:
            return state.block_id
        table = await self.open_raw(name)
        if table is None:
            return None
        try:
            return schema_block(await table.schema())
        finally:
            table.close()

    # ---- rows ---------------------------------------------------------------------------------

    async def add_rows(self, state: TableState, rows: pa.Table) -> None:
        if not rows.num_rows:
            return
        cache = self.vector_cache
        before = (
            await self.version(state)
            if cache is not None and cache.can_write_through(state.name, state.table, rows.num_rows)
            else None
        )
        with changing(state):
            added = await retrying(lambda: state.table.add(rows))
        if cache is not None and before is not None:
            # Nothing awaited since the commit: no recall has seen the new version yet.
            cache.wrote(state.name, state.table, rows, before=before, after=added.version)

    async def delete_rows(self, state: TableState, where: str) -> None:
        with changing(state):
            await retrying(lambda: state.table.delete(where))

    async def read_plan_rows(self, state: TableState, block_id: str) -> pa.Table:
        """The block's chunks without vectors: enough to decide which ones an edit keeps."""
        return await state.table.query().where(of_block(block_id)).select(PLAN_COLUMNS).to_arrow()

    async def read_vectors(
        self, state: TableState, chunk_ids: Iterable[str]
    ) -> dict[str, np.ndarray]:
        """Stored vectors by chunk id, streamed so a large block is never held whole."""
        wanted = set(chunk_ids)
        found: dict[str, np.ndarray] = {}
        if not wanted:
            return found
        reader = (
            await state.table.query()
            .select(["chunk_id", "vector"])
            .to_batches(max_batch_length=8192)
        )
        async for batch in reader:
            ids = batch.column("chunk_id").to_pylist()
            vectors = None
            for i, chunk_id in enumerate(ids):
                if chunk_id in wanted:
                    if vectors is None:
                        vectors = vectors_of(batch.column("vector"), self.dimension)
                    found[chunk_id] = vectors[i]
        return found

    async def iter_rows(
        self, table: AsyncTable, batch_rows: int = 4096
    ) -> AsyncIterator[pa.RecordBatch]:
        reader = await table.query().to_batches(max_batch_length=batch_rows)
        async for batch in reader:
            yield batch

    # ---- search -------------------------------------------------------------------------------

    async def vector_search(
        self,
        state: TableState,
        vector: np.ndarray,
        *,
        limit: int,
        where: Optional[str],
        columns: Optional[Sequence[str]] = None,
    ) -> pa.Table:
        """The `limit` nearest rows with `_distance` = 1 - cosine, exact also through the ANN
        index; `columns` default to the table's `result_columns` and the vector."""
        if columns is None:
            columns = state.leg_columns
        if where is None and self.vector_cache is not None:
            cached = await self.vector_cache.nearest(
                state.name, state.table, vector, limit, version=await self.version(state)
            )
            if cached is not None:
                return cached.select([*columns, "_distance"])
        query = state.table.query().nearest_to(vector).distance_type("cosine")
        if where:
            query = query.where(where)  # LanceDB filters before the search unless told postfilter()
        if not state.ann_rows:  # flat search: its distances are exact already
            return await search_rows(query.select([*columns, "_distance"]).limit(limit), limit)
        # LanceDB's refine_factor would re-rank the hits too, but with a second read of the rows:
        # reading the vectors with the result columns and ranking here was 0.6-0.9 ms faster at
        # 100k-1M rows, with the same recall.
        candidates = ANN_CANDIDATES_PER_RESULT * limit
        # `_distance` is named although unused: without it LanceDB logs a deprecation warning
        # on every query (it still adds the column, but says it will stop doing so).
        read = list(dict.fromkeys([*columns, "vector", "_distance"]))
        query = query.select(read).limit(candidates).ef(max(ANN_EF, candidates))
        hits = await search_rows(query, candidates)
        cosine = vectors_of(hits.column("vector"), self.dimension) @ (
            vector / (np.linalg.norm(vector) or 1.0)
        )
        order = np.argsort(-cosine, kind="stable")[:limit]
        hits = hits.select(list(columns)).take(pa.array(order))
        return hits.append_column("_distance", pa.array(1.0 - cosine[order], pa.float32()))

    async def text_search(
        self,
        state: TableState,
        text: str,
        *,
        limit: int,
        where: Optional[str],
        columns: Optional[Sequence[str]] = None,
    ) -> pa.Table:
        """BM25-ranked rows with `_score` (of the key, for a table of line units), with the
        table's `result_columns` and the vector unless `columns` are given."""
        if columns is None:
            columns = state.leg_columns
        if where is None and self.vector_cache is not None:
            copied = await self._text_search_copied(state, text, limit, columns)
            if copied is not None:
                return copied
        query = state.table.query().nearest_to_text(text, columns=search_column(state.table_schema))
        query = query.select([*columns, "_score"]).limit(limit)
        if where:
            query = query.where(where)
        return await search_rows(query, limit)

    async def _text_search_copied(
        self, state: TableState, text: str, limit: int, columns: Sequence[str]
    ) -> Optional[pa.Table]:
        """The keyword leg with only ids and scores read from LanceDB and the rest (text, lines,
        vectors) from the table's in-memory copy, when it has a current one: reading the other
        columns of the hits was ~1.2 of the ~4 ms of CPU a BM25 query of a small table costs
        (docs/recall.md, "The keyword leg's columns"). None: LanceDB reads them itself."""
        assert self.vector_cache is not None
        version = await self.version(state)
        if not self.vector_cache.has_current(state.name, state.table, version) or not set(
            columns
        ) <= set(COPIED_RESULT_COLUMNS):
            return None
        query = state.table.query().nearest_to_text(text, columns=search_column(state.table_schema))
        scored = await search_rows(query.select(["chunk_id", "_score"]).limit(limit), limit)
        rows = self.vector_cache.rows(
            state.name, state.table, scored.column("chunk_id").to_pylist(), version=version
        )
        if rows is None:
            return None
        return rows.select(list(columns)).append_column("_score", scored.column("_score"))

    # ---- maintenance --------------------------------------------------------------------------

    async def maintain(
        self, name: str, *, prune_older_than: timedelta, build_ann: bool = True
    ) -> None:
        """Compact, fold new rows into the indexes, prune versions; build the ANN index when due."""
        state = await self.table(name)
        if state is None:
            return
        async with self.lock(name):
            await self.refresh(state, force=True)
            with changing(state):
                await retrying(lambda: state.table.optimize(cleanup_older_than=prune_older_than))
        if not build_ann:
            return
        rows = await state.table.count_rows()
        due = rows >= self.ann_index_min_rows and (
            not state.ann_rows or rows >= ANN_REBUILD_GROWTH * state.ann_rows
        )
        if due:
            # Not under the write lock: this takes minutes at 1M rows and appends may go on;
            # rows they add are searched flat until the next optimize folds them in.
            started = asyncio.get_running_loop().time()
            with changing(state):
                await retrying(
                    lambda: state.table.create_index("vector", config=_ann_config(), replace=True)
                )
            state.ann_rows = rows
            log.info(
                "built the ANN index of %s (%d rows) in %.1fs",
                name,
                rows,
                asyncio.get_running_loop().time() - started,
            )

    async def close(self) -> None:
        if self.vector_cache is not None:
            await self.vector_cache.aclose()
        for name in list(self._open):
            self.forget(name)


async def _connect(
    uri: str,
    storage_options: Optional[dict[str, str]],
    cache_bytes: Optional[tuple[int, int]] = None,
) -> tuple[str, AsyncConnection]:
    import lancedb

    if "://" not in uri:
        path = Path(uri).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        uri = str(path)
    session = None
    if cache_bytes is not None:
        session = lancedb.Session(
            index_cache_size_bytes=cache_bytes[0], metadata_cache_size_bytes=cache_bytes[1]
        )
    # No read-consistency interval: handles move to the latest version when `refresh` says so.
    return uri, await lancedb.connect_async(
        uri, read_consistency_interval=None, storage_options=storage_options, session=session
    )


COMMIT_RETRIES = 6
"""Tries of a LanceDB commit that failed with a retryable conflict (another writer committed
first, e.g. a compaction beside an append from another replica)."""


DROP_RETRIES = 10
"""Tries of a table drop that raced a writer (~5 s in all)."""


def is_raced_removal(exc: BaseException) -> bool:
    """Files of a table went away under an operation, or came back under a drop: another
    process dropping the table, or writing into one being dropped."""
    text = str(exc).lower()
    return "directory not empty" in text or is_not_found(exc)


def is_retryable_conflict(exc: BaseException) -> bool:
    """LanceDB's "Retryable commit conflict": the application is to try again."""
    return "retryable commit conflict" in str(exc).lower()


def is_not_found(exc: BaseException) -> bool:
    """A dropped table, or files of a version that was pruned under a handle still on it."""
    text = str(exc).lower()
    return "not found" in text or "no such file" in text or "does not exist" in text


T = TypeVar("T")


async def retrying(call: Callable[[], Awaitable[T]], *, tries: int = COMMIT_RETRIES) -> T:
    """`await call()`, again after a jittered pause while it fails with a retryable conflict."""
    for attempt in range(1, tries + 1):
        try:
            return await call()
        except Exception as exc:
            if attempt == tries or not is_retryable_conflict(exc):
                raise
            log.info("retrying a LanceDB commit after a conflict (try %d): %s", attempt, exc)
            await asyncio.sleep(random.uniform(0.01, 0.05) * 2**attempt)
    raise AssertionError("unreachable")


@contextmanager
def changing(state: TableState) -> Iterator[None]:
    """Around every call that may move the handle's version (`LanceStore.version`)."""
    state.changes += 1
    try:
        yield
    finally:
        state.changes += 1


async def search_rows(query: Any, limit: int) -> pa.Table:
    """The rows of a LanceDB search of at most `limit` rows: what its `to_arrow()` returns, with
    two fewer round trips to LanceDB's threads.

    `to_arrow()` first reads the table's schema to look for blob columns (our tables have none;
    `schema.py`), then reads the result stream until it ends. Each of those is a hop to LanceDB's
    runtime and back through the event loop, and on a busy 2-core box a hop waits for a core:
    the schema read alone took ~6% of a hybrid recall's samples (docs/recall.md, "Where the time
    of a recall goes"). Here the query runs at once, and the stream is left once it has given
    `limit` rows, as it has nothing more to give then. The same rows in the same order
    (tests/server/storage/lance/test_search_rows.py); lancedb is pinned below 0.41, and a query
    object without the inner handle this uses falls back to `to_arrow()`."""
    execute = getattr(getattr(query, "_inner", None), "execute", None)
    if execute is None or getattr(query, "_reranker", None) is not None:
        rows: pa.Table = await query.to_arrow()
        return rows
    from lancedb.arrow import AsyncRecordBatchReader

    stream = AsyncRecordBatchReader(await execute(max_batch_length=None, timeout=None))
    batches: list[pa.RecordBatch] = []
    count = 0
    async for batch in stream:
        batches.append(batch)
        count += batch.num_rows
        if count >= limit:
            break
    return pa.Table.from_batches(batches, schema=stream.schema)


def _owner(name: str) -> tuple[str, ScopeKey]:
    parsed = parse_table_name(name)
    if parsed is None:
        raise ValueError(f"{name!r} is not an archival table name")
    return parsed


def fts_config() -> FTS:
    from lancedb.index import FTS

    return FTS()


def _ann_config() -> HnswSq:
    from lancedb.index import HnswSq

    return HnswSq(distance_type="cosine")
