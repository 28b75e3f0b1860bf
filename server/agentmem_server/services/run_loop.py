"""The provider loop of a run: call the model, execute the tools it asks for, until it answers.

    result = await run_loop(provider, model, model_input, tools, max_steps=4, execute=tools.execute)

Bounded by `max_steps` model calls; on the last one tools are withheld (`tool_choice="none"`), so
a run always ends on an answer. Nothing is stored here: the caller stores the turn once the loop
has returned, and a provider failure (`UpstreamError`) leaves nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Optional

from agentmem.types import Usage

from ..providers.base import ChatProvider
from .run_record import RunStep

log = logging.getLogger("agentmem.runs")

ToolExecutor = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""`await execute(tool_call)` -> the tool message answering it."""


@dataclass
class LoopResult:
    output: str
    steps: list[RunStep]
    usage: Usage
    stop_reason: str
    """`stop` (the model answered) or `max_steps` (the last allowed call)."""


def add_usage(a: Usage, b: Usage) -> Usage:
    return Usage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
    )


async def run_loop(
    provider: ChatProvider,
    model: str,
    model_input: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    *,
    max_steps: int,
    execute: ToolExecutor,
) -> LoopResult:
    messages = list(model_input)
    added: list[dict[str, Any]] = []
    steps: list[RunStep] = []
    usage = Usage()
    for step in range(1, max_steps + 1):
        last = step == max_steps
        # On the last allowed call the model must answer in text: tool calls could not be
        # followed by another call, and a run that ends on a tool call has no answer.
        tool_choice: Optional[str] = "none" if tools and last else None
        completion = await provider.complete(
            model, messages, tools or None, tool_choice=tool_choice
        )
        usage = add_usage(usage, completion.usage)
        steps.append(RunStep.of(added, tool_choice, completion))
        if not completion.tool_calls:
            reason = "max_steps" if tool_choice == "none" else "stop"
            return LoopResult(completion.content or "", steps, usage, reason)
        if last:
            # The provider ignored tool_choice="none"; its calls are recorded, not executed.
            log.warning("run hit max_steps=%d with tool calls pending", max_steps)
            return LoopResult(completion.content or "", steps, usage, "max_steps")
        added = [completion.message]
        for call in completion.tool_calls:
            added.append(await execute(call))
        messages = messages + added
    raise AssertionError("unreachable: the loop returns on its last step")
