"""Re-embedding every archival table with a new model, and rebuilding tables of chunks as line
units (`agentmem reindex`).

Table by table: the new vectors go into a side table `rx_<name>`, which then replaces the
original. LanceDB OSS cannot rename tables, so "replaces" means: drop the original, re-create it
from the side table, drop the side table. Each step is recoverable: a later run finishes or
undoes what an interrupted one left, and skips tables already on the new model (and format).

A rebuild as units reads a table's chunks back into lines, append by append (a write's rows
share its `write_id`; their text gives its lines back), and writes each append's units under the
same write id and time, so recall, in-flight checks and exports see the same writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pyarrow as pa

from ...chunking import Chunk, lines_from_chunks, text_hash
from ...scaffold import scaffold_cosines, with_scaffolds
from ..base import Progress
from .arrow import rows_table
from .schema import (
    REINDEX_PREFIX,
    SCAFFOLD,
    TABLE_PREFIX,
    chunk_schema,
    schema_block,
    schema_model,
    schema_units,
    search_column,
)
from .store import LanceStore, fts_config

if TYPE_CHECKING:
    from lancedb.table import AsyncTable

Embed = Callable[[Sequence[str]], Awaitable[np.ndarray]]
ToUnits = Callable[[Sequence[str]], list[Chunk]]
"""`lines -> units` numbered from 1 (`chunking.build_units` with the index's budget)."""


async def reindex_store(
    store: LanceStore,
    *,
    embed: Embed,
    dimension: int,
    batch_rows: int = 512,
    progress: Optional[Progress] = None,
    to_units: Optional[ToUnits] = None,
) -> int:
    """Re-embed the rows of every table not on `store.model_id`, and with `to_units` rebuild
    every table of chunks as line units; returns how many rows were read."""
    model_id = store.model_id
    names = await store.table_names(TABLE_PREFIX)
    for side_name in await store.table_names(REINDEX_PREFIX):
        await _recover(store, side_name[len(REINDEX_PREFIX) :], side_name, names)
    todo, total = [], 0
    for name in await store.table_names(TABLE_PREFIX):
        table = await store.open_raw(name)
        if table is None:
            continue
        schema = await table.schema()
        if schema_model(schema) == model_id and (to_units is None or schema_units(schema)):
            table.close()
            continue
        todo.append((name, table))
        total += await table.count_rows()
    done = 0
    if progress:
        progress(0, total)
    for name, table in todo:
        old = await table.schema()
        block_id = schema_block(old) or ""
        rebuild = to_units is not None and not schema_units(old)
        schema = chunk_schema(
            dimension, model_id=model_id, block_id=block_id, units=schema_units(old) or rebuild
        )
        side = await store.db.create_table(REINDEX_PREFIX + name, schema=schema, mode="overwrite")
        if to_units is not None and rebuild:
            rows = await table.query().select(REBUILD_COLUMNS).to_arrow()
            for units, first in _units_by_write(rows, to_units, schema, batch_rows):
                vectors = await embed([u.index_text for u in units.chunks])
                units.chunks = await with_scaffolds(units.chunks, vectors, embed)
                await side.add(units.table(vectors, first))
            done += rows.num_rows
            if progress:
                progress(done, total)
            table.close()
            await _swap_in(store, name, side, schema)
            continue
        embedded = search_column(schema)  # a unit's vector is its key's
        async for batch in store.iter_rows(table, batch_rows=batch_rows):
            texts = batch.column(embedded).to_pylist()
            vectors = await embed(texts)
            # A new model moves the scaffolds' cosines too.
            scaffolds = (
                await scaffold_cosines(texts, vectors, embed) if SCAFFOLD in schema.names else None
            )
            await side.add(_with_vectors(batch, vectors, schema, scaffolds))
            done += batch.num_rows
            if progress:
                progress(done, total)
        table.close()
        await _swap_in(store, name, side, schema)
    await store.set_stored_model(model_id)
    return done


async def _swap_in(store: LanceStore, name: str, side: AsyncTable, schema: pa.Schema) -> None:
    async with store.lock(name):
        await store.drop_table(name)
        final = await store.db.create_table(name, schema=schema, mode="overwrite")
        async for batch in store.iter_rows(side, batch_rows=65536):
            await final.add(pa.Table.from_batches([batch], schema=schema))
        await final.create_index(search_column(schema), config=fts_config())
        final.close()
        side_name = side.name
        side.close()
        await store.drop_table(side_name)


async def _recover(store: LanceStore, name: str, side_name: str, names: list[str]) -> None:
    """Finish or undo a reindex that stopped between writing a side table and swapping it in."""
    side = await store.open_raw(side_name)
    if side is None:
        return
    side_schema = await side.schema()
    final = await store.open_raw(name) if name in names else None
    if final is None:
        # The original is dropped only once the side table is complete.
        await _swap_in(store, name, side, side_schema)
        return
    final_schema = await final.schema()
    final_model = schema_model(final_schema)
    same_format = schema_units(final_schema) == schema_units(side_schema)
    same_rows = await final.count_rows() == await side.count_rows()
    final.close()
    ours = schema_model(side_schema) == store.model_id
    # Side complete but not swapped in (the original still on the old model), or the copy back
    # into the original stopped half-way: the side table holds the full result. A rebuild as
    # units has other row counts than its original, so a side of another format than the
    # original is never taken for complete: the original is intact, and the rebuild starts over.
    if (
        ours
        and same_format
        and (
            (same_rows and final_model != store.model_id)
            or (not same_rows and final_model == store.model_id)
        )
    ):
        await _swap_in(store, name, side, side_schema)
        return
    # Otherwise the side table is partial (the original is intact) or already swapped in.
    side.close()
    await store.drop_table(side_name)


def _with_vectors(
    batch: pa.RecordBatch,
    vectors: np.ndarray,
    schema: pa.Schema,
    scaffolds: Optional[Sequence[Optional[float]]] = None,
) -> pa.Table:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    arrays = [
        pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
        if f.name == "vector"
        else pa.array(scaffolds or [None] * batch.num_rows, pa.float32())
        if f.name == SCAFFOLD
        else batch.column(f.name)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


REBUILD_COLUMNS = [
    "tenant_id",
    "scope",
    "agent_id",
    "block_id",
    "write_id",
    "start_line",
    "end_line",
    "piece",
    "text",
    "written_at",
]


class _Units:
    """One batch of an append's units, ready to become rows once embedded."""

    def __init__(self, chunks: list[Chunk], schema: pa.Schema, row: dict[str, Any], start: int):
        self.chunks, self.schema, self.row, self.start = chunks, schema, row, start

    def table(self, vectors: np.ndarray, first: int) -> pa.Table:
        shifted = [
            replace(c, start_line=c.start_line + first - 1, end_line=c.end_line + first - 1)
            for c in self.chunks
        ]
        rows = rows_table(
            self.schema,
            tenant_id=self.row["tenant_id"],
            scope=self.row["scope"],
            agent_key=self.row["agent_id"],
            block_id=self.row["block_id"],
            write_id=self.row["write_id"],
            chunks=shifted,
            vectors=vectors,
            text_hashes=[text_hash(c.index_text) for c in shifted],
            written_at=self.row["written_at"],
        )
        # Ids go on from the batch before: one write's rows keep distinct ids.
        ids = [f"{self.row['write_id']}-{self.start + i}" for i in range(rows.num_rows)]
        return rows.set_column(rows.schema.get_field_index("chunk_id"), "chunk_id", [ids])


def _units_by_write(
    rows: pa.Table, to_units: ToUnits, schema: pa.Schema, batch_rows: int
) -> Iterator[tuple[_Units, int]]:
    """Each write's lines (read back from its chunks) cut into units, in batches."""
    by_write: dict[str, list[dict[str, Any]]] = {}
    for row in rows.to_pylist():
        by_write.setdefault(row["write_id"], []).append(row)
    for members in by_write.values():
        first = min(r["start_line"] for r in members)
        chunks = [
            Chunk(r["text"], r["start_line"] - first + 1, r["end_line"] - first + 1, r["piece"])
            for r in members
        ]
        lines = [line if line is not None else "" for line in lines_from_chunks(chunks)]
        units = to_units(lines)
        for start in range(0, len(units), batch_rows):
            yield _Units(units[start : start + batch_rows], schema, members[0], start), first
