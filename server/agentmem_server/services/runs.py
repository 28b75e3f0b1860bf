"""Runs: assemble the model input under a MemoryPolicy, call the provider, execute memory tools,
store the turn; plus run records, replay and the visible transcript of threads.

Nothing of a turn is stored until the provider has given its final answer; then the thread, both
visible messages and the run record are written in one transaction. Memory tools are the
exception by nature: a write the model made through `append_archival_memory` or
`update_core_memory` takes effect when the tool runs, as it would through the memory API.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from sqlalchemy.exc import IntegrityError

from agentmem.tools import memory_tools
from agentmem.types import (
    MemoryBlock,
    MemoryPolicy,
    MemoryRecallRequest,
    MemoryRecallResult,
    Message,
    Run,
    RunRequest,
    RunResult,
    Usage,
)

from ..errors import Conflict, NotFound, ServiceError
from ..ids import RUN, THREAD, new_id
from ..providers.base import ChatCompletion, ChatProvider
from ..storage.base import from_micros, now_micros
from ..storage.sql import conversations as conversations_sql
from .agents import AgentService
from .prompt import build_model_input, iso_utc, select_history, select_matches

if TYPE_CHECKING:
    from ..settings import Settings
    from ..storage.sql.store import SqlStore
    from .memory import MemoryService

log = logging.getLogger("agentmem.runs")

MAX_TOOL_RECALL_LIMIT = 20
_SAVE_ATTEMPTS = 3


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
    )


def _step(
    added: list[dict[str, Any]], tool_choice: Optional[str], completion: ChatCompletion
) -> dict[str, Any]:
    return {
        "messages": added,
        "tool_choice": tool_choice,
        "response": completion.message,
        "finish_reason": completion.finish_reason,
        "usage": completion.usage.model_dump(),
    }


@dataclass
class _LoopResult:
    output: str
    steps: list[dict[str, Any]]
    usage: Usage
    stop_reason: str
    recalled: list[MemoryRecallResult] = field(default_factory=list)


class RunService:
    def __init__(
        self,
        *,
        settings: "Settings",
        sql: "SqlStore",
        memory: "MemoryService",
        agents: AgentService,
        provider: ChatProvider,
    ):
        self._sql = sql
        self._memory = memory
        self._agents = agents
        self._provider = provider
        # An agent's own `model` wins; the server setting is the fallback.
        self._default_model = settings.llm_model

    # ---- runs -------------------------------------------------------------------------------

    async def run(self, tenant_id: str, agent_id: str, request: RunRequest) -> RunResult:
        agent = await self._agents.get(tenant_id, agent_id)
        started_us = now_micros()
        if request.thread_id is None:
            thread_id, history, new_thread = new_id(THREAD), [], True
        else:
            history = await self._thread_messages(tenant_id, request.thread_id, agent_id=agent_id)
            thread_id, new_thread = request.thread_id, False

        policy = request.options.memory_policy
        (user_core, agent_core), matches = await asyncio.gather(
            self._core_blocks(tenant_id, agent_id, policy),
            self._auto_recall(tenant_id, agent_id, request.message, policy),
        )
        model_input = build_model_input(
            instructions=agent.instructions,
            core_blocks=[user_core, agent_core],
            history=select_history(history, request.options.history_token_budget),
            matches=matches,
            user_message=request.message,
        )
        tools = memory_tools() if policy.archival_mode == "tool_only" else []
        model = agent.model or self._default_model
        result = await self._loop(
            tenant_id, agent_id, model, model_input, tools, policy, request.options.max_steps
        )
        recalled = matches if policy.archival_mode == "auto" else result.recalled

        run_id = new_id(RUN)
        record = self._record(
            run_id=run_id,
            agent_id=agent_id,
            thread_id=thread_id,
            created_us=started_us,
            model=model,
            options=request.options.model_dump(mode="json"),
            model_input=model_input,
            tools=tools,
            result=result,
            recalled=recalled,
            replay_of=None,
        )
        finished_us = now_micros()

        def write(conn):
            return conversations_sql.save_turn(
                conn,
                tenant_id=tenant_id,
                agent_id=agent_id,
                thread_id=thread_id,
                new_thread=new_thread,
                run_id=run_id,
                user_message=request.message,
                output=result.output,
                started_us=started_us,
                finished_us=finished_us,
                record=record,
            )

        for attempt in range(_SAVE_ATTEMPTS):
            try:
                saved = await self._sql.run_in_transaction(write)
                break
            except IntegrityError:
                # Another turn on the same thread took our message seq; the transaction rolled back.
                if attempt == _SAVE_ATTEMPTS - 1:
                    raise
        if not saved:
            raise NotFound(f"agent {agent_id!r} or thread {thread_id!r} was deleted during the run")
        return RunResult(
            id=run_id,
            agent_id=agent_id,
            thread_id=thread_id,
            output=result.output,
            recalled=recalled,
            usage=result.usage,
            stop_reason=result.stop_reason,
        )

    async def _core_blocks(
        self, tenant_id: str, agent_id: str, policy: MemoryPolicy
    ) -> tuple[Optional[MemoryBlock], Optional[MemoryBlock]]:
        async def get(wanted: bool, owner: Optional[str]) -> Optional[MemoryBlock]:
            if not wanted:
                return None
            try:
                return await self._memory.get_block(tenant_id, "core", owner)
            except NotFound:
                return None

        return await asyncio.gather(
            get(policy.include_user_core, None), get(policy.include_agent_core, agent_id)
        )

    async def _auto_recall(
        self, tenant_id: str, agent_id: str, message: str, policy: MemoryPolicy
    ) -> list[MemoryRecallResult]:
        if (
            policy.archival_mode != "auto"
            or policy.archival_limit == 0
            or policy.archival_token_budget == 0
        ):
            return []
        found = await self._memory.recall(
            tenant_id,
            MemoryRecallRequest(
                query=message,
                agent_id=agent_id,
                scope="all",
                limit=policy.archival_limit,
                min_score=policy.archival_min_score,
            ),
        )
        return select_matches(
            found,
            limit=policy.archival_limit,
            min_score=policy.archival_min_score,
            token_budget=policy.archival_token_budget,
        )

    async def _loop(
        self,
        tenant_id: str,
        agent_id: str,
        model: str,
        model_input: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        policy: MemoryPolicy,
        max_steps: int,
    ) -> _LoopResult:
        messages = list(model_input)
        added: list[dict[str, Any]] = []
        steps: list[dict[str, Any]] = []
        usage = Usage()
        recalled: list[MemoryRecallResult] = []
        for step in range(1, max_steps + 1):
            last = step == max_steps
            # On the last allowed call the model must answer in text: tool calls could not be
            # followed by another call, and a run that ends on a tool call has no answer.
            tool_choice = "none" if tools and last else None
            completion = await self._provider.complete(
                model, messages, tools or None, tool_choice=tool_choice
            )
            usage = _add(usage, completion.usage)
            steps.append(_step(added, tool_choice, completion))
            if not completion.tool_calls:
                reason = "max_steps" if tool_choice == "none" else "stop"
                return _LoopResult(completion.content or "", steps, usage, reason, recalled)
            if last:
                # The provider ignored tool_choice="none"; its calls are recorded, not executed.
                log.warning("run hit max_steps=%d with tool calls pending", max_steps)
                return _LoopResult(completion.content or "", steps, usage, "max_steps", recalled)
            added = [completion.message]
            for call in completion.tool_calls:
                added.append(await self._execute_tool(tenant_id, agent_id, policy, call, recalled))
            messages = messages + added
        raise AssertionError("unreachable: the loop returns on its last step")

    # ---- memory tools -----------------------------------------------------------------------

    async def _execute_tool(
        self,
        tenant_id: str,
        agent_id: str,
        policy: MemoryPolicy,
        call: dict[str, Any],
        recalled: list[MemoryRecallResult],
    ) -> dict[str, Any]:
        function = call.get("function") or {}
        name = function.get("name")
        try:
            args = json.loads(function.get("arguments") or "{}")
            if not isinstance(args, dict):
                raise ValueError("arguments must be a JSON object")
            if name == "recall_archival_memory":
                result = await self._tool_recall(tenant_id, agent_id, policy, args, recalled)
            elif name == "append_archival_memory":
                result = await self._tool_append(tenant_id, agent_id, args)
            elif name == "update_core_memory":
                result = await self._tool_update_core(tenant_id, agent_id, args)
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

    async def _tool_recall(
        self,
        tenant_id: str,
        agent_id: str,
        policy: MemoryPolicy,
        args: dict[str, Any],
        recalled: list[MemoryRecallResult],
    ) -> dict[str, Any]:
        query = args.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty string")
        limit = args.get("limit") or max(1, policy.archival_limit)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError("limit must be a positive integer")
        limit = min(limit, MAX_TOOL_RECALL_LIMIT)
        found = await self._memory.recall(
            tenant_id,
            MemoryRecallRequest(
                query=query,
                agent_id=agent_id,
                scope="all",
                limit=limit,
                min_score=policy.archival_min_score,
            ),
        )
        seen = {(m.block_id, m.line_number, m.end_line) for m in recalled}
        recalled.extend(m for m in found if (m.block_id, m.line_number, m.end_line) not in seen)
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

    async def _tool_append(
        self, tenant_id: str, agent_id: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        text = args.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text must be a non-empty string")
        block = await self._memory.append(tenant_id, "archival", text, agent_id)
        return {"ok": True, "start_line": block.start_line, "end_line": block.end_line}

    async def _tool_update_core(
        self, tenant_id: str, agent_id: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        content = args.get("content")
        if not isinstance(content, str):
            raise ValueError("content must be a string")
        if "expected_updated_at" not in args:
            raise ValueError("expected_updated_at is required (null to create the block)")
        raw = args["expected_updated_at"]
        expected: Optional[datetime] = None
        if raw is not None:
            if not isinstance(raw, str):
                raise ValueError("expected_updated_at must be an ISO 8601 string or null")
            expected = datetime.fromisoformat(raw)
            if expected.tzinfo is None:
                expected = expected.replace(tzinfo=timezone.utc)
        try:
            block = await self._memory.update_block(tenant_id, "core", content, expected, agent_id)
        except Conflict as exc:
            try:
                current: Optional[MemoryBlock] = await self._memory.get_block(
                    tenant_id, "core", agent_id
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

    # ---- records, replay, transcript ---------------------------------------------------------

    def _record(
        self,
        *,
        run_id: str,
        agent_id: str,
        thread_id: str,
        created_us: int,
        model: str,
        options: dict[str, Any],
        model_input: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        result: _LoopResult,
        recalled: list[MemoryRecallResult],
        replay_of: Optional[str],
    ) -> dict[str, Any]:
        return {
            "id": run_id,
            "agent_id": agent_id,
            "thread_id": thread_id,
            "created_at": iso_utc(from_micros(created_us)),
            "provider": self._provider.name,
            "model": model,
            "options": options,
            "model_input": model_input,
            "tools": tools,
            "steps": result.steps,
            "output": result.output,
            "stop_reason": result.stop_reason,
            "recalled": [m.model_dump(mode="json") for m in recalled],
            "usage": result.usage.model_dump(),
            "replay_of": replay_of,
        }

    async def get(self, tenant_id: str, run_id: str) -> Run:
        row = await self._sql.run_in_transaction(conversations_sql.get_run, tenant_id, run_id)
        if row is None:
            raise NotFound(f"no run {run_id!r}", field="run_id")
        return Run.model_validate(
            {**row.record, "created_at": from_micros(row.created_at), "replay_of": row.replay_of}
        )

    async def replay(self, tenant_id: str, run_id: str) -> RunResult:
        """Sends the stored first model input again, byte for byte; stores a new run, not a turn.

        One model call only: tool calls in the answer are recorded but not executed, so a replay
        never writes memory and never depends on memory having changed since.
        """
        row = await self._sql.run_in_transaction(conversations_sql.get_run, tenant_id, run_id)
        if row is None:
            raise NotFound(f"no run {run_id!r}", field="run_id")
        original = row.record
        steps = original.get("steps") or [{}]
        tool_choice = steps[0].get("tool_choice")
        started_us = now_micros()
        completion = await self._provider.complete(
            original["model"],
            original["model_input"],
            original["tools"] or None,
            tool_choice=tool_choice,
        )
        result = _LoopResult(
            output=completion.content or "",
            steps=[_step([], tool_choice, completion)],
            usage=completion.usage,
            stop_reason="tool_calls" if completion.tool_calls else "stop",
        )
        # In auto mode the injected matches are part of the identical input, so they were shown again.
        auto = (original.get("options") or {}).get("memory_policy", {}).get(
            "archival_mode"
        ) == "auto"
        recalled = (
            [MemoryRecallResult.model_validate(m) for m in original.get("recalled", [])]
            if auto
            else []
        )
        replay_id = new_id(RUN)
        record = self._record(
            run_id=replay_id,
            agent_id=row.agent_id,
            thread_id=row.thread_id,
            created_us=started_us,
            model=original["model"],
            options=original["options"],
            model_input=original["model_input"],
            tools=original["tools"],
            result=result,
            recalled=recalled,
            replay_of=row.id,
        )
        await self._sql.run_in_transaction(
            lambda c: conversations_sql.insert_run(
                c,
                tenant_id=tenant_id,
                agent_id=row.agent_id,
                thread_id=row.thread_id,
                run_id=replay_id,
                created_us=started_us,
                replay_of=row.id,
                record=record,
            ),
        )
        return RunResult(
            id=replay_id,
            agent_id=row.agent_id,
            thread_id=row.thread_id,
            output=result.output,
            recalled=recalled,
            usage=result.usage,
            stop_reason=result.stop_reason,
            replay_of=row.id,
        )

    async def thread_messages(self, tenant_id: str, thread_id: str) -> list[Message]:
        """The visible transcript: user messages and final answers, never hidden model input."""
        return await self._thread_messages(tenant_id, thread_id)

    async def _thread_messages(
        self, tenant_id: str, thread_id: str, *, agent_id: Optional[str] = None
    ) -> list[Message]:
        def read(conn):
            thread = conversations_sql.get_thread(conn, tenant_id, thread_id)
            if thread is None or (agent_id is not None and thread.agent_id != agent_id):
                return None
            return conversations_sql.list_messages(conn, tenant_id, thread_id)

        found = await self._sql.run_in_transaction(read)
        if found is None:
            raise NotFound(
                f"no thread {thread_id!r}" + (f" for agent {agent_id!r}" if agent_id else ""),
                field="thread_id",
            )
        return found
