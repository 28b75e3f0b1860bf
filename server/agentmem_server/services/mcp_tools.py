"""The memory tools an MCP host offers its model, executed on the same services as the REST routes.

    tools = McpTools(services)
    tools.specs()                                   # name, description, input schema of each
    result = await tools.call(tenant_id, "recall_archival_memory", {"query": "seat"})

Transport-agnostic (no `mcp` import): `api/mcp.py` serves these over streamable HTTP at `/mcp`,
and `agentmem mcp` relays the same tools over stdio. Arguments are checked against strict models
(unknown fields refused, the same value rules as the REST bodies); a refused argument or a write
the memory service refuses comes back as a `ToolFailure` whose `payload` the model can act on,
e.g. a stale core update carries the block's current content.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

from pydantic import Field, ValidationError

from agentmem.tools import MAX_RECALL_LIMIT
from agentmem.types import MemoryRecallRequest
from agentmem.types._base import RequestModel
from agentmem.types._constraints import MAX_LINE_NUMBER, Id, Text, UtcDatetime
from agentmem.types.state import (
    NAMESPACE_MAX_SEGMENTS,
    SEGMENT_PATTERN,
    STATE_KEY_MAX_LENGTH,
    STATE_LIST_MAX,
    TTL_MAX_S,
    StateEntry,
    StateKey,
    StateValue,
)

from ..errors import Conflict, NotFound, ServiceError
from .prompt import iso_utc

if TYPE_CHECKING:
    from .container import Services

MAX_READ_LINES = 200
"""The most archival lines `read_archival_memory` returns in one call."""
MAX_THREAD_MESSAGES = 200
"""The most messages `list_thread_messages` returns in one call (the latest ones)."""

# ---- arguments --------------------------------------------------------------------------------


class RecallArgs(RequestModel):
    query: Text = Field(min_length=1)
    """What to look for, in natural language (a question or a few keywords)."""
    agent_id: Optional[Id] = None
    """Also search this agent's own memory; omit it to search only the user's memory."""
    scope: Literal["user", "agent", "all"] = "all"
    """`all` (the user's memory plus the agent's, when agent_id is given), `user` or `agent`."""
    limit: int = Field(default=5, ge=1, le=MAX_RECALL_LIMIT)
    """How many matches to return at most."""
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    """Leave out matches scoring below this (scores are in [0, 1], higher is better)."""


class AppendArgs(RequestModel):
    text: Text = Field(min_length=1)
    """One or more self-contained lines to remember (each line is searchable on its own)."""
    agent_id: Optional[Id] = None
    """Write to this agent's own memory; omit it to write to the user's memory."""


class ReadArchivalArgs(RequestModel):
    start_line: int = Field(ge=1, le=MAX_LINE_NUMBER)
    """The first line to read (1-based), e.g. a recall match's line_number minus a few."""
    end_line: Optional[int] = Field(default=None, ge=1, le=MAX_LINE_NUMBER)
    """The last line to read (inclusive); at most 200 lines are read at once."""
    agent_id: Optional[Id] = None
    """Read this agent's archival memory; omit it to read the user's."""


class ReadCoreArgs(RequestModel):
    agent_id: Optional[Id] = None
    """Read this agent's core block; omit it to read the user's core block."""


class UpdateCoreArgs(RequestModel):
    content: Text
    """The new full text of the core block (it replaces the old text)."""
    expected_updated_at: Optional[UtcDatetime]
    """The block's `updated_at` as read_core_memory returned it, or null when there is no block."""
    agent_id: Optional[Id] = None
    """Update this agent's core block; omit it to update the user's core block."""


class ThreadMessagesArgs(RequestModel):
    thread_id: Id
    """The conversation thread whose messages to read."""
    limit: int = Field(default=50, ge=1, le=MAX_THREAD_MESSAGES)
    """How many of the latest messages to return at most."""


NamespaceArg = list[Annotated[str, Field(pattern=SEGMENT_PATTERN)]]
_NAMESPACE_DOC = (
    "The namespace: a list of segments. [] is the tenant's root; conventions: "
    '["agent", agent_id], ["session", session_id], ["workflow", workflow_id].'
)


class StateGetArgs(RequestModel):
    key: StateKey
    """The entry's key (1-255 characters)."""
    namespace: NamespaceArg = Field(
        default_factory=list, max_length=NAMESPACE_MAX_SEGMENTS, description=_NAMESPACE_DOC
    )


class StateSetArgs(RequestModel):
    key: StateKey
    """The entry's key (1-255 characters)."""
    value: StateValue
    """Any JSON value: an object, array, string, number, boolean or null."""
    namespace: NamespaceArg = Field(
        default_factory=list, max_length=NAMESPACE_MAX_SEGMENTS, description=_NAMESPACE_DOC
    )
    ttl_seconds: Optional[float] = Field(default=None, gt=0, le=TTL_MAX_S)
    """Delete the entry this many seconds from now; omit it to keep the entry."""
    expected_updated_at: Optional[UtcDatetime] = None
    """Guard the write: the updated_at you read (null: create only). Omit it: last write wins."""


class StateListArgs(RequestModel):
    namespace: NamespaceArg = Field(
        default_factory=list, max_length=NAMESPACE_MAX_SEGMENTS, description=_NAMESPACE_DOC
    )
    prefix: str = Field(default="", max_length=STATE_KEY_MAX_LENGTH)
    """Only keys starting with this."""
    limit: int = Field(default=100, ge=1, le=STATE_LIST_MAX)
    """How many keys to return at most."""
    cursor: Optional[str] = Field(default=None, max_length=2048)
    """next_cursor of the previous page."""


class StateDeleteArgs(RequestModel):
    key: StateKey
    """The entry's key."""
    namespace: NamespaceArg = Field(
        default_factory=list, max_length=NAMESPACE_MAX_SEGMENTS, description=_NAMESPACE_DOC
    )


# ---- the tools --------------------------------------------------------------------------------


class ToolFailure(Exception):
    """A call the model should see fail (bad arguments, a refused write), with what to do next."""

    def __init__(self, payload: dict[str, Any]):
        super().__init__(payload["error"]["message"])
        self.payload = payload


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    args: type[RequestModel]
    read_only: bool

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema of the arguments: `additionalProperties: false`, limits included."""
        schema = self.args.model_json_schema()
        schema.pop("title", None)
        schema.pop("description", None)
        return schema


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "recall_archival_memory",
        "Recall archival memory",
        "Search long-term archival memory for passages relevant to a query. Use it before "
        "answering anything that may depend on what you were told in earlier conversations. "
        "Returns the best matches first, each with its score in [0, 1], scope and line numbers.",
        RecallArgs,
        read_only=True,
    ),
    ToolSpec(
        "append_archival_memory",
        "Remember in archival memory",
        "Save facts to long-term archival memory so that recall_archival_memory finds them in "
        "later conversations. Write self-contained lines (who, what, when), one fact a line.",
        AppendArgs,
        read_only=False,
    ),
    ToolSpec(
        "read_archival_memory",
        "Read archival memory lines",
        "Read a range of lines of archival memory, e.g. around a match of "
        "recall_archival_memory (its line_number and end_line) to see what was said just "
        "before and after. At most 200 lines a call.",
        ReadArchivalArgs,
        read_only=True,
    ),
    ToolSpec(
        "read_core_memory",
        "Read core memory",
        "Read the core memory block: a short always-relevant profile (preferences, standing "
        "instructions). Returns its content and updated_at, or exists=false when there is none. "
        "Pass updated_at to update_core_memory.",
        ReadCoreArgs,
        read_only=True,
    ),
    ToolSpec(
        "update_core_memory",
        "Update core memory",
        "Replace the whole text of the core memory block. Read it first with read_core_memory "
        "and pass its updated_at (null when it does not exist yet). If it changed since you read "
        "it, nothing is written and the error carries current_content and current_updated_at: "
        "merge your change into current_content and call again with current_updated_at.",
        UpdateCoreArgs,
        read_only=False,
    ),
    ToolSpec(
        "list_thread_messages",
        "Read a conversation thread",
        "Read the latest visible messages (user turns and assistant answers) of a conversation "
        "thread, oldest first.",
        ThreadMessagesArgs,
        read_only=True,
    ),
    ToolSpec(
        "get_state",
        "Read a state value",
        "Read one exact value of keyed state (a setting, a cursor, a counter, a JSON profile) by "
        "namespace and key. Returns its value and updated_at, or exists=false.",
        StateGetArgs,
        read_only=True,
    ),
    ToolSpec(
        "set_state",
        "Write a state value",
        "Store an exact JSON value under a namespace and key, replacing what was there (last "
        "write wins). To change a value safely when others may write it too, pass the "
        "updated_at you read as expected_updated_at: a stale write is refused with the current "
        "entry. ttl_seconds makes the entry expire.",
        StateSetArgs,
        read_only=False,
    ),
    ToolSpec(
        "list_state",
        "List state keys",
        "List the keys of a keyed-state namespace in order (optionally those starting with a "
        "prefix), with their updated_at; page with next_cursor.",
        StateListArgs,
        read_only=True,
    ),
    ToolSpec(
        "delete_state",
        "Delete a state value",
        "Delete one keyed-state entry. Says whether there was one to delete.",
        StateDeleteArgs,
        read_only=False,
    ),
)


def _failure(error_type: str, message: str, **fields: Any) -> ToolFailure:
    error: dict[str, Any] = {"type": error_type, "message": message}
    error.update({k: v for k, v in fields.items() if v is not None})
    return ToolFailure({"error": error})


def _invalid(exc: ValidationError) -> ToolFailure:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    message = f"{field}: {first['msg']}" if field else first["msg"]
    if len(exc.errors()) > 1:
        message += f" (and {len(exc.errors()) - 1} more)"
    return _failure("invalid_arguments", message, field=field)


class McpTools:
    """The tools of one server; every call names its tenant (from the caller's key)."""

    def __init__(self, services: Services):
        self._services = services
        self._handlers: dict[str, Callable[[str, Any], Awaitable[dict[str, Any]]]] = {
            "recall_archival_memory": self._recall,
            "append_archival_memory": self._append,
            "read_archival_memory": self._read_archival,
            "read_core_memory": self._read_core,
            "update_core_memory": self._update_core,
            "list_thread_messages": self._thread_messages,
            "get_state": self._get_state,
            "set_state": self._set_state,
            "list_state": self._list_state,
            "delete_state": self._delete_state,
        }
        self._specs = {spec.name: spec for spec in TOOLS}

    @staticmethod
    def specs() -> tuple[ToolSpec, ...]:
        return TOOLS

    def has(self, name: str) -> bool:
        return name in self._specs

    async def call(self, tenant_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The tool's result as a JSON object; `ToolFailure` for a call that fails; `KeyError`
        for a tool that does not exist (a protocol error, not the model's to fix)."""
        spec = self._specs[name]
        try:
            args = spec.args.model_validate(arguments)
        except ValidationError as exc:
            raise _invalid(exc) from None
        try:
            return await self._handlers[name](tenant_id, args)
        except ServiceError as exc:
            raise _failure(exc.error_type, exc.message, field=exc.field, limit=exc.limit) from None

    async def _recall(self, tenant_id: str, args: RecallArgs) -> dict[str, Any]:
        if args.scope == "agent" and args.agent_id is None:
            raise _failure("invalid_arguments", "scope 'agent' needs agent_id", field="agent_id")
        found = await self._services.memory.recall(
            tenant_id,
            MemoryRecallRequest(
                query=args.query,
                agent_id=args.agent_id,
                scope=args.scope,
                limit=args.limit,
                min_score=args.min_score,
            ),
        )
        return {
            "matches": [
                {
                    "content": m.content,
                    "score": round(m.score, 4),
                    "scope": m.scope,
                    "agent_id": m.agent_id,
                    "line_number": m.line_number,
                    "end_line": m.end_line,
                    "updated_at": iso_utc(m.updated_at),
                }
                for m in found
            ]
        }

    async def _append(self, tenant_id: str, args: AppendArgs) -> dict[str, Any]:
        block = await self._services.memory.append(tenant_id, "archival", args.text, args.agent_id)
        return {
            "ok": True,
            "scope": block.scope,
            "start_line": block.start_line,
            "end_line": block.end_line,
        }

    async def _read_archival(self, tenant_id: str, args: ReadArchivalArgs) -> dict[str, Any]:
        last = args.end_line or args.start_line + MAX_READ_LINES - 1
        if last < args.start_line:
            raise _failure("invalid_arguments", "end_line must be >= start_line", field="end_line")
        if last - args.start_line + 1 > MAX_READ_LINES:
            raise _failure(
                "invalid_arguments",
                f"at most {MAX_READ_LINES} lines a call; ask for a smaller range",
                field="end_line",
                limit=MAX_READ_LINES,
            )
        block = await self._services.memory.get_block(
            tenant_id, "archival", args.agent_id, args.start_line, last
        )
        return {
            "content": block.content,
            "start_line": block.start_line,
            "end_line": block.end_line,
            "line_count": block.line_count,
        }

    async def _read_core(self, tenant_id: str, args: ReadCoreArgs) -> dict[str, Any]:
        scope = "agent" if args.agent_id else "user"
        try:
            block = await self._services.memory.get_block(tenant_id, "core", args.agent_id)
        except NotFound:
            return {"exists": False, "scope": scope, "content": None, "updated_at": None}
        return {
            "exists": True,
            "scope": scope,
            "content": block.content,
            "updated_at": iso_utc(block.updated_at),
        }

    async def _update_core(self, tenant_id: str, args: UpdateCoreArgs) -> dict[str, Any]:
        memory = self._services.memory
        expected: Optional[datetime] = args.expected_updated_at
        try:
            block = await memory.update_block(
                tenant_id, "core", args.content, expected, args.agent_id
            )
        except Conflict as exc:
            try:
                current = await memory.get_block(tenant_id, "core", args.agent_id)
            except NotFound:
                current = None
            failure = _failure(
                "conflict",
                exc.message + "; nothing was written: merge your change into current_content "
                "and call again with current_updated_at as expected_updated_at",
                field="expected_updated_at",
            )
            # Both always present: null means the block is gone (create it with null).
            failure.payload["error"]["current_content"] = current.content if current else None
            failure.payload["error"]["current_updated_at"] = (
                iso_utc(current.updated_at) if current else None
            )
            raise failure from None
        return {"ok": True, "updated_at": iso_utc(block.updated_at)}

    async def _thread_messages(self, tenant_id: str, args: ThreadMessagesArgs) -> dict[str, Any]:
        messages = await self._services.threads.messages(tenant_id, args.thread_id)
        latest = messages[-args.limit :]
        return {
            "thread_id": args.thread_id,
            "messages": [
                {
                    "role": m.role,
                    "content": m.content,
                    "created_at": iso_utc(m.created_at),
                    "run_id": m.run_id,
                }
                for m in latest
            ],
            "more_before": len(messages) > len(latest),
        }

    async def _get_state(self, tenant_id: str, args: StateGetArgs) -> dict[str, Any]:
        try:
            entry = await self._services.state.get(tenant_id, args.namespace, args.key)
        except NotFound:
            return {"exists": False, "namespace": args.namespace, "key": args.key}
        return {"exists": True, **_entry(entry)}

    async def _set_state(self, tenant_id: str, args: StateSetArgs) -> dict[str, Any]:
        guarded = "expected_updated_at" in args.model_fields_set
        try:
            entry = await self._services.state.set(
                tenant_id,
                args.namespace,
                args.key,
                args.value,
                ttl=args.ttl_seconds,
                guarded=guarded,
                expected_updated_at=args.expected_updated_at,
            )
        except Conflict as exc:
            failure = _failure("conflict", exc.message, field="expected_updated_at")
            failure.payload["error"]["current"] = exc.extra.get("current")
            raise failure from None
        return {"ok": True, **_entry(entry)}

    async def _list_state(self, tenant_id: str, args: StateListArgs) -> dict[str, Any]:
        page = await self._services.state.list(
            tenant_id, args.namespace, prefix=args.prefix, limit=args.limit, cursor=args.cursor
        )
        return {
            "namespace": args.namespace,
            "keys": [
                {
                    "key": item.key,
                    "updated_at": iso_utc(item.updated_at),
                    "expires_at": iso_utc(item.expires_at) if item.expires_at else None,
                }
                for item in page.items
            ],
            "next_cursor": page.next_cursor,
        }

    async def _delete_state(self, tenant_id: str, args: StateDeleteArgs) -> dict[str, Any]:
        deleted = await self._services.state.delete(tenant_id, args.namespace, args.key)
        return {"deleted": deleted}


def _entry(entry: StateEntry) -> dict[str, Any]:
    return {
        "namespace": list(entry.namespace),
        "key": entry.key,
        "value": entry.value,
        "updated_at": iso_utc(entry.updated_at),
        "expires_at": iso_utc(entry.expires_at) if entry.expires_at else None,
    }
