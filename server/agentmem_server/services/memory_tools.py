"""The memory tools of one run, executed by the server for the model.

    schemas = offered_tools(policy)                   # what the model is offered
    tools = MemoryTools(memory, tenant_id, agent_id, policy, state=state)
    tool_message = await tools.execute(tool_call)     # -> {"role": "tool", ...}
    tools.recalled                                    # every match the recall tool returned

The schemas the model is offered are `agentmem.tools` (the one definition, shared with clients).
A bad call (unknown or not offered tool, bad arguments, a write the memory service refuses)
comes back to the model as a tool error it can act on, never as an error of the run. The keyed
state tools (`remember`, `recall`, `forget`) work in the agent's namespace `("agent", id)`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Optional

from agentmem.tools import MAX_RECALL_KEYS, MAX_RECALL_LIMIT, MEMORY_TOOL_NAMES, memory_tools
from agentmem.types import MemoryBlock, MemoryPolicy, MemoryRecallRequest, MemoryRecallResult
from agentmem.types._constraints import check_text

from ..errors import Conflict, NotFound, ServiceError
from .prompt import iso_utc

if TYPE_CHECKING:
    from .memory import MemoryService
    from .state import StateService


def offered_names(policy: MemoryPolicy) -> list[str]:
    """The tools a run with this policy offers, in `agentmem.tools` order."""
    if policy.tools is not None:
        wanted = set(policy.tools)
        return [name for name in MEMORY_TOOL_NAMES if name in wanted]
    if policy.archival_mode == "auto":  # its matches are injected; the write tools stay
        return [name for name in MEMORY_TOOL_NAMES if name != "recall_archival_memory"]
    return list(MEMORY_TOOL_NAMES)


def offered_tools(policy: MemoryPolicy) -> list[dict[str, Any]]:
    """The tool schemas a run with this policy sends the model."""
    names = offered_names(policy)
    return memory_tools(names) if names else []


def _text(name: str, value: str) -> None:
    # Tool arguments come from the model: the same rules as the same fields over HTTP.
    try:
        check_text(value)
    except ValueError as exc:
        raise ValueError(f"{name} {exc}") from None


class MemoryTools:
    def __init__(
        self,
        memory: MemoryService,
        tenant_id: str,
        agent_id: str,
        policy: MemoryPolicy,
        *,
        state: Optional[StateService] = None,
    ):
        self._memory = memory
        self._tenant_id = tenant_id
        self._agent_id = agent_id
        self._policy = policy
        self._state = state
        self._offered = set(offered_names(policy))
        self.recalled: list[MemoryRecallResult] = []
        """Matches the recall tool returned during the run, each once, in the order found."""

    async def execute(self, call: dict[str, Any]) -> dict[str, Any]:
        """The tool message answering `call` (an OpenAI-style tool call)."""
        function = call.get("function") or {}
        name = function.get("name")
        result: dict[str, Any]
        try:
            args = json.loads(function.get("arguments") or "{}")
            if not isinstance(args, dict):
                raise ValueError("arguments must be a JSON object")
            if name not in self._offered:
                offered = ", ".join(sorted(self._offered)) or "none"
                result = {
                    "error": "unknown_tool",
                    "message": f"no tool named {name!r} in this run (offered: {offered})",
                }
            elif name == "recall_archival_memory":
                result = await self._recall(args)
            elif name == "append_archival_memory":
                result = await self._append(args)
            elif name == "update_core_memory":
                result = await self._update_core(args)
            elif name == "remember":
                result = await self._remember(args)
            elif name == "recall":
                result = await self._recall_state(args)
            else:
                result = await self._forget(args)
        except ValueError as exc:
            result = {"error": "invalid_arguments", "message": str(exc)}
        except ServiceError as exc:
            # The model made a bad request (too large, invalid); it gets the reason and may retry.
            result = {"error": exc.error_type, "message": exc.message}
        return {
            "role": "tool",
            "tool_call_id": call.get("id") or "",
            "content": json.dumps(result, ensure_ascii=False),
        }

    async def _recall(self, args: dict[str, Any]) -> dict[str, Any]:
        query = args.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty string")
        _text("query", query)
        limit = args.get("limit") or max(1, self._policy.archival_limit)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError("limit must be a positive integer")
        limit = min(limit, MAX_RECALL_LIMIT)
        found = await self._memory.recall(
            self._tenant_id,
            MemoryRecallRequest(
                query=query,
                agent_id=self._agent_id,
                scope="all",
                limit=limit,
                min_score=self._policy.archival_min_score,
            ),
        )
        seen = {(m.block_id, m.line_number, m.end_line) for m in self.recalled}
        self.recalled.extend(
            m for m in found if (m.block_id, m.line_number, m.end_line) not in seen
        )
        return {
            "matches": [
                {
                    "content": m.content,
                    "score": round(m.score, 4),
                    "scope": m.scope,
                    "line_number": m.line_number,
                    "end_line": m.end_line,
                    "updated_at": iso_utc(m.updated_at),
                }
                for m in found
            ]
        }

    async def _append(self, args: dict[str, Any]) -> dict[str, Any]:
        text = args.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text must be a non-empty string")
        _text("text", text)
        block = await self._memory.append(self._tenant_id, "archival", text, self._agent_id)
        return {"ok": True, "start_line": block.start_line, "end_line": block.end_line}

    async def _update_core(self, args: dict[str, Any]) -> dict[str, Any]:
        content = args.get("content")
        if not isinstance(content, str):
            raise ValueError("content must be a string")
        _text("content", content)
        if "expected_updated_at" not in args:
            raise ValueError("expected_updated_at is required (null to create the block)")
        raw = args["expected_updated_at"]
        expected: Optional[datetime] = None
        if raw is not None:
            if not isinstance(raw, str):
                raise ValueError("expected_updated_at must be an ISO 8601 string or null")
            expected = datetime.fromisoformat(raw)
            if expected.tzinfo is None:
                expected = expected.replace(tzinfo=UTC)
            try:
                expected = expected.astimezone(UTC)
            except OverflowError:
                raise ValueError(
                    "expected_updated_at is out of range in UTC (years 1-9999)"
                ) from None
        try:
            block = await self._memory.update_block(
                self._tenant_id, "core", content, expected, self._agent_id
            )
        except Conflict as exc:
            try:
                current: Optional[MemoryBlock] = await self._memory.get_block(
                    self._tenant_id, "core", self._agent_id
                )
            except NotFound:
                current = None
            return {
                "error": "conflict",
                "message": exc.message
                + "; merge your change into current_content and call again with current_updated_at",
                "current_content": current.content if current else None,
                "current_updated_at": iso_utc(current.updated_at) if current else None,
            }
        return {"ok": True, "updated_at": iso_utc(block.updated_at)}

    # ---- keyed state, in the agent's namespace (seed 001's remember / recall / forget) --------

    def _state_service(self) -> StateService:
        if self._state is None:
            raise ValueError("keyed state is not available on this server")
        return self._state

    @property
    def _namespace(self) -> tuple[str, str]:
        return ("agent", self._agent_id)

    @staticmethod
    def _key(args: dict[str, Any], *, required: bool = True) -> Optional[str]:
        key = args.get("key")
        if key is None and not required:
            return None
        if not isinstance(key, str) or not key:
            raise ValueError("key must be a non-empty string")
        return key

    async def _remember(self, args: dict[str, Any]) -> dict[str, Any]:
        key = self._key(args)
        assert key is not None
        if "value" not in args:
            raise ValueError("value is required (any JSON)")
        await self._state_service().set(self._tenant_id, self._namespace, key, args["value"])
        return {"ok": True, "key": key}

    async def _recall_state(self, args: dict[str, Any]) -> dict[str, Any]:
        state = self._state_service()
        key = self._key(args, required=False)
        if key is not None:
            try:
                entry = await state.get(self._tenant_id, self._namespace, key)
            except NotFound:
                return {"value": None, "found": False}
            return {"value": entry.value}
        prefix = args.get("prefix") or ""
        if not isinstance(prefix, str):
            raise ValueError("prefix must be a string")
        page = await state.list(
            self._tenant_id, self._namespace, prefix=prefix, limit=MAX_RECALL_KEYS
        )
        result: dict[str, Any] = {"keys": [item.key for item in page.items]}
        if page.next_cursor is not None:
            result["truncated"] = True
        return result

    async def _forget(self, args: dict[str, Any]) -> dict[str, Any]:
        key = self._key(args)
        assert key is not None
        deleted = await self._state_service().delete(self._tenant_id, self._namespace, key)
        return {"ok": True, "deleted": deleted}
