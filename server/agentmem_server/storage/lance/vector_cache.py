"""In-memory copies of recalled archival tables, for the vector leg of a recall.

At 100k rows a LanceDB vector query costs 3-6 ms here, most of it per-query machinery rather than
the search; faiss answers the same search from memory in ~0.5 ms (docs/recall.md). A table's copy
is a faiss index of its rows' normalised vectors (exact below `exact_below_rows`, HNSW above) with
the result columns beside it, tagged with the table version it copies.

A recall uses a copy only while the table's handle is at that very version: any write, by this
process or another replica, moves the version on (once the handle has seen it:
`LanceStore.refresh`), and LanceDB answers until the copy has caught up in the background (new rows
added, removed ones masked, rebuilt once a quarter is masked). A table name is never reused (it
names the block, `schema.py`), so a version number of a handle identifies the data: checking it is
no request to the object store at all.

Copies live within a memory budget. A table too large for it is never copied (LanceDB answers
it). To make room, only copies unused for `IDLE_S` leave, least recently used first; a table that
finds no room waits as long before it tries again, so scopes competing for the budget cannot
keep rebuilding each other's copies.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow import vectors_of, write_id_of
from .filters import of_writes
from .schema import SCAFFOLD

if TYPE_CHECKING:
    import faiss
    from lancedb.table import AsyncTable

log = logging.getLogger("agentmem.archival")

COPIED_COLUMNS = ["chunk_id", "start_line", "end_line", "text", "written_at", "vector"]
COPIED_RESULT_COLUMNS = (*COPIED_COLUMNS, SCAFFOLD)
"""What `VectorCache.rows` answers with (`scaffold` 0 where a table has none)."""
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 256
"""Recall@10 against exact search on the benchmark's synthetic vectors, efConstruction 40, one
thread: efSearch 64 0.940 at 10k rows / 0.978 at 100k; 128 0.982 / 0.999; 256 0.998 / 0.999 in
0.28 / 0.45 ms. A 100k build takes 6-11 s (docs/recall.md)."""
WRITE_THROUGH_ROWS = 32
"""Appends of at most this many rows are added to the table's copy as they are written (`wrote`),
on the event loop; larger ones leave the copy to the background catch-up."""
WRITE_THROUGH_HNSW_ROWS = 2
"""The same for an HNSW copy: each row is a graph insertion, 0.7-0.8 ms a row into 100k rows on
a loaded box (32 rows held the event loop 22-27 ms), where a flat copy appends in microseconds."""
IDLE_S = 60.0
"""A copy unused this long may leave to make room; a table refused room (or whose copy failed)
waits this long before it tries again."""
REBUILD_DEAD_FRACTION = 0.25
"""Rebuild a copy once this share of its rows is masked: HNSW keeps visiting masked nodes."""
BYTES_PER_ROW_OVERHEAD = 2 * HNSW_M * 4 + 600
"""HNSW links, ids and line numbers, and what the allocator keeps from reading the rows, on top of
the vector and the text: a 100k-row copy of the benchmark raised server RSS by 3.2 KB per row."""


BYTES_PER_COPY = 8 * 1024
"""What a copy costs before its rows (the faiss index object, arrays, lists, its entry): 1,000
copies of 3-line scopes raised RSS by 3.7-9.2 KB each beyond their rows (docs/deploy.md), where
the budget counted 2.4 KB a copy without it."""


def estimated_bytes(rows: int, dimension: int, text_bytes: int = 0) -> int:
    """A copy's size: `BYTES_PER_COPY` plus its rows."""
    return BYTES_PER_COPY + rows * (dimension * 4 + BYTES_PER_ROW_OVERHEAD) + text_bytes


@dataclass
class _Copy:
    table: AsyncTable
    """The handle it was made through: a re-opened table is checked afresh."""
    version: int
    index: Any
    chunk_ids: list[str]
    start_lines: np.ndarray
    end_lines: np.ndarray
    texts: list[str]
    written_at: np.ndarray
    alive: np.ndarray
    scaffolds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    """Each row's `scaffold` (0 for a chunk table's, or a unit table's written before it)."""
    positions: dict[str, int] = field(default_factory=dict)
    last_used: float = 0.0
    """Loop time of the last search: idle copies may leave to make room."""
    busy: bool = False
    """Set while a worker thread adds rows: no search may run on the index then."""
    nbytes: int = 0

    @property
    def hnsw(self) -> bool:
        import faiss

        return isinstance(self.index, faiss.IndexHNSW)

    @property
    def dead(self) -> int:
        return int(len(self.alive) - self.alive.sum())

    def nearest(self, vector: np.ndarray, limit: int) -> Optional[pa.Table]:
        """The `limit` nearest live rows with `_distance` = 1 - cosine; None if the index came
        back short (then LanceDB answers)."""
        import faiss

        live = int(self.alive.sum())
        want = min(limit, live)
        if want == 0:
            return _hits_table([], [], self)
        query = (vector / (np.linalg.norm(vector) or 1.0)).astype(np.float32)[None, :]
        selector = None
        if live < len(self.alive):
            bitmap = np.packbits(self.alive, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(self.alive), faiss.swig_ptr(bitmap))
        if self.hnsw:
            # faiss's Python layer accepts the fields as keywords; its SWIG signatures do not say
            # so (and omit SearchParametersHNSW).
            params = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]
                efSearch=max(HNSW_EF_SEARCH, 2 * want), sel=selector
            )
        else:
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        similarities, ids = self.index.search(query, want, params=params)
        found = [
            (int(i), float(s))
            for i, s in zip(ids[0], similarities[0], strict=True)
            if i >= 0 and self.alive[i]
        ]
        if len(found) < want:
            return None
        return _hits_table([i for i, _ in found], [1.0 - s for _, s in found], self)

    def add_rows(self, rows: pa.Table, dimension: int) -> None:
        """Append rows (worker thread; the copy is `busy` meanwhile)."""
        vectors = _unit_rows(rows.column("vector"), dimension)
        self.index.add(vectors)
        start = len(self.chunk_ids)
        chunk_ids, texts = rows.column("chunk_id").to_pylist(), rows.column("text").to_pylist()
        self.chunk_ids += chunk_ids
        self.texts += texts
        for name, column in (
            ("start_lines", "start_line"),
            ("end_lines", "end_line"),
            ("written_at", "written_at"),
        ):
            setattr(
                self, name, np.concatenate([getattr(self, name), rows.column(column).to_numpy()])
            )
        scaffolds = (
            pc.fill_null(rows.column(SCAFFOLD), 0.0).to_numpy()
            if SCAFFOLD in rows.column_names
            else np.zeros(rows.num_rows)
        )
        self.scaffolds = np.concatenate([self.scaffolds, scaffolds.astype(np.float32)])
        self.alive = np.concatenate([self.alive, np.ones(rows.num_rows, dtype=bool)])
        self.positions.update((chunk_id, start + k) for k, chunk_id in enumerate(chunk_ids))
        added = estimated_bytes(rows.num_rows, dimension, sum(len(t) for t in texts))
        # The copy's own cost is counted with its first rows; later rows add only themselves.
        self.nbytes += added - (BYTES_PER_COPY if self.nbytes else 0)


def _hits_table(positions: list[int], distances: list[float], copy: _Copy) -> pa.Table:
    rows = _rows_table(positions, copy)
    return rows.append_column("_distance", pa.array(distances, pa.float32()))


def _rows_table(positions: list[int], copy: _Copy) -> pa.Table:
    """The copied columns of the rows at `positions`, in that order."""
    return pa.table(
        {
            "chunk_id": pa.array([copy.chunk_ids[i] for i in positions], pa.string()),
            "start_line": pa.array(copy.start_lines[positions], pa.int32()),
            "end_line": pa.array(copy.end_lines[positions], pa.int32()),
            "text": pa.array([copy.texts[i] for i in positions], pa.string()),
            "written_at": pa.array(copy.written_at[positions], pa.int64()),
            SCAFFOLD: pa.array(copy.scaffolds[positions], pa.float32()),
            "vector": _vector_column(copy, positions),
        }
    )


def _vector_column(copy: _Copy, positions: list[int]) -> pa.FixedSizeListArray:
    """The rows' vectors as the copy holds them (unit length), read back from its index."""
    dimension = int(copy.index.d)
    if positions:
        vectors = copy.index.reconstruct_batch(np.asarray(positions, dtype=np.int64))
    else:
        vectors = np.zeros((0, dimension), np.float32)
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, dimension)


async def _copied(table: AsyncTable) -> list[str]:
    """`COPIED_COLUMNS`, and `scaffold` where the table has it."""
    return COPIED_COLUMNS + _scaffold((await table.schema()).names)


def _scaffold(names: list[str]) -> list[str]:
    return [SCAFFOLD] if SCAFFOLD in names else []


def _unit_rows(column: pa.ChunkedArray | pa.Array, dimension: int) -> np.ndarray:
    vectors = np.array(vectors_of(column, dimension), dtype=np.float32, copy=True)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: np.ndarray = vectors / norms
    return unit


def _new_index(dimension: int, hnsw: bool) -> faiss.Index:
    import faiss

    faiss.omp_set_num_threads(1)  # builds run beside recalls on a 2-core box: never take both
    if not hnsw:
        return faiss.IndexFlatIP(dimension)
    index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return index


class VectorCache:
    """Copies of tables by name, kept in step with LanceDB in the background."""

    def __init__(self, *, budget_bytes: int, dimension: int, exact_below_rows: int):
        self.budget_bytes = budget_bytes
        self.dimension = dimension
        self.exact_below_rows = exact_below_rows
        self._copies: OrderedDict[str, _Copy] = OrderedDict()
        self._syncs: dict[str, asyncio.Task[None]] = {}
        self._too_big: dict[str, int] = {}
        """Tables over the budget, with the version that was measured (measured again when it
        moves)."""
        self._retry_after: dict[str, float] = {}
        """Tables refused room, or whose copy failed: no new attempt before this loop time."""
        self._one_at_a_time = asyncio.Semaphore(1)
        # Its own thread: a build keeps one busy for seconds, and asyncio's default pool carries
        # the SQL store's calls (authentication on every request among them).
        self._builder = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="agentmem-vector-cache"
        )
        self.served = 0
        """Vector legs answered from a copy (for tests and benchmarks)."""
        self.rows_served = 0
        """Keyword legs whose rows came from a copy (`rows`; the same)."""
        self.written_through = 0
        """Appends added to a copy as they were written (`wrote`; tests and benchmarks)."""

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self._copies.values())

    async def nearest(
        self,
        name: str,
        table: AsyncTable,
        vector: np.ndarray,
        limit: int,
        *,
        version: Optional[int] = None,
    ) -> Optional[pa.Table]:
        """The vector leg from the table's copy, or None when it has no current copy (and a sync
        is then started, unless the table is too large to copy). `version`: the handle's, if
        the caller knows it (`LanceStore.version`); read here otherwise."""
        if version is None:
            version = await table.version()
        if not self.has_current(name, table, version):
            self._start_sync(name, table, version)
            return None
        copy = self._copies[name]
        loop = asyncio.get_running_loop()
        self._copies.move_to_end(name)
        copy.last_used = loop.time()
        hits = copy.nearest(vector, limit)
        self.served += hits is not None
        return hits

    def rows(
        self, name: str, table: AsyncTable, chunk_ids: list[str], *, version: int
    ) -> Optional[pa.Table]:
        """The copied columns of `chunk_ids`, in that order, from the table's copy at `version`
        (the handle's); None when there is no such copy or it lacks one of them (a row written
        since: the caller reads LanceDB instead). Starts no sync: `nearest` does."""
        if not self.has_current(name, table, version):
            return None
        copy = self._copies[name]
        positions = [copy.positions.get(chunk_id) for chunk_id in chunk_ids]
        found = [p for p in positions if p is not None and copy.alive[p]]
        if len(found) < len(positions):
            return None
        copy.last_used = asyncio.get_running_loop().time()
        self.rows_served += 1
        return _rows_table(found, copy)

    def has_current(self, name: str, table: AsyncTable, version: int) -> bool:
        """Whether the table's copy is at `version` and idle, without reading the version."""
        copy = self._copies.get(name)
        return (
            copy is not None and copy.table is table and copy.version == version and not copy.busy
        )

    async def current(self, name: str, table: AsyncTable) -> bool:
        """Whether the table's copy is at the table's version (the next recall uses it)."""
        copy = self._copies.get(name)
        return copy is not None and self.has_current(name, table, await table.version())

    def can_write_through(self, name: str, table: AsyncTable, rows: int) -> bool:
        """Whether an append of `rows` rows through `table` might be added to the table's copy
        (`wrote`): it has one, made through this handle, idle, and the rows are few."""
        copy = self._copies.get(name)
        return (
            copy is not None
            and rows <= (WRITE_THROUGH_HNSW_ROWS if copy.hnsw else WRITE_THROUGH_ROWS)
            and copy.table is table
            and not copy.busy
            and name not in self._syncs
        )

    def wrote(
        self, name: str, table: AsyncTable, rows: pa.Table, *, before: int, after: int
    ) -> bool:
        """After this process appended `rows` through `table`, moving it from version `before`
        to `after`: add them to the copy if it is at `before` and the append is the only commit
        in between (`after == before + 1`; a commit of another replica, which the copy has not
        seen, makes the gap larger). Otherwise the copy stays where it is, and the next recall
        finds it behind and catches it up. Returns whether the copy moved to `after`.

        A recall after a one-line append used to find the copy behind: LanceDB answered it, and
        the catch-up read every chunk id of the table to find the new row."""
        copy = self._copies.get(name)
        if (
            after != before + 1
            or not self.can_write_through(name, table, rows.num_rows)
            or copy is None
            or copy.version != before
        ):
            return False
        loop = asyncio.get_running_loop()
        text_bytes = sum(len(t) for t in rows.column("text").to_pylist())
        grown = (
            copy.nbytes
            + estimated_bytes(rows.num_rows, self.dimension, text_bytes)
            - BYTES_PER_COPY
        )
        if not self._make_room(name, grown, loop.time()):
            return False
        # On the event loop, not the builder thread: the copy must be at `after` before any
        # recall sees the handle there, and a few rows take well under a millisecond to add.
        copy.add_rows(rows.select(COPIED_COLUMNS + _scaffold(rows.column_names)), self.dimension)
        copy.version = after
        self.written_through += 1
        return True

    def forget(self, name: str) -> None:
        self._copies.pop(name, None)
        self._too_big.pop(name, None)
        self._retry_after.pop(name, None)
        task = self._syncs.pop(name, None)
        if task is not None:
            task.cancel()

    async def aclose(self) -> None:
        tasks = list(self._syncs.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._syncs.clear()
        self._copies.clear()
        self._builder.shutdown(wait=False, cancel_futures=True)

    def _start_sync(self, name: str, table: AsyncTable, version: int) -> None:
        if name in self._syncs or self._too_big.get(name) == version:
            return
        if self._retry_after.get(name, 0.0) > asyncio.get_running_loop().time():
            return
        task = asyncio.get_running_loop().create_task(
            self._sync(name, table), name=f"agentmem-vector-cache-{name}"
        )
        self._syncs[name] = task
        task.add_done_callback(
            lambda done: self._syncs.pop(name, None) if self._syncs.get(name) is done else None
        )

    async def _sync(self, name: str, table: AsyncTable) -> None:
        try:
            async with self._one_at_a_time:
                await self._catch_up(name, table)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - LanceDB answers meanwhile; a recall tries again later
            log.exception("could not copy archival table %s into memory", name)
            self._copies.pop(name, None)
            self._retry_after[name] = asyncio.get_running_loop().time() + IDLE_S

    async def _catch_up(self, name: str, table: AsyncTable) -> None:
        version = await table.version()
        copy = self._copies.get(name)
        if copy is not None and copy.table is table and copy.version == version:
            return  # a write-through (`wrote`) got there first
        rows = await table.count_rows()
        estimate = estimated_bytes(rows, self.dimension)
        if estimate > self.budget_bytes:
            self._too_big[name] = version
            self._copies.pop(name, None)
            log.info(
                "archival table %s (%d rows) is too large for AGENTMEM_RECALL_CACHE_MB; "
                "LanceDB answers it",
                name,
                rows,
            )
            return
        self._too_big.pop(name, None)
        copy = self._copies.get(name)
        loop = asyncio.get_running_loop()
        if copy is not None and copy.table is table:
            if await self._add_what_changed(copy, table, version):
                if not self._make_room(name, copy.nbytes, loop.time()):  # it grew past what is free
                    self._copies.pop(name, None)
                    self._retry_after[name] = loop.time() + IDLE_S
                return
        if not self._make_room(name, estimate, loop.time()):
            self._retry_after[name] = loop.time() + IDLE_S
            return
        fresh = await self._read_all(name, table, version, hnsw=rows >= self.exact_below_rows)
        if fresh is None:
            return
        if not self._make_room(
            name, fresh.nbytes, loop.time()
        ):  # its text made it larger than estimated
            self._retry_after[name] = loop.time() + IDLE_S
            return
        fresh.last_used = loop.time()
        self._copies[name] = fresh

    async def _add_what_changed(self, copy: _Copy, table: AsyncTable, version: int) -> bool:
        """Bring a copy of the same table up to `version`; False if a rebuild is better."""
        ids = (await table.query().select(["chunk_id"]).to_arrow()).column("chunk_id").to_pylist()
        present = set(ids)
        new = [c for c in ids if c not in copy.positions]
        gone = [p for c, p in copy.positions.items() if c not in present and copy.alive[p]]
        if (copy.dead + len(gone)) > REBUILD_DEAD_FRACTION * (
            len(copy.chunk_ids) + len(new)
        ) or len(new) > len(ids) // 2:
            return False
        added: Optional[pa.Table] = None
        if new:
            # Rows come in whole writes (an append or an update is one write id).
            where = of_writes(sorted({write_id_of(c) for c in new}))
            added = await table.query().where(where).select(await _copied(table)).to_arrow()
            added = added.filter(pc.is_in(added.column("chunk_id"), pa.array(new, pa.string())))
        if await table.version() != version:
            return True  # moved on while reading: the next recall starts another round
        if added is not None and added.num_rows:
            copy.busy = True
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self._builder, copy.add_rows, added, self.dimension
                )
            finally:
                copy.busy = False
        for position in gone:
            copy.alive[position] = False
            copy.texts[position] = (
                ""  # the vector stays in the index until a rebuild; the text need not
            )
        copy.version = version
        return True

    async def _read_all(
        self, name: str, table: AsyncTable, version: int, *, hnsw: bool
    ) -> Optional[_Copy]:
        copy = _Copy(
            table=table,
            version=version,
            index=_new_index(self.dimension, hnsw),
            chunk_ids=[],
            texts=[],
            start_lines=np.zeros(0, np.int32),
            end_lines=np.zeros(0, np.int32),
            written_at=np.zeros(0, np.int64),
            alive=np.zeros(0, dtype=bool),
        )
        started = asyncio.get_running_loop().time()
        # In batches: a whole 100k-row table read at once would briefly double the copy's memory.
        reader = await table.query().select(await _copied(table)).to_batches(max_batch_length=16384)
        async for batch in reader:
            rows = pa.Table.from_batches([batch])
            await asyncio.get_running_loop().run_in_executor(
                self._builder, copy.add_rows, rows, self.dimension
            )
        if await table.version() != version:
            return None
        if hnsw:
            log.info(
                "copied archival table %s (%d rows) into memory in %.1fs",
                name,
                len(copy.chunk_ids),
                asyncio.get_running_loop().time() - started,
            )
        return copy

    def _make_room(self, name: str, nbytes: int, now: float) -> bool:
        """Free `nbytes` for the table's copy (its old copy's included) by dropping idle copies;
        False, dropping nothing, if that is not enough."""
        if nbytes > self.budget_bytes:
            return False
        others = [(n, c) for n, c in self._copies.items() if n != name]  # least recently used first
        used = sum(c.nbytes for _, c in others)
        idle = [(n, c) for n, c in others if now - c.last_used >= IDLE_S]
        if used - sum(c.nbytes for _, c in idle) + nbytes > self.budget_bytes:
            return False
        for evicted, copy in idle:
            if used + nbytes <= self.budget_bytes:
                break
            del self._copies[evicted]
            used -= copy.nbytes
            log.info(
                "dropped the in-memory copy of archival table %s to make room "
                "(AGENTMEM_RECALL_CACHE_MB)",
                evicted,
            )
        self._retry_after.pop(name, None)
        return True
