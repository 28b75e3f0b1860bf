"""What services know of storage: value types and the archival store's Protocol.

Import-light (no engines, no LanceDB, no numpy at run time), so services and tests can name these
without loading a store. The implementations live beside it: `sql/` and `lance/`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import (
    TYPE_CHECKING,
    Any,
    Literal,
    Optional,
    Protocol,
    runtime_checkable,
)

if TYPE_CHECKING:
    import numpy as np

    from ..chunking import Chunk

log = logging.getLogger("agentmem.storage")

Scope = Literal["user", "agent"]

USER_SCOPE_KEY = ""
"""The `agent_key` of the user scope.

Public APIs name a scope by `agent_id` (None for the user scope). Storage keys it by `agent_key`:
the agent id, or this for the user scope, because a column in a unique key or a LanceDB filter
cannot be NULL. The SQL and LanceDB columns holding it are named `agent_id`."""


def agent_key_of(agent_id: Optional[str]) -> str:
    return agent_id or USER_SCOPE_KEY


@dataclass(frozen=True)
class ScopeKey:
    """One memory scope of a tenant: `user`, or `agent` with its id."""

    scope: Scope
    agent_id: Optional[str] = None

    @property
    def agent_key(self) -> str:
        return self.agent_id if self.scope == "agent" and self.agent_id else USER_SCOPE_KEY

    @classmethod
    def from_agent_key(cls, agent_key: str) -> ScopeKey:
        """The inverse of `agent_key`: the form SQL stores a scope in."""
        return cls("agent", agent_key) if agent_key != USER_SCOPE_KEY else cls("user")


@dataclass(frozen=True)
class BlockRef:
    """Identifies an archival block for the archival index."""

    tenant_id: str
    block_id: str
    scope: Scope
    agent_id: Optional[str]
    updated_at: Optional[int] = field(default=None, compare=False)
    """The block's SQL `updated_at` (UTC microseconds) as the caller read it, if it did: a store
    whose view of the block is older looks again before searching it (read-your-writes across
    replicas: SQL commits after the index does)."""

    @classmethod
    def of(
        cls, tenant_id: str, block_id: str, agent_key: str, updated_at: Optional[int] = None
    ) -> BlockRef:
        scope = ScopeKey.from_agent_key(agent_key)
        return cls(tenant_id, block_id, scope.scope, scope.agent_id, updated_at)

    @property
    def scope_key(self) -> ScopeKey:
        return ScopeKey(self.scope, self.agent_id)


def to_micros(ts: datetime) -> int:
    """UTC microseconds since the epoch: the exact form timestamps are compared in SQL."""
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    delta = ts.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    seconds, micros = divmod(us, 1_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=micros)


def now_micros() -> int:
    return to_micros(datetime.now(UTC))


# ---- the archival store -----------------------------------------------------------------------

Progress = Callable[[int, int], None]
"""`progress(done_chunks, total_chunks)`, called as a long job (reindex) goes."""


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as an archival block stores it, without its vector (what an edit plans with)."""

    chunk_id: str
    start_line: int
    end_line: int
    piece: int
    text: str
    text_hash: str


@dataclass(frozen=True, slots=True)
class ChunkHit:
    """A chunk a search found: what a recall result is made of."""

    chunk_id: str
    start_line: int
    end_line: int
    text: str
    written_at: int
    """UTC microseconds of the write that stored it."""
    scaffold: float = 0.0
    """A line unit's cosine to its `[date] Speaker:` scaffold (`agentmem_server.scaffold`); 0 for
    a chunk."""


@dataclass(frozen=True)
class VectorHits:
    """One scope's nearest chunks to a query vector, nearest first."""

    hits: list[ChunkHit]
    cosines: list[float]
    """Cosine similarity of the query and each hit (exact, also through an ANN index)."""
    vectors: Optional[np.ndarray] = None
    """Shape `(len(hits), dimension)`, unit rows, when the store read them (hybrid recall keeps
    its top results apart by them: `services.recall.diverse`)."""


@dataclass(frozen=True)
class TextHits:
    """One scope's keyword (BM25) matches, best first, with their vectors to score by cosine."""

    hits: list[ChunkHit]
    bm25: list[float]
    vectors: np.ndarray
    """Shape `(len(hits), dimension)`, unit rows."""


@dataclass(frozen=True)
class ScopeIndex:
    """One scope's searchable archival index, as `ArchivalStore.open_scopes` found it."""

    tenant_id: str
    scope: ScopeKey
    block_id: Optional[str]
    handle: Any = field(repr=False, compare=False)
    """The store's own handle; opaque to services."""
    units: bool = False
    """Its rows are line units (`chunking.build_units`), not chunks."""


@runtime_checkable
class Leases(Protocol):
    """Named leases shared by every replica (`storage/sql/leases.py`): background work on one
    thing (an archival table's maintenance) is done by one replica at a time."""

    holder: str

    async def acquire(self, name: str, *, ttl_s: float) -> bool:
        """Take or renew the lease; False while another holder has it."""
        ...

    async def release(self, name: str) -> None: ...


@asynccontextmanager
async def leased(leases: Optional[Leases], name: str, *, ttl_s: float) -> AsyncIterator[bool]:
    """`async with leased(leases, name, ttl_s=60) as held:` the lease while the block runs,
    renewed in the background every third of `ttl_s`; `held` is False (and nothing taken) while
    another holder has it. Without leases (one process) it is always held."""
    if leases is None:
        yield True
        return
    if not await leases.acquire(name, ttl_s=ttl_s):
        yield False
        return

    async def renew() -> None:
        while True:
            await asyncio.sleep(ttl_s / 3)
            if not await leases.acquire(name, ttl_s=ttl_s):
                log.warning("lost the lease %s while holding it", name)

    renewer = asyncio.get_running_loop().create_task(renew(), name=f"agentmem-lease-{name}")
    try:
        yield True
    finally:
        renewer.cancel()
        await asyncio.gather(renewer, return_exceptions=True)
        try:
            await leases.release(name)
        except Exception:  # noqa: BLE001 - it expires by itself
            log.warning("could not release the lease %s; it expires in %ss", name, ttl_s)


@runtime_checkable
class BlockWriter(Protocol):
    """Writes one archival block while holding its scope's write lock (`ArchivalStore.writing`)."""

    @property
    def units(self) -> Optional[bool]:
        """Whether the block's index holds line units (True) or chunks (False); None while it
        has no index yet (the first write's `units` decides)."""
        ...

    async def stored_chunks(self) -> list[StoredChunk]: ...

    async def stored_vectors(self, chunk_ids: Iterable[str]) -> dict[str, np.ndarray]: ...

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
        """Store chunks as new rows tagged `write_id` (which `discard_write` takes back); a
        block without an index gets one of line units if `units`, else of chunks. `text_hashes`
        are of each chunk's `index_text`; `line_offset` is added to each chunk's line numbers."""
        ...

    async def replace(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        *,
        text_hashes: Sequence[str],
        written_at: int,
        units: bool = False,
    ) -> None:
        """Make these the block's chunks (`units` as in `add`). The new rows are committed
        before the old ones go: a crash in between leaves both searchable (duplicates, never a
        loss)."""
        ...


@dataclass(frozen=True)
class BlockTable:
    """One block's index in the archival store, named after the block."""

    name: str
    tenant_id: str
    scope: ScopeKey
    block_id: str


@runtime_checkable
class ArchivalStore(Protocol):
    """Where archival chunks and their vectors live, by tenant and scope (LanceDB today:
    `storage/lance/index.py`). Each scope holds at most one archival block."""

    @property
    def model_id(self) -> str:
        """The embedding model the stored vectors were made with."""
        ...

    @property
    def dimension(self) -> int: ...

    def units_of(self, tenant_id: str, scope: ScopeKey) -> Optional[bool]:
        """What this process knows of the format of the scope's index (`BlockWriter.units`)
        without asking the store; None when it knows nothing. A hint: the writer decides."""
        ...

    def writing(self, block: BlockRef) -> AbstractAsyncContextManager[BlockWriter]:
        """`async with store.writing(block) as writer:` the block's writes, one writer at a time
        per scope in this process. Rows of another block left in the scope are dropped first."""
        ...

    async def discard_write(
        self, tenant_id: str, scope: ScopeKey, write_id: str, *, block_id: Optional[str] = None
    ) -> None:
        """Remove the rows of one write; from the block's index when `block_id` is given, else
        from every index the scope has."""
        ...

    async def drop_scope(
        self, tenant_id: str, scope: ScopeKey, *, keep: Optional[str] = None
    ) -> None:
        """Remove every index of the scope except block `keep`'s."""
        ...

    async def delete_block(
        self, tenant_id: str, block_id: str, *, scope: Optional[ScopeKey] = None
    ) -> None:
        """Remove the block's index; `scope` (when known) saves looking through the tenant's."""
        ...

    async def delete_tenant(self, tenant_id: str) -> None: ...

    def vanished(self, error: BaseException) -> bool:
        """Whether `error` says an index's files went away under the operation that raised it
        (another replica dropping that index), rather than that the operation itself failed."""
        ...

    async def block_tables(self) -> list[BlockTable]:
        """Every block's index in the store (a listing of the store)."""
        ...

    async def drop_unused_table(self, name: str) -> bool:
        """Drop an index no block uses any more, unless a replica is maintaining it right now
        (then False: it is left for a later sweep)."""
        ...

    async def open_scopes(
        self, tenant_id: str, scopes: Sequence[ScopeKey | BlockRef]
    ) -> list[ScopeIndex]:
        """The scopes that have an index (others hold nothing to find), in the order given.

        A `BlockRef` names the block the scope holds now (services read it from SQL): only its
        index is searched, at least as new as the ref's `updated_at`. A bare `ScopeKey` (tools
        and tests without SQL) searches the index this process last knew for the scope."""
        ...

    async def vector_search(
        self,
        scope: ScopeIndex,
        vector: np.ndarray,
        *,
        limit: int,
        written_after: Optional[int] = None,
        written_before: Optional[int] = None,
    ) -> VectorHits: ...

    async def text_search(
        self,
        scope: ScopeIndex,
        text: str,
        *,
        limit: int,
        written_after: Optional[int] = None,
        written_before: Optional[int] = None,
    ) -> TextHits: ...

    async def maintain(self) -> None:
        """Run the pending background maintenance now."""
        ...

    async def cleanup(self, *, all_tables: bool = False) -> None: ...

    async def reindex(
        self,
        embed: Callable[[Sequence[str]], Awaitable[np.ndarray]],
        *,
        batch_rows: int,
        progress: Optional[Progress] = None,
        to_units: Optional[Callable[[Sequence[str]], list[Chunk]]] = None,
    ) -> int:
        """Re-embed every row not made by `model_id`, and with `to_units` rebuild every table
        of chunks as line units; returns how many rows were read."""
        ...

    async def close(self) -> None: ...
