"""Table names, the Arrow schema of archival chunk rows, and the metadata stored with them.

One table per archival block (so per scope, which holds one block at a time), named after the
block: `arc_<len>_<tenant>_u_<block_id>` for the user scope and
`arc_<len>_<tenant>_a<len>_<agent_id>_<block_id>` for an agent. The length prefixes make the name
unambiguous although tenant and agent ids may contain `_`, and let a tenant's or a scope's tables
be listed by prefix. See docs/recall.md for why the layout is a table per scope.

The block id is in the name because a name must never be reused: a scope deleted and re-created
(by any replica) gets a new block id, so a new table, and another replica's handle, cached copy or
version number of the old table can never be taken for the new one (docs/deploy.md).

Stores written before that carry scope-named tables (`arc_<len>_<tenant>_u`,
`arc_<len>_<tenant>_a_<agent_id>`, "legacy" below): they are still read and written, for the
block their metadata names, and are never re-created under that name.
"""

from __future__ import annotations

import re
from typing import Optional

import pyarrow as pa

from ..base import ScopeKey

TABLE_PREFIX = "arc_"
STORE_TABLE = "_agentmem_archival"
"""One row per setting of the whole store: the embedding model the vectors were made with."""
REINDEX_PREFIX = "rx_"
"""Tables being rebuilt by `reindex`; the name is the final table's with this prefix."""

FORMAT_CHUNKS = "1"
"""Rows are chunks: `text` is embedded, searched and returned."""
FORMAT_UNITS = "2"
"""Rows are line units (`chunking.build_units`): `key` is embedded and searched, `text` (the
line with its neighbours) returned; `text_hash` is the key's hash."""
FORMAT_VERSION = FORMAT_CHUNKS
META_MODEL = b"agentmem.model_id"
META_DIMENSION = b"agentmem.dimension"
META_BLOCK = b"agentmem.block_id"
META_FORMAT = b"agentmem.format"

_SAFE = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


def _check_id(kind: str, value: str) -> str:
    if not _SAFE.match(value):
        raise ValueError(f"{kind} {value!r} must be 1-128 letters, digits, '_', '-' or '.'")
    return value


def tenant_prefix(tenant_id: str) -> str:
    return f"{TABLE_PREFIX}{len(_check_id('tenant id', tenant_id))}_{tenant_id}_"


def scope_prefix(tenant_id: str, scope: ScopeKey) -> str:
    """What the names of the scope's block tables start with."""
    if scope.scope == "agent":
        if not scope.agent_id:
            raise ValueError("the agent scope needs an agent_id")
        agent = _check_id("agent id", scope.agent_id)
        return f"{tenant_prefix(tenant_id)}a{len(agent)}_{agent}_"
    return f"{tenant_prefix(tenant_id)}u_"


def block_table_name(tenant_id: str, scope: ScopeKey, block_id: str) -> str:
    """The table of one archival block (never reused by another block)."""
    return scope_prefix(tenant_id, scope) + _check_id("block id", block_id)


def legacy_table_name(tenant_id: str, scope: ScopeKey) -> str:
    """The scope-named table of stores written before tables were named after their block."""
    if scope.scope == "agent":
        if not scope.agent_id:
            raise ValueError("the agent scope needs an agent_id")
        return f"{tenant_prefix(tenant_id)}a_{_check_id('agent id', scope.agent_id)}"
    return f"{tenant_prefix(tenant_id)}u"


def parse_table_name(name: str) -> Optional[tuple[str, ScopeKey]]:
    """`(tenant_id, scope)` for an archival table name (block-named or legacy), None for any
    other table."""
    parsed = parse_table_name_full(name)
    return None if parsed is None else (parsed[0], parsed[1])


def parse_table_name_full(name: str) -> Optional[tuple[str, ScopeKey, Optional[str]]]:
    """`(tenant_id, scope, block_id)`; the block id is None for a legacy (scope-named) table."""
    if not name.startswith(TABLE_PREFIX):
        return None
    rest = name[len(TABLE_PREFIX) :]
    length, sep, rest = rest.partition("_")
    if not sep or not length.isdigit():
        return None
    tenant, rest = rest[: int(length)], rest[int(length) :]
    if not tenant or not rest.startswith("_"):
        return None
    if rest == "_u":
        return tenant, ScopeKey("user"), None
    if rest.startswith("_u_") and len(rest) > 3:
        return tenant, ScopeKey("user"), rest[3:]
    if rest.startswith("_a_") and len(rest) > 3:
        return tenant, ScopeKey("agent", rest[3:]), None
    agent_length, sep, rest = rest[2:].partition("_") if rest.startswith("_a") else ("", "", "")
    if not sep or not agent_length.isdigit():
        return None
    agent, rest = rest[: int(agent_length)], rest[int(agent_length) :]
    if agent and rest.startswith("_") and len(rest) > 1:
        return tenant, ScopeKey("agent", agent), rest[1:]
    return None


def chunk_schema(dimension: int, *, model_id: str, block_id: str, units: bool = False) -> pa.Schema:
    """The rows of one block's table: chunks, or line units (`units`: `key` and `scaffold`
    columns more; unit tables written before `scaffold` existed lack it, and read as 0)."""
    key = (
        [pa.field("key", pa.string(), nullable=False), pa.field(SCAFFOLD, pa.float32())]
        if units
        else []
    )
    return pa.schema(
        [
            pa.field("tenant_id", pa.string(), nullable=False),
            pa.field("scope", pa.string(), nullable=False),
            pa.field("agent_id", pa.string(), nullable=False),  # '' for the user scope
            pa.field("block_id", pa.string(), nullable=False),
            pa.field("chunk_id", pa.string(), nullable=False),
            pa.field("write_id", pa.string(), nullable=False),  # one per add/replace call
            pa.field("start_line", pa.int32(), nullable=False),
            pa.field("end_line", pa.int32(), nullable=False),
            pa.field("piece", pa.int32(), nullable=False),
            pa.field("text", pa.string(), nullable=False),
            pa.field("text_hash", pa.string(), nullable=False),
            *key,
            pa.field("vector", pa.list_(pa.float32(), dimension), nullable=False),
            pa.field("written_at", pa.int64(), nullable=False),  # UTC microseconds
        ],
        metadata={
            META_MODEL: model_id.encode(),
            META_DIMENSION: str(dimension).encode(),
            META_BLOCK: block_id.encode(),
            META_FORMAT: (FORMAT_UNITS if units else FORMAT_CHUNKS).encode(),
        },
    )


SCAFFOLD = "scaffold"
"""A unit's cosine to its `[date] Speaker:` scaffold (`agentmem_server.scaffold`)."""


def schema_units(schema: pa.Schema) -> bool:
    """Whether a table holds line units (tables written before formats were named hold chunks)."""
    value = (schema.metadata or {}).get(META_FORMAT)
    return value is not None and value.decode() == FORMAT_UNITS


def search_column(schema: pa.Schema) -> str:
    """The column the full-text index reads: the key of a unit, the text of a chunk."""
    return "key" if schema_units(schema) else "text"


def schema_model(schema: pa.Schema) -> Optional[str]:
    value = (schema.metadata or {}).get(META_MODEL)
    return value.decode() if value is not None else None


def schema_block(schema: pa.Schema) -> Optional[str]:
    value = (schema.metadata or {}).get(META_BLOCK)
    return value.decode() if value is not None else None


STORE_SCHEMA = pa.schema(
    [pa.field("key", pa.string(), nullable=False), pa.field("value", pa.string(), nullable=False)]
)
