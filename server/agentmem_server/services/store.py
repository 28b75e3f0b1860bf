"""The document store: keyed state as LangGraph's `BaseStore` uses it (`/v1/store/*`).

    store = StoreService(sql, state, archival)
    await store.put(tenant_id, StorePutRequest(namespace=[...], key=..., value={...},
                                               index_texts=["..."], ttl=60))
    await store.search(tenant_id, StoreSearchRequest(namespace_prefix=[...], query="..."))

Items are keyed-state entries, written and deleted through `StateService` (so quotas, size
limits and whatever else a state write does apply). Beside each entry written here, the store
keeps its TTL (a read may restart it) and the vectors of its index texts, embedded by the
archival embedder (the same model as recall, through the same batcher). Semantic search reads
the vectors of the live entries under the prefix from SQL and ranks them exactly (cosine, the
best of an item's texts), so every replica answers alike and nothing is held in memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from agentmem.types.state import decode_namespace, encode_namespace
from agentmem.types.store import (
    STORE_NAMESPACES_MAX,
    StoreItem,
    StoreKeyRequest,
    StoreNamespaces,
    StoreNamespacesRequest,
    StorePutRequest,
    StoreSearchRequest,
)

from ..errors import InvalidInput, NotFound
from ..storage.base import from_micros
from ..storage.sql import store_index as store_sql
from ..storage.sql.store_index import EntryRow

if TYPE_CHECKING:
    from ..storage.sql.store import SqlStore
    from .archival import ArchivalIndex
    from .state import StateService

FETCH_BATCH = 200
"""Entries read per statement while walking a ranking that a filter thins out."""
_OPERATORS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"}


class StoreService:
    def __init__(self, sql: SqlStore, state: StateService, archival: ArchivalIndex):
        self._sql = sql
        self._state = state
        self._archival = archival

    @property
    def clock(self) -> int:
        return self._state.clock()

    # ---- writes -----------------------------------------------------------------------------

    async def put(self, tenant_id: str, request: StorePutRequest) -> StoreItem:
        texts = [t for t in request.index_texts or [] if t.strip()]
        vectors: Optional[bytes] = None
        if texts:
            # Embedded before anything is written: a refused or failed embedding changes nothing.
            embedded = await self._archival.batcher.embed(texts)
            vectors = np.ascontiguousarray(embedded, dtype=np.float32).tobytes()
        entry = await self._state.set(
            tenant_id, request.namespace, request.key, request.value, ttl=request.ttl
        )
        await self._sql.run_in_transaction(
            store_sql.put_index,
            tenant_id,
            encode_namespace(request.namespace),
            request.key,
            ttl_us=round(request.ttl * 1_000_000) if request.ttl is not None else None,
            model_id=self._archival.model_id if vectors is not None else None,
            vectors=vectors,
        )
        return StoreItem(
            namespace=entry.namespace,
            key=entry.key,
            value=_object(entry.value),
            created_at=entry.created_at,
            updated_at=entry.updated_at,
            expires_at=entry.expires_at,
        )

    async def delete(self, tenant_id: str, request: StoreKeyRequest) -> bool:
        deleted = await self._state.delete(tenant_id, request.namespace, request.key)
        await self._sql.run_in_transaction(
            store_sql.drop_index, tenant_id, encode_namespace(request.namespace), request.key
        )
        return deleted

    # ---- reads ------------------------------------------------------------------------------

    async def get(self, tenant_id: str, request: StoreKeyRequest) -> StoreItem:
        ns = encode_namespace(request.namespace)
        now = self.clock
        found = await self._sql.run_autocommit(
            store_sql.entries_by_key, tenant_id, [(ns, request.key)], now
        )
        row = found.get((ns, request.key))
        if row is None:
            raise NotFound(f"no item {request.key!r} in namespace {ns!r}", field="key")
        items = await self._items(tenant_id, [(row, None)], request.refresh_ttl, now)
        return items[0]

    async def search(self, tenant_id: str, request: StoreSearchRequest) -> list[StoreItem]:
        if request.filter is not None:
            _check_filter(request.filter)
        prefix = encode_namespace(request.namespace_prefix)
        now = self.clock
        if request.query:
            ranked = await self._ranked(tenant_id, request, prefix, now)
            return await self._items(tenant_id, ranked, request.refresh_ttl, now)
        if request.filter is None:
            rows = await self._sql.run_autocommit(
                store_sql.entries_under,
                tenant_id,
                prefix,
                now,
                limit=request.limit,
                offset=request.offset,
            )
        else:
            every = await self._sql.run_autocommit(store_sql.entries_under, tenant_id, prefix, now)
            matching = [r for r in every if _matches(_object(r.value), request.filter)]
            rows = matching[request.offset : request.offset + request.limit]
        return await self._items(tenant_id, [(r, None) for r in rows], request.refresh_ttl, now)

    async def _ranked(
        self, tenant_id: str, request: StoreSearchRequest, prefix: str, now: int
    ) -> list[tuple[EntryRow, Optional[float]]]:
        """Indexed entries best first with their score, then, if that leaves room, the others."""
        assert request.query is not None
        stored = await self._sql.run_autocommit(
            store_sql.vectors_under, tenant_id, prefix, now, self._archival.model_id
        )
        wanted = request.offset + request.limit
        ranked: list[EntryRow] = []
        scores: dict[tuple[str, str], float] = {}
        if stored:
            query = (await self._archival.batcher.embed([request.query], urgent=True))[0]
            order, best = _rank(stored, np.asarray(query, dtype=np.float32))
            position = 0
            kept = 0
            # Read a few more than wanted (a filter thins them out), more each round if needed.
            step = min(max(2 * wanted, 20), FETCH_BATCH)
            while position < len(order) and kept < wanted:
                batch = [
                    (stored[i].namespace, stored[i].key) for i in order[position : position + step]
                ]
                position += step
                step = FETCH_BATCH
                rows = await self._sql.run_autocommit(
                    store_sql.entries_by_key, tenant_id, batch, now
                )
                for pair in batch:
                    row = rows.get(pair)
                    if row is None or not _matches(_object(row.value), request.filter):
                        continue
                    if kept >= request.offset:
                        ranked.append(row)
                    kept += 1
                    if kept >= wanted:
                        break
            scores = {
                (stored[i].namespace, stored[i].key): float(best[i]) for i in range(len(stored))
            }
        if len(ranked) < request.limit:
            # LangGraph's stores fill a short ranking with the matching items that have no vector.
            indexed = {(s.namespace, s.key) for s in stored}
            every = await self._sql.run_autocommit(store_sql.entries_under, tenant_id, prefix, now)
            for row in every:
                if len(ranked) >= request.limit:
                    break
                if (row.namespace, row.key) in indexed:
                    continue
                if _matches(_object(row.value), request.filter):
                    ranked.append(row)
        return [(row, scores.get((row.namespace, row.key))) for row in ranked]

    async def namespaces(self, tenant_id: str, request: StoreNamespacesRequest) -> StoreNamespaces:
        root = encode_namespace(request.root)
        found = await self._sql.run_autocommit(
            store_sql.namespaces_under, tenant_id, root, self.clock
        )
        depth = len(request.root)
        seen: set[tuple[str, ...]] = set()
        listed: list[list[str]] = []
        truncated = False
        for text in found:
            ns = decode_namespace(text)[depth:]
            if not ns or not _fits(ns, request.prefix, request.suffix):
                continue
            cut = ns[: request.max_depth] if request.max_depth is not None else ns
            if cut in seen:
                continue
            if len(listed) >= STORE_NAMESPACES_MAX:
                truncated = True
                break
            seen.add(cut)
            listed.append(list(cut))
        return StoreNamespaces(namespaces=sorted(listed), truncated=truncated)

    async def _items(
        self,
        tenant_id: str,
        rows: Sequence[tuple[EntryRow, Optional[float]]],
        refresh: bool,
        now: int,
    ) -> list[StoreItem]:
        expiries: dict[tuple[str, str], int] = {}
        if refresh and rows:
            expiries = await self._sql.run_in_transaction(
                store_sql.refresh_ttls, tenant_id, [(r.namespace, r.key) for r, _ in rows], now
            )
        items = []
        for r, score in rows:
            expires_at = expiries.get((r.namespace, r.key), r.expires_at)
            items.append(
                StoreItem(
                    namespace=list(decode_namespace(r.namespace)),
                    key=r.key,
                    value=_object(r.value),
                    created_at=from_micros(r.created_at),
                    updated_at=from_micros(r.updated_at),
                    expires_at=from_micros(expires_at) if expires_at is not None else None,
                    score=score,
                )
            )
        return items


def _rank(stored: Sequence[store_sql.VectorRow], query: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Item positions best first, and each item's score: the best cosine of its vectors."""
    dim = query.shape[0]
    # One buffer, one matrix: a frombuffer per item costs more than the product itself.
    matrix = np.frombuffer(b"".join(s.vectors for s in stored), dtype=np.float32)
    counts = np.fromiter((len(s.vectors) // (4 * dim) for s in stored), np.int64, len(stored))
    scores = matrix.reshape(-1, dim) @ query
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    best = np.maximum.reduceat(scores, starts)
    order = np.argsort(-best, kind="stable")
    return order.tolist(), best


def _object(value: Any) -> dict[str, Any]:
    # A state entry written by client.state may hold any JSON; an item's value is an object.
    return value if isinstance(value, dict) else {"value": value}


def _fits(ns: tuple[str, ...], prefix: Sequence[str], suffix: Sequence[str]) -> bool:
    if len(ns) < len(prefix) or len(ns) < len(suffix):
        return False
    if any(p != "*" and p != n for p, n in zip(prefix, ns, strict=False)):
        return False
    return not any(
        s != "*" and s != n for s, n in zip(reversed(suffix), reversed(ns), strict=False)
    )


def _check_filter(spec: dict[str, Any], path: str = "filter") -> None:
    for key, value in spec.items():
        if isinstance(value, dict) and any(k.startswith("$") for k in value):
            unknown = sorted(k for k in value if k not in _OPERATORS)
            if unknown:
                raise InvalidInput(
                    f"{path}.{key}: unknown operator {unknown[0]!r}; use one of "
                    + ", ".join(sorted(_OPERATORS)),
                    field=f"{path}.{key}",
                )
        elif isinstance(value, dict):
            _check_filter(value, f"{path}.{key}")


def _matches(value: dict[str, Any], spec: Optional[dict[str, Any]]) -> bool:
    """LangGraph's filter semantics: every field matches (nested objects compared field by field,
    lists element by element), or satisfies every operator given for it."""
    if not spec:
        return True
    return all(_compare(value.get(k), expected) for k, expected in spec.items())


def _compare(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        if any(k.startswith("$") for k in expected):
            return all(_operator(actual, op, operand) for op, operand in expected.items())
        return isinstance(actual, dict) and all(
            _compare(actual.get(k), v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_compare(a, e) for a, e in zip(actual, expected, strict=False))
        )
    return bool(actual == expected)


def _operator(actual: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return bool(actual == operand)
    if op == "$ne":
        return bool(actual != operand)
    a, b = _number(actual), _number(operand)
    if a is None or b is None:
        return False  # a missing or non-numeric field is not greater or less than anything
    if op == "$gt":
        return a > b
    if op == "$gte":
        return a >= b
    if op == "$lt":
        return a < b
    return a <= b  # $lte (_check_filter refused anything else)


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
