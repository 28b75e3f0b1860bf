"""Runs: one user message to an agent's model, with its memory arranged by the MemoryPolicy;
run records; replay.

    result = await runs.run(tenant_id, "helper", RunRequest(message="When is the renewal?"))
    record = await runs.get(tenant_id, result.id)        # the exact model input, hidden parts too
    again = await runs.replay(tenant_id, result.id)      # the same input, sent again

A run assembles the model input (`prompt.py`), runs the provider loop (`run_loop.py`) with the
memory tools (`memory_tools.py`), and stores the turn. Nothing of a turn is stored until the
provider has given its final answer; then the thread, both visible messages and the run record
(`run_record.py`) are written in one transaction. Memory tools are the exception by nature: a
write the model made through `append_archival_memory` or `update_core_memory` takes effect when
the tool runs, as it would through the memory API.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Optional

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from agentmem.types import (
    MemoryBlock,
    MemoryPolicy,
    MemoryRecallRequest,
    MemoryRecallResult,
    Message,
    Run,
    RunRequest,
    RunResult,
)

from ..errors import InvalidInput, NotFound
from ..ids import RUN, THREAD, new_id
from ..providers.base import ChatProvider
from ..storage.base import from_micros, now_micros
from ..storage.sql import conversations as conversations_sql
from .agents import AgentService
from .memory_tools import MemoryTools, offered_tools
from .prompt import build_model_input, iso_utc, select_history, select_matches
from .run_loop import run_loop
from .run_record import RunRecord, RunStep
from .threads import ThreadService

if TYPE_CHECKING:
    from ..settings import Settings
    from ..storage.sql.store import SqlStore
    from .memory import MemoryService
    from .state import StateService

SAVE_ATTEMPTS = 3
"""Turns racing on one thread collide on the message sequence; the loser saves again."""


def _check_thread_agent(thread_id: str, owner: str, agent_id: str) -> None:
    """A run continues a thread of its own agent, or one no agent has yet (the run binds it)."""
    if owner not in ("", agent_id):
        raise InvalidInput(
            f"thread {thread_id!r} belongs to agent {owner!r}, not {agent_id!r}: run {owner!r} "
            "to continue it, or leave thread_id out to start a new thread",
            field="thread_id",
        )


class RunService:
    def __init__(
        self,
        *,
        settings: Settings,
        sql: SqlStore,
        memory: MemoryService,
        agents: AgentService,
        threads: ThreadService,
        provider: ChatProvider,
        state: Optional[StateService] = None,
    ):
        self._state = state
        self._sql = sql
        self._memory = memory
        self._agents = agents
        self._threads = threads
        self._provider = provider
        # An agent's own `model` wins; the server setting is the fallback.
        self._default_model = settings.llm_model

    # ---- runs -------------------------------------------------------------------------------

    async def run(self, tenant_id: str, agent_id: str, request: RunRequest) -> RunResult:
        agent = await self._agents.get(tenant_id, agent_id)
        started_us = now_micros()
        history: list[Message] = []
        if request.thread_id is None:
            thread_id, new_thread = new_id(THREAD), True
        else:
            thread, history = await self._threads.recent_history(
                tenant_id, request.thread_id, token_budget=request.options.history_token_budget
            )
            _check_thread_agent(thread.id, thread.agent_id, agent_id)
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
        tools = offered_tools(policy)
        model = agent.model or self._default_model
        toolbox = MemoryTools(self._memory, tenant_id, agent_id, policy, state=self._state)
        result = await run_loop(
            self._provider,
            model,
            model_input,
            tools,
            max_steps=request.options.max_steps,
            execute=toolbox.execute,
        )
        recalled = matches if policy.archival_mode == "auto" else toolbox.recalled

        run_id = new_id(RUN)
        record = RunRecord(
            id=run_id,
            agent_id=agent_id,
            thread_id=thread_id,
            created_at=iso_utc(from_micros(started_us)),
            provider=self._provider.name,
            model=model,
            options=request.options.model_dump(mode="json"),
            model_input=model_input,
            tools=tools,
            steps=result.steps,
            output=result.output,
            stop_reason=result.stop_reason,
            recalled=recalled,
            usage=result.usage,
            replay_of=None,
        ).to_json()
        finished_us = now_micros()

        def write(conn: Connection) -> bool:
            saved = conversations_sql.save_turn(
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
            if saved is None:
                return False
            self._threads.record_turn(
                conn,
                tenant_id,
                saved,
                new_thread=new_thread,
                run_id=run_id,
                user_message=request.message,
                output=result.output,
            )
            return True

        for attempt in range(SAVE_ATTEMPTS):
            try:
                saved = await self._sql.run_in_transaction(write)
                break
            except IntegrityError:
                # Another turn on the same thread took our message seq; the transaction rolled back.
                if attempt == SAVE_ATTEMPTS - 1:
                    raise
        if not saved:
            raise NotFound(
                f"agent {agent_id!r} or thread {thread_id!r} was deleted during the run "
                "(or the thread was bound to another agent)"
            )
        self._threads.committed(tenant_id)
        await self._threads.compact_if_over_budget(tenant_id, thread_id)
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

        user, agent = await asyncio.gather(
            get(policy.include_user_core, None), get(policy.include_agent_core, agent_id)
        )
        return user, agent

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

    # ---- records and replay -----------------------------------------------------------------

    async def _record(
        self, tenant_id: str, run_id: str
    ) -> tuple[conversations_sql.RunRow, RunRecord]:
        row = await self._sql.run_in_transaction(conversations_sql.get_run, tenant_id, run_id)
        if row is None:
            raise NotFound(f"no run {run_id!r}", field="run_id")
        return row, RunRecord.from_json(row.record)

    async def get(self, tenant_id: str, run_id: str) -> Run:
        row, record = await self._record(tenant_id, run_id)
        return record.to_run(created_at=from_micros(row.created_at), replay_of=row.replay_of)

    async def replay(self, tenant_id: str, run_id: str) -> RunResult:
        """Sends the stored first model input again, byte for byte; stores a new run, not a turn.

        One model call only: tool calls in the answer are recorded but not executed, so a replay
        never writes memory and never depends on memory having changed since.
        """
        row, original = await self._record(tenant_id, run_id)
        tool_choice = original.steps[0].tool_choice if original.steps else None
        started_us = now_micros()
        completion = await self._provider.complete(
            original.model, original.model_input, original.tools or None, tool_choice=tool_choice
        )
        output = completion.content or ""
        stop_reason = "tool_calls" if completion.tool_calls else "stop"
        # In auto mode the injected matches are part of the identical input, so they were shown
        # again.
        recalled = original.recalled if original.archival_mode == "auto" else []
        replay_id = new_id(RUN)
        record: dict[str, Any] = RunRecord(
            id=replay_id,
            agent_id=row.agent_id,
            thread_id=row.thread_id,
            created_at=iso_utc(from_micros(started_us)),
            provider=self._provider.name,
            model=original.model,
            options=original.options,
            model_input=original.model_input,
            tools=original.tools,
            steps=[RunStep.of([], tool_choice, completion)],
            output=output,
            stop_reason=stop_reason,
            recalled=recalled,
            usage=completion.usage,
            replay_of=row.id,
        ).to_json()
        await self._sql.run_in_transaction(
            conversations_sql.insert_run,
            tenant_id=tenant_id,
            agent_id=row.agent_id,
            thread_id=row.thread_id,
            run_id=replay_id,
            created_us=started_us,
            replay_of=row.id,
            record=record,
        )
        return RunResult(
            id=replay_id,
            agent_id=row.agent_id,
            thread_id=row.thread_id,
            output=output,
            recalled=recalled,
            usage=completion.usage,
            stop_reason=stop_reason,
            replay_of=row.id,
        )
