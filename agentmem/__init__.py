"""agentmem: memory for LLM agents.

Usage:
    from agentmem import Client
    with Client() as client:  # AGENTMEM_API_KEY, AGENTMEM_BASE_URL
        client.memory.append("archival", "Prefers window seats", agent_id="travel")
        hits = client.memory.recall("seat preference", agent_id="travel")
"""

from . import resources, types
from ._client import AsyncClient, Client
from ._exceptions import (
    AgentMemError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ArgumentError,
    ArgumentTypeError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GoneError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestInProgressError,
    RequestInterruptedError,
    UnprocessableEntityError,
)
from ._version import __version__
from .types import (
    Agent,
    MemoryBlock,
    MemoryPolicy,
    MemoryRecallResult,
    Message,
    Run,
    RunOptions,
    RunResult,
    StateEntry,
    StateList,
)

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "Agent",
    "AgentMemError",
    "ArgumentError",
    "ArgumentTypeError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "GoneError",
    "InternalServerError",
    "MemoryBlock",
    "MemoryPolicy",
    "MemoryRecallResult",
    "Message",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestInProgressError",
    "RequestInterruptedError",
    "Run",
    "RunOptions",
    "RunResult",
    "StateEntry",
    "StateList",
    "UnprocessableEntityError",
    "__version__",
    "resources",
    "types",
]
