"""Arrow <-> archival values: the rows the store writes and the columns it reads back.

Services never see Arrow: writes come in as chunks and vectors, reads go out as the value types
of `storage/base.py` (`StoredChunk`, `ChunkHit`) and numpy vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..base import ChunkHit, StoredChunk
from .schema import SCAFFOLD

if TYPE_CHECKING:
    from ...chunking import Chunk

RESULT_COLUMNS = ["chunk_id", "start_line", "end_line", "text", "written_at"]
"""What a recall result is read from. Tenant, scope, agent and block are the table's own (checked
once when it is opened): reading those constant columns cost 2-3 ms per query at 1M rows."""
PLAN_COLUMNS = ["chunk_id", "start_line", "end_line", "piece", "text", "text_hash"]
"""What an edit needs to decide which stored chunks it keeps (no vectors)."""


def vectors_of(column: pa.Array | pa.ChunkedArray, dimension: int) -> np.ndarray:
    """A FixedSizeList<float32> column as a (rows, dimension) array, without a Python loop."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        return np.zeros((0, dimension), dtype=np.float32)
    flat: np.ndarray = column.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(len(column), dimension).astype(np.float32, copy=False)


def result_columns(schema: pa.Schema) -> list[str]:
    """`RESULT_COLUMNS`, and a unit table's `scaffold` where it has one."""
    return [*RESULT_COLUMNS, SCAFFOLD] if SCAFFOLD in schema.names else RESULT_COLUMNS


def chunk_hits(table: pa.Table) -> list[ChunkHit]:
    """The `RESULT_COLUMNS` of each row (and `scaffold`, null as 0), in row order."""
    columns = [table.column(name).to_pylist() for name in RESULT_COLUMNS]
    if SCAFFOLD in table.column_names:
        columns.append([s or 0.0 for s in table.column(SCAFFOLD).to_pylist()])
    return [ChunkHit(*row) for row in zip(*columns, strict=True)]


def stored_chunks(table: pa.Table) -> list[StoredChunk]:
    """The `PLAN_COLUMNS` of each row, in row order."""
    columns = [table.column(name).to_pylist() for name in PLAN_COLUMNS]
    return [StoredChunk(*row) for row in zip(*columns, strict=True)]


def rows_table(
    schema: pa.Schema,
    *,
    tenant_id: str,
    scope: str,
    agent_key: str,
    block_id: str,
    write_id: str,
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    text_hashes: Sequence[str],
    written_at: int,
    line_offset: int = 0,
) -> pa.Table:
    """The rows of one write: chunk ids are `<write_id>-<n>`, so a write's rows are found by id.
    A unit table (one with a `key` column) stores each chunk's `index_text` there. Each chunk's
    line numbers are stored plus `line_offset`."""
    n = len(chunks)
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    list_size = vectors.shape[1] if n else schema.field("vector").type.list_size
    keys = {"key": [c.index_text for c in chunks]} if "key" in schema.names else {}
    if SCAFFOLD in schema.names:
        keys[SCAFFOLD] = pa.array([c.scaffold for c in chunks], pa.float32())
    return pa.table(
        {
            "tenant_id": [tenant_id] * n,
            "scope": [scope] * n,
            "agent_id": [agent_key] * n,
            "block_id": [block_id] * n,
            "chunk_id": [f"{write_id}-{i}" for i in range(n)],
            "write_id": [write_id] * n,
            "start_line": pa.array([c.start_line + line_offset for c in chunks], pa.int32()),
            "end_line": pa.array([c.end_line + line_offset for c in chunks], pa.int32()),
            "piece": pa.array([c.piece for c in chunks], pa.int32()),
            "text": [c.text for c in chunks],
            "text_hash": list(text_hashes),
            **keys,
            "vector": pa.FixedSizeListArray.from_arrays(flat, list_size),
            "written_at": pa.array([written_at] * n, pa.int64()),
        },
        schema=schema,
    )


def write_id_of(chunk_id: str) -> str:
    """The write that stored a chunk (chunk ids are `<write_id>-<n>`)."""
    return chunk_id.rsplit("-", 1)[0]
