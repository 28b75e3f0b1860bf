"""Re-embedding every archival table with a new model (`agentmem reindex`).

Table by table: the new vectors go into a side table `rx_<name>`, which then replaces the
original. LanceDB OSS cannot rename tables, so "replaces" means: drop the original, re-create it
from the side table, drop the side table. Each step is recoverable: a later run finishes or
undoes what an interrupted one left, and skips tables already on the new model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Optional

import numpy as np
import pyarrow as pa

from ..base import Progress
from .schema import (
    REINDEX_PREFIX,
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


async def reindex_store(
    store: LanceStore,
    *,
    embed: Embed,
    dimension: int,
    batch_rows: int = 512,
    progress: Optional[Progress] = None,
) -> int:
    """Re-embed the chunks of every table not on `store.model_id`; returns how many were
    embedded."""
    model_id = store.model_id
    names = await store.table_names(TABLE_PREFIX)
    for side_name in await store.table_names(REINDEX_PREFIX):
        await _recover(store, side_name[len(REINDEX_PREFIX) :], side_name, names)
    todo, total = [], 0
    for name in await store.table_names(TABLE_PREFIX):
        table = await store.open_raw(name)
        if table is None:
            continue
        if schema_model(await table.schema()) == model_id:
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
        schema = chunk_schema(
            dimension, model_id=model_id, block_id=block_id, units=schema_units(old)
        )
        side = await store.db.create_table(REINDEX_PREFIX + name, schema=schema, mode="overwrite")
        embedded = search_column(schema)  # a unit's vector is its key's
        async for batch in store.iter_rows(table, batch_rows=batch_rows):
            vectors = await embed(batch.column(embedded).to_pylist())
            await side.add(_with_vectors(batch, vectors, schema))
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
    final_model = schema_model(await final.schema())
    same_rows = await final.count_rows() == await side.count_rows()
    final.close()
    ours = schema_model(side_schema) == store.model_id
    # Side complete but not swapped in (the original still on the old model), or the copy back
    # into the original stopped half-way: the side table holds the full result.
    if ours and (
        (same_rows and final_model != store.model_id)
        or (not same_rows and final_model == store.model_id)
    ):
        await _swap_in(store, name, side, side_schema)
        return
    # Otherwise the side table is partial (the original is intact) or already swapped in.
    side.close()
    await store.drop_table(side_name)


def _with_vectors(batch: pa.RecordBatch, vectors: np.ndarray, schema: pa.Schema) -> pa.Table:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    arrays = [
        pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
        if f.name == "vector"
        else batch.column(f.name)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)
