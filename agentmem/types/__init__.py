"""The wire contract: every request and response body, defined once and shared with the server."""

from .admin import ApiKey, ApiKeyCreated, Tenant, TenantCreateRequest
from .agents import Agent, AgentCreateRequest, ArchivalMode, MemoryPolicy, RunOptions
from .errors import ErrorBody, ErrorDetail
from .events import (
    EVENT_KINDS,
    BlockVersion,
    EventKind,
    EventPage,
    MemoryEvent,
    StateVersion,
)
from .memory import (
    AGENT_ID_PATTERN,
    BlockType,
    MemoryAppendRequest,
    MemoryBlock,
    MemoryRecallRequest,
    MemoryRecallResult,
    MemoryUpdateRequest,
    RecallMode,
    Scope,
    ScopeFilter,
)
from .runs import ChatMessage, Message, Run, RunRequest, RunResult, Usage
from .state import (
    StateClearResult,
    StateDeleteResult,
    StateEntry,
    StateList,
    StateListItem,
    StateSetRequest,
)
from .transfer import Health, ImportResult

__all__ = [
    "AGENT_ID_PATTERN",
    "Agent",
    "AgentCreateRequest",
    "ApiKey",
    "ApiKeyCreated",
    "ArchivalMode",
    "BlockType",
    "BlockVersion",
    "ChatMessage",
    "EVENT_KINDS",
    "ErrorBody",
    "ErrorDetail",
    "EventKind",
    "EventPage",
    "Health",
    "ImportResult",
    "MemoryAppendRequest",
    "MemoryBlock",
    "MemoryEvent",
    "MemoryPolicy",
    "MemoryRecallRequest",
    "MemoryRecallResult",
    "MemoryUpdateRequest",
    "Message",
    "RecallMode",
    "Run",
    "RunOptions",
    "RunRequest",
    "RunResult",
    "Scope",
    "ScopeFilter",
    "StateClearResult",
    "StateDeleteResult",
    "StateEntry",
    "StateList",
    "StateListItem",
    "StateSetRequest",
    "StateVersion",
    "Tenant",
    "TenantCreateRequest",
    "Usage",
]
