"""A scripted OpenAI-compatible endpoint and an in-memory MemoryService for run tests."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import httpx

from agentmem.types import MemoryBlock, MemoryRecallRequest, MemoryRecallResult
from agentmem_server.services.errors import Conflict, NotFound

LLM_URL = "http://llm.test/v1"
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str = "call_1") -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


class ScriptedLLM:
    """Answers `/chat/completions` from a queue of replies and records every request it got.

    Use as a respx side effect: `router.post("/chat/completions").mock(side_effect=llm)`.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._replies: deque[httpx.Response] = deque()

    def reply(
        self,
        content: Optional[str] = "ok",
        tool_calls: Optional[list[dict[str, Any]]] = None,
        *,
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
    ) -> "ScriptedLLM":
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        body = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "test-model",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        self._replies.append(httpx.Response(200, json=body))
        return self

    def fail(self, status: int, message: str) -> "ScriptedLLM":
        self._replies.append(httpx.Response(status, json={"error": {"message": message, "type": "server_error"}}))
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self._replies:
            self.reply("ok")
        return self._replies.popleft()

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    def messages(self, call: int = 0) -> list[dict[str, Any]]:
        return self.bodies[call]["messages"]


def block(content: str, *, scope: str = "user", agent_id: Optional[str] = None, updated_at: datetime = T0) -> MemoryBlock:
    return MemoryBlock(
        id=f"blk_{scope}_{agent_id or ''}",
        block_type="core",
        content=content,
        scope=scope,  # type: ignore[arg-type]
        agent_id=agent_id,
        created_at=T0,
        updated_at=updated_at,
        line_count=content.count("\n") + 1,
    )


def match(content: str, score: float, *, scope: str = "agent", agent_id: Optional[str] = "helper", line: int = 1) -> MemoryRecallResult:
    return MemoryRecallResult(
        content=content,
        score=score,
        scope=scope,  # type: ignore[arg-type]
        agent_id=agent_id if scope == "agent" else None,
        line_number=line,
        end_line=line + content.count("\n"),
        updated_at=T0,
        block_id=f"blk_arch_{scope}",
    )


@dataclass
class FakeMemory:
    """The MemoryService surface RunService and AgentService use, with controllable recall."""

    core: dict[tuple[str, str], MemoryBlock] = field(default_factory=dict)
    archival: list[MemoryRecallResult] = field(default_factory=list)
    recall_requests: list[MemoryRecallRequest] = field(default_factory=list)
    appended: list[tuple[str, Optional[str], str]] = field(default_factory=list)
    deleted_agents: list[tuple[str, str]] = field(default_factory=list)

    async def get_block(self, tenant_id, block_type, agent_id, start_line=None, end_line=None) -> MemoryBlock:
        found = self.core.get((tenant_id, agent_id or "")) if block_type == "core" else None
        if found is None:
            raise NotFound("no block")
        return found

    async def recall(self, tenant_id, request: MemoryRecallRequest) -> list[MemoryRecallResult]:
        # Like the real index: best first, pre-filtered by min_score, at most `limit`.
        self.recall_requests.append(request)
        hits = sorted((m for m in self.archival if m.score >= request.min_score), key=lambda m: -m.score)
        return hits[: request.limit]

    async def append(self, tenant_id, block_type, text, agent_id) -> MemoryBlock:
        self.appended.append((tenant_id, agent_id, text))
        b = block(text, scope="agent" if agent_id else "user", agent_id=agent_id)
        return b.model_copy(update={"block_type": block_type, "start_line": 1, "end_line": 1})

    async def update_block(self, tenant_id, block_type, content, expected_updated_at, agent_id) -> MemoryBlock:
        key = (tenant_id, agent_id or "")
        current = self.core.get(key)
        if (current is None) != (expected_updated_at is None) or (
            current is not None and current.updated_at != expected_updated_at
        ):
            at = current.updated_at.isoformat() if current else None
            raise Conflict("block changed", field="expected_updated_at", current_updated_at=at)
        stamp = (current.updated_at if current else T0) + timedelta(seconds=1)
        new = block(content, scope="agent" if agent_id else "user", agent_id=agent_id, updated_at=stamp)
        self.core[key] = new
        return new

    async def delete_agent_memory(self, tenant_id, agent_id) -> None:
        self.deleted_agents.append((tenant_id, agent_id))
        self.core.pop((tenant_id, agent_id), None)
