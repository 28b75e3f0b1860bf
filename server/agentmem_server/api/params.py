"""Path and query parameters the routes share, with the same rules as the wire models' fields
(agentmem/types/_constraints.py), so a bad one is a 422 naming it, and the OpenAPI says so."""

from __future__ import annotations

from typing import Annotated, Any, Optional

from fastapi import Depends, Header, Path, Query

from agentmem.types import BlockType
from agentmem.types._constraints import ID_CHARS, ID_MAX_LENGTH, MAX_LINE_NUMBER


def _id(description: str, example: str) -> Any:
    return Path(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=ID_CHARS,
        description=description,
        examples=[example],
    )


AgentIdPath = Annotated[
    str, _id("The agent's id (1-128 letters, digits, `_`, `-` or `.`).", "travel")
]
RunIdPath = Annotated[
    str, _id("A run's id, as `RunResult.id` gives it.", "run_5efd7fdb1849d007b9d6975d")
]
ThreadIdPath = Annotated[
    str, _id("A thread's id, as `RunResult.thread_id` gives it.", "thr_af20e0d23a68a2fd2a4c15e4")
]
TenantNamePath = Annotated[
    str, _id("The tenant's name (1-128 letters, digits, `_`, `-` or `.`).", "acme")
]
KeyIdPath = Annotated[
    str, _id("The key's id (`key_...`), as `ApiKey.id` gives it.", "key_1d1f24c245856577")
]

BlockTypePath = Annotated[
    BlockType,
    Path(
        description="`core` (small, in every prompt) or `archival` (large, recalled by search).",
        examples=["core"],
    ),
]

AgentIdQuery = Annotated[
    Optional[str],
    Query(
        min_length=1,
        max_length=ID_MAX_LENGTH,
        pattern=ID_CHARS,
        examples=["travel"],
        description="Selects the agent scope when given: that agent's private memory.",
    ),
]
LineQuery = Annotated[
    Optional[int],
    Query(
        ge=1,
        le=MAX_LINE_NUMBER,
        description="A 1-based line number of an archival block (inclusive).",
        examples=[1],
    ),
]


async def _idempotency_key(
    idempotency_key: Annotated[
        Optional[str],
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e][\x20-\x7e]*$",
            examples=["3f1c2b9e-8d7a-4c1e-9f4b-2a6d0e5c7b18"],
            description="Makes a retry safe: a repeat with the same key (in this tenant, within "
            "`AGENTMEM_IDEMPOTENCY_RETENTION_S`) gets the first answer, marked "
            "`Idempotent-Replayed: true`, instead of acting again; 422 if the key came with "
            "another request, 409 "
            "`in_progress` while the first still runs. 1-255 printable ASCII characters.",
        ),
    ] = None,
) -> None:
    """Declares the header in the OpenAPI document; api/idempotency.py acts on it."""


IdempotencyKey = Depends(_idempotency_key)
