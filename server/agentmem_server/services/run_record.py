"""A run's record: what `runs.get` shows and `runs.replay` re-sends, stored as JSON.

    record = RunRecord(id=..., agent_id=..., ..., steps=[RunStep.of([], None, completion)])
    conversations_sql.insert_run(conn, ..., record=record.to_json())
    record = RunRecord.from_json(row.record)

The JSON is the stored form (`runs.record_json`), read back by every later version and carried by
exports, so its keys and their order do not change: a field is only ever added, with a default.
A record is never rewritten: keys this version does not know are kept as they came.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field

from agentmem.types import MemoryRecallResult, Run, Usage

from ..providers.base import ChatCompletion


class RunStep(BaseModel):
    """One model call of a run."""

    model_config = ConfigDict(extra="allow")

    messages: list[dict[str, Any]] = Field(default_factory=list)
    """What was added to the input since the previous call: the assistant's tool calls and the
    tool results (empty for the first call, whose input is the record's `model_input`)."""
    tool_choice: Optional[str] = None
    response: dict[str, Any] = Field(default_factory=dict)
    """The assistant message, as it went back into the next call's input."""
    finish_reason: Optional[str] = None
    usage: Usage = Field(default_factory=Usage)

    @classmethod
    def of(
        cls, added: list[dict[str, Any]], tool_choice: Optional[str], completion: ChatCompletion
    ) -> RunStep:
        return cls(
            messages=added,
            tool_choice=tool_choice,
            response=completion.message,
            finish_reason=completion.finish_reason,
            usage=completion.usage,
        )


class RunRecord(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    agent_id: str
    thread_id: str
    created_at: str
    """UTC ISO 8601 with microseconds and `Z`, as written (the runs row has it in microseconds)."""
    provider: Optional[str] = None
    model: str
    options: dict[str, Any] = Field(default_factory=dict)
    """The run's `RunOptions` as sent, kept as JSON: a replay copies it unchanged."""
    model_input: list[dict[str, Any]]
    """The exact messages of the first model call, hidden system reminders included."""
    tools: list[dict[str, Any]] = Field(default_factory=list)
    steps: list[RunStep] = Field(default_factory=list)
    output: str = ""
    stop_reason: Optional[str] = None
    recalled: list[MemoryRecallResult] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    replay_of: Optional[str] = None

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> RunRecord:
        return cls.model_validate(record)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def archival_mode(self) -> Optional[str]:
        """The memory policy's archival mode the run had (`auto` injected its matches)."""
        policy = self.options.get("memory_policy") or {}
        mode = policy.get("archival_mode") if isinstance(policy, dict) else None
        return mode if isinstance(mode, str) else None

    def to_run(self, *, created_at: datetime, replay_of: Optional[str]) -> Run:
        """The API's view; the runs row is the authority on when and what it replayed. Only the
        keys the record holds are passed on (a key an older record lacks stays absent)."""
        stored = self.model_dump(mode="json", exclude_unset=True)
        return Run.model_validate({**stored, "created_at": created_at, "replay_of": replay_of})
