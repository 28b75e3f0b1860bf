"""The memory tools of one run, executed by the server for the model.

    tools = MemoryTools(memory, tenant_id, agent_id, policy)
    tool_message = await tools.execute(tool_call)     # -> {"role": "tool", ...}
    tools.recalled                                    # every match the recall tool returned

The schemas the model is offered are `agentmem.tools` (the one definition, shared with clients).
A bad call (unknown tool, bad arguments, a write the memory service refuses) comes back to the
model as a tool error it can act on, never as an error of the run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Optional

from agentmem.tools import MAX_RECALL_LIMIT
from agentmem.types import MemoryBlock, MemoryPolicy, MemoryRecallRequest, MemoryRecallResult
from agentmem.types._constraints import check_text

from ..errors import Conflict, NotFound, ServiceError
from .prompt import iso_utc

if TYPE_CHECKING:
    from .memory import MemoryService


def _text(name: str, value: str) -> None:
    # Tool arguments come from the model: the same rules as the same fields over HTTP.
    try:
        check_text(value)
    except ValueError as exc:
        raise ValueError(f"{name} {exc}") from None


class MemoryTools:
    def __init__(self, memory: MemoryService, tenant_id: str, agent_id: str, policy: MemoryPolicy):
        self._memory = memory
        self._tenant_id = tenant_id
        self._agent_id = agent_id
        self._policy = policy
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
            if name == "recall_archival_memory":
                result = await self._recall(args)
            elif name == "append_archival_memory":
                result = await self._append(args)
            elif name == "update_core_memory":
                result = await self._update_core(args)
            else:
                result = {"error": "unknown_tool", "message": f"no tool named {name!r}"}
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
