"""Keyed state routes (DESIGN §10): parse, authenticate, call StateService.

A namespace travels as `?namespace=session/u1` (segments joined by `/`; absent or empty is the
tenant's root); a key is the rest of the path, percent-encoded, so it may hold `/`.
"""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Path, Query

from agentmem.types.events import StateVersion
from agentmem.types.state import (
    SEGMENT_MAX_LENGTH,
    SEGMENT_PATTERN,
    STATE_KEY_MAX_LENGTH,
    STATE_LIST_MAX,
    StateClearResult,
    StateDeleteResult,
    StateEntry,
    StateList,
    StateSetRequest,
)

from ...services.state import parse_namespace
from ..deps import ServicesDep, TenantDep
from ..errors import error_responses
from ..params import IdempotencyKey

router = APIRouter(
    prefix="/v1/state", tags=["state"], responses=error_responses(401, 422, 429, 500)
)

NamespaceQuery = Annotated[
    str,
    Query(
        max_length=8 * (SEGMENT_MAX_LENGTH + 1),
        description="The namespace: segments joined by `/` (`session/u1`, `agent/travel`); "
        "empty for the tenant's root. At most 8 segments of 1-128 letters, digits, `_.:@-`.",
        examples=["session/u1"],
    ),
]
KeyPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=STATE_KEY_MAX_LENGTH,
        description="The key (1-255 characters, no control characters), percent-encoded.",
        examples=["last_rebalance"],
    ),
]


def _level(name: str) -> object:
    return Query(
        min_length=1,
        max_length=SEGMENT_MAX_LENGTH,
        pattern=SEGMENT_PATTERN,
        description=f"Search the `{name}` namespace of this id.",
    )


@router.get("/entries")
async def list_keys(
    services: ServicesDep,
    tenant_id: TenantDep,
    namespace: NamespaceQuery = "",
    prefix: Annotated[
        str, Query(max_length=STATE_KEY_MAX_LENGTH, description="Only keys starting with this.")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=STATE_LIST_MAX, description="Keys per page.")] = 100,
    cursor: Annotated[
        Optional[str], Query(max_length=400, description="`next_cursor` of the previous page.")
    ] = None,
) -> StateList:
    """Keys of a namespace in lexicographic order, with their `updated_at`, a page at a time."""
    return await services.state.list(
        tenant_id, parse_namespace(namespace), prefix=prefix, limit=limit, cursor=cursor
    )


@router.delete("/entries", responses=error_responses(409), dependencies=[IdempotencyKey])
async def clear(
    services: ServicesDep, tenant_id: TenantDep, namespace: NamespaceQuery = ""
) -> StateClearResult:
    """Delete every entry of the namespace (ends a session or a workflow); namespaces below it
    are kept."""
    deleted = await services.state.clear(tenant_id, parse_namespace(namespace))
    return StateClearResult(deleted=deleted)


@router.get("/entries/{key:path}", responses=error_responses(404))
async def get_entry(
    key: KeyPath, services: ServicesDep, tenant_id: TenantDep, namespace: NamespaceQuery = ""
) -> StateEntry:
    """One entry; 404 when it is absent or expired."""
    return await services.state.get(tenant_id, parse_namespace(namespace), key)


@router.put(
    "/entries/{key:path}", responses=error_responses(400, 409, 413), dependencies=[IdempotencyKey]
)
async def set_entry(
    key: KeyPath,
    body: StateSetRequest,
    services: ServicesDep,
    tenant_id: TenantDep,
    namespace: NamespaceQuery = "",
) -> StateEntry:
    """Store a value. Without `expected_updated_at` the last write wins; with it the write is
    guarded (`null`: create only), and a stale one is 409 carrying the current entry."""
    return await services.state.set(
        tenant_id,
        parse_namespace(namespace),
        key,
        body.value,
        ttl=body.ttl,
        guarded="expected_updated_at" in body.model_fields_set,
        expected_updated_at=body.expected_updated_at,
    )


@router.delete("/entries/{key:path}", responses=error_responses(409), dependencies=[IdempotencyKey])
async def delete_entry(
    key: KeyPath, services: ServicesDep, tenant_id: TenantDep, namespace: NamespaceQuery = ""
) -> StateDeleteResult:
    """Delete one entry; deleting a missing one is fine (`deleted` says which it was)."""
    deleted = await services.state.delete(tenant_id, parse_namespace(namespace), key)
    return StateDeleteResult(deleted=deleted)


@router.get("/history/{key:path}", responses=error_responses(404))
async def history(
    key: KeyPath,
    services: ServicesDep,
    tenant_id: TenantDep,
    namespace: NamespaceQuery = "",
    limit: Annotated[int, Query(ge=1, le=1000, description="Versions at most.")] = 20,
) -> list[StateVersion]:
    """Earlier versions of the entry from the change feed, newest first (with the clears of
    its namespace). Revert: a guarded `set` of an old value with the newest `updated_at`."""
    return await services.state.history(tenant_id, parse_namespace(namespace), key, limit=limit)


@router.get("/lookup/{key:path}", responses=error_responses(404))
async def lookup(
    key: KeyPath,
    services: ServicesDep,
    tenant_id: TenantDep,
    workflow_id: Annotated[Optional[str], _level("workflow")] = None,
    session_id: Annotated[Optional[str], _level("session")] = None,
    agent_id: Annotated[Optional[str], _level("agent")] = None,
) -> StateEntry:
    """The first entry for `key` along workflow -> session -> agent -> tenant, among the levels
    whose id is given; its `namespace` says where it was found. One SQL statement."""
    return await services.state.lookup(
        tenant_id, key, workflow_id=workflow_id, session_id=session_id, agent_id=agent_id
    )
