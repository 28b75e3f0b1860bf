"""The memory tools as OpenAI-style function tools: one definition for the server and for you.

The server offers exactly these to the model in `tool_only` runs and executes the calls itself.
Agents built on other frameworks can offer the same tools and execute them with the client:

    from agentmem.tools import memory_tools
    response = openai.chat.completions.create(model=..., messages=..., tools=memory_tools())

Each tool call is executed as:

- `recall_archival_memory(query, limit?)`:
  `client.memory.recall(query, agent_id=..., scope="all", limit=...)`
- `append_archival_memory(text)`: `client.memory.append("archival", text, agent_id=...)`
- `update_core_memory(content, expected_updated_at)`:
  `client.memory.update("core", content, expected_updated_at=..., agent_id=...)`
- `remember(key, value)`: `client.state.agent(agent_id).set(key, value)`
- `recall(key?)`: `client.state.agent(agent_id).get_value(key)`, or with no key its keys
  (`.list()`)
- `forget(key)`: `client.state.agent(agent_id).delete(key)`

The keyed-state tools answer in the shapes of seed 001's meta-tools: `remember` ->
`{"ok": true, "key": ...}`, `recall` -> `{"value": ...}` (`{"value": null, "found": false}` for
a key not there) or `{"keys": [...]}`, `forget` -> `{"ok": true, "deleted": bool}`.

Pure data: this module imports nothing beyond the standard library.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Optional

__all__ = [
    "APPEND_ARCHIVAL_MEMORY",
    "FORGET",
    "MAX_RECALL_KEYS",
    "MAX_RECALL_LIMIT",
    "MEMORY_TOOLS",
    "MEMORY_TOOL_NAMES",
    "RECALL",
    "RECALL_ARCHIVAL_MEMORY",
    "REMEMBER",
    "STATE_TOOL_NAMES",
    "UPDATE_CORE_MEMORY",
    "memory_tools",
]

MAX_RECALL_LIMIT = 20
"""The most matches `recall_archival_memory` returns in one call; the server caps larger asks."""

RECALL_ARCHIVAL_MEMORY: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "recall_archival_memory",
        "description": (
            "Search long-term archival memory (the user's and your own) for passages relevant to "
            "a query. Returns matches with their score, scope and line number."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "What to look for, in natural language.",
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_RECALL_LIMIT,
                    "description": "How many matches to return at most.",
                },
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    },
}

APPEND_ARCHIVAL_MEMORY: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "append_archival_memory",
        "description": (
            "Save a fact to your long-term archival memory so it can be recalled in later "
            "conversations. Write self-contained lines."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "One or more lines to remember."},
            },
            "required": ["text"],
            "additionalProperties": False,
        },
    },
}

UPDATE_CORE_MEMORY: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "update_core_memory",
        "description": (
            "Replace the whole text of your agent core memory block, which is shown to you in "
            "every conversation. Pass the updated_at of the block as you last saw it, or null if "
            "there is no block yet. If the block changed meanwhile you get an error with its "
            "current content and updated_at: merge your change into it and try again."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "content": {"type": "string", "description": "The new full text of the block."},
                "expected_updated_at": {
                    "type": ["string", "null"],
                    "description": (
                        "The block's updated_at as last seen (ISO 8601), or null to create it."
                    ),
                },
            },
            "required": ["content", "expected_updated_at"],
            "additionalProperties": False,
        },
    },
}

MAX_RECALL_KEYS = 200
"""The most keys `recall` without a key lists; more are flagged `"truncated": true`."""

_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "description": "The key: 1-255 characters, e.g. `current_research_target`.",
}

REMEMBER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "remember",
        "description": (
            "Store a value under a key in your persistent key-value memory, replacing what the "
            "key held. The value can be any JSON. Use it for exact state worth keeping across "
            "conversations: a target, a cursor, a draft, intermediate findings."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "key": _KEY,
                "value": {"description": "Any JSON value to store."},
            },
            "required": ["key", "value"],
            "additionalProperties": False,
        },
    },
}

RECALL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "recall",
        "description": (
            "Read the value stored under a key in your key-value memory. Without a key, list "
            "the keys you have stored (optionally only those starting with `prefix`)."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "key": _KEY,
                "prefix": {
                    "type": "string",
                    "description": "With no key: list only keys starting with this.",
                },
            },
            "required": [],
            "additionalProperties": False,
        },
    },
}

FORGET: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "forget",
        "description": "Delete a key and its value from your key-value memory.",
        "parameters": {
            "type": "object",
            "properties": {"key": _KEY},
            "required": ["key"],
            "additionalProperties": False,
        },
    },
}

MEMORY_TOOLS: tuple[dict[str, Any], ...] = (
    RECALL_ARCHIVAL_MEMORY,
    APPEND_ARCHIVAL_MEMORY,
    UPDATE_CORE_MEMORY,
    REMEMBER,
    RECALL,
    FORGET,
)
"""All memory tools, in the order the server offers them."""

MEMORY_TOOL_NAMES: tuple[str, ...] = tuple(t["function"]["name"] for t in MEMORY_TOOLS)
STATE_TOOL_NAMES: tuple[str, ...] = ("remember", "recall", "forget")
"""The keyed-state tools, executed in the agent's namespace `("agent", agent_id)`."""


def memory_tools(names: Optional[Iterable[str]] = None) -> list[dict[str, Any]]:
    """Fresh copies of the tool schemas (all, or those named), safe to modify.

    >>> [t["function"]["name"] for t in memory_tools(["recall_archival_memory"])]
    ['recall_archival_memory']
    """
    if names is None:
        return copy.deepcopy(list(MEMORY_TOOLS))
    wanted = list(names)
    unknown = sorted(set(wanted) - set(MEMORY_TOOL_NAMES))
    if unknown:
        raise ValueError(f"unknown memory tool(s) {unknown}; known: {list(MEMORY_TOOL_NAMES)}")
    return [copy.deepcopy(t) for t in MEMORY_TOOLS if t["function"]["name"] in wanted]
